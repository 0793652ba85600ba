// The chat API (architecture.md §9): chats, messages streamed as SSE tokens then one final event with the answer,
// citations and usage, feedback, export. The readers below accept the field names the contract leaves open
// (token/delta/text, quote/span, …) so the page keeps working while the chat role settles its exact shapes.
import { api, parseJson, sse, ws as wsPath, type SseEvent } from './api/client';

export interface Citation {
  n: number;
  chunkId?: string;
  documentId?: string;
  source: string;
  title?: string | null;
  page?: number | null;
  heading?: string;
  /** The cited chunk's text, when the server sends it. */
  text?: string;
  /** The quoted span the answer relies on. */
  quote?: string;
  /** The span as [start, end) offsets into `text`, when known. */
  range?: [number, number];
  /** The quote's character offsets in the document's extracted text (the chat role's quoteStart/quoteEnd). */
  docRange?: [number, number];
}

export interface ChatMessage {
  id?: string;
  role: 'user' | 'assistant';
  content: string;
  citations: Citation[];
  usage?: Record<string, number>;
  feedback?: 'up' | 'down';
  streaming?: boolean;
  /** How many token events this answer arrived in (0 for one loaded from history). */
  tokens?: number;
  error?: string;
  createdAt?: string;
}

export interface ChatSummary {
  id: string;
  title: string;
  updatedAt?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function normaliseCitation(raw: unknown, i: number): Citation {
  const c = isObj(raw) ? raw : {};
  const chunk = isObj(c.chunk) ? c.chunk : {};
  const q = c.quote ?? c.span ?? c.quotedSpan ?? c.quoted ?? c.highlight;
  const quote = isObj(q) ? str(q.text) : str(q);
  const text = str(c.text) ?? str(c.chunkText) ?? str(c.content) ?? str(chunk.text);
  const start = num(c.spanStart) ?? num(isObj(q) ? q.start : undefined);
  const end = num(c.spanEnd) ?? num(isObj(q) ? q.end : undefined);
  const qs = num(c.quoteStart);
  const qe = num(c.quoteEnd);
  return {
    n: num(c.n) ?? num(c.index) ?? num(c.number) ?? num(c.marker) ?? i + 1,
    chunkId: str(c.chunkId) ?? str(chunk.id),
    documentId: str(c.documentId) ?? str(chunk.documentId),
    source: str(c.source) ?? str(chunk.source) ?? str(c.title) ?? 'source',
    title: str(c.title) ?? null,
    page: num(c.page) ?? num(chunk.page) ?? null,
    heading: str(c.heading) ?? str(chunk.heading),
    text,
    quote,
    range: start !== undefined && end !== undefined ? [start, end] : undefined,
    docRange: qs !== undefined && qe !== undefined ? [qs, qe] : undefined,
  };
}

export function normaliseMessage(raw: unknown): ChatMessage {
  const m = isObj(raw) ? raw : {};
  const cites = Array.isArray(m.citations) ? m.citations : Array.isArray(m.sources) ? m.sources : [];
  const fb = m.feedback;
  const rating = isObj(fb) ? fb.rating ?? fb.value : fb;
  return {
    id: str(m.id) ?? str(m.messageId),
    role: m.role === 'user' ? 'user' : 'assistant',
    content: str(m.content) ?? str(m.answer) ?? str(m.text) ?? '',
    citations: cites.map(normaliseCitation),
    usage: isObj(m.usage) ? (m.usage as Record<string, number>) : undefined,
    feedback: rating === 'up' || rating === 1 || rating === true ? 'up' : rating === 'down' || rating === -1 || rating === false ? 'down' : undefined,
    createdAt: str(m.createdAt),
  };
}

function listOf(body: unknown, key: string): unknown[] {
  if (Array.isArray(body)) return body;
  if (isObj(body)) for (const k of [key, 'rows', 'items', 'data']) if (Array.isArray(body[k])) return body[k] as unknown[];
  return [];
}

export async function listChats(ws: string): Promise<ChatSummary[]> {
  const body = await api<unknown>('GET', `${wsPath(ws)}/chats`);
  return listOf(body, 'chats').map((c) => {
    const o = isObj(c) ? c : {};
    return { id: String(o.id), title: str(o.title) || str(o.name) || 'Untitled chat', updatedAt: str(o.updatedAt) ?? str(o.createdAt) };
  });
}

export async function createChat(ws: string, title?: string): Promise<ChatSummary> {
  const o = await api<Obj>('POST', `${wsPath(ws)}/chats`, title ? { title } : {});
  const c = isObj(o.chat) ? o.chat : o;
  return { id: String(c.id), title: str(c.title) || 'New chat' };
}

export async function getChat(ws: string, id: string): Promise<{ title: string; messages: ChatMessage[] }> {
  const o = await api<Obj>('GET', `${wsPath(ws)}/chats/${id}`);
  const c = isObj(o.chat) ? { ...o.chat, messages: o.messages ?? (o.chat as Obj).messages } : o;
  return { title: str(c.title) || 'Untitled chat', messages: listOf(c.messages ?? [], 'messages').map(normaliseMessage) };
}

export interface StreamHandlers {
  onToken(text: string): void;
  onFinal(msg: Partial<ChatMessage> & { userMessageId?: string }): void;
  onError(detail: string): void;
}

const FINAL = new Set(['done', 'final', 'answer', 'complete', 'completed', 'end', 'result', 'json']);

/** Reads one SSE event of a chat stream. Exported for tests of the tolerant parsing. */
export function handleChatEvent(e: SseEvent, h: StreamHandlers): void {
  if (e.data === '[DONE]') return;
  const data = parseJson(e.data);
  if (e.event === 'error' && !isObj(data)) return h.onError(String(data) || 'The answer failed.');
  if (isObj(data)) {
    // The chat role's own event shape ({type:'token'|'final'|'error', …}) forwarded as is.
    if (data.type === 'token' && typeof data.text === 'string') return h.onToken(data.text);
    if (data.type === 'error' && isObj(data.problem)) return h.onError(str(data.problem.detail) ?? str(data.problem.title) ?? 'The answer failed.');
    if (data.type === 'final' && isObj(data.result)) return handleChatEvent({ event: 'final', data: JSON.stringify(data.result) }, h);
    if (e.event === 'error' || (isObj(data.problem) && !('answer' in data))) {
      const p = isObj(data.problem) ? data.problem : data;
      return h.onError(str(p.detail) ?? str(p.message) ?? str(p.title) ?? 'The answer failed.');
    }
    const choice = Array.isArray(data.choices) ? (data.choices[0] as Obj | undefined) : undefined;
    const delta = choice && isObj(choice.delta) ? str(choice.delta.content) : undefined;
    if (delta !== undefined) return h.onToken(delta);
    const token = str(data.token) ?? str(data.delta) ?? (FINAL.has(e.event) ? undefined : str(data.text) ?? str(data.content));
    if (!FINAL.has(e.event) && token !== undefined && !('citations' in data) && !('answer' in data)) return h.onToken(token);
    const inner = isObj(data.message) ? data.message : data;
    const msg = normaliseMessage({ ...inner, role: 'assistant' });
    const userMessageId = isObj(data.userMessage) ? str(data.userMessage.id) : str(data.userMessageId);
    h.onFinal({
      id: msg.id ?? str(data.messageId),
      content: msg.content || undefined,
      citations: msg.citations,
      usage: msg.usage ?? (isObj(data.usage) ? (data.usage as Record<string, number>) : undefined),
      userMessageId,
    });
    return;
  }
  if (typeof data === 'string' && !FINAL.has(e.event)) h.onToken(data);
}

export async function streamMessage(ws: string, chatId: string, content: string, h: StreamHandlers, signal: AbortSignal): Promise<void> {
  await sse(
    `${wsPath(ws)}/chats/${chatId}/messages`,
    { method: 'POST', signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content, stream: true }) },
    (e) => handleChatEvent(e, h),
  );
}

