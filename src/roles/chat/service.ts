import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, gte, inArray, sql } from 'drizzle-orm';
import { databaseUnavailable, DocupodError, Problems, fail } from '../../core/errors.js';
import { roleStatus } from '../../core/role-status.js';
import { toStorableText, truncateText } from '../../core/storable-text.js';
import { complete, type Llm, type LlmMessage } from '../../adapters/llm/llm.js';
import type { ImplOf } from '../../http/contract.js';
import { Counter, Histogram, metric, type Registry } from '../../observability/metrics.js';
import type { Db } from '../../storage/database.js';
import { rateCounters } from '../../storage/schema.js';
import { chatFeedback, chatMessages, chats, chatSettings, llmUsage, quotas } from '../../storage/schema-chat.js';
import type { RetrievalClient } from '../retrieval/contract.js';
import type { Embedder } from '../../adapters/embed/embedder.js';
import { estimateTokens } from '../../adapters/llm/llm.js';
import type { RerankStage } from './rerank.js';
import { DEFAULT_SYSTEM_PROMPT, runAgent, type AgentEvent, type AgentResult } from './agent.js';
import type { AnswerResult, ChatContract, ChatEvent, Citation, GenerateResult, Quota, StreamMethod, Usage } from './contract.js';
import { AnswerInput, GenerateInput, SendMessageInput } from './contract.js';
import type { z } from 'zod';
import { UsageBuffer } from './usage.js';
import { StreamAdmission } from './admission.js';

export interface ChatDeps {
  db: Db;
  llm: Llm;
  retrieval: RetrievalClient;
  /** For /v1/embeddings; undefined when DOCUPOD_EMBED_PROVIDER=none. */
  embedder?: Embedder;
  metrics: Registry;
  version: string;
  /** Readiness of what this role depends on (database, model backend). */
  ready: () => Promise<true | string>;
  /** Chunks retrieved per question. */
  k?: number;
  /** Answers generated at once by this process (DOCUPOD_CHAT_MAX_STREAMS); beyond it 503 with Retry-After. */
  maxStreams?: number;
  /** Time allowed for a model's follow-up rewrite (default 5 s); see agent.ts. */
  rewriteTimeoutMs?: number;
  /** The optional reranking stage (DOCUPOD_RERANK_*); see rerank.ts. Its time goes to docupod_rerank_duration_seconds. */
  rerank?: Omit<RerankStage, 'observe'> & { candidates?: number };
  /** How often buffered token usage is written (default 1000 ms); see usage.ts. */
  usageFlushMs?: number;
  /** Where a failed usage flush is reported (it is retried on the next one). */
  onUsageFlushError?: (err: unknown) => void;
}

/** Calls without a workspace (pass-through /v1 models) count their tokens here. */
export const NO_WORKSPACE = '00000000-0000-0000-0000-000000000000';

type Impl = ImplOf<typeof ChatContract>;
export type ChatService = Impl & {
  /** The streaming form of sendMessage, answer and generate; see ChatStreams in contract.ts. */
  stream(method: StreamMethod, input: unknown, signal?: AbortSignal): AsyncGenerator<ChatEvent>;
  /** Writes buffered usage now (tests, and before reading llm_usage directly). */
  flushUsage(): Promise<void>;
  /** Flushes buffered usage; call on shutdown. Usage recorded later is written at once. */
  stop(): Promise<void>;
};

const iso = (d: Date) => d.toISOString();
const utcDay = (d = new Date()) => d.toISOString().slice(0, 10);

