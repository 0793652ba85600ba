import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { describeOnPostgres, freshDatabase } from '../../../test/fixtures/database.js';
import { rowsOf, type Database } from '../../storage/database.js';
import { documents } from '../../storage/schema-documents.js';
import { workspaces } from '../../storage/schema.js';
import { writeDocumentIndex } from './index-writer.js';
import { toHalf, writeEmbeddings } from './embedding-writer.js';

// The two write paths (binary COPY with float16 converted here on PGlite, an unnest() INSERT of text on a server)
// must store exactly what pgvector's own text → halfvec conversion stores.

// Values that exercise rounding: ties to even, carries into the exponent, subnormals, the largest half, signs.
const edge = [0, 1, -1, 0.1, 1 / 3, 65504, -65504, 2049, 2051, 1.00048828125, 1.000732421875, 0.0009765625, 6.1e-5, 6.0e-8, 3e-8, 1e-9, 2047.99];

async function roundTrip(database: Database, vectors: number[][]): Promise<{ stored: string[]; expected: string[] }> {
  const db = database.db;
  const workspaceId = randomUUID();
  const documentId = randomUUID();
  await db.insert(workspaces).values({ id: workspaceId, slug: `w-${workspaceId.slice(0, 8)}`, name: 'w', description: '' });
  await db.insert(documents).values({ id: documentId, workspaceId, source: 'a.md', contentHash: documentId.replace(/-/g, '').padEnd(64, '0'), sizeBytes: 1, blobKey: documentId, state: 'indexed' });
  const ids = await db.transaction(async (tx) => {
    const chunkIds = await writeDocumentIndex(tx, { workspaceId, documentId, title: null, language: 'english', chunks: vectors.map((_, i) => ({ text: `chunk ${i}`, headingPath: [], charStart: 0, charEnd: 7, tokenCount: 2 })) });
    await writeEmbeddings(tx, { workspaceId, documentId, chunkIds, embeddings: vectors });
    return chunkIds;
  });
  const stored = rowsOf<{ id: string; v: string; dims: number }>(await db.execute(sql`select chunk_id as id, embedding::text as v, dims from chunk_embeddings where document_id = ${documentId}`));
  const byId = new Map(stored.map((r) => [r.id, r]));
  for (const [i, id] of ids.entries()) expect(byId.get(id)?.dims).toBe(vectors[i]!.length);
  const expected = [];
  for (const v of vectors) expected.push(rowsOf<{ v: string }>(await db.execute(sql`select (${JSON.stringify(v)}::halfvec)::text as v`))[0]!.v);
  return { stored: ids.map((id) => byId.get(id)!.v), expected };
}

function vectors(): number[][] {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  return [edge, ...Array.from({ length: 40 }, (_, i) => Array.from({ length: 24 + (i % 3) }, () => rand() * (i % 2 ? 1 : 1e-3)))];
}

describe('writeEmbeddings', () => {
  it('stores on PGlite (binary COPY) exactly what pgvector parses from text', async () => {
    const t = await freshDatabase('pglite');
    try {
      const { stored, expected } = await roundTrip(t.database, vectors());
      expect(stored).toEqual(expected);
    } finally {
      await t.close();
    }
  });

  it('refuses vectors halfvec cannot hold, and ids that are not uuids', async () => {
    const t = await freshDatabase('pglite');
    try {
      const args = { workspaceId: randomUUID(), documentId: randomUUID(), chunkIds: [randomUUID()] };
      await expect(writeEmbeddings(t.database.db, { ...args, embeddings: [[1, Number.NaN]] })).rejects.toThrow(/non-finite/);
      await expect(writeEmbeddings(t.database.db, { ...args, embeddings: [[1, 70000]] })).rejects.toThrow(/halfvec/);
      await expect(writeEmbeddings(t.database.db, { ...args, chunkIds: ['1,2'], embeddings: [[1]] })).rejects.toThrow(/invalid id/);
    } finally {
      await t.close();
    }
  });

  it('rounds to the nearest float16, ties to even', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie: stays even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: rounds up to even
    expect(toHalf(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalf(2 ** -26)).toBe(0x0000);
  });
});

describeOnPostgres('writeEmbeddings on PostgreSQL 15 with pgvector', () => {
  it('stores over the pg driver (unnest of a halfvec[] parameter) exactly what pgvector parses from text', async () => {
    const t = await freshDatabase('postgres');
    try {
      const { stored, expected } = await roundTrip(t.database, vectors());
      expect(stored).toEqual(expected);
    } finally {
      await t.close();
    }
  });
});
