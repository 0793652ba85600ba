import { httpClient } from '../../http/contract.js';
import { RetrievalContract, type RetrievalClient } from './contract.js';

/** The retrieval role over HTTP, for a gateway (or chat) running in another pod. */
export function retrievalHttpClient(baseUrl: string, token?: string): RetrievalClient {
  return httpClient(RetrievalContract, baseUrl, { token });
}
