import { describe, expect, it } from 'vitest';
import { ExtractiveLlm, NOT_IN_DOCUMENTS, selectSentences } from './extractive.js';
import { complete } from './llm.js';
import { sentences, stem } from './text.js';

const SOURCES = [
  {
    n: 1,
    source: 'backup.md',
    heading: 'Backup guide > Nightly dumps',
    text: 'Run pg_dump every night and keep the archives for thirty days. The retention window is configured in backup.conf. Dumps are compressed with zstd.',
  },
  {
    n: 2,
    source: 'backup.md',
    heading: 'Backup guide > Restoring',
    text: 'To restore, create an empty database and feed the dump to psql. Test restores monthly, e.g. on the first Monday.',
  },
  { n: 3, source: 'faq.html', heading: 'Cluster FAQ > Scaling', text: 'The ingest workers scale horizontally; each one claims jobs with a lease.' },
];

const llm = new ExtractiveLlm();
const answer = (question: string) => complete(llm, { messages: [{ role: 'user', content: question }], grounding: { question, sources: SOURCES } });

describe('extractive answerer', () => {
  it('answers with the best-supported sentence, verbatim, with its citation', async () => {
    const a = await answer('How long are the nightly dumps kept?');
    expect(a.text).toContain('keep the archives for thirty days. [1]'.replace('. [1]', '.'));
    expect(a.text).toMatch(/thirty days\..*\[1\]/);
    expect(a.text).not.toContain('[3]');
  });

  it('adds a second sentence only when it covers more of the question', async () => {
    const a = await answer('Where is the retention window configured and how long do we keep archives?');
    expect(a.text).toContain('backup.conf');
    expect(a.text).toContain('thirty days');
    const restore = await answer('how do I restore a dump with psql');
    expect(restore.text.startsWith('To restore, create an empty database and feed the dump to psql.')).toBe(true);
    expect(restore.text).toContain('[2]');
  });

  it('says the documents do not cover a question instead of guessing', async () => {
    const a = await answer('What is the wifi password of the office?');
    expect(a.text.startsWith(NOT_IN_DOCUMENTS)).toBe(true);
    expect(a.text).not.toMatch(/\[\d\]/);
    expect(selectSentences('kubernetes ingress annotations', SOURCES)).toEqual([]);
  });

  it('reports offsets of the quoted sentence inside its source', () => {
    const [p] = selectSentences('which workers claim jobs with a lease', SOURCES);
    expect(p).toMatchObject({ n: 3 });
    expect(SOURCES[2]!.text.slice(p!.start, p!.end)).toBe(p!.text);
  });

  it('streams word pieces and counts no tokens, since no model ran', async () => {
    const pieces: string[] = [];
    for await (const e of llm.stream({ messages: [{ role: 'user', content: 'x' }], grounding: { question: 'restore psql', sources: SOURCES } }))
      if (e.type === 'token') pieces.push(e.text);
    expect(pieces.length).toBeGreaterThan(5);
    const c = await answer('restore psql');
    expect(c.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0 });
  });

  it('splits sentences without breaking on abbreviations, and stems lightly', () => {
    expect(sentences('Test restores monthly, e.g. on Mondays. Then stop.').map((s) => s.text)).toEqual(['Test restores monthly, e.g. on Mondays.', 'Then stop.']);
    expect(stem('nightly')).toBe('night');
    expect(stem('dumps')).toBe('dump');
    expect(stem('restoring')).toBe(stem('restore'));
  });
});

describe('extractive answers are whole sentences in document order (issue 16, point 3)', () => {
  const TABLE = 'key | meaning\nCtrl-U | erase line before cursor\nCtrl-Z | temporarily stop program by moving it to the background job\nCtrl-S | halt output to screen';
  it('answers with a table row, not the whole table, and keeps one-letter key names', () => {
    const [p, ...rest] = selectSentences('What does Ctrl-Z do in the shell?', [{ n: 1, text: TABLE, source: 'keys.html', heading: 'Shell keys' }]);
    expect(p!.text).toBe('Ctrl-Z | temporarily stop program by moving it to the background job');
    expect(rest).toEqual([]);
  });

  it('never starts with the fragment a chunk begins with, and reads sentences of one document in its order', () => {
    const first = { n: 1, source: 'guide.html', start: 500, text: 'archives on a second disk. The retention window is configured in backup.conf.' };
    const second = { n: 2, source: 'guide.html', start: 100, text: 'Run pg_dump every night and keep the archives for thirty days.' };
    const picks = selectSentences('Where is the retention window configured and how long are archives kept?', [first, second]);
    expect(picks.map((p) => p.text)).toEqual(['Run pg_dump every night and keep the archives for thirty days.', 'The retention window is configured in backup.conf.']);
  });

  it('does not take one shared word for support when the question names several things', () => {
    const locale = [{ n: 1, source: 'ch08.html', text: 'fr_FR.UTF-8 | French (France)\nde_DE.UTF-8 | German (Germany)\nThe locale is set with dpkg-reconfigure.' }];
    expect(selectSentences('What is the capital of France?', locale)).toEqual([]);
    expect(selectSentences('Which locale is French (France)?', locale)[0]?.text).toBe('fr_FR.UTF-8 | French (France)');
  });
});
