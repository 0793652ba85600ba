import type { FastifyInstance } from 'fastify';
import { DocupodError, Problems } from '../../core/errors.js';
import { assertInternalScope } from '../../http/contract.js';
import { hijackHeaders } from '../../http/server.js';
import { STREAM_METHODS, type ChatEvent, type ChatStreams, type StreamMethod } from './contract.js';

// Streaming between split roles: the gateway calls POST /internal/chat/stream/<method> with the method's JSON input
// and reads newline-delimited JSON events (the same ChatEvent objects the in-process form yields). NDJSON rather than
// SSE because both ends are ours: one JSON object per line, no framing rules. Closing the connection cancels the
// answer on the chat pod (and with it the upstream model call), exactly like aborting the in-process iterator.

/** Registers /chat/stream/:method inside the internal API plugin (prefix /internal), behind its token guard. */
export function serveChatStreams(
  scope: FastifyInstance,
  service: { stream(method: StreamMethod, input: unknown, signal?: AbortSignal): AsyncIterable<ChatEvent> },
): void {
  assertInternalScope(scope, 'the chat streams');
  scope.post<{ Params: { method: string } }>('/chat/stream/:method', { schema: { hide: true } }, async (request, reply) => {
    const method = request.params.method as StreamMethod;
    if (!STREAM_METHODS.includes(method)) throw new DocupodError(Problems.notFound, `no chat stream method ${request.params.method}`);
    const ac = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableEnded) ac.abort(new Error('the caller closed the stream'));
    });
    reply.hijack();
    // Internal, but its replies carry the same headers as every other (security headers, request id).
    reply.raw.writeHead(200, { ...hijackHeaders(reply), 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache', 'x-request-id': String(request.id) });
    try {
      for await (const ev of service.stream(method, request.body ?? {}, ac.signal)) {
        if (ac.signal.aborted) break;
        reply.raw.write(`${JSON.stringify(ev)}\n`);
      }
    } catch (err) {
      if (!ac.signal.aborted) {
        const e = err instanceof DocupodError ? err : new DocupodError(Problems.internal, 'internal error');
        reply.raw.write(`${JSON.stringify({ type: 'error', problem: { type: e.problem.type, title: e.problem.title, status: e.status, detail: e.message } })}\n`);
      }
    } finally {
      reply.raw.end();
    }
  });
}

export function httpChatStreams(baseUrl: string, token?: string): ChatStreams {
  return {
    async *stream(method, input, signal) {
      let res: Response;
      try {
        res = await fetch(new URL(`/internal/chat/stream/${method}`, baseUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify(input),
          signal,
        });
      } catch (err) {
        if (signal?.aborted) return;
        yield unavailable(`the chat role at ${baseUrl} did not answer: ${(err as Error).message}`);
        return;
      }
      if (!res.ok || !res.body) {
        const body = (await res.json().catch(() => undefined)) as { type?: string; title?: string; status?: number; detail?: string } | undefined;
        yield { type: 'error', problem: { type: body?.type ?? Problems.unavailable.type, title: body?.title ?? 'Service unavailable', status: body?.status ?? 503, detail: body?.detail ?? `the chat role answered HTTP ${res.status}` } };
        return;
      }
      const decoder = new TextDecoder();
      let buf = '';
      let ended = false;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            const ev = JSON.parse(line) as ChatEvent;
            if (ev.type !== 'token') ended = true;
            yield ev;
          }
        }
      } catch (err) {
        if (signal?.aborted) return;
        yield unavailable(`the chat role at ${baseUrl} broke off the answer: ${(err as Error).message}`);
        return;
      }
      if (!ended && !signal?.aborted) yield unavailable(`the chat role at ${baseUrl} ended the answer without a result`);
    },
  };
}

function unavailable(detail: string): ChatEvent {
  return { type: 'error', problem: { type: Problems.unavailable.type, title: Problems.unavailable.title, status: 503, detail } };
}