export function createChatService(deps: ChatDeps): ChatService {
  const { db, llm } = deps;
  const m = metrics(deps.metrics);
  const rerank = deps.rerank && { ...deps.rerank, observe: (provider: string, seconds: number, ok: boolean) => {
    m.rerank.observe({ provider }, seconds);
    if (!ok) m.rerankFailures.inc({ provider });
  } };
  const agentDeps = { llm, retrieval: deps.retrieval, k: deps.k, rewriteTimeoutMs: deps.rewriteTimeoutMs, rerank };
  const usageBuffer = new UsageBuffer(db, { flushMs: deps.usageFlushMs, onError: deps.onUsageFlushError });
  const admission = new StreamAdmission(deps.maxStreams ?? 200);

  // ── quotas ─────────────────────────────────────────────────────────────────────────────────────────────────────
  const quotaCache = new Map<string, { at: number; q: Quota }>();
  const getQuota = async (scope: 'workspace' | 'key', subjectId: string): Promise<Quota> => {
    const k = `${scope}:${subjectId}`;
    const hit = quotaCache.get(k);
    // Limits change rarely; a few seconds of staleness per pod saves a query per request.
    if (hit && Date.now() - hit.at < 5_000) return hit.q;
    const [row] = await db.select().from(quotas).where(and(eq(quotas.scope, scope), eq(quotas.subjectId, subjectId)));
    const q: Quota = { scope, subjectId, dailyTokens: row?.dailyTokens ?? null, requestsPerMinute: row?.requestsPerMinute ?? null };
    quotaCache.set(k, { at: Date.now(), q });
    return q;
  };

  const tokensToday = async (workspaceId: string): Promise<number> => {
    const day = utcDay();
    const [row] = await db
      .select({ n: sql<string>`coalesce(sum(${llmUsage.promptTokens} + ${llmUsage.completionTokens}), 0)` })
      .from(llmUsage)
      .where(and(eq(llmUsage.workspaceId, workspaceId), eq(llmUsage.day, day)));
    // Plus what this pod counted but has not written yet, so the budget holds between flushes.
    return Number(row?.n ?? 0) + usageBuffer.pending(workspaceId, day);
  };

  /** 429 with Retry-After when the key is over its requests per minute or the workspace over its daily tokens. */
  const checkLimits = async (workspaceId: string | undefined, keyId: string | undefined) => {
    if (keyId) {
      const q = await getQuota('key', keyId);
      if (q.requestsPerMinute !== null) {
        const now = Date.now();
        const windowStart = new Date(Math.floor(now / 60_000) * 60_000);
        const [row] = await db
          .insert(rateCounters)
          .values({ key: `rpm:${keyId}`, windowStart, count: 1 })
          .onConflictDoUpdate({ target: [rateCounters.key, rateCounters.windowStart], set: { count: sql`${rateCounters.count} + 1` } })
          .returning({ count: rateCounters.count });
        if (Math.random() < 0.01) await db.delete(rateCounters).where(and(sql`${rateCounters.key} like 'rpm:%'`, sql`${rateCounters.windowStart} < ${new Date(now - 120_000)}`));
        if (row!.count > q.requestsPerMinute) {
          const retryAfter = Math.max(1, Math.ceil((windowStart.getTime() + 60_000 - now) / 1000));
          m.limited.inc({ limit: 'rpm' });
          throw new DocupodError(Problems.rateLimited, `this API key may make ${q.requestsPerMinute} chat requests per minute; try again in ${retryAfter} s`, { retryAfter });
        }
      }
    }
    if (workspaceId) {
      const q = await getQuota('workspace', workspaceId);
      if (q.dailyTokens !== null) {
        const used = await tokensToday(workspaceId);
        if (used >= q.dailyTokens) {
          const now = new Date();
          const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
          const retryAfter = Math.max(1, Math.ceil((midnight - now.getTime()) / 1000));
          m.limited.inc({ limit: 'daily_tokens' });
          throw new DocupodError(Problems.quotaExceeded, `this workspace used its daily budget of ${q.dailyTokens} tokens (${used} today); it resets at 00:00 UTC`, { retryAfter, dailyTokens: q.dailyTokens, usedTokens: used });
        }
      }
    }
  };

  const recordUsage = async (workspaceId: string, keyId: string | undefined, usage: Usage) => {
    await usageBuffer.record(workspaceId, utcDay(), keyId ?? '', usage);
    // No workspace label: metrics carry no tenant data (per-workspace usage is GET /api/workspaces/{ws}/usage).
    m.tokens.inc({ provider: llm.provider, direction: 'prompt' }, usage.promptTokens);
    m.tokens.inc({ provider: llm.provider, direction: 'completion' }, usage.completionTokens);
  };

  // ── chats ──────────────────────────────────────────────────────────────────────────────────────────────────────
  const chatRow = async (workspaceId: string, userId: string, chatId: string) => {
    const [row] = await db.select().from(chats).where(and(eq(chats.id, chatId), eq(chats.workspaceId, workspaceId), eq(chats.userId, userId)));
    if (!row) throw fail.notFound(`chat ${chatId}`);
    return row;
  };
  const chatOut = (c: typeof chats.$inferSelect) => ({ id: c.id, workspaceId: c.workspaceId, title: c.title, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt) });
  const messagesOf = (workspaceId: string, chatId: string) =>
    db.select().from(chatMessages).where(and(eq(chatMessages.chatId, chatId), eq(chatMessages.workspaceId, workspaceId))).orderBy(asc(chatMessages.idx));
  // Read on every question; like quotas, a few seconds of staleness per pod (for a change made on another pod) saves
  // a query per answer. A change through this pod clears its entry at once.
  const promptCache = new Map<string, { at: number; prompt: string | null }>();
  const systemPromptOf = async (workspaceId: string) => {
    const hit = promptCache.get(workspaceId);
    if (hit && Date.now() - hit.at < 5_000) return hit.prompt;
    const prompt = (await db.select().from(chatSettings).where(eq(chatSettings.workspaceId, workspaceId)))[0]?.systemPrompt ?? null;
    if (promptCache.size >= 10_000) promptCache.clear();
    promptCache.set(workspaceId, { at: Date.now(), prompt });
    return prompt;
  };

  // ── streaming core ─────────────────────────────────────────────────────────────────────────────────────────────
  /** Runs the agent with metrics: time to first token and tokens per second by provider. */
  async function* measured(events: AsyncIterable<AgentEvent>): AsyncGenerator<AgentEvent> {
    const t0 = performance.now();
    let first: number | undefined;
    for await (const ev of events) {
      if (ev.type === 'token' && first === undefined) {
        first = performance.now();
        m.ttft.observe({ provider: llm.provider }, (first - t0) / 1000);
      }
      if (ev.type === 'result' && first !== undefined && ev.result.usage.completionTokens > 1) {
        const s = (performance.now() - first) / 1000;
        if (s > 0) m.tps.observe({ provider: llm.provider }, ev.result.usage.completionTokens / s);
      }
      yield ev;
    }
  }

  async function* sendMessageStream(input: z.output<typeof SendMessageInput>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    await checkLimits(input.workspaceId, input.keyId);
    await chatRow(input.workspaceId, input.userId, input.chatId);
    const history: LlmMessage[] = (await messagesOf(input.workspaceId, input.chatId)).map((r) => ({ role: r.role, content: r.content }));
    let result: AgentResult | undefined;
    for await (const ev of measured(runAgent(agentDeps, { workspaceId: input.workspaceId, question: input.content, history, systemPrompt: await systemPromptOf(input.workspaceId), signal }))) {
      if (ev.type === 'token') yield ev;
      else result = ev.result;
    }
    if (!result) throw new DocupodError(Problems.llmUnavailable, `${llm.id} ended without an answer`);
    // A client that went away while the last tokens arrived gets nothing saved: the answer was never delivered.
    signal?.throwIfAborted();
    const ids = { user: randomUUID(), assistant: randomUUID() };
    const now = new Date();
    await db.transaction(async (tx) => {
      const [c] = await tx.select().from(chats).where(eq(chats.id, input.chatId)).for('update');
      if (!c) throw fail.notFound(`chat ${input.chatId}`);
      const [{ n }] = (await tx.select({ n: count() }).from(chatMessages).where(eq(chatMessages.chatId, input.chatId))) as [{ n: number }];
      await tx.insert(chatMessages).values([
        { id: ids.user, chatId: input.chatId, workspaceId: input.workspaceId, idx: Number(n), role: 'user', content: input.content, createdAt: now },
        {
          id: ids.assistant,
          chatId: input.chatId,
          workspaceId: input.workspaceId,
          idx: Number(n) + 1,
          role: 'assistant',
          // The model's text, like a document's, is cleaned rather than refused: a NUL would fail the whole insert.
          content: toStorableText(result.answer),
          citations: result.citations,
          trace: result.trace,
          usage: result.usage,
          model: result.model,
          createdAt: new Date(now.getTime() + 1),
        },
      ]);
      await tx
        .update(chats)
        .set({ updatedAt: now, ...(c.title ? {} : { title: truncateText(input.content.replace(/\s+/g, ' '), 80) }) })
        .where(eq(chats.id, input.chatId));
    });
    await recordUsage(input.workspaceId, input.keyId, result.usage);
    yield { type: 'final', result: { chatId: input.chatId, messageId: ids.assistant, ...result } };
  }

  async function* answerStream(input: z.output<typeof AnswerInput>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    await checkLimits(input.workspaceId, input.keyId);
    const convo = input.messages.filter((x) => x.role !== 'system');
    const last = convo.at(-1);
    if (!last || last.role !== 'user') throw fail.badRequest('the last message must come from the user');
    const extraSystem = input.messages.filter((x) => x.role === 'system').map((x) => x.content);
    const systemPrompt = [(await systemPromptOf(input.workspaceId)) ?? DEFAULT_SYSTEM_PROMPT, ...extraSystem].join('\n\n');
    let result: AgentResult | undefined;
    for await (const ev of measured(
      runAgent(
        agentDeps,
        { workspaceId: input.workspaceId, question: last.content, history: convo.slice(0, -1) as LlmMessage[], systemPrompt, maxTokens: input.maxTokens, temperature: input.temperature, signal },
      ),
    )) {
      if (ev.type === 'token') yield ev;
      else result = ev.result;
    }
    if (!result) throw new DocupodError(Problems.llmUnavailable, `${llm.id} ended without an answer`);
    await recordUsage(input.workspaceId, input.keyId, result.usage);
    yield { type: 'final', result: { chatId: null, messageId: null, ...result } };
  }

  // Guarded itself (a try around the body) rather than through guarded(): on a pass-through stream every token went
  // through that extra generator, one more await per token at thousands of concurrent streams.
  async function* generateStream(input: z.output<typeof GenerateInput>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    const slot = admit('generate', signal); // here rather than through admitted(): see above
    if (typeof slot !== 'function') {
      if (slot) yield slot;
      return;
    }
    try {
      await checkLimits(undefined, input.keyId);
      const t0 = performance.now();
      let first: number | undefined;
      let text = '';
      for await (const ev of llm.stream({ messages: input.messages, model: llm.provider === 'extractive' ? undefined : input.model, maxTokens: input.maxTokens, temperature: input.temperature, stop: input.stop, signal })) {
        if (ev.type === 'token') {
          if (first === undefined) m.ttft.observe({ provider: llm.provider }, ((first = performance.now()) - t0) / 1000);
          text += ev.text;
          yield ev;
        } else {
          // Tokens per second after the first token, as measured() does for grounded answers.
          const s = first === undefined ? 0 : (performance.now() - first) / 1000;
          if (s > 0 && ev.usage.completionTokens > 1) m.tps.observe({ provider: llm.provider }, ev.usage.completionTokens / s);
          await recordUsage(NO_WORKSPACE, input.keyId, ev.usage);
          yield { type: 'final', result: { text, usage: ev.usage, model: ev.model, finishReason: ev.finishReason } };
        }
      }
    } catch (err) {
      const ev = errorEvent('generate', err, signal);
      if (ev) yield ev;
    } finally {
      slot();
    }
  }

  /** A failure as the one `error` event that ends a stream cleanly; none when the caller went away. */
  const errorEvent = (method: StreamMethod, err: unknown, signal?: AbortSignal): ChatEvent | undefined => {
    if (signal?.aborted) return undefined;
    const e = err instanceof DocupodError ? err : (databaseUnavailable(err) ?? new DocupodError(Problems.internal, 'internal error', {}, { cause: err }));
    m.errors.inc({ method, status: String(e.status) });
    const detail = e.problem.status >= 500 && !e.problem.expected ? 'internal error' : e.message;
    return { type: 'error', problem: { type: e.problem.type, title: e.problem.title, status: e.problem.status, detail, ...(e.extra.retryAfter !== undefined ? { retryAfter: e.extra.retryAfter } : {}) } };
  };

  /** Any failure becomes one `error` event, so a stream that already started ends cleanly. */
  async function* guarded(method: StreamMethod, run: AsyncGenerator<ChatEvent>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    try {
      yield* run;
    } catch (err) {
      const ev = errorEvent(method, err, signal);
      if (ev) yield ev;
    }
  }

  /**
   * Every answer holds one of the process's slots from its first step to its end (finished, failed or cancelled);
   * without a free slot the stream's first and only event is the 503, before any database or model work.
   * Returns the slot's release, or that refusal.
   */
  const admit = (method: StreamMethod, signal?: AbortSignal): (() => void) | ChatEvent | undefined => {
    try {
      return admission.enter();
    } catch (err) {
      m.limited.inc({ limit: 'streams' });
      return errorEvent(method, err, signal);
    }
  };

  async function* admitted(method: StreamMethod, run: AsyncGenerator<ChatEvent>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    const slot = admit(method, signal);
    if (typeof slot !== 'function') {
      if (slot) yield slot;
      return;
    }
    try {
      yield* run;
    } finally {
      slot();
    }
  }

  const stream = (method: StreamMethod, raw: unknown, signal?: AbortSignal): AsyncGenerator<ChatEvent> => {
    switch (method) {
      case 'sendMessage':
        return admitted(method, guarded(method, sendMessageStream(parse(SendMessageInput, raw), signal), signal), signal);
      case 'answer':
        return admitted(method, guarded(method, answerStream(parse(AnswerInput, raw), signal), signal), signal);
      case 'generate':
        return generateStream(parse(GenerateInput, raw), signal);
      default:
        throw fail.notFound(`stream method ${String(method)}`);
    }
  };

  /** The JSON form of a streamed method: the final result, or the error as a DocupodError. */
  const finalOf = async <T extends AnswerResult | GenerateResult>(events: AsyncIterable<ChatEvent>): Promise<T> => {
    for await (const ev of events) {
      if (ev.type === 'final') return ev.result as T;
      if (ev.type === 'error') throw problemError(ev.problem);
    }
    throw new DocupodError(Problems.internal, 'the answer ended without a result');
  };

  const settingsOut = (systemPrompt: string | null) => ({ systemPrompt, defaultSystemPrompt: DEFAULT_SYSTEM_PROMPT });

  const impl: Impl = {
    status: () => roleStatus('chat', deps.version, deps.ready),

    createChat: async ({ workspaceId, userId, title }) => {
      const [row] = await db.insert(chats).values({ id: randomUUID(), workspaceId, userId, title: title?.trim() ?? '' }).returning();
      return chatOut(row!);
    },

    listChats: async ({ workspaceId, userId, limit, offset }) => {
      const where = and(eq(chats.workspaceId, workspaceId), eq(chats.userId, userId));
      const rows = await db.select().from(chats).where(where).orderBy(desc(chats.updatedAt), desc(chats.id)).limit(limit).offset(offset);
      const [{ n }] = (await db.select({ n: count() }).from(chats).where(where)) as [{ n: number }];
      return { chats: rows.map(chatOut), total: Number(n) };
    },

    getChat: async ({ workspaceId, userId, chatId }) => {
      const c = await chatRow(workspaceId, userId, chatId);
      const rows = await messagesOf(workspaceId, chatId);
      const fb = rows.length
        ? await db.select().from(chatFeedback).where(and(eq(chatFeedback.workspaceId, workspaceId), eq(chatFeedback.userId, userId), inArray(chatFeedback.messageId, rows.map((r) => r.id))))
        : [];
      return {
        ...chatOut(c),
        messages: rows.map((r) => {
          const f = fb.find((x) => x.messageId === r.id);
          return {
            id: r.id,
            role: r.role,
            content: r.content,
            citations: r.citations as Citation[],
            usage: (r.usage as Usage | null) ?? null,
            model: r.model,
            createdAt: iso(r.createdAt),
            feedback: f ? { rating: f.rating, comment: f.comment, createdAt: iso(f.createdAt) } : null,
          };
        }),
      };
    },

    deleteChat: async ({ workspaceId, userId, chatId }) => {
      await chatRow(workspaceId, userId, chatId);
      await db.delete(chats).where(and(eq(chats.id, chatId), eq(chats.workspaceId, workspaceId)));
      return { deleted: true };
    },

    sendMessage: (input) => finalOf(stream('sendMessage', input)) as Promise<AnswerResult>,
    answer: (input) => finalOf(stream('answer', input)) as Promise<AnswerResult>,
    generate: (input) => finalOf(stream('generate', input)) as Promise<GenerateResult>,

    feedback: async ({ workspaceId, userId, chatId, messageId, rating, comment }) => {
      await chatRow(workspaceId, userId, chatId);
      const [msg] = await db.select().from(chatMessages).where(and(eq(chatMessages.id, messageId), eq(chatMessages.chatId, chatId), eq(chatMessages.workspaceId, workspaceId)));
      if (!msg) throw fail.notFound(`message ${messageId}`);
      if (msg.role !== 'assistant') throw fail.badRequest('feedback goes on answers (assistant messages), not on questions');
      const now = new Date();
      await db
        .insert(chatFeedback)
        .values({ messageId, userId, workspaceId, rating, comment, createdAt: now })
        .onConflictDoUpdate({ target: [chatFeedback.messageId, chatFeedback.userId], set: { rating, comment, createdAt: now } });
      return { messageId, rating, comment, createdAt: iso(now) };
    },

    exportChat: async ({ workspaceId, userId, chatId }) => {
      const c = await chatRow(workspaceId, userId, chatId);
      const rows = await messagesOf(workspaceId, chatId);
      const fb = rows.length ? await db.select().from(chatFeedback).where(and(eq(chatFeedback.workspaceId, workspaceId), inArray(chatFeedback.messageId, rows.map((r) => r.id)))) : [];
      return {
        format: 'docupod.chat.v1',
        exportedAt: iso(new Date()),
        chat: chatOut(c),
        messages: rows.map((r) => ({
          id: r.id,
          role: r.role,
          content: r.content,
          citations: r.citations,
          usage: r.usage,
          model: r.model,
          trace: r.trace,
          createdAt: iso(r.createdAt),
          feedback: fb.filter((f) => f.messageId === r.id).map((f) => ({ userId: f.userId, rating: f.rating, comment: f.comment, createdAt: iso(f.createdAt) })),
        })),
      };
    },

    getSettings: async ({ workspaceId }) => settingsOut(await systemPromptOf(workspaceId)),
    setSettings: async ({ workspaceId, systemPrompt }) => {
      const value = systemPrompt?.trim() ? systemPrompt.trim() : null;
      await db.insert(chatSettings).values({ workspaceId, systemPrompt: value }).onConflictDoUpdate({ target: chatSettings.workspaceId, set: { systemPrompt: value, updatedAt: new Date() } });
      promptCache.delete(workspaceId);
      return settingsOut(value);
    },

    usage: async ({ workspaceId, days }) => {
      await usageBuffer.flush(); // the report reads llm_usage: write what is buffered first
      const since = utcDay(new Date(Date.now() - (days - 1) * 86400e3));
      const rows = await db.select().from(llmUsage).where(and(eq(llmUsage.workspaceId, workspaceId), gte(llmUsage.day, since))).orderBy(desc(llmUsage.day), asc(llmUsage.keyId));
      const q = await getQuota('workspace', workspaceId);
      return {
        rows: rows.map((r) => ({ day: r.day, keyId: r.keyId || null, requests: r.requests, promptTokens: r.promptTokens, completionTokens: r.completionTokens })),
        today: { tokens: await tokensToday(workspaceId), dailyBudget: q.dailyTokens },
      };
    },

    getQuota: async ({ scope, subjectId }) => {
      quotaCache.delete(`${scope}:${subjectId}`);
      return getQuota(scope, subjectId);
    },
    setQuota: async ({ scope, subjectId, dailyTokens, requestsPerMinute }) => {
      const cur = await impl.getQuota({ scope, subjectId });
      const next = { dailyTokens: dailyTokens === undefined ? cur.dailyTokens : dailyTokens, requestsPerMinute: requestsPerMinute === undefined ? cur.requestsPerMinute : requestsPerMinute };
      await db.insert(quotas).values({ scope, subjectId, ...next }).onConflictDoUpdate({ target: [quotas.scope, quotas.subjectId], set: { ...next, updatedAt: new Date() } });
      quotaCache.delete(`${scope}:${subjectId}`);
      return { scope, subjectId, ...next };
    },

    embed: async ({ keyId, input }) => {
      if (!deps.embedder) throw fail.badRequest('no embedding model is configured on this instance (DOCUPOD_EMBED_PROVIDER=none)');
      await checkLimits(undefined, keyId);
      const embeddings = await deps.embedder.embed(input);
      const promptTokens = input.reduce((n, t) => n + estimateTokens(t), 0);
      await recordUsage(NO_WORKSPACE, keyId, { promptTokens, completionTokens: 0, totalTokens: promptTokens });
      return { embeddings, model: deps.embedder.id, promptTokens };
    },

    models: async () => {
      const models = await llm.listModels().catch(() => [llm.model]);
      return { models, provider: llm.provider, default: llm.model };
    },
  };
  return { ...impl, stream, flushUsage: () => usageBuffer.flush(), stop: () => usageBuffer.stop() };
}

