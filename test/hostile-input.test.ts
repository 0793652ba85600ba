import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { backends } from './fixtures/database.js';
import { multipart } from './fixtures/multipart.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// Drives every route of the OpenAPI document, whoever adds it, with hostile input as a signed-in admin who owns a
// workspace with a document, a chat and a key: NUL and lone surrogates (text Postgres cannot store), huge and empty
// strings, wrong types, deep nesting, numbers out of every range, in bodies, query strings and path parameters. Bodies
// follow each route's own JSON Schema most of the time, so a request gets past validation with one bad value and
// reaches the handler and the database. No answer may be a 5xx, and no event stream may carry an internal error.
// Seeded and bounded: RUNS requests per route (plus shrinking, only when something fails), ~10 s on PGlite. To search
// harder: DOCUPOD_TEST_FUZZ_RUNS=300 DOCUPOD_TEST_FUZZ_SEED=<any number> npx vitest run test/hostile-input.test.ts

const RUNS = Number(process.env.DOCUPOD_TEST_FUZZ_RUNS || 30);
const SEED = Number(process.env.DOCUPOD_TEST_FUZZ_SEED || 20_261_215);

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
};
interface Operation {
  method: string;
  path: string;
  pathParams: Array<{ name: string; schema: JsonSchema }>;
  queryParams: Array<{ name: string; schema: JsonSchema }>;
  body?: JsonSchema;
}
interface HostileRequest {
  path: Record<string, string>;
  query: Array<[string, string]>;
  body?: { kind: 'json'; value: unknown } | { kind: 'raw'; text: string; type: string };
}

