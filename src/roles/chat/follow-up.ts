// Follow-up or new question? A rule-based decision from the question's own shape, no corpus statistics and no model,
// so it behaves the same on any document set. A question is a follow-up when it cannot be understood alone:
//   - it points back (it, that, this, they, those, which one, the same, instead, else…), leaving out expletive uses
//     ("is it possible to…", "is there a way…", "packages that are installed": a relative "that");
//   - it is elliptical: "what about X?", "and for testing?", "for a static binary?", "why?", or a fragment of one word;
//   - its only content words are relational nouns that need a complement ("what's the default?", "any example?").
// Everything else is a new question, however it begins: "Why should I avoid VACUUM FULL?" after a question on apt
// pinning is a new topic (issue 16), so a leading why/so/and decides nothing by itself.
// Measured on eval/conversations.jsonl (follow-up.test.ts keeps a floor; `npm run bench -- eval` prints it).
import type { LlmMessage } from '../../adapters/llm/llm.js';
import { terms } from '../../adapters/llm/text.js';

export interface FollowUpDecision {
  followUp: boolean;
  /** Why, for the trace: 'first' (no earlier question), 'reference', 'ellipsis', 'relational', 'standalone'. */
  reason: 'first' | 'reference' | 'ellipsis' | 'relational' | 'standalone';
}

const LEAD = /^(?:(?:and|so|but|or|also|then|ok|okay|well|hmm|right|now)\b[\s,]*)+/i;
const WH_OR_AUX = /^(?:what|whats|what's|which|who|whom|whose|where|when|why|how|is|are|was|were|do|does|did|can|could|should|would|will|shall|may|might|must|has|have|had|am|explain|describe|list|show|tell|give|find|compare)\b/i;
const PREPOSITION = /^(?:for|in|on|with|without|from|under|via|using|by|at|to|into|inside|after|before|during|over|through|on)\b/i;
const ELLIPTIC_FRAME = /^(?:what|how)\s+about\b|^what\s+if\b|^what\s+else\b|^anything\s+else\b|^same\s+(?:for|with|on|in)\b|^(?:the\s+)?other\s+way\b|^(?:why|how|where|when|which)\s+not\b|^why\s+(?:so|is\s+that|not)\b|^how\s+so\b|^(?:any|some)\s+(?:other|more|example|examples|alternative|alternatives)\b/i;
// Always point back when they stand in a question about documents.
const ANAPHOR = /\b(?:they|them|their|theirs|these|those|he|she|him|his|hers|same|above|previous|former|latter|otherwise|else|aforementioned)\b|\binstead\b(?!\s+of\b)/i;
// Nouns that name a relation to something unsaid: alone, they ask about the earlier topic.
const RELATIONAL = new Set(
  terms(
    'difference differences default defaults example examples alternative alternatives command commands syntax option options reason reasons ' +
      'advantage advantages disadvantage disadvantages benefit benefits drawback drawbacks purpose meaning location path file files ' +
      'config configuration setting settings step steps detail details risk risks version versions tool tools package packages ' +
      'other another better worse faster slower safer safe secure recommended best good bad right wrong correct possible necessary required ' +
      'enable enabled disable disabled default install installed remove removed change changed configure configured work works ' +
      'support supported mean means do done happen happens fix error errors problem problems issue issues case cases way ways time times ' +
      'name names user users only just exactly instead also too really still first last next',
  ),
);
// Words after which "that"/"this" is a demonstrative or a pronoun rather than a relative pronoun or a conjunction.
const FUNCTION_BEFORE = /^(?:is|are|was|were|do|does|did|can|could|should|would|will|be|been|has|have|had|about|for|of|in|on|with|from|to|into|by|after|before|like|than|use|using|run|set|change|configure|enable|disable|install|remove|fix|undo|avoid|mean|does|what|why|how|where|when|which|who|if|and|but|so|or|then|at|also|happens)$/i;
// Nouns that, after "that"/"this", make it a demonstrative: "read that file", "this command".
const DEMONSTRATED = /^(?:file|files|command|commands|tool|tools|package|packages|option|options|setting|settings|program|programs|method|approach|step|error|problem|version|service|key|value|directory|one|ones|way|kind|case|part|section|line)$/i;
const SUBJECT_AFTER = /^(?:the|a|an|my|your|our|their|his|her|its|it|i|you|we|they|there|some|all|every|each|no|any)$/i;

function words(s: string): string[] {
  return s.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'_.-]*/gu)?.map((w) => w.replace(/[.'-]+$/, '')) ?? [];
}