function parse<T extends z.ZodType>(schema: T, raw: unknown): z.output<T> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new DocupodError(Problems.validation, r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return r.data;
}

/** An `error` event back into the DocupodError it came from (same type, status and Retry-After). */
export function problemError(p: Extract<ChatEvent, { type: 'error' }>['problem']): DocupodError {
  const known = Object.values(Problems).find((x) => x.type === p.type) ?? { type: p.type, title: p.title, status: p.status, expected: p.status < 500 };
  return new DocupodError(known, p.detail, p.retryAfter !== undefined ? { retryAfter: p.retryAfter } : {});
}

function metrics(registry: Registry) {
  return {
    ttft: metric(registry, 'docupod_llm_time_to_first_token_seconds', () => new Histogram({ name: 'docupod_llm_time_to_first_token_seconds', help: 'Time from the request to the first answer token, by LLM provider (includes retrieval)', labelNames: ['provider'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] })),
    tps: metric(registry, 'docupod_llm_tokens_per_second', () => new Histogram({ name: 'docupod_llm_tokens_per_second', help: 'Answer tokens per second after the first token, by LLM provider', labelNames: ['provider'] as const, buckets: [1, 5, 10, 20, 50, 100, 200, 500, 1000, 5000], registers: [registry] })),
    tokens: metric(registry, 'docupod_llm_tokens_total', () => new Counter({ name: 'docupod_llm_tokens_total', help: 'LLM tokens used, by LLM provider and direction (prompt or completion)', labelNames: ['provider', 'direction'] as const, registers: [registry] })),
    limited: metric(registry, 'docupod_chat_limited_total', () => new Counter({ name: 'docupod_chat_limited_total', help: 'Chat requests refused by a quota or the per-process stream limit (limit="streams")', labelNames: ['limit'] as const, registers: [registry] })),
    // Labelled by provider only (tei, cohere): never the workspace or the query.
    rerank: metric(registry, 'docupod_rerank_duration_seconds', () => new Histogram({ name: 'docupod_rerank_duration_seconds', help: 'Time of the reranking stage per chat question (failures and timeouts included), by rerank provider', labelNames: ['provider'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] })),
    rerankFailures: metric(registry, 'docupod_rerank_failures_total', () => new Counter({ name: 'docupod_rerank_failures_total', help: 'Reranking attempts that failed or timed out (the answer kept retrieval order), by rerank provider', labelNames: ['provider'] as const, registers: [registry] })),
    errors: metric(registry, 'docupod_chat_errors_total', () => new Counter({ name: 'docupod_chat_errors_total', help: 'Chat answers that ended in an error, by method and status', labelNames: ['method', 'status'] as const, registers: [registry] })),
  };
}

export { complete };
