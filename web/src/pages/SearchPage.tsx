import { Badge, Button, Card, Group, NumberInput, SegmentedControl, SimpleGrid, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, errorText, ws as wsPath, type SearchMode, type SearchResponse } from '../api/client';
import { EmptyState, ErrorAlert, Marked } from '../ui';

const MODES: SearchMode[] = ['lexical', 'vector', 'hybrid'];
type Column = { mode: SearchMode; result?: SearchResponse; error?: string };

export default function SearchPage({ ws }: { ws: string }) {
  const [query, setQuery] = useState('');
  const [k, setK] = useState<number>(5);
  const [view, setView] = useState<'compare' | SearchMode>('compare');
  const [columns, setColumns] = useState<Column[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async (e: FormEvent) => {
    e.preventDefault();
    if (!query.trim()) return;
    setBusy(true);
    setError(null);
    const modes = view === 'compare' ? MODES : [view];
    // Each mode on its own: a workspace without embeddings still answers lexical searches.
    const out = await Promise.all(
      modes.map(async (mode): Promise<Column> => {
        try {
          return { mode, result: await api<SearchResponse>('POST', `${wsPath(ws)}/search`, { query, k, mode, highlight: true }) };
        } catch (err) {
          return { mode, error: errorText(err) };
        }
      }),
    );
    setColumns(out);
    if (out.every((c) => c.error)) setError(new Error(out[0]!.error));
    setBusy(false);
  };

  return (
    <Stack>
      <Title order={1} size="h2">
        Search playground
      </Title>
      <form onSubmit={run} role="search" aria-label="Search documents">
        <Group align="flex-end" wrap="wrap">
          <TextInput label="Query" placeholder="What are you looking for?" value={query} onChange={(e) => setQuery(e.currentTarget.value)} style={{ flex: '1 1 260px' }} required />
          <NumberInput label="Results (k)" min={1} max={100} value={k} onChange={(v) => setK(typeof v === 'number' ? v : 5)} w={110} />
          <div>
            <Text size="sm" fw={500} mb={3} id="mode-label">
              Mode
            </Text>
            <SegmentedControl
              aria-labelledby="mode-label"
              value={view}
              onChange={(v) => setView(v as typeof view)}
              data={[{ value: 'compare', label: 'Side by side' }, ...MODES.map((m) => ({ value: m, label: m }))]}
            />
          </div>
          <Button type="submit" loading={busy}>
            Search
          </Button>
        </Group>
      </form>
      <ErrorAlert title="Search failed" error={error} />
      {!columns && <EmptyState title="Try a query">Compare lexical (BM25), vector and hybrid (rank fusion) results and their scores for the same question.</EmptyState>}
      {columns && !error && (
        <SimpleGrid cols={{ base: 1, md: columns.length }} spacing="md">
          {columns.map((c) => (
            <Stack key={c.mode} gap="xs" component="section" aria-label={`${c.mode} results`} data-testid={`results-${c.mode}`}>
              <Group justify="space-between">
                <Title order={2} size="h4" tt="capitalize">
                  {c.mode}
                </Title>
                {c.result && (
                  <Text size="xs" c="dimmed">
                    {c.result.results.length} results · {Math.round(c.result.tookMs)} ms
                  </Text>
                )}
              </Group>
              {c.error && (
                <Text size="sm" c="red" role="alert">
                  {c.error}
                </Text>
              )}
              {c.result && c.result.results.length === 0 && (
                <Text size="sm" c="dimmed">
                  No matching passages.
                </Text>
              )}
              {c.result?.results.map((r, i) => (
                <Card key={r.chunkId} withBorder p="sm" data-testid="search-hit">
                  <Group justify="space-between" wrap="nowrap" gap="xs">
                    <Text size="sm" fw={600} truncate>
                      {i + 1}. {r.title || r.source}
                      {r.page != null && ` · p. ${r.page}`}
                    </Text>
                    <Badge variant="light" title="score">
                      {r.score.toFixed(4)}
                    </Badge>
                  </Group>
                  {r.heading && (
                    <Text size="xs" c="dimmed">
                      {r.headingPath?.length ? r.headingPath.join(' › ') : r.heading}
                    </Text>
                  )}
                  <Text size="sm" mt={4} style={{ whiteSpace: 'pre-wrap' }} lineClamp={6}>
                    {r.highlight ? <Marked text={r.highlight} /> : r.text}
                  </Text>
                </Card>
              ))}
            </Stack>
          ))}
        </SimpleGrid>
      )}
    </Stack>
  );
}