/** Whether a pronoun in the question refers back to something earlier. */
function pointsBack(q: string): boolean {
  if (ANAPHOR.test(q)) return true;
  const w = words(q);
  for (let i = 0; i < w.length; i++) {
    const x = w[i]!;
    const prev = w[i - 1];
    const next = w[i + 1];
    if (x === 'it' || x === 'its' || x === "it's") {
      // Expletive "it": "is it possible to…", "is it safe to remove old kernels?" — a "to" soon after, with a topic.
      const to = w.slice(i + 1, i + 5).indexOf('to');
      if (x !== 'its' && to >= 0 && terms(w.slice(i + 2 + to).join(' ')).some((t) => !RELATIONAL.has(t))) continue;
      return true;
    }
    if (x === 'that' || x === 'this') {
      if (next !== undefined && SUBJECT_AFTER.test(next)) continue; // conjunction: "make sure that the…"
      if (next !== undefined && DEMONSTRATED.test(next)) return true; // "read that file"
      if (prev === undefined || FUNCTION_BEFORE.test(prev)) return true; // "is that…", "do this", "that command"
      if (next === undefined) return true; // "…like that?"
      continue; // relative: "packages that are installed"
    }
    if (x === 'there') {
      // "is there a way…" is expletive; "from there", "in there", a final "there" point back.
      if (next === undefined || (prev !== undefined && /^(?:from|in|out|over|up|down|get|go)$/.test(prev))) return true;
      continue;
    }
    if (x === 'one' || x === 'ones') {
      // "which one", "the other one", "a newer one"; "one" as a number ("one disk") does not point back.
      if (next === undefined || (prev !== undefined && /^(?:which|that|this|the|other|another|each|new|newer|old|older|first|second|last|same|right|better|best)$/.test(prev))) return true;
    }
  }
  return false;
}

/** Decides whether `question` continues the conversation in `history`. */
export function decideFollowUp(question: string, history: readonly LlmMessage[]): FollowUpDecision {
  if (!history.some((m) => m.role === 'user')) return { followUp: false, reason: 'first' };
  const q = question.trim().replace(/\s+/g, ' ');
  const body = q.replace(LEAD, '').trim();
  if (pointsBack(body)) return { followUp: true, reason: 'reference' };
  if (ELLIPTIC_FRAME.test(body)) return { followUp: true, reason: 'ellipsis' };
  const content = terms(body);
  if (content.length === 0) return { followUp: true, reason: 'ellipsis' }; // "Why?", "How so?", "Which is better?"
  const specific = content.filter((t) => !RELATIONAL.has(t));
  if (specific.length === 0) return { followUp: true, reason: 'relational' };
  // A fragment that opens with a preposition continues the last question: "For a static binary?", "and for ifupdown?".
  if (PREPOSITION.test(body)) return { followUp: true, reason: 'ellipsis' };
  // A fragment of one word after a conjunction: "And autoremove?". Alone ("Apt?") it is a new, short question.
  if (!WH_OR_AUX.test(body) && content.length <= 1 && LEAD.test(q) && !/\b(?:how|what|why)\b/i.test(body)) return { followUp: true, reason: 'ellipsis' };
  return { followUp: false, reason: 'standalone' };
}

/**
 * The retrieval query for the last question by rule: a follow-up gets the key words of the topic it continues (the
 * earlier question, itself resolved the same way, so a third turn inherits the first turn's topic through the second).
 */
export function ruleBasedStandalone(question: string, history: readonly LlmMessage[]): { query: string; decision: FollowUpDecision } {
  const earlier = history.filter((m) => m.role === 'user').map((m) => m.content);
  let topic: string | undefined;
  const seen: LlmMessage[] = [];
  for (const e of earlier) {
    topic = decideFollowUp(e, seen).followUp && topic !== undefined ? withTopic(e, topic) : e;
    seen.push({ role: 'user', content: e });
  }
  const decision = decideFollowUp(question, history);
  return { query: decision.followUp && topic !== undefined ? withTopic(question, topic) : question, decision };
}

/** The question plus the topic's words it does not already have, in the topic's order. */
function withTopic(question: string, topic: string): string {
  const have = new Set(terms(question));
  const extra: string[] = [];
  for (const m of topic.matchAll(/[\p{L}\p{N}][\p{L}\p{N}_./-]*/gu)) {
    const w = m[0].replace(/[./-]+$/, '');
    const t = terms(w)[0];
    if (!t || have.has(t)) continue;
    have.add(t);
    extra.push(w);
  }
  return extra.length > 0 ? `${question} ${extra.join(' ')}` : question;
}
