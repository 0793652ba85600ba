import { httpClient } from '../../http/contract.js';
import { ChatContract, type ChatClient } from './contract.js';
import { httpChatStreams } from './stream.js';

/** The chat role over HTTP, for a gateway running in another pod: JSON methods plus the NDJSON answer streams. */
export function chatHttpClient(baseUrl: string, token?: string): ChatClient {
  // A non-streamed answer waits for the whole model output, which can take minutes on CPU backends.
  return { ...httpClient(ChatContract, baseUrl, { token, timeoutMs: 600_000 }), ...httpChatStreams(baseUrl, token) };
}
