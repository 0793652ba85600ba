import { eq } from 'drizzle-orm';
import { DocupodError, Problems } from '../../core/errors.js';
import type { Db } from '../../storage/database.js';
import { blobs } from '../../storage/schema-documents.js';
import type { BlobStore } from './blob-store.js';

/** Blobs as bytea rows: every pod sees them with no shared volume. Fine for documents up to the upload limit. */
export class PostgresBlobStore implements BlobStore {
  readonly kind = 'postgres' as const;
  constructor(private readonly db: Db) {}

  async put(key: string, data: Uint8Array, workspaceId?: string): Promise<void> {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.db.insert(blobs).values({ key, workspaceId, data: buf, sizeBytes: buf.byteLength }).onConflictDoUpdate({ target: blobs.key, set: { data: buf, sizeBytes: buf.byteLength } });
  }

  async get(key: string): Promise<Uint8Array> {
    const [row] = await this.db.select({ data: blobs.data }).from(blobs).where(eq(blobs.key, key));
    if (!row) throw new DocupodError(Problems.notFound, `stored original ${key} not found`, { retryable: false });
    return new Uint8Array(row.data);
  }

  async delete(key: string): Promise<void> {
    await this.db.delete(blobs).where(eq(blobs.key, key));
  }
}
