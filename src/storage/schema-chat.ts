import { bigint, date, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users, workspaces } from './schema.js';

// The chat role's tables: conversations, their messages (with citations and the retrieval trace), feedback, the
// per-workspace chat settings, token usage and quotas. Every tenant row carries workspace_id.

export const chats = pgTable(
  'chats',
  {
    id: uuid('id').primaryKey(),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    /** Chats are private to the user who started them. */
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('chats_workspace_user_idx').on(t.workspaceId, t.userId, t.updatedAt)],
);

export const chatMessages = pgTable(
  'chat_messages',
  {
    id: uuid('id').primaryKey(),
    chatId: uuid('chat_id').notNull().references(() => chats.id, { onDelete: 'cascade' }),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    /** Position in the chat, from 0; a question and its answer are written together, so there are no gaps. */
    idx: integer('idx').notNull(),
    role: text('role', { enum: ['user', 'assistant'] }).notNull(),
    content: text('content').notNull(),
    citations: jsonb('citations').notNull().default([]),
    /** What retrieval did for this answer: the standalone query, the results and their scores, timings. */
    trace: jsonb('trace'),
    usage: jsonb('usage'),
    model: text('model'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('chat_messages_chat_idx_key').on(t.chatId, t.idx), index('chat_messages_workspace_idx').on(t.workspaceId)],
);

export const chatFeedback = pgTable(
  'chat_feedback',
  {
    messageId: uuid('message_id').notNull().references(() => chatMessages.id, { onDelete: 'cascade' }),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    workspaceId: uuid('workspace_id').notNull().references(() => workspaces.id, { onDelete: 'cascade' }),
    rating: text('rating', { enum: ['up', 'down'] }).notNull(),
    comment: text('comment').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.messageId, t.userId] }), index('chat_feedback_workspace_idx').on(t.workspaceId)],
);

export const chatSettings = pgTable('chat_settings', {
  workspaceId: uuid('workspace_id').primaryKey().references(() => workspaces.id, { onDelete: 'cascade' }),
  /** Replaces the default system prompt for this workspace's answers. */
  systemPrompt: text('system_prompt'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Tokens per workspace, API key and UTC day. Calls without a workspace (pass-through /v1 models) count under the nil
 * uuid; calls with a login instead of a key under key_id ''. No foreign keys: usage outlives deleted keys.
 */
export const llmUsage = pgTable(
  'llm_usage',
  {
    workspaceId: uuid('workspace_id').notNull(),
    day: date('day', { mode: 'string' }).notNull(),
    keyId: text('key_id').notNull().default(''),
    requests: integer('requests').notNull().default(0),
    promptTokens: bigint('prompt_tokens', { mode: 'number' }).notNull().default(0),
    completionTokens: bigint('completion_tokens', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.day, t.keyId] }), index('llm_usage_key_idx').on(t.keyId, t.day)],
);

/** Limits set by instance admins: a daily token budget per workspace, requests per minute per API key. */
export const quotas = pgTable(
  'quotas',
  {
    scope: text('scope', { enum: ['workspace', 'key'] }).notNull(),
    subjectId: uuid('subject_id').notNull(),
    dailyTokens: bigint('daily_tokens', { mode: 'number' }),
    requestsPerMinute: integer('requests_per_minute'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.subjectId] })],
);
