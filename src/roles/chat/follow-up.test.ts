import { describe, expect, it } from 'vitest';
import type { LlmMessage } from '../../adapters/llm/llm.js';
import { terms } from '../../adapters/llm/text.js';
import { readConversations, scoreFollowUps } from '../../cli/eval-sets.js';
import { decideFollowUp, ruleBasedStandalone } from './follow-up.js';

// The follow-up decision on the conversation set (eval/conversations.jsonl, eval/README.md says how it was written):
// every turn after the first is labelled follow-up or new. The floor is issue 16's goal; `npm run bench -- eval`
// prints the same figure.

const conversations = readConversations(new URL('../../../eval/conversations.jsonl', import.meta.url).pathname);
const scoreConversations = () => scoreFollowUps(conversations).rows;

describe('follow-up or new question', () => {
  it('decides at least 95% of the conversation set right, and the set has what issue 16 asks for', () => {
    expect(conversations.length).toBeGreaterThanOrEqual(60);
    const kinds = new Set(conversations.map((c) => c.kind));
    for (const k of ['pronoun', 'ellipsis', 'switch-why', 'switch-so', 'switch-and', 'short-standalone', 'three-turn']) expect(kinds).toContain(k);
    const rows = scoreConversations();
    const wrong = rows.filter((r) => r.expected !== r.got);
    const accuracy = 1 - wrong.length / rows.length;
    expect(accuracy, wrong.map((r) => `${r.id} ${r.expected ? 'follow-up' : 'new'}: ${r.q}`).join('\n')).toBeGreaterThanOrEqual(0.95);
  });

  it('rewrites follow-ups with the topic they continue, and leaves new questions alone', () => {
    for (const r of scoreConversations()) {
      if (r.expected !== r.got) continue;
      if (!r.got) expect(r.query, r.id).toBe(r.q);
      else if (r.topic) expect(terms(r.query), `${r.id}: ${r.query}`).toContain(terms(r.topic)[0]);
    }
  });

  it('does not take a why/so/and topic switch for a follow-up (the apt pinning → VACUUM FULL report)', () => {
    const history: LlmMessage[] = [{ role: 'user', content: 'How do I pin a package so apt installs it from unstable while I track testing?' }];
    expect(ruleBasedStandalone('Why should I avoid VACUUM FULL?', history).query).toBe('Why should I avoid VACUUM FULL?');
    expect(decideFollowUp('So how do I restore from a dump?', history).followUp).toBe(false);
    expect(decideFollowUp('And why?', history).followUp).toBe(true);
    expect(decideFollowUp('Is it possible to pin a whole release?', history).followUp).toBe(false);
    expect(decideFollowUp('Is it possible?', history).followUp).toBe(true);
    expect(decideFollowUp('Is there a tool that lists held packages?', history).followUp).toBe(false);
    expect(decideFollowUp('What is the default?', history).followUp).toBe(true);
    expect(decideFollowUp('How do I undo it?', [])).toEqual({ followUp: false, reason: 'first' });
  });

  it('carries the first topic through a follow-up of a follow-up', () => {
    const history: LlmMessage[] = [
      { role: 'user', content: 'What is tmpfs?' },
      { role: 'assistant', content: '…' },
      { role: 'user', content: 'Where is it mounted?' },
      { role: 'assistant', content: '…' },
    ];
    expect(ruleBasedStandalone('How big can it get?', history).query).toMatch(/tmpfs/);
  });
});
