// Where uploaded originals live. The embedded default is a local directory; split deployments use Postgres itself
// (no extra service, shared by every pod); S3-compatible storage is a planned adapter behind the same interface.
export interface BlobStore {
  readonly kind: 'local' | 'postgres';
  put(key: string, data: Uint8Array, workspaceId?: string): Promise<void>;
  get(key: string): Promise<Uint8Array>;
  delete(key: string): Promise<void>;
}
