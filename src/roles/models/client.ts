import { httpClient } from '../../http/contract.js';
import { ModelsContract, type ModelsClient } from './contract.js';

/** The models role over HTTP, for a gateway (or chat) running in another pod. */
export function modelsHttpClient(baseUrl: string, token?: string): ModelsClient {
  return httpClient(ModelsContract, baseUrl, { token });
}
