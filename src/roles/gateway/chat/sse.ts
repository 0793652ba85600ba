import type { FastifyReply, FastifyRequest } from 'fastify';
import { DocupodError, Problems } from '../../../core/errors.js';
import { hijackHeaders } from '../../../http/server.js';
import type { ChatEvent } from '../../chat/contract.js';

/** An `error` event as the DocupodError it describes (same problem type, status and Retry-After). */
export function eventError(p: Extract<ChatEvent, { type: 'error' }>['problem']): DocupodError {
  const known = Object.values(Problems).find((x) => x.type === p.type) ?? { type: p.type, title: p.title, status: p.status, expected: p.status < 500 };
  return new DocupodError(known, p.detail, p.retryAfter !== undefined ? { retryAfter: p.retryAfter } : {});
}

/**
 * Streams chat events to an HTTP client. The first event is awaited before any byte is written, so failures that
 * happen before the answer starts (quota, unknown chat, model down) still get a proper status and problem+json; once
 * the stream has started, failures become a final `error` event. A client that disconnects aborts `ac`, which cancels
 * the upstream model call; the chat role then saves nothing.
 */
export async function pipeEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  open: (signal: AbortSignal) => AsyncIterable<ChatEvent>,
  write: {
    headers?: Record<string, string>;
    event: (ev: ChatEvent) => string;
    end?: () => string;
  },
): Promise<void> {
  const ac = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableEnded) ac.abort(new Error('the client disconnected'));
  };
  reply.raw.on('close', onClose);
  const it = open(ac.signal)[Symbol.asyncIterator]();
  let first: IteratorResult<ChatEvent>;
  try {
    first = await it.next();
  } catch (err) {
    reply.raw.off('close', onClose);
    throw err;
  }
  if (!first.done && first.value.type === 'error') {
    reply.raw.off('close', onClose);
    await it.return?.();
    throw eventError(first.value.problem);
  }
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    ...hijackHeaders(reply),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
    ...write.headers,
  });
  // Proxies close idle streams; a comment line every 15 s keeps a slow model's stream open.
  const beat = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  try {
    let cur = first;
    while (!cur.done) {
      if (ac.signal.aborted) break;
      res.write(write.event(cur.value));
      cur = await it.next();
    }
    if (!ac.signal.aborted && write.end) res.write(write.end());
  } catch (err) {
    if (!ac.signal.aborted) {
      request.log.error({ err }, 'chat stream failed');
      res.write(write.event({ type: 'error', problem: { type: Problems.internal.type, title: Problems.internal.title, status: 500, detail: 'internal error' } }));
    }
  } finally {
    clearInterval(beat);
    if (ac.signal.aborted) await it.return?.();
    res.end();
  }
}

export const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
