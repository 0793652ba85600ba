import { httpClient } from '../../http/contract.js';
import { ChatContract, type ChatClient } from './contract.js';

/** The chat role over HTTP, for a gateway (or chat) running in another pod. */
export function chatHttpClient(baseUrl: string, token?: string): ChatClient {
  return httpClient(ChatContract, baseUrl, { token });
}
