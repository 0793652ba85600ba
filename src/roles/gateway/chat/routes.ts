import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AnswerResult, Chat, ChatWithMessages, Feedback, Quota, QuotaLimits, UsageRow, type ChatClient } from '../../chat/contract.js';
import type { AuthService } from '../auth/index.js';
import { authenticate, guardWorkspaceRoutes, principalOf, requireAdmin, requireWorkspace } from '../auth/index.js';
import { eventError, pipeEvents, sse } from './sse.js';

// The public chat API: chats and their messages (an answer as Server-Sent Events or one JSON body), feedback, export,
// the workspace's system prompt and token usage; quotas for instance admins under /api/quotas.

const WsParams = z.object({ ws: z.string().min(1) });
const ChatParams = WsParams.extend({ id: z.uuid() });
const Settings = z.object({ systemPrompt: z.string().nullable(), defaultSystemPrompt: z.string() });

export const chatRoutes: FastifyPluginAsync<{ auth: AuthService; chat: ChatClient }> = async (fastify, opts) => {
  const { chat } = opts;
  await fastify.register(async (scoped) => {
    const app = scoped.withTypeProvider<ZodTypeProvider>();
    guardWorkspaceRoutes(app, opts.auth);
    const caller = async (request: Parameters<typeof principalOf>[0], role: 'viewer' | 'editor' | 'owner' = 'viewer') => {
      const access = await requireWorkspace(request, role);
      const p = principalOf(request);
      return { workspaceId: access.workspace.id, userId: p.userId, ...(p.keyId ? { keyId: p.keyId } : {}) };
    };

    app.post(
      '/api/workspaces/:ws/chats',
      { schema: { tags: ['chat'], summary: 'Start a chat (private to you)', params: WsParams, body: z.object({ title: z.string().max(200).optional() }).default({}), response: { 201: Chat } } },
      async (request, reply) => reply.code(201).send(await chat.createChat({ ...(await caller(request)), title: request.body.title })),
    );

    app.get(
      '/api/workspaces/:ws/chats',
      {
        schema: {
          tags: ['chat'],
          summary: 'Your chats in this workspace, most recent first',
          params: WsParams,
          querystring: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), offset: z.coerce.number().int().min(0).default(0) }),
          response: { 200: z.object({ chats: z.array(Chat), total: z.number().int() }) },
        },
      },
      async (request) => chat.listChats({ ...(await caller(request)), ...request.query }),
    );

    app.get(
      '/api/workspaces/:ws/chats/:id',
      { schema: { tags: ['chat'], summary: 'A chat with its messages, citations and your feedback', params: ChatParams, response: { 200: ChatWithMessages } } },
      async (request) => chat.getChat({ ...(await caller(request)), chatId: request.params.id }),
    );

    app.delete(
      '/api/workspaces/:ws/chats/:id',
      { schema: { tags: ['chat'], summary: 'Delete a chat and its messages', params: ChatParams, response: { 204: z.null() } } },
      async (request, reply) => {
        await chat.deleteChat({ ...(await caller(request)), chatId: request.params.id });
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/api/workspaces/:ws/chats/:id/messages',
      {
        schema: {
          tags: ['chat'],
          summary:
            'Ask a question in a chat. With stream: true the answer comes as Server-Sent Events: `token` events ({text}), then one `final` ' +
            '(answer, citations, usage, trace) or `error` (problem). Otherwise one JSON body. Question and answer are saved together once the answer is complete.',
          params: ChatParams,
          body: z.object({ content: z.string().trim().min(1, 'content must not be empty').max(20_000), stream: z.boolean().default(false) }),
          response: { 200: AnswerResult },
        },
      },
      async (request, reply) => {
        const input = { ...(await caller(request)), chatId: request.params.id, content: request.body.content };
        if (!request.body.stream) {
          for await (const ev of chat.stream('sendMessage', input)) {
            if (ev.type === 'final') return ev.result as AnswerResult;
            if (ev.type === 'error') throw eventError(ev.problem);
          }
          throw new Error('the answer ended without a result');
        }
        await pipeEvents(request, reply, (signal) => chat.stream('sendMessage', input, signal), {
          event: (ev) => (ev.type === 'token' ? sse('token', { text: ev.text }) : ev.type === 'final' ? sse('final', ev.result) : sse('error', ev.problem)),
        });
      },
    );

    app.post(
      '/api/workspaces/:ws/chats/:id/messages/:messageId/feedback',
      {
        schema: {
          tags: ['chat'],
          summary: 'Rate an answer (up/down, with an optional comment); stored with its retrieval trace. Rating again replaces yours.',
          params: ChatParams.extend({ messageId: z.uuid() }),
          body: z.object({ rating: z.enum(['up', 'down']), comment: z.string().max(4000).default('') }),
          response: { 200: Feedback.extend({ messageId: z.uuid() }) },
        },
      },
      async (request) => chat.feedback({ ...(await caller(request)), chatId: request.params.id, messageId: request.params.messageId, ...request.body }),
    );

    app.get(
      '/api/workspaces/:ws/chats/:id/export',
      { schema: { tags: ['chat'], summary: 'The chat as one JSON document: messages, citations, retrieval traces, usage and feedback', params: ChatParams } },
      async (request, reply) => {
        const doc = await chat.exportChat({ ...(await caller(request)), chatId: request.params.id });
        reply.header('content-disposition', `attachment; filename="chat-${request.params.id}.json"`);
        return doc;
      },
    );

    app.get(
      '/api/workspaces/:ws/chat-settings',
      { schema: { tags: ['chat'], summary: 'The workspace’s system prompt (null: the default)', params: WsParams, response: { 200: Settings } } },
      async (request) => chat.getSettings({ workspaceId: (await caller(request)).workspaceId }),
    );

    app.put(
      '/api/workspaces/:ws/chat-settings',
      {
        schema: { tags: ['chat'], summary: 'Set the workspace’s system prompt (owners); null restores the default', params: WsParams, body: z.object({ systemPrompt: z.string().max(20_000).nullable() }), response: { 200: Settings } },
      },
      async (request) => chat.setSettings({ workspaceId: (await caller(request, 'owner')).workspaceId, systemPrompt: request.body.systemPrompt }),
    );

    app.get(
      '/api/workspaces/:ws/usage',
      {
        schema: {
          tags: ['chat'],
          summary: 'LLM tokens used by this workspace per UTC day and API key, and today’s total against the daily budget',
          params: WsParams,
          querystring: z.object({ days: z.coerce.number().int().min(1).max(366).default(30) }),
          response: { 200: z.object({ rows: z.array(UsageRow), today: z.object({ tokens: z.number().int(), dailyBudget: z.number().int().nullable() }) }) },
        },
      },
      async (request) => chat.usage({ workspaceId: (await caller(request)).workspaceId, days: request.query.days }),
    );
  });

  // Instance admins set limits by id: they need not be members of the workspace they limit.
  await fastify.register(async (scoped) => {
    const app = scoped.withTypeProvider<ZodTypeProvider>();
    app.addHook('onRequest', authenticate(opts.auth));
    const Scope = z.enum(['workspaces', 'keys']);
    const Params = z.object({ scope: Scope, id: z.uuid() });
    const scopeOf = (s: z.infer<typeof Scope>) => (s === 'workspaces' ? 'workspace' : 'key') as 'workspace' | 'key';
    app.get(
      '/api/quotas/:scope/:id',
      { schema: { tags: ['chat'], summary: 'A workspace’s daily token budget or an API key’s requests per minute (admins)', params: Params, response: { 200: Quota } } },
      async (request) => {
        requireAdmin(request);
        return chat.getQuota({ scope: scopeOf(request.params.scope), subjectId: request.params.id });
      },
    );
    app.put(
      '/api/quotas/:scope/:id',
      {
        schema: {
          tags: ['chat'],
          summary: 'Set limits (admins): dailyTokens for workspaces, requestsPerMinute for API keys; null removes a limit',
          params: Params,
          body: QuotaLimits,
          response: { 200: Quota },
        },
      },
      async (request) => {
        requireAdmin(request);
        return chat.setQuota({ scope: scopeOf(request.params.scope), subjectId: request.params.id, ...request.body });
      },
    );
  });
};
