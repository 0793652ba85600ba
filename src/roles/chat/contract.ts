import { z } from 'zod';
import { defineContract, type ClientOf } from '../../http/contract.js';
import { statusMethod } from '../../core/role-status.js';

// The chat role's interface, shared by its in-process and HTTP forms. JSON methods go through defineContract; the
// streaming methods (an answer token by token) are listed in STREAM_METHODS and served as NDJSON over
// POST /internal/chat/stream/<method> (see stream.ts), because the contract's HTTP form is one JSON request/response.

const Id = z.uuid();

/** Who is asking: the gateway resolved the workspace and the caller before it calls the chat role. */
const Caller = z.object({ workspaceId: Id, userId: Id, keyId: Id.optional() });

export const Usage = z.object({ promptTokens: z.number().int(), completionTokens: z.number().int(), totalTokens: z.number().int() });
export type Usage = z.infer<typeof Usage>;

export const Citation = z.object({
  n: z.number().int(),
  chunkId: z.uuid(),
  documentId: z.uuid(),
  source: z.string(),
  title: z.string().nullable(),
  heading: z.string(),
  page: z.number().int().nullable(),
  /** The sentence of the chunk that supports the claim, verbatim. */
  quote: z.string(),
  /** Where the quote sits in the document's extracted text (character offsets). */
  quoteStart: z.number().int(),
  quoteEnd: z.number().int(),
});
export type Citation = z.infer<typeof Citation>;

export const RetrievalTrace = z.object({
  question: z.string(),
  /** The standalone query retrieval ran with (follow-ups rewritten), and who rewrote it. */
  query: z.string(),
  rewrittenBy: z.enum(['none', 'llm', 'heuristic']),
  mode: z.string(),
  /** Retrieval's own notes, e.g. vector search paused while the workspace re-embeds. */
  retrievalNotes: z.array(z.string()).optional(),
  retrievalMs: z.number(),
  /** The reranking stage, when one is configured: who reranked, how long it took, and why it was skipped if it was. */
  rerank: z.object({ by: z.string(), ms: z.number(), applied: z.boolean(), error: z.string().optional(), candidates: z.number().int() }).optional(),
  results: z.array(z.object({ chunkId: z.uuid(), documentId: z.uuid(), source: z.string(), score: z.number(), n: z.number().int().nullable() })),
  /** False when nothing retrieved matched the question and the answer says so without calling the model. */
  relevant: z.boolean(),
  llm: z.string(),
  promptTokens: z.number().int(),
  ttftMs: z.number().nullable(),
  totalMs: z.number(),
});
export type RetrievalTrace = z.infer<typeof RetrievalTrace>;

export const Feedback = z.object({ rating: z.enum(['up', 'down']), comment: z.string(), createdAt: z.string() });

export const Message = z.object({
  id: z.uuid(),
  role: z.enum(['user', 'assistant']),
  content: z.string(),
  citations: z.array(Citation),
  usage: Usage.nullable(),
  model: z.string().nullable(),
  createdAt: z.string(),
  feedback: Feedback.nullable().optional(),
});
export type Message = z.infer<typeof Message>;

export const Chat = z.object({ id: z.uuid(), workspaceId: z.uuid(), title: z.string(), createdAt: z.string(), updatedAt: z.string() });
export type Chat = z.infer<typeof Chat>;

export const ChatWithMessages = Chat.extend({ messages: z.array(Message) });

/** The final event of an answer (and the body of a non-streamed one). */
export const AnswerResult = z.object({
  chatId: z.uuid().nullable(),
  messageId: z.uuid().nullable(),
  answer: z.string(),
  citations: z.array(Citation),
  usage: Usage,
  model: z.string(),
  finishReason: z.string(),
  trace: RetrievalTrace,
});
export type AnswerResult = z.infer<typeof AnswerResult>;

export const GenerateResult = z.object({ text: z.string(), usage: Usage, model: z.string(), finishReason: z.string() });
export type GenerateResult = z.infer<typeof GenerateResult>;

const ChatRef = Caller.extend({ chatId: Id });

export const LlmMessageInput = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(200_000) });

export const SendMessageInput = ChatRef.extend({ content: z.string().trim().min(1, 'content must not be empty').max(20_000) });
/** Stateless: a whole conversation in, one grounded answer out (the /v1 `docupod:{workspace}` model). */
export const AnswerInput = Caller.extend({ messages: z.array(LlmMessageInput).min(1).max(200), maxTokens: z.number().int().min(1).max(32_768).optional(), temperature: z.number().min(0).max(2).optional() });
/** Pass-through to the configured LLM (other /v1 model names); counted under the caller's key. */
export const GenerateInput = z.object({
  userId: Id,
  keyId: Id.optional(),
  model: z.string().min(1).max(200),
  messages: z.array(LlmMessageInput).min(1).max(200),
  maxTokens: z.number().int().min(1).max(32_768).optional(),
  temperature: z.number().min(0).max(2).optional(),
  stop: z.array(z.string()).max(4).optional(),
});

