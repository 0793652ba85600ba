import { randomUUID } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { databaseUnavailable, DocupodError } from '../../../core/errors.js';
import type { Database } from '../../../storage/database.js';
import type { AnswerResult, ChatClient, ChatEvent, GenerateResult } from '../../chat/contract.js';
import { WorkspacesRepo } from '../workspaces/repository.js';
import type { AuthService } from '../auth/index.js';
import { authenticate, principalOf } from '../auth/index.js';
import { eventError, pipeEvents } from '../chat/sse.js';

// OpenAI-compatible API, so the official clients (and tools built on them) work against docupod with a docupod API
// key: /v1/models, /v1/chat/completions (stream and non-stream, with usage) and /v1/embeddings. The model
// `docupod:{workspace}` answers from that workspace's documents (grounded, with `citations` as an extension field);
// any other model name passes through to the configured LLM. Errors use OpenAI's shape, {error: {message, type,
// param, code}}, because that is what those clients parse.

const DOCUPOD_PREFIX = 'docupod:';

const Message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  // Content parts (text only) are accepted as OpenAI allows them.
  content: z.union([z.string(), z.array(z.object({ type: z.string(), text: z.string().optional() }).loose()), z.null()]).optional(),
}).loose();

const ChatCompletionRequest = z
  .object({
    model: z.string().min(1).max(200),
    messages: z.array(Message).min(1).max(200),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).loose().nullable().optional(),
    max_tokens: z.number().int().min(1).max(32_768).nullable().optional(),
    max_completion_tokens: z.number().int().min(1).max(32_768).nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).nullable().optional(),
    n: z.number().int().min(1).max(1).nullable().optional(),
  })
  .loose();

const EmbeddingsRequest = z
  .object({
    model: z.string().min(1).max(200),
    input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048)]),
    encoding_format: z.enum(['float', 'base64']).optional(),
    dimensions: z.number().int().min(1).optional(),
  })
  .loose();

function openAiType(status: number): { type: string; code: string | null } {
  if (status === 401) return { type: 'invalid_request_error', code: 'invalid_api_key' };
  if (status === 403) return { type: 'invalid_request_error', code: 'permission_denied' };
  if (status === 404) return { type: 'invalid_request_error', code: 'model_not_found' };
  if (status === 429) return { type: 'rate_limit_exceeded', code: 'rate_limit_exceeded' };
  if (status >= 500) return { type: 'server_error', code: null };
  return { type: 'invalid_request_error', code: null };
}

function sendOpenAiError(reply: FastifyReply, status: number, message: string, param: string | null = null, retryAfter?: number) {
  if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  return reply.code(status).type('application/json').send({ error: { message, ...openAiType(status), param } });
}

const text = (c: z.infer<typeof Message>['content']) =>
  typeof c === 'string' ? c : Array.isArray(c) ? c.map((p) => p.text ?? '').join('') : '';