// ---- hostile values -------------------------------------------------------------------------------------------------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
/** Any UTF-16 code unit: NUL, controls, lone surrogates, BMP letters. */
const codeUnit = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), fc.constantFrom('\u0000', 'a', ' '), loneSurrogate);
const hostileString = fc.oneof(
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    'tail\udc00',
    '\udbff\u0000',
    '',
    ' ',
    '\t\n',
    '😀👩‍👩‍👧',
    'e\u0301\u202e',
    '../../etc/passwd',
    "'; drop table users; --",
    '%00',
    '__proto__',
    'constructor',
    'null',
    '00000000-0000-0000-0000-000000000000',
    'x'.repeat(5000),
    '\u0000'.repeat(300),
  ),
  fc.string({ unit: codeUnit, maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
const hostileNumber = fc.oneof(
  fc.constantFrom(-1, 0, -0, 0.5, 1e-300, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e21, 1e308, -1e308),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  fc.boolean(),
  fc.constant(null),
  fc.anything({ key: hostileString, values: [hostileString, hostileNumber, fc.boolean(), fc.constant(null)], maxDepth: 3, maxKeys: 4 }),
  fc.integer({ min: 1, max: 100 }).map((n) => JSON.parse('['.repeat(n) + ']'.repeat(n)) as unknown),
);

// ---- values that follow a route's schema (so one bad field reaches the handler) ------------------------------------

/** 'plausible': what a client would send (may still break a rule: too long, out of range); 'wild': any node may be hostile. */
type Mode = 'plausible' | 'wild';

function fromSchema(schema: JsonSchema | undefined, real: RealValues, mode: Mode, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 5) return mode === 'wild' ? hostileValue : fc.constant('deploy');
  const typed = typedFromSchema(schema, real, mode, depth);
  // Wild: one node in six is something else entirely (the wrong type, NUL, a deep array).
  return mode === 'wild' ? fc.oneof({ weight: 5, arbitrary: typed }, { weight: 1, arbitrary: hostileValue }) : typed;
}

function typedFromSchema(schema: JsonSchema, real: RealValues, mode: Mode, depth: number): fc.Arbitrary<unknown> {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => fromSchema(s, real, mode, depth + 1)));
  if (schema.allOf?.[0]) return fromSchema(schema.allOf[0], real, mode, depth + 1);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  const wild = (a: fc.Arbitrary<unknown>) => (mode === 'wild' ? [a] : []);
  switch (type) {
    case 'string': {
      if (schema.format === 'uuid') return fc.oneof(fc.constantFrom(...real.ids), fc.uuid(), ...wild(hostileString));
      if (schema.format === 'email') return fc.oneof(fc.emailAddress(), fc.constantFrom(real.email), ...wild(hostileString));
      const min = schema.minLength ?? 0;
      const max = Math.max(min, Math.min(schema.maxLength ?? 60, 60));
      return fc.oneof(
        fc.constantFrom('deploy', 'the quick brown fox', real.workspaceSlug, real.email, `docupod:${real.workspaceSlug}`).filter((v) => v.length >= min && v.length <= (schema.maxLength ?? Infinity)),
        fc.string({ minLength: min, maxLength: max }),
        fc.string({ unit: 'grapheme', minLength: min, maxLength: max }),
        fc.constant('y'.repeat(Math.max(1, min, schema.maxLength ?? 10_000))),
        ...wild(fc.constant('y'.repeat((schema.maxLength ?? 10_000) + 1))),
        ...wild(hostileString),
      );
    }
    case 'integer':
    case 'number': {
      const lo = schema.minimum ?? -1000;
      const hi = schema.maximum ?? 1000;
      const inRange = type === 'integer' ? fc.integer({ min: Math.max(lo, -1e6), max: Math.min(hi, 1e6) }) : fc.double({ min: Math.max(lo, -1e6), max: Math.min(hi, 1e6), noNaN: true });
      return fc.oneof(inRange, fc.constantFrom(lo, hi), ...wild(fc.constantFrom(lo - 1, hi + 1, hi + 0.5)), ...wild(hostileNumber));
    }
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(fromSchema(schema.items, real, mode, depth + 1), { maxLength: 4 });
    case 'object': {
      const props = schema.properties ?? {};
      const model = Object.fromEntries(Object.entries(props).map(([k, s]) => [k, fromSchema(s, real, mode, depth + 1)]));
      const record = fc.record(model, { requiredKeys: (schema.required ?? []).filter((k) => k in props) });
      if (mode === 'plausible') return record;
      return fc.tuple(record, fc.dictionary(hostileString, hostileValue, { maxKeys: 2 })).map(([r, extra]) => ({ ...extra, ...r }));
    }
    default:
      return mode === 'wild' ? hostileValue : fc.constant({});
  }
}

/** `value` with exactly one node (picked by `n`) replaced by `hostile`, or a hostile key added to one object. */
function withOneHostile(value: unknown, n: number, hostile: unknown, key: string): unknown {
  const slots: Array<(v: unknown) => unknown> = [];
  const walk = (v: unknown, set: (x: unknown) => unknown) => {
    slots.push(set);
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, (x) => set(v.map((old, j) => (j === i ? x : old)))));
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      slots.push(() => set({ ...o, [key]: hostile }));
      for (const k of Object.keys(o)) walk(o[k], (x) => set({ ...o, [k]: x }));
    }
  };
  walk(value, (x) => x);
  return slots[n % slots.length]!(hostile);
}

/** A body close to what the route expects with one hostile value in it; sometimes a wild one throughout. */
function bodyArb(schema: JsonSchema | undefined, real: RealValues): fc.Arbitrary<unknown> {
  if (!schema) return hostileValue;
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fromSchema(schema, real, 'plausible'), fc.nat(), hostileValue, hostileString).map(([v, n, h, k]) => withOneHostile(v, n, h, k)) },
    { weight: 1, arbitrary: fromSchema(schema, real, 'plausible') },
    { weight: 2, arbitrary: fromSchema(schema, real, 'wild') },
  );
}

// ---- requests -------------------------------------------------------------------------------------------------------

interface RealValues {
  workspaceSlug: string;
  email: string;
  ids: string[];
  byParam: Record<string, string[]>;
}

