import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

// Response serialisation. By default a route's zod response schema encodes (validates) every answer and then
// JSON.stringify runs: a mismatch becomes a 500, which catches handler bugs. For the few answers on the hot path of
// every client (GET /api/me, …) that costs more than the rest of the route (~3.8 µs vs ~0.6–1.4 µs for the /api/me
// body), so those schemas are marked with fastResponse() and serialised by fast-json-stringify, compiled once from
// the schema's JSON Schema (what the OpenAPI document shows). It still writes only the declared properties, so an
// extra field on a row (a password hash, say) cannot leak; it does not check formats or enum values, which for these
// routes come from typed database rows.

const fast = new WeakSet<z.ZodType>();

/** Marks a response schema to be serialised by fast-json-stringify instead of zod (see above). */
export function fastResponse<T extends z.ZodType>(schema: T): T {
  fast.add(schema);
  return schema;
}

/** Fastify's serializer compiler: fast-json-stringify for fastResponse() schemas, zod for the rest. */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType | { properties: z.ZodType }> = (route) => {
  const schema = route.schema;
  if (schema instanceof z.ZodType && fast.has(schema)) {
    // unrepresentable 'throw': a schema with transforms cannot be marked; better to fail at start than serialise wrong.
    const json = z.toJSONSchema(schema, { io: 'output', target: 'draft-7', unrepresentable: 'throw' });
    return fastJson(json as Parameters<typeof fastJson>[0]) as (data: unknown) => string;
  }
  return zodSerializerCompiler(route);
};