export async function sendFeedback(ws: string, chatId: string, messageId: string, rating: 'up' | 'down', comment?: string): Promise<void> {
  await api('POST', `${wsPath(ws)}/chats/${chatId}/messages/${messageId}/feedback`, { rating, ...(comment ? { comment } : {}) });
}

export async function exportChat(ws: string, chatId: string): Promise<Blob> {
  const res = await api<unknown>('GET', `${wsPath(ws)}/chats/${chatId}/export`);
  return new Blob([typeof res === 'string' ? res : JSON.stringify(res, null, 2)], { type: 'application/json' });
}

/**
 * The cited chunk's text, found through the public search API (a citation carries the quote and its offsets in the
 * document, not the whole chunk): a lexical search for the quote within the document, matched on the chunk id.
 */
export async function findChunk(ws: string, c: Citation): Promise<{ text: string; charStart: number } | null> {
  if (!c.documentId || !c.quote) return null;
  const r = await api<{ results: { chunkId: string; text: string; charStart: number }[] }>('POST', `${wsPath(ws)}/search`, {
    query: c.quote.slice(0, 2000),
    k: 20,
    mode: 'lexical',
    documentIds: [c.documentId],
  });
  const hit = r.results.find((x) => x.chunkId === c.chunkId) ?? r.results.find((x) => x.text.includes(c.quote!));
  return hit ? { text: hit.text, charStart: hit.charStart } : null;
}