export const UsageRow = z.object({ day: z.string(), keyId: z.string().nullable(), requests: z.number().int(), promptTokens: z.number().int(), completionTokens: z.number().int() });
export const Quota = z.object({ scope: z.enum(['workspace', 'key']), subjectId: z.uuid(), dailyTokens: z.number().int().nullable(), requestsPerMinute: z.number().int().nullable() });
export type Quota = z.infer<typeof Quota>;
/** The limits an admin sets; requests_per_minute is an int4 column, daily_tokens an int8 (any safe integer fits). */
export const QuotaLimits = z.object({
  dailyTokens: z.number().int().min(0).nullable().optional(),
  requestsPerMinute: z.number().int().min(0).max(2 ** 31 - 1).nullable().optional(),
});

export const ChatContract = defineContract('chat', {
  status: statusMethod,
  createChat: { input: Caller.extend({ title: z.string().max(200).optional() }), output: Chat },
  listChats: {
    input: Caller.extend({ limit: z.number().int().min(1).max(200).default(50), offset: z.number().int().min(0).default(0) }),
    output: z.object({ chats: z.array(Chat), total: z.number().int() }),
  },
  getChat: { input: ChatRef, output: ChatWithMessages },
  deleteChat: { input: ChatRef, output: z.object({ deleted: z.boolean() }) },
  sendMessage: { input: SendMessageInput, output: AnswerResult },
  answer: { input: AnswerInput, output: AnswerResult },
  generate: { input: GenerateInput, output: GenerateResult },
  feedback: {
    input: ChatRef.extend({ messageId: Id, rating: z.enum(['up', 'down']), comment: z.string().max(4000).default('') }),
    output: Feedback.extend({ messageId: z.uuid() }),
  },
  exportChat: { input: ChatRef, output: z.record(z.string(), z.unknown()) },
  getSettings: { input: z.object({ workspaceId: Id }), output: z.object({ systemPrompt: z.string().nullable(), defaultSystemPrompt: z.string() }) },
  setSettings: { input: z.object({ workspaceId: Id, systemPrompt: z.string().max(20_000).nullable() }), output: z.object({ systemPrompt: z.string().nullable(), defaultSystemPrompt: z.string() }) },
  usage: {
    input: z.object({ workspaceId: Id, days: z.number().int().min(1).max(366).default(30) }),
    output: z.object({ rows: z.array(UsageRow), today: z.object({ tokens: z.number().int(), dailyBudget: z.number().int().nullable() }) }),
  },
  getQuota: { input: z.object({ scope: z.enum(['workspace', 'key']), subjectId: Id }), output: Quota },
  setQuota: {
    input: z.object({ scope: z.enum(['workspace', 'key']), subjectId: Id, ...QuotaLimits.shape }),
    output: Quota,
  },
  models: { input: z.object({}).default({}), output: z.object({ models: z.array(z.string()), provider: z.string(), default: z.string() }) },
  /** The configured embedding model, for /v1/embeddings (400 when DOCUPOD_EMBED_PROVIDER=none). */
  embed: {
    input: z.object({ userId: Id, keyId: Id.optional(), input: z.array(z.string().min(1).max(100_000)).min(1).max(2048) }),
    output: z.object({ embeddings: z.array(z.array(z.number())), model: z.string(), promptTokens: z.number().int() }),
  },
});

/** One event of a streamed answer: tokens, then exactly one `final` or `error`. */
export type ChatEvent =
  | { type: 'token'; text: string }
  | { type: 'final'; result: AnswerResult | GenerateResult }
  | { type: 'error'; problem: { type: string; title: string; status: number; detail: string; retryAfter?: number } };

export const STREAM_METHODS = ['sendMessage', 'answer', 'generate'] as const;
export type StreamMethod = (typeof STREAM_METHODS)[number];
export type StreamInput<M extends StreamMethod> = z.input<(typeof ChatContract)['methods'][M]['input']>;

export interface ChatStreams {
  /**
   * The method's answer token by token. Aborting `signal` cancels the model call; nothing is saved for an answer that
   * did not finish. Errors arrive as an `error` event, never as a thrown exception after the first event.
   */
  stream<M extends StreamMethod>(method: M, input: StreamInput<M>, signal?: AbortSignal): AsyncIterable<ChatEvent>;
}

export type ChatClient = ClientOf<typeof ChatContract> & ChatStreams;
