import { is, sql } from 'drizzle-orm';
import { PgliteSession } from 'drizzle-orm/pglite';
import type { Db } from '../../storage/database.js';

/** Vectors per INSERT on a Postgres server: one array parameter each, ~3 MB of text for 1,000 × 384-d. */
export const EMBEDDING_BATCH = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The largest finite float16: halfvec refuses anything beyond. */
const HALF_MAX = 65504;

interface PgliteClient {
  query(query: string, params?: unknown[], options?: { blob?: Blob }): Promise<unknown>;
}

/**
 * Stores one vector per chunk as halfvec (chunk_embeddings exists only where pgvector does; see
 * src/storage/vector-schema.ts).
 *
 * On PGlite the rows go in with one binary COPY per call (the vectors as float16, converted here): PGlite's WASM
 * build parses a float from text in ~2.7 µs, so the text form of 100,000 × 384-d vectors alone cost ~100 s, whatever
 * the statement shape; binary needs no parsing. On a Postgres server (native float parsing, and no COPY through
 * drizzle) each batch is one INSERT … SELECT over unnest() of array parameters, instead of five parameters per row.
 */
export async function writeEmbeddings(tx: Db, args: { workspaceId: string; documentId: string; chunkIds: string[]; embeddings: number[][] }): Promise<void> {
  const { workspaceId, documentId, chunkIds, embeddings } = args;
  if (chunkIds.length !== embeddings.length) throw new Error(`${chunkIds.length} chunks but ${embeddings.length} embeddings`);
  if (chunkIds.length === 0) return;
  for (const id of [workspaceId, documentId, ...chunkIds]) if (!UUID.test(id)) throw new Error(`invalid id ${JSON.stringify(id)}`);
  for (const v of embeddings) checkVector(v);
  const pglite = pgliteClient(tx);
  if (pglite) {
    const blob = copyBinary(workspaceId, documentId, chunkIds, embeddings);
    await pglite.query(`copy chunk_embeddings (chunk_id, workspace_id, document_id, dims, embedding) from '/dev/blob' with (format binary)`, [], { blob });
    return;
  }
  for (let start = 0; start < chunkIds.length; start += EMBEDDING_BATCH) {
    const ids = chunkIds.slice(start, start + EMBEDDING_BATCH);
    const vectors = embeddings.slice(start, start + EMBEDDING_BATCH);
    // Array literals: ids are checked uuids and dims integers (no quoting); a vector's text form ("[…]") is quoted.
    await tx.execute(sql`insert into chunk_embeddings (chunk_id, workspace_id, document_id, dims, embedding)
      select x.id, ${workspaceId}::uuid, ${documentId}::uuid, x.dims, x.v
      from unnest(${`{${ids.join(',')}}`}::uuid[], ${`{${vectors.map((v) => v.length).join(',')}}`}::int[],
        ${`{${vectors.map((v) => `"${literal(v)}"`).join(',')}}`}::halfvec[]) as x(id, dims, v)`);
  }
}

/** The PGlite connection (or transaction) behind a drizzle handle, for COPY; undefined over node-postgres. */
function pgliteClient(tx: Db): PgliteClient | undefined {
  const session = (tx as unknown as { session?: unknown }).session;
  return is(session, PgliteSession) ? ((session as unknown as { client: PgliteClient }).client) : undefined;
}

function checkVector(v: number[]): void {
  if (v.length === 0 || v.length > 16000) throw new Error(`invalid embedding dimension ${v.length}`);
  for (const x of v) {
    if (!Number.isFinite(x)) throw new Error(`the embedder returned a non-finite value (${x}); check the embedding model`);
    if (Math.abs(x) > HALF_MAX) throw new Error(`the embedder returned ${x}, beyond halfvec's range (±${HALF_MAX}); check the embedding model`);
  }
}

/**
 * pgvector's text form with 9 significant digits, which name a float32 exactly: the server parses each to the same
 * float32 as the binary path and then rounds once to float16 (fewer digits would round twice, and 17 are wasted).
 */
function literal(v: number[]): string {
  return `[${v.map((x) => +x.toPrecision(9)).join(',')}]`;
}

/**
 * COPY's binary format (PostgreSQL docs, "COPY", Binary Format): a signature, then per row the field count and each
 * field as length + bytes in network order; uuid is 16 bytes, int4 4 and halfvec pgvector's halfvec_recv layout:
 * int16 dims, int16 unused (0), then dims × float16.
 */
export function copyBinary(workspaceId: string, documentId: string, chunkIds: string[], embeddings: number[][]): Blob {
  const size = 19 + 2 + chunkIds.reduce((s, _, i) => s + 2 + 3 * (4 + 16) + (4 + 4) + (4 + 4 + 2 * embeddings[i]!.length), 0);
  const buf = Buffer.alloc(size);
  let o = buf.write('PGCOPY\n\xff\r\n\0', 0, 'latin1');
  o = buf.writeInt32BE(0, o); // flags
  o = buf.writeInt32BE(0, o); // header extension length
  const ws = uuidBytes(workspaceId);
  const doc = uuidBytes(documentId);
  for (let i = 0; i < chunkIds.length; i++) {
    const v = embeddings[i]!;
    o = buf.writeInt16BE(5, o);
    o = buf.writeInt32BE(16, o);
    o += uuidBytes(chunkIds[i]!).copy(buf, o);
    o = buf.writeInt32BE(16, o);
    o += ws.copy(buf, o);
    o = buf.writeInt32BE(16, o);
    o += doc.copy(buf, o);
    o = buf.writeInt32BE(4, o);
    o = buf.writeInt32BE(v.length, o);
    o = buf.writeInt32BE(4 + 2 * v.length, o);
    o = buf.writeInt16BE(v.length, o);
    o = buf.writeInt16BE(0, o);
    for (const x of v) o = buf.writeUInt16BE(toHalf(x), o);
  }
  o = buf.writeInt16BE(-1, o); // trailer
  if (o !== size) throw new Error(`COPY buffer size mismatch (${o} ≠ ${size})`);
  return new Blob([buf]);
}

const uuidBytes = (id: string) => Buffer.from(id.replace(/-/g, ''), 'hex');

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 bits of x, rounded to nearest, ties to even (as pgvector's own float → half conversion). */
export function toHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf/NaN (refused earlier)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow (refused earlier)
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still correct
  return sign | h;
}
