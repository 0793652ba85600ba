import { Alert, Anchor, Button, Card, Group, Progress, Stack, Table, Text, Title, Tooltip, VisuallyHidden } from '@mantine/core';
import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import { api, errorText, parseJson, sse, upload, ws as wsPath, type Doc, type DocState } from '../api/client';
import { useWorkspace } from '../App';
import { Link } from '../router';
import { EmptyState, ErrorAlert, StateBadge, formatBytes, formatDate } from '../ui';

const TERMINAL = new Set<DocState>(['indexed', 'failed', 'cancelled']);

/** A file on its way in: byte progress while uploading, then the document it became. */
interface Pending {
  key: string;
  name: string;
  size: number;
  fraction: number;
  error?: string;
  docId?: string;
  duplicate?: boolean;
}

/** How far along a document is, 0–100, from its state and the chunk counts of its progress. */
export function percentOf(d: Pick<Doc, 'state' | 'progress'>): number {
  const p = d.progress ?? {};
  const chunkShare = p.chunksTotal ? (p.chunksDone ?? 0) / p.chunksTotal : 0;
  switch (d.state) {
    case 'uploaded':
      return 5;
    case 'parsing':
      return 15;
    case 'chunking':
      return 30;
    case 'embedding':
      return 40 + Math.round(55 * chunkShare);
    default:
      return 100;
  }
}

function progressLabel(d: Doc): string {
  const p = d.progress ?? {};
  const parts: string[] = [d.state];
  if (p.chunksTotal) parts.push(`${p.chunksDone ?? 0}/${p.chunksTotal} chunks`);
  if (p.etaSeconds && p.etaSeconds > 0) parts.push(`about ${Math.ceil(p.etaSeconds)} s left`);
  return parts.join(' · ');
}

