import { ActionIcon, Alert, Badge, Box, Button, Card, Group, Loader, NavLink, Paper, ScrollArea, Select, Stack, Text, Textarea, Title, Tooltip, UnstyledButton } from '@mantine/core';
import { Fragment, useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { ApiError, errorText } from '../api/client';
import { createChat, exportChat, findChunk, getChat, listChats, sendFeedback, streamMessage, type ChatMessage, type ChatSummary, type Citation } from '../chat-api';
import { useWorkspace } from '../App';
import { Link, navigate } from '../router';
import { EmptyState, ErrorAlert, SpanHighlight } from '../ui';

// Inline icons: emoji depend on the system's fonts (a bare Linux shows empty boxes).
const Thumb = ({ down }: { down?: boolean }) => (
  <svg width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round" aria-hidden style={down ? { transform: 'rotate(180deg)' } : undefined}>
    <path d="M7 11v8a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-7a1 1 0 0 1 1-1h3a4 4 0 0 0 4-4V6a2 2 0 0 1 4 0v5h3a2 2 0 0 1 2 2l-1 5a2 3 0 0 1-2 2h-7a3 3 0 0 1-3-3" />
  </svg>
);

/** Answer text with `[n]` markers turned into buttons that open source n. */
function AnswerText({ msg, onCite }: { msg: ChatMessage; onCite: (n: number) => void }) {
  const parts = msg.content.split(/(\[\d+(?:\s*[,;]\s*\d+)*\])/g);
  return (
    <Text component="div" size="sm" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
      {parts.map((p, i) => {
        const m = /^\[(\d+(?:\s*[,;]\s*\d+)*)\]$/.exec(p);
        if (!m) return <Fragment key={i}>{p}</Fragment>;
        return (
          <Fragment key={i}>
            {m[1]!.split(/\s*[,;]\s*/).map((n) => {
              const c = msg.citations.find((x) => x.n === Number(n));
              return (
                <UnstyledButton
                  key={n}
                  onClick={() => onCite(Number(n))}
                  aria-label={`Source ${n}${c ? `: ${c.title || c.source}` : ''}`}
                  data-testid="citation-marker"
                  style={{
                    display: 'inline-block',
                    fontSize: 11,
                    fontWeight: 700,
                    lineHeight: '16px',
                    padding: '0 5px',
                    margin: '0 1px',
                    borderRadius: 8,
                    verticalAlign: 'super',
                    background: 'var(--mantine-color-blue-light)',
                    color: 'var(--mantine-color-blue-light-color)',
                  }}
                >
                  {n}
                </UnstyledButton>
              );
            })}
          </Fragment>
        );
      })}
      {msg.streaming && <span aria-hidden className="dp-caret">▍</span>}
    </Text>
  );
}

function SourceCard({ ws, c, selected }: { ws: string; c: Citation; selected: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  const [chunk, setChunk] = useState<{ text: string; range?: [number, number] } | null>(c.text ? { text: c.text, range: c.range } : null);
  useEffect(() => {
    if (c.text || !c.quote) return;
    let live = true;
    findChunk(ws, c).then(
      (hit) => {
        if (!live || !hit) return;
        const range: [number, number] | undefined = c.docRange ? [c.docRange[0] - hit.charStart, c.docRange[1] - hit.charStart] : undefined;
        setChunk({ text: hit.text, range });
      },
      () => undefined, // the quote alone is still shown
    );
    return () => {
      live = false;
    };
  }, [ws, c]);
  useEffect(() => {
    if (selected) {
      ref.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
      ref.current?.focus({ preventScroll: true });
    }
  }, [selected]);
  return (
    <Card
      ref={ref}
      withBorder
      p="sm"
      tabIndex={-1}
      data-testid="source-card"
      data-selected={selected || undefined}
      aria-label={`Source ${c.n}: ${c.title || c.source}`}
      style={{ borderColor: selected ? 'var(--mantine-color-blue-filled)' : undefined, borderWidth: selected ? 2 : 1 }}
    >
      <Group gap="xs" wrap="nowrap" mb={4}>
        <Badge size="sm" circle>
          {c.n}
        </Badge>
        <Text size="sm" fw={600} style={{ overflowWrap: 'anywhere' }}>
          {c.title || c.source}
        </Text>
      </Group>
      <Text size="xs" c="dimmed" mb={6}>
        {[c.title && c.title !== c.source ? c.source : null, c.page != null ? `page ${c.page}` : null, c.heading || null].filter(Boolean).join(' · ') || 'document'}
      </Text>
      <Text size="sm" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
        {chunk ? <SpanHighlight text={chunk.text} span={c.quote} range={chunk.range} /> : c.quote ? <mark data-testid="highlighted-span">{c.quote}</mark> : <Text c="dimmed">No text was sent for this source.</Text>}
      </Text>
    </Card>
  );
}

export default function ChatPage({ ws, chatId }: { ws: string; chatId?: string }) {
  const workspace = useWorkspace(ws);
  const [chats, setChats] = useState<ChatSummary[] | null>(null);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [input, setInput] = useState('');
  const [streaming, setStreaming] = useState<AbortController | null>(null);
  const [selected, setSelected] = useState<{ msg: number; n: number } | null>(null);
  const created = useRef<string | null>(null);
  const bottom = useRef<HTMLDivElement>(null);

  const loadChats = useCallback(async () => {
    try {
      setChats(await listChats(ws));
      setUnavailable(null);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) setUnavailable('This server does not offer the chat API yet.');
      else setError(err);
      setChats([]);
    }
  }, [ws]);
  useEffect(() => void loadChats(), [loadChats]);

  useEffect(() => {
    setSelected(null);
    if (!chatId) return setMessages([]);
    if (created.current === chatId) return; // we made it a moment ago and are streaming into it
    setLoading(true);
    getChat(ws, chatId)
      .then((c) => setMessages(c.messages))
      .catch(setError)
      .finally(() => setLoading(false));
  }, [ws, chatId]);

  // Braces matter: newer Chromium returns a Promise from scrollIntoView, and an effect must not return one.
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: 'end' });
  }, [messages.length, messages.at(-1)?.content.length]);
  useEffect(() => () => streaming?.abort(), [streaming]);

  const patchLast = (patch: (m: ChatMessage) => ChatMessage) => setMessages((ms) => (ms.length ? [...ms.slice(0, -1), patch(ms.at(-1)!)] : ms));

  const ask = async () => {
    const q = input.trim();
    if (!q || streaming) return;
    setError(null);
    let id = chatId;
    try {
      if (!id) {
        const c = await createChat(ws, q.slice(0, 80));
        id = c.id;
        created.current = id;
        navigate(`/w/${ws}/chat/${id}`, { replace: true });
      }
    } catch (err) {
      return setError(err);
    }
    const ac = new AbortController();
    setStreaming(ac);
    setInput('');
    setMessages((ms) => [...ms, { role: 'user', content: q, citations: [] }, { role: 'assistant', content: '', citations: [], streaming: true }]);
    const t0 = performance.now();
    let first = true;
    try {
      await streamMessage(
        ws,
        id,
        q,
        {
          onToken: (t) => {
            if (first) {
              first = false;
              performance.mark?.('docupod:first-token', { detail: performance.now() - t0 });
            }
            patchLast((m) => ({ ...m, content: m.content + t, tokens: (m.tokens ?? 0) + 1 }));
          },
          onFinal: (f) => {
            patchLast((m) => ({ ...m, id: f.id ?? m.id, content: f.content ?? m.content, citations: f.citations?.length ? f.citations : m.citations, usage: f.usage ?? m.usage }));
            if (f.userMessageId) setMessages((ms) => ms.map((m, i) => (i === ms.length - 2 ? { ...m, id: f.userMessageId } : m)));
          },
          onError: (detail) => patchLast((m) => ({ ...m, error: detail })),
        },
        ac.signal,
      );
    } catch (err) {
      if (!ac.signal.aborted) patchLast((m) => ({ ...m, error: errorText(err) }));
    } finally {
      patchLast((m) => ({ ...m, streaming: false, content: m.content || (ac.signal.aborted ? '(stopped)' : m.content) }));
      setStreaming(null);
      void loadChats();
    }
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void ask();
    }
  };

  const feedback = async (i: number, rating: 'up' | 'down') => {
    const m = messages[i];
    if (!m?.id || !chatId) return;
    try {
      await sendFeedback(ws, chatId, m.id, rating);
      setMessages((ms) => ms.map((x, j) => (j === i ? { ...x, feedback: rating } : x)));
    } catch (err) {
      setError(err);
    }
  };

  const doExport = async () => {
    if (!chatId) return;
    let blob: Blob;
    try {
      blob = await exportChat(ws, chatId);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) return setError(err);
      blob = new Blob([JSON.stringify({ chatId, workspace: ws, messages }, null, 2)], { type: 'application/json' });
    }
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `chat-${chatId}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  // The sources panel shows the citations of the clicked message, else of the latest answer that has any.
  const lastWithCites = [...messages.keys()].reverse().find((i) => messages[i]!.citations.length > 0);
  const sourceMsg = selected?.msg ?? lastWithCites;
  const sources = sourceMsg !== undefined ? messages[sourceMsg]?.citations ?? [] : [];

  const history = (
    <Stack gap={4}>
      <Button variant="light" onClick={() => navigate(`/w/${ws}/chat`)} fullWidth disabled={!!streaming}>
        New chat
      </Button>
      {chats === null && <Loader size="sm" aria-label="Loading chats" />}
      {chats?.length === 0 && !unavailable && (
        <Text size="xs" c="dimmed" px="xs">
          No chats yet.
        </Text>
      )}
      {chats?.map((c) => (
        <NavLink key={c.id} component={Link} to={`/w/${ws}/chat/${c.id}`} label={c.title} active={c.id === chatId} aria-current={c.id === chatId ? 'page' : undefined} styles={{ label: { overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' } }} />
      ))}
    </Stack>
  );

  return (
    <Box className="dp-chat">
      <style>{CSS}</style>
      <Box className="dp-chat-history" component="nav" aria-label="Chat history">
        <Box visibleFrom="md">{history}</Box>
        <Group hiddenFrom="md" wrap="nowrap" gap="xs">
          <Select
            aria-label="Open a previous chat"
            placeholder="Previous chats"
            data={(chats ?? []).map((c) => ({ value: c.id, label: c.title }))}
            value={chatId ?? null}
            onChange={(v) => v && navigate(`/w/${ws}/chat/${v}`)}
            style={{ flex: 1 }}
          />
          <Button variant="light" onClick={() => navigate(`/w/${ws}/chat`)} disabled={!!streaming}>
            New
          </Button>
        </Group>
      </Box>

      <Stack className="dp-chat-main" gap="sm" component="section" aria-label="Conversation">
        <Group justify="space-between" wrap="nowrap">
          <Title order={1} size="h3">
            Chat {workspace ? <Text span c="dimmed" size="md">· {workspace.name}</Text> : null}
          </Title>
          {chatId && messages.length > 0 && (
            <Button size="xs" variant="default" onClick={() => void doExport()}>
              Export
            </Button>
          )}
        </Group>
        {unavailable && (
          <Alert color="yellow" variant="light" title="Chat is not available">
            {unavailable} You can still <Link to={`/w/${ws}/search`}>search the documents</Link>.
          </Alert>
        )}
        <ErrorAlert error={error} onClose={() => setError(null)} />
        <ScrollArea.Autosize mah="calc(100dvh - 290px)" type="auto" offsetScrollbars>
          <Stack gap="sm" aria-live="polite" aria-busy={!!streaming} data-testid="messages">
            {loading && <Loader size="sm" aria-label="Loading messages" />}
            {!loading && messages.length === 0 && (
              <EmptyState title="Ask your documents">
                Answers quote the indexed documents of this workspace and cite them with numbered markers; click a marker to see the passage.
              </EmptyState>
            )}
            {messages.map((m, i) =>
              m.role === 'user' ? (
                <Paper key={i} p="sm" radius="lg" bg="var(--mantine-color-blue-light)" ml="auto" maw="85%" data-testid="user-message">
                  <Text size="sm" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
                    {m.content}
                  </Text>
                </Paper>
              ) : (
                <Paper key={i} p="sm" radius="lg" withBorder maw="95%" data-testid="assistant-message" data-streaming={m.streaming || undefined} data-tokens={m.tokens}>
                  {m.streaming && !m.content ? <Loader size="xs" type="dots" aria-label="Thinking" /> : <AnswerText msg={m} onCite={(n) => setSelected({ msg: i, n })} />}
                  {m.error && (
                    <Text size="sm" c="red" role="alert" mt={4}>
                      {m.error}
                    </Text>
                  )}
                  {!m.streaming && !m.error && m.content && (
                    <Group gap={4} mt={6}>
                      <Tooltip label="Helpful">
                        <ActionIcon variant={m.feedback === 'up' ? 'filled' : 'subtle'} size="sm" aria-label="Good answer" aria-pressed={m.feedback === 'up'} disabled={!m.id} onClick={() => void feedback(i, 'up')}>
                          <Thumb />
                        </ActionIcon>
                      </Tooltip>
                      <Tooltip label="Not helpful">
                        <ActionIcon variant={m.feedback === 'down' ? 'filled' : 'subtle'} color="red" size="sm" aria-label="Bad answer" aria-pressed={m.feedback === 'down'} disabled={!m.id} onClick={() => void feedback(i, 'down')}>
                          <Thumb down />
                        </ActionIcon>
                      </Tooltip>
                      {m.citations.length > 0 && (
                        <Button size="compact-xs" variant="subtle" onClick={() => setSelected({ msg: i, n: m.citations[0]!.n })}>
                          {m.citations.length} source{m.citations.length === 1 ? '' : 's'}
                        </Button>
                      )}
                      {m.usage && (
                        <Text size="xs" c="dimmed">
                          {m.usage.totalTokens ?? m.usage.total_tokens ?? (m.usage.promptTokens ?? 0) + (m.usage.completionTokens ?? 0)} tokens
                        </Text>
                      )}
                    </Group>
                  )}
                </Paper>
              ),
            )}
            <div ref={bottom} />
          </Stack>
        </ScrollArea.Autosize>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void ask();
          }}
        >
          <Group align="flex-end" wrap="nowrap" gap="xs">
            <Textarea
              label="Your question"
              placeholder="Ask about your documents… (Enter to send, Shift+Enter for a new line)"
              autosize
              minRows={1}
              maxRows={6}
              value={input}
              onChange={(e) => setInput(e.currentTarget.value)}
              onKeyDown={onKey}
              style={{ flex: 1 }}
            />
            {streaming ? (
              <Button color="gray" onClick={() => streaming.abort()}>
                Stop
              </Button>
            ) : (
              <Button type="submit" disabled={!input.trim()}>
                Send
              </Button>
            )}
          </Group>
        </form>
      </Stack>

      <Stack className="dp-chat-sources" gap="xs" component="aside" aria-label="Sources">
        <Title order={2} size="h5">
          Sources
        </Title>
        {sources.length === 0 ? (
          <Text size="sm" c="dimmed">
            The passages behind an answer appear here.
          </Text>
        ) : (
          sources.map((c) => <SourceCard key={`${sourceMsg}-${c.n}`} ws={ws} c={c} selected={!!selected && selected.msg === sourceMsg && selected.n === c.n} />)
        )}
      </Stack>
    </Box>
  );
}

const CSS = `
.dp-chat { display: grid; gap: var(--mantine-spacing-md); grid-template-columns: 1fr; }
.dp-chat-sources { max-height: none; }
@media (min-width: 62em) {
  .dp-chat { grid-template-columns: 200px minmax(0, 1fr) 340px; align-items: start; }
  .dp-chat-sources { position: sticky; top: 72px; max-height: calc(100dvh - 90px); overflow: auto; }
}
.dp-caret { animation: dp-blink 1s steps(2) infinite; }
@keyframes dp-blink { to { opacity: 0; } }
`;
