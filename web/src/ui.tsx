import { Alert, Badge, Center, Stack, Text, Title } from '@mantine/core';
import { Fragment, type ReactNode } from 'react';
import { errorText, type DocState } from './api/client';

/** An error as a person should read it: the problem's detail, in an alert screen readers announce. */
export function ErrorAlert({ error, title = 'Something went wrong', onClose }: { error: unknown; title?: string; onClose?: () => void }) {
  if (!error) return null;
  return (
    <Alert color="red" variant="light" title={title} role="alert" withCloseButton={!!onClose} onClose={onClose} closeButtonLabel="Dismiss error">
      {errorText(error)}
    </Alert>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <Center py="xl" data-testid="empty-state">
      <Stack align="center" gap="xs" maw={460} ta="center">
        <Title order={3} size="h4">
          {title}
        </Title>
        {children && (
          <Text c="dimmed" size="sm">
            {children}
          </Text>
        )}
        {action}
      </Stack>
    </Center>
  );
}

const STATE_COLOR: Record<DocState, string> = {
  uploaded: 'gray',
  parsing: 'blue',
  chunking: 'blue',
  embedding: 'violet',
  indexed: 'green',
  failed: 'red',
  cancelled: 'gray',
};
export function StateBadge({ state }: { state: DocState }) {
  return (
    <Badge color={STATE_COLOR[state] ?? 'gray'} variant={state === 'indexed' || state === 'failed' ? 'filled' : 'light'} data-state={state}>
      {state}
    </Badge>
  );
}

/**
 * Renders text whose matches are wrapped in <mark>…</mark> by the server (ts_headline) without trusting it as HTML:
 * the text is split on the two markers and everything else stays plain text.
 */
export function Marked({ text }: { text: string }) {
  const parts = text.split(/(<mark>|<\/mark>)/);
  let on = false;
  return (
    <>
      {parts.map((p, i) => {
        if (p === '<mark>') return (on = true), null;
        if (p === '</mark>') return (on = false), null;
        return on ? <mark key={i}>{p}</mark> : <Fragment key={i}>{p}</Fragment>;
      })}
    </>
  );
}

/** Highlights `span` inside `text` (first occurrence, whitespace-insensitive); the whole quote when it cannot be found. */
export function SpanHighlight({ text, span, range }: { text: string; span?: string; range?: [number, number] }) {
  let start = -1;
  let end = -1;
  const norm = (x: string) => x.replace(/\s+/g, ' ').trim();
  // Offsets win when they point at the quote; otherwise look the quote up in the text.
  if (range && range[0] >= 0 && range[1] > range[0] && range[1] <= text.length && (!span || norm(text.slice(range[0], range[1])) === norm(span))) [start, end] = range;
  else if (span) {
    const trimmed = span.trim();
    start = text.indexOf(trimmed);
    if (start >= 0) end = start + trimmed.length;
    else {
      const esc = trimmed.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+');
      const m = esc ? new RegExp(esc, 'i').exec(text) : null;
      if (m) [start, end] = [m.index, m.index + m[0].length];
    }
  }
  if (start < 0) {
    return (
      <>
        {span && (
          <mark data-testid="highlighted-span" style={{ display: 'block', marginBottom: 8 }}>
            {span}
          </mark>
        )}
        {text}
      </>
    );
  }
  return (
    <>
      {text.slice(0, start)}
      <mark data-testid="highlighted-span">{text.slice(start, end)}</mark>
      {text.slice(end)}
    </>
  );
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
