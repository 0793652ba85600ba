// The repository's own evaluation sets beside the dev questions (eval/README.md): conversations labelled follow-up or
// new question, and off-topic questions the documents cannot answer. Loaders and scorers are shared by the tests and
// `npm run bench -- eval`, so both print the same figures.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { LlmMessage } from '../adapters/llm/llm.js';
import { ruleBasedStandalone } from '../roles/chat/follow-up.js';

export const Conversation = z.object({
  id: z.string(),
  kind: z.string(),
  turns: z.array(z.object({ q: z.string().min(1), followUp: z.boolean().optional(), topic: z.string().optional() })).min(2).max(3),
});
export type Conversation = z.infer<typeof Conversation>;

function jsonl<T extends z.ZodType>(file: string, schema: T): Array<z.output<T>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line, i) => {
      if (!line.trim()) return [];
      const r = schema.safeParse(JSON.parse(line));
      if (!r.success) throw new Error(`${file}:${i + 1}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      return [r.data];
    });
}

export const readConversations = (file: string): Conversation[] => jsonl(file, Conversation);

export interface FollowUpRow { id: string; kind: string; q: string; expected: boolean; got: boolean; query: string; topic?: string }

/** Every turn after the first, with the rule-based decision and query (the answers in between do not matter to it). */
export function scoreFollowUps(conversations: readonly Conversation[]): { accuracy: number; n: number; rows: FollowUpRow[] } {
  const rows: FollowUpRow[] = [];
  for (const c of conversations) {
    const history: LlmMessage[] = [];
    for (const [i, t] of c.turns.entries()) {
      if (i > 0) {
        const { query, decision } = ruleBasedStandalone(t.q, history);
        rows.push({ id: c.id, kind: c.kind, q: t.q, expected: t.followUp === true, got: decision.followUp, query, topic: t.topic });
      }
      history.push({ role: 'user', content: t.q }, { role: 'assistant', content: '…' });
    }
  }
  const right = rows.filter((r) => r.expected === r.got).length;
  return { accuracy: rows.length ? right / rows.length : 0, n: rows.length, rows };
}

export const OffTopic = z.object({ id: z.string(), question: z.string().min(1) });
export const readOffTopic = (file: string) => jsonl(file, OffTopic);