/** Percent-encodes any string, lone surrogates included (as the bytes a WTF-8 encoder writes: not valid UTF-8). */
function encode(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xd800 && c <= 0xdfff)
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

/**
 * One request: most of the time one part (path, query or body) is hostile and the others are what a client would
 * send, so the hostile part is what the server has to cope with; sometimes all of it is plausible.
 */
function requestArb(op: Operation, real: RealValues): fc.Arbitrary<HostileRequest> {
  const pathOf = (hostile: boolean) =>
    fc.record(
      Object.fromEntries(
        op.pathParams.map((p) => {
          // Deleting the fixture workspace would leave every later route nothing to reach.
          const known = op.method === 'DELETE' && op.path === '/api/workspaces/{ws}' ? [] : (real.byParam[p.name] ?? []);
          const plausible = known.length > 0 ? fc.constantFrom(...known) : fc.string({ minLength: 1, maxLength: 20 });
          return [p.name, hostile ? fc.oneof(plausible, fc.string({ maxLength: 20 }), hostileString.filter((v) => v.length <= 200)) : plausible];
        }),
      ),
    ) as fc.Arbitrary<Record<string, string>>;
  const asQueryValue = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
  const queryOf = (hostile: boolean) => {
    const declared = op.queryParams.map((p) => fc.option(fc.tuple(fc.constant(p.name), fromSchema(p.schema, real, hostile ? 'wild' : 'plausible').map(asQueryValue))));
    const extra = hostile ? fc.array(fc.tuple(hostileString, hostileString), { maxLength: 2 }) : fc.constant([] as Array<[string, string]>);
    return fc.tuple(fc.tuple(...declared), extra).map(([d, more]) => [...d.filter((x): x is [string, string] => x !== null), ...more]);
  };
  const sendsBody = op.method !== 'GET' && op.method !== 'DELETE';
  const json = (a: fc.Arbitrary<unknown>) => a.map((value) => ({ kind: 'json' as const, value }));
  const raw = fc.record({
    kind: fc.constant('raw' as const),
    text: fc.oneof(
      fc.constantFrom('{', '{"a":', '[]', '""', 'null', '{"name":"\\u0000"}', '{"a":"\\ud800"}', '\u0000'),
      // Nesting deeper than any recursive walk survives, as text: building it as a value would overflow here.
      fc.integer({ min: 1000, max: 200_000 }).map((n) => `{"name":${'['.repeat(n)}${']'.repeat(n)}}`),
      hostileString,
    ),
    type: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
  });
  const bodyOf = (hostile: boolean) =>
    !sendsBody
      ? fc.constant(undefined)
      : hostile
        ? fc.oneof({ weight: 6, arbitrary: json(bodyArb(op.body, real)) }, { weight: 1, arbitrary: raw })
        : json(op.body ? fromSchema(op.body, real, 'plausible') : fc.constant({}));
  const shape = (p: boolean, q: boolean, b: boolean) => fc.record({ path: pathOf(p), query: queryOf(q), body: bodyOf(b) });
  return fc.oneof(
    ...(op.pathParams.length > 0 ? [shape(true, false, false)] : []),
    shape(false, true, false),
    ...(sendsBody ? [{ weight: 3, arbitrary: shape(false, false, true) }] : []),
    shape(false, false, false),
  ) as fc.Arbitrary<HostileRequest>;
}

function toInject(op: Operation, req: HostileRequest): InjectOptions {
  const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encode(req.path[name] ?? ''));
  const qs = req.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const out: InjectOptions = { method: op.method as InjectOptions['method'], url: qs ? `${url}?${qs}` : url };
  if (req.body?.kind === 'json') {
    out.payload = JSON.stringify(req.body.value) ?? 'null';
    out.headers = { 'content-type': 'application/json' };
  } else if (req.body?.kind === 'raw') {
    out.payload = req.body.text;
    out.headers = { 'content-type': req.body.type };
  }
  return out;
}

