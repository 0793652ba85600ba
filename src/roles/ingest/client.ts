import { httpClient } from '../../http/contract.js';
import { IngestContract, type IngestClient } from './contract.js';

/** The ingest role over HTTP, for a gateway (or chat) running in another pod. */
export function ingestHttpClient(baseUrl: string, token?: string): IngestClient {
  return httpClient(IngestContract, baseUrl, { token });
}