export const openAiRoutes: FastifyPluginAsync<{ auth: AuthService; chat: ChatClient; db: Database }> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const workspaces = new WorkspacesRepo(opts.db.db);
  app.addHook('onRequest', authenticate(opts.auth));

  app.setErrorHandler((raw: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const error = databaseUnavailable(raw) ?? raw; // a lost database connection: 503 with Retry-After, as on /api
    if (error instanceof DocupodError) {
      request.log[error.problem.expected ? 'warn' : 'error']({ problem: error.problem.type, detail: error.message }, 'request failed');
      const detail = error.status >= 500 && !error.problem.expected ? 'internal error' : error.message;
      // A field-level problem (e.g. text that cannot be stored) names the field the way OpenAI's `param` does.
      const param = error.extra.errors?.[0]?.path.replace(/^body\./, '') ?? null;
      return sendOpenAiError(reply, error.status, detail, param, error.extra.retryAfter);
    }
    if (hasZodFastifySchemaValidationErrors(error)) {
      const first = error.validation[0];
      const param = String(first?.instancePath ?? '').split('/').filter(Boolean).join('.') || null;
      return sendOpenAiError(reply, 400, `Invalid request: ${error.validation.map((v) => `${String(v.instancePath ?? '').split('/').filter(Boolean).join('.') || 'body'}: ${v.message}`).join('; ')}`, param);
    }
    const fe = error as FastifyError;
    if (fe?.statusCode && fe.statusCode < 500) return sendOpenAiError(reply, fe.statusCode, fe.message);
    request.log.error({ err: error }, 'unhandled error');
    return sendOpenAiError(reply, 500, 'internal error');
  });

  /** `docupod:{ws}` → the workspace, when the caller (user or scoped key) may read it; OpenAI's 404 otherwise. */
  const workspaceOf = async (request: FastifyRequest, model: string) => {
    const ref = model.slice(DOCUPOD_PREFIX.length);
    const access = ref ? await opts.auth.workspaceAccess(principalOf(request), ref) : undefined;
    if (!access) throw new DocupodError({ type: '/problems/not-found', title: 'Not found', status: 404, expected: true }, `The model \`${model}\` does not exist or you do not have access to it.`);
    request.workspaceId = access.workspace.id;
    return access.workspace;
  };

  app.get('/v1/models', { schema: { tags: ['openai'], summary: 'OpenAI-compatible model list: docupod:{workspace} for each workspace you can read, and the configured LLM’s models' } }, async (request) => {
    const p = principalOf(request);
    const [mine, llm] = await Promise.all([workspaces.listForUser(p.userId, p.workspaceIds ?? undefined), opts.chat.models({})]);
    const created = Math.floor(Date.now() / 1000);
    return {
      object: 'list',
      data: [
        ...mine.map(({ workspace }) => ({ id: `${DOCUPOD_PREFIX}${workspace.slug}`, object: 'model', created: Math.floor(workspace.createdAt.getTime() / 1000), owned_by: 'docupod' })),
        ...(llm.provider === 'extractive' ? [] : llm.models.map((id) => ({ id, object: 'model', created, owned_by: llm.provider }))),
      ],
    };
  });

  app.post('/v1/chat/completions', { schema: { tags: ['openai'], summary: 'OpenAI-compatible chat completions (stream and non-stream); model docupod:{workspace} answers from that workspace', body: ChatCompletionRequest } }, async (request, reply) => {
    const body = request.body;
    const p = principalOf(request);
    const who = { userId: p.userId, ...(p.keyId ? { keyId: p.keyId } : {}) };
    const messages = body.messages
      .filter((m) => m.role !== 'tool')
      .map((m) => ({ role: m.role === 'developer' ? ('system' as const) : (m.role as 'system' | 'user' | 'assistant'), content: text(m.content) }));
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
    const temperature = body.temperature ?? undefined;
    const grounded = body.model.startsWith(DOCUPOD_PREFIX);
    const open = grounded
      ? await (async () => {
          const ws = await workspaceOf(request, body.model);
          const input = { ...who, workspaceId: ws.id, messages, maxTokens, temperature };
          return (signal?: AbortSignal) => opts.chat.stream('answer', input, signal);
        })()
      : (signal?: AbortSignal) =>
          opts.chat.stream('generate', { ...who, model: body.model, messages, maxTokens, temperature, stop: typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined) }, signal);
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(Date.now() / 1000);
    const usageOf = (r: AnswerResult | GenerateResult) => ({ prompt_tokens: r.usage.promptTokens, completion_tokens: r.usage.completionTokens, total_tokens: r.usage.totalTokens });
    const extension = (r: AnswerResult | GenerateResult) => ('citations' in r ? { citations: r.citations } : {});

    if (!body.stream) {
      for await (const ev of open()) {
        if (ev.type === 'error') throw eventError(ev.problem);
        if (ev.type !== 'final') continue;
        const r = ev.result;
        const content = 'answer' in r ? r.answer : r.text;
        return {
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: r.finishReason === 'length' ? 'length' : 'stop', logprobs: null }],
          usage: usageOf(r),
          ...extension(r),
        };
      }
      throw new Error('the answer ended without a result');
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (delta: object, finish: string | null, extra: object = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
    // A content chunk is the same JSON as chunk({ content }, null), assembled around the token: one small
    // JSON.stringify per token instead of a whole object, for thousands of concurrent streams.
    const tokenHead = `data: {"id":${JSON.stringify(id)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(body.model)},"choices":[{"index":0,"delta":{"content":`;
    const tokenTail = `},"finish_reason":null,"logprobs":null}]${includeUsage ? ',"usage":null' : ''}}\n\n`;
    let started = false;
    await pipeEvents(request, reply, (signal) => open(signal), {
      event: (ev: ChatEvent) => {
        const head = started ? '' : chunk({ role: 'assistant', content: '' }, null);
        started = true;
        if (ev.type === 'token') return head + tokenHead + JSON.stringify(ev.text) + tokenTail;
        if (ev.type === 'error') return head + `data: ${JSON.stringify({ error: { message: ev.problem.detail, ...openAiType(ev.problem.status), param: null } })}\n\n`;
        const r = ev.result;
        let out = head + chunk({}, r.finishReason === 'length' ? 'length' : 'stop', extension(r));
        if (includeUsage) out += `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [], usage: usageOf(r) })}\n\n`;
        return out;
      },
      end: () => 'data: [DONE]\n\n',
    });
  });

  app.post('/v1/embeddings', { schema: { tags: ['openai'], summary: 'OpenAI-compatible embeddings with the configured embedding model', body: EmbeddingsRequest } }, async (request) => {
    const p = principalOf(request);
    const inputs = typeof request.body.input === 'string' ? [request.body.input] : request.body.input;
    const r = await opts.chat.embed({ userId: p.userId, ...(p.keyId ? { keyId: p.keyId } : {}), input: inputs });
    const dims = request.body.dimensions;
    return {
      object: 'list',
      data: r.embeddings.map((v, index) => {
        let vec = v;
        if (dims && dims < v.length) {
          const cut = v.slice(0, dims);
          const norm = Math.hypot(...cut) || 1;
          vec = cut.map((x) => x / norm);
        }
        return { object: 'embedding', index, embedding: request.body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec };
      }),
      model: request.body.model,
      usage: { prompt_tokens: r.promptTokens, total_tokens: r.promptTokens },
    };
  });
};