function operationsOf(spec: { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string; schema: JsonSchema }>; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content ?? {};
      const params = op.parameters ?? [];
      ops.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter((p) => p.in === 'path'),
        queryParams: params.filter((p) => p.in === 'query'),
        body: content['application/json']?.schema,
      });
    }
  }
  // Destructive routes last, so the others still find the fixture's rows.
  return ops.sort((a, b) => Number(a.method === 'DELETE') - Number(b.method === 'DELETE'));
}

// ---- the test ---------------------------------------------------------------------------------------------------------

describe.each(backends())('hostile input (%s)', (backend) => {
  let s: TestServer;
  let admin: Session;
  let real: RealValues;

  beforeAll(async () => {
    s = await startTestServer({ backend });
    admin = await signup(s.app, 'fuzz-admin@example.com', { name: 'Fuzz Admin' });
    const req = as(s.app, admin);
    const ws = await createWorkspace(s.app, admin, 'Fuzz');
    const up = await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/documents`, ...(await multipart([{ name: 'guide.md', content: '# Deploy\n\nThe quick brown fox deploys the cluster with helm.\n' }])) });
    expect(up.statusCode, up.body).toBe(202);
    const documentId: string = up.json().documents[0].id;
    for (let i = 0; i < 200; i++) {
      if ((await req({ url: `/api/workspaces/${ws.slug}/documents/${documentId}` })).json().state === 'indexed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const chat = await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats`, payload: { title: 'fuzz' } });
    const chatId: string = chat.json().id;
    const answer = await req({ method: 'POST', url: `/api/workspaces/${ws.slug}/chats/${chatId}/messages`, payload: { content: 'how does the fox deploy?' } });
    expect(answer.statusCode, answer.body).toBe(200);
    const chatView = (await req({ url: `/api/workspaces/${ws.slug}/chats/${chatId}` })).json() as { messages: Array<{ id: string }> };
    const messageIds = chatView.messages.map((m) => m.id);
    const key = await createKey(s.app, admin, { name: 'fuzz key' });
    real = {
      workspaceSlug: ws.slug,
      email: admin.email,
      ids: [ws.id, documentId, chatId, key.id, admin.userId, ...messageIds],
      byParam: {
        ws: [ws.slug, ws.id],
        id: [documentId, chatId, key.id, admin.userId, ws.id],
        userId: [admin.userId],
        messageId: messageIds,
        scope: ['workspaces', 'keys'],
        name: ['intent', 'docupod'],
        version: ['1'],
      },
    };
  });
  afterAll(async () => s?.close());

  it('answers every route of the OpenAPI document without a 5xx, whatever the path, query and body hold', async () => {
    const spec = (await s.app.inject({ url: '/openapi.json' })).json();
    const ops = operationsOf(spec);
    expect(ops.length).toBeGreaterThan(40);
    const failures: string[] = [];
    let requests = 0;
    for (const [i, op] of ops.entries()) {
      const result = await fc.check(
        fc.asyncProperty(requestArb(op, real), async (hostile) => {
          requests++;
          const res = await as(s.app, admin)(toInject(op, hostile));
          const streamed = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
          const broken = res.statusCode >= 500 || (streamed && /internal error/.test(res.body));
          if (broken) throw new Error(`${res.statusCode} ${res.body.slice(0, 400)}`);
        }),
        { numRuns: RUNS, seed: SEED + i },
      );
      if (result.failed) {
        const example = result.counterexample?.[0] as HostileRequest | undefined;
        failures.push(`${op.method} ${op.path}: ${example ? JSON.stringify(toInject(op, example)).slice(0, 600) : '?'}\n    → ${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)}`);
      }
    }
    expect(failures, failures.join('\n')).toEqual([]);
    expect(requests).toBeGreaterThanOrEqual(ops.length * RUNS);
  });
});