export default function DocumentsPage({ ws }: { ws: string }) {
  const workspace = useWorkspace(ws);
  const canEdit = workspace ? workspace.role !== 'viewer' : false;
  const [docs, setDocs] = useState<Doc[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [pending, setPending] = useState<Pending[]>([]);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const watching = useRef(new Map<string, AbortController>());

  const upsert = useCallback((d: Doc) => {
    setDocs((prev) => {
      const list = prev ?? [];
      const i = list.findIndex((x) => x.id === d.id);
      if (i < 0) return [d, ...list];
      const next = list.slice();
      next[i] = { ...list[i], ...d };
      return next;
    });
  }, []);

  /** Follows one document's SSE stream until it reaches a final state. */
  const watch = useCallback(
    (id: string) => {
      if (watching.current.has(id)) return;
      const ac = new AbortController();
      watching.current.set(id, ac);
      sse(`${wsPath(ws)}/documents/${id}/events`, { signal: ac.signal }, (e) => {
        const data = parseJson(e.data);
        if ((e.event === 'progress' || e.event === 'done') && data && typeof data === 'object' && 'id' in data) upsert(data as Doc);
        if (e.event === 'error') setActionError(new Error((data as { detail?: string })?.detail ?? 'The progress stream failed.'));
      })
        .catch((err: unknown) => {
          if (!ac.signal.aborted) setActionError(err);
        })
        .finally(() => {
          watching.current.delete(id);
          if (!ac.signal.aborted) void api<Doc>('GET', `${wsPath(ws)}/documents/${id}`).then(upsert, () => undefined);
        });
    },
    [ws, upsert],
  );

  const load = useCallback(async () => {
    try {
      const r = await api<{ documents: Doc[]; total: number }>('GET', `${wsPath(ws)}/documents?limit=500`);
      setDocs(r.documents);
      setTotal(r.total);
      setError(null);
      for (const d of r.documents) if (!TERMINAL.has(d.state)) watch(d.id);
    } catch (err) {
      setError(err);
    }
  }, [ws, watch]);

  useEffect(() => {
    setDocs(null);
    setPending([]);
    void load();
    const w = watching.current;
    return () => {
      for (const ac of w.values()) ac.abort();
      w.clear();
    };
  }, [load]);

  const patchPending = (key: string, patch: Partial<Pending>) => setPending((p) => p.map((x) => (x.key === key ? { ...x, ...patch } : x)));

  const addFiles = (files: FileList | File[] | null) => {
    if (!files || !canEdit) return;
    const list = Array.from(files);
    const items = list.map((f, i) => ({ key: `${Date.now()}-${i}-${f.name}`, name: f.name, size: f.size, fraction: 0 }));
    setPending((p) => [...items, ...p]);
    list.forEach((file, i) => {
      const key = items[i]!.key;
      upload(ws, file, (fraction) => patchPending(key, { fraction }))
        .then((r) => {
          const d = r.documents[0];
          if (!d) return patchPending(key, { error: 'The server accepted the upload but returned no document.' });
          patchPending(key, { fraction: 1, docId: d.id, duplicate: d.duplicate });
          void api<Doc>('GET', `${wsPath(ws)}/documents/${d.id}`).then(upsert, () => undefined);
          if (!TERMINAL.has(d.state)) watch(d.id);
        })
        .catch((err: unknown) => patchPending(key, { error: errorText(err) }));
    });
    if (input.current) input.current.value = '';
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (canEdit) addFiles(e.dataTransfer.files);
  };

  const remove = async (d: Doc) => {
    if (!window.confirm(`Delete ${d.source}? Its chunks leave the search index.`)) return;
    try {
      watching.current.get(d.id)?.abort();
      await api('DELETE', `${wsPath(ws)}/documents/${d.id}`);
      setDocs((p) => (p ?? []).filter((x) => x.id !== d.id));
      setTotal((t) => Math.max(0, t - 1));
      setPending((p) => p.filter((x) => x.docId !== d.id));
    } catch (err) {
      setActionError(err);
    }
  };
  const reindex = async (d: Doc) => {
    try {
      upsert(await api<Doc>('POST', `${wsPath(ws)}/documents/${d.id}/reindex`));
      watch(d.id);
    } catch (err) {
      setActionError(err);
    }
  };

  const inFlight = pending.filter((p) => !p.docId);
  const dupes = pending.filter((p) => p.duplicate);

  return (
    <Stack maw={1100}>
      <Group justify="space-between">
        <Title order={1} size="h2">
          Documents
        </Title>
        {docs && (
          <Text c="dimmed" size="sm" aria-live="polite">
            {Math.max(total, docs.length)} document{Math.max(total, docs.length) === 1 ? '' : 's'} · {docs.filter((d) => d.state === 'indexed').length} searchable
          </Text>
        )}
      </Group>
      <ErrorAlert title="Could not load documents" error={error} />
      <ErrorAlert error={actionError} onClose={() => setActionError(null)} />

      {workspace && !canEdit ? (
        <Alert variant="light" color="gray" title="Read-only" data-testid="viewer-notice">
          You are a viewer in this workspace: you can read, search and chat, but not upload or delete documents.
        </Alert>
      ) : (
        <Card
          withBorder
          p="lg"
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          style={{ borderStyle: 'dashed', borderWidth: 2, background: dragging ? 'var(--mantine-color-blue-light)' : undefined }}
          data-testid="dropzone"
        >
          <Stack align="center" gap={6}>
            <Text fw={600}>Drop files here to upload</Text>
            <Text size="sm" c="dimmed" ta="center">
              PDF, Word (DOCX), HTML, Markdown, text and CSV. Several at once is fine.
            </Text>
            <VisuallyHidden>
              <label htmlFor="file-input">Choose files to upload</label>
            </VisuallyHidden>
            <input id="file-input" ref={input} type="file" multiple hidden disabled={!canEdit} onChange={(e) => addFiles(e.currentTarget.files)} />
            <Button onClick={() => input.current?.click()} disabled={!canEdit}>
              Choose files…
            </Button>
          </Stack>
        </Card>
      )}

      {(inFlight.length > 0 || pending.some((p) => p.error)) && (
        <Stack gap="xs" aria-label="Uploads" component="section">
          {pending
            .filter((p) => !p.docId)
            .map((p) => (
              <Card key={p.key} withBorder p="sm" data-testid="upload-row">
                <Group justify="space-between" wrap="nowrap">
                  <Text size="sm" truncate>
                    {p.name}
                  </Text>
                  <Text size="xs" c={p.error ? 'red' : 'dimmed'}>
                    {p.error ? 'upload failed' : `uploading ${Math.round(p.fraction * 100)}%`}
                  </Text>
                </Group>
                {p.error ? (
                  <Text size="sm" c="red" role="alert">
                    {p.error}
                  </Text>
                ) : (
                  <Progress value={p.fraction * 100} aria-label={`Uploading ${p.name}`} mt={6} />
                )}
              </Card>
            ))}
        </Stack>
      )}
      {dupes.length > 0 && (
        <Alert variant="light" color="yellow" title="Already uploaded" withCloseButton closeButtonLabel="Dismiss" onClose={() => setPending((p) => p.filter((x) => !x.duplicate))}>
          {dupes.map((d) => d.name).join(', ')} {dupes.length === 1 ? 'has' : 'have'} the same content as a document already in this workspace.
        </Alert>
      )}

      {docs && docs.length === 0 && inFlight.length === 0 && (
        <EmptyState title="No documents yet">
          {canEdit ? 'Upload files above; they become searchable once they reach “indexed”.' : 'An editor of this workspace has not uploaded anything yet.'}
        </EmptyState>
      )}

      {docs && docs.length > 0 && (
        // Narrow screens: one card per document instead of a table that would need sideways scrolling.
        <Stack gap="xs" hiddenFrom="sm" aria-label="Documents" component="ul" p={0} m={0} style={{ listStyle: 'none' }}>
          {docs.map((d) => (
            <Card key={d.id} withBorder p="sm" component="li" data-testid="doc-card" data-source={d.source} data-state={d.state}>
              <Group justify="space-between" wrap="nowrap" align="flex-start">
                <Text size="sm" fw={500} style={{ overflowWrap: 'anywhere' }}>
                  {d.title || d.source}
                </Text>
                <StateBadge state={d.state} />
              </Group>
              <Text size="xs" c="dimmed">
                {formatBytes(d.sizeBytes)} · {d.chunkCount} chunk{d.chunkCount === 1 ? '' : 's'} · {formatDate(d.updatedAt)}
              </Text>
              {!TERMINAL.has(d.state) && <Progress value={percentOf(d)} animated size="sm" mt={6} aria-label={`Processing ${d.source}: ${progressLabel(d)}`} />}
              {d.state === 'failed' && d.error && (
                <Text size="xs" c="red" mt={4}>
                  {d.error}
                </Text>
              )}
              {canEdit && (
                <Group gap={4} mt={6}>
                  <Button size="compact-xs" variant="light" onClick={() => void reindex(d)} disabled={!TERMINAL.has(d.state)} aria-label={`Re-index ${d.source}`}>
                    Re-index
                  </Button>
                  <Button size="compact-xs" variant="light" color="red" onClick={() => void remove(d)} aria-label={`Delete ${d.source}`}>
                    Delete
                  </Button>
                </Group>
              )}
            </Card>
          ))}
        </Stack>
      )}
      {docs && docs.length > 0 && (
        <Table.ScrollContainer minWidth={640} visibleFrom="sm">
          <Table verticalSpacing="sm" highlightOnHover aria-label="Documents">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>State</Table.Th>
                <Table.Th>Size</Table.Th>
                <Table.Th>Chunks</Table.Th>
                <Table.Th>Updated</Table.Th>
                {canEdit && (
                  <Table.Th>
                    <VisuallyHidden>Actions</VisuallyHidden>
                  </Table.Th>
                )}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {docs.map((d) => (
                <Table.Tr key={d.id} data-testid="doc-row" data-source={d.source} data-state={d.state}>
                  <Table.Td maw={380}>
                    <Text size="sm" fw={500} style={{ overflowWrap: 'anywhere' }}>
                      {d.title || d.source}
                    </Text>
                    {d.title && d.title !== d.source && (
                      <Text size="xs" c="dimmed">
                        {d.source}
                      </Text>
                    )}
                    {!TERMINAL.has(d.state) && (
                      <Progress value={percentOf(d)} animated size="sm" mt={6} aria-label={`Processing ${d.source}: ${progressLabel(d)}`} />
                    )}
                    {d.state === 'failed' && d.error && (
                      <Text size="xs" c="red" mt={4} data-testid="failure-reason">
                        {d.error}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Tooltip label={progressLabel(d)} disabled={TERMINAL.has(d.state)}>
                      <span>
                        <StateBadge state={d.state} />
                      </span>
                    </Tooltip>
                  </Table.Td>
                  <Table.Td>
                    <Text size="sm">{formatBytes(d.sizeBytes)}</Text>
                  </Table.Td>
                  <Table.Td>
                    <Text size="sm">{d.chunkCount}</Text>
                  </Table.Td>
                  <Table.Td>
                    <Text size="xs" c="dimmed">
                      {formatDate(d.updatedAt)}
                    </Text>
                  </Table.Td>
                  {canEdit && (
                    <Table.Td>
                      <Group gap={4} wrap="nowrap" justify="flex-end">
                        <Button size="compact-xs" variant="subtle" onClick={() => void reindex(d)} disabled={!TERMINAL.has(d.state)} aria-label={`Re-index ${d.source}`}>
                          Re-index
                        </Button>
                        <Button size="compact-xs" variant="subtle" color="red" onClick={() => void remove(d)} aria-label={`Delete ${d.source}`}>
                          Delete
                        </Button>
                      </Group>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {docs && docs.some((d) => d.state === 'indexed') && (
        <Text size="sm">
          Ready:{' '}
          <Anchor component={Link} to={`/w/${ws}/chat`}>
            ask a question
          </Anchor>{' '}
          or{' '}
          <Anchor component={Link} to={`/w/${ws}/search`}>
            search
          </Anchor>
          .
        </Text>
      )}
    </Stack>
  );
}
