import { Badge, Button, Card, Code, Group, NumberInput, PasswordInput, Select, SimpleGrid, Stack, Table, Tabs, Text, TextInput, Title } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, api, errorText, ws as wsPath, type Status, type User } from '../api/client';
import { useWorkspaces } from '../App';
import { Link } from '../router';
import { EmptyState, ErrorAlert, formatDate } from '../ui';

type Config = Record<string, unknown> & { llm?: Record<string, unknown>; embed?: Record<string, unknown> };

export default function AdminPage() {
  return (
    <Stack maw={1100}>
      <Title order={1} size="h2">
        Administration
      </Title>
      <Tabs defaultValue="users" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="users">Users</Tabs.Tab>
          <Tabs.Tab value="models">Models</Tabs.Tab>
          <Tabs.Tab value="usage">Usage &amp; quotas</Tabs.Tab>
          <Tabs.Tab value="config">Configuration</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="users" pt="md">
          <Users />
        </Tabs.Panel>
        <Tabs.Panel value="models" pt="md">
          <Models />
        </Tabs.Panel>
        <Tabs.Panel value="usage" pt="md">
          <Usage />
        </Tabs.Panel>
        <Tabs.Panel value="config" pt="md">
          <ConfigView />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function useConfig() {
  const [config, setConfig] = useState<Config | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<Config>('GET', '/api/config').then(setConfig, setError);
  }, []);
  return { config, error };
}

function Users() {
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('member');
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => api<User[]>('GET', '/api/users').then(setUsers, setError), []);
  useEffect(() => void load(), [load]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/api/users', { email, password, role });
      setEmail('');
      setPassword('');
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Stack>
      <ErrorAlert error={error} onClose={() => setError(null)} />
      <Card withBorder component="section" aria-label="Create a user">
        <form onSubmit={create}>
          <Group align="flex-end" wrap="wrap">
            <TextInput label="Email" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} style={{ flex: '1 1 200px' }} />
            <PasswordInput label="Initial password" required minLength={8} value={password} onChange={(e) => setPassword(e.currentTarget.value)} style={{ flex: '1 1 180px' }} />
            <Select label="Role" data={['member', 'admin']} value={role} onChange={(v) => v && setRole(v)} allowDeselect={false} w={120} />
            <Button type="submit" loading={busy}>
              Create user
            </Button>
          </Group>
        </form>
      </Card>
      {users && (
        <Table.ScrollContainer minWidth={520}>
          <Table aria-label="Users">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>User</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Created</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {users.map((u) => (
                <Table.Tr key={u.id}>
                  <Table.Td>
                    <Text size="sm">{u.email}</Text>
                    {u.name && (
                      <Text size="xs" c="dimmed">
                        {u.name}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Badge variant="light" color={u.role === 'admin' ? 'grape' : 'blue'}>
                      {u.role}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{u.disabled ? <Badge color="gray">disabled</Badge> : <Badge color="green">active</Badge>}</Table.Td>
                  <Table.Td>
                    <Text size="xs">{formatDate(u.createdAt)}</Text>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <Text size="sm" c="dimmed">
        API keys belong to each user: manage yours on the <Link to="/keys">API keys</Link> page.
      </Text>
    </Stack>
  );
}

type Check = { state: 'idle' | 'busy' | 'ok' | 'fail'; message?: string };

function Models() {
  const { config, error } = useConfig();
  const [status, setStatus] = useState<Status | null>(null);
  const [llm, setLlm] = useState<Check>({ state: 'idle' });
  const [embed, setEmbed] = useState<Check>({ state: 'idle' });
  useEffect(() => {
    api<Status>('GET', '/api/status').then(setStatus, () => undefined);
  }, []);

  // "Test connection" uses the public OpenAI-compatible API: a one-token completion and a one-word embedding.
  const testLlm = async () => {
    setLlm({ state: 'busy' });
    const t0 = performance.now();
    try {
      const models = await api<{ data?: { id: string }[] }>('GET', '/v1/models');
      const model = models.data?.find((m) => !m.id.startsWith('docupod:'))?.id ?? models.data?.[0]?.id ?? 'default';
      await api('POST', '/v1/chat/completions', { model, messages: [{ role: 'user', content: 'Say OK.' }], max_tokens: 5, stream: false });
      setLlm({ state: 'ok', message: `answered in ${Math.round(performance.now() - t0)} ms (model ${model})` });
    } catch (err) {
      setLlm({ state: 'fail', message: err instanceof ApiError && err.status === 404 ? 'This server has no /v1 API yet.' : errorText(err) });
    }
  };
  const testEmbed = async () => {
    setEmbed({ state: 'busy' });
    const t0 = performance.now();
    try {
      const r = await api<{ data?: { embedding: number[] }[] }>('POST', '/v1/embeddings', { model: String(config?.embed?.model ?? 'default'), input: 'connection test' });
      setEmbed({ state: 'ok', message: `${r.data?.[0]?.embedding.length ?? '?'} dimensions in ${Math.round(performance.now() - t0)} ms` });
    } catch (err) {
      setEmbed({ state: 'fail', message: err instanceof ApiError && err.status === 404 ? 'This server has no /v1/embeddings API yet.' : errorText(err) });
    }
  };

  const show = (label: string, section: Record<string, unknown> | undefined, check: Check, test: () => void) => (
    <Card withBorder>
      <Stack gap="xs">
        <Group justify="space-between">
          <Title order={2} size="h4">
            {label}
          </Title>
          <Badge size="lg" variant="light">
            {String(section?.provider ?? 'unknown')}
          </Badge>
        </Group>
        {section &&
          Object.entries(section)
            .filter(([k]) => k !== 'provider')
            .map(([k, v]) => (
              <Text key={k} size="sm">
                {k}: <Code>{typeof v === 'object' ? JSON.stringify(v) : String(v)}</Code>
              </Text>
            ))}
        {section?.provider === 'none' ? (
          <Text size="sm" c="dimmed">
            No embedder configured: search is lexical only. Set <Code>DOCUPOD_EMBED_PROVIDER</Code> to enable vector and hybrid search.
          </Text>
        ) : (
        <Group>
          <Button variant="light" onClick={test} loading={check.state === 'busy'}>
            Test connection
          </Button>
          {check.message && (
            <Text size="sm" c={check.state === 'ok' ? 'green' : 'red'} role="status">
              {check.state === 'ok' ? '✓ ' : '✗ '}
              {check.message}
            </Text>
          )}
        </Group>
        )}
      </Stack>
    </Card>
  );

  return (
    <Stack>
      <ErrorAlert error={error} />
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {show('Language model', config?.llm, llm, () => void testLlm())}
        {show('Embedder', config?.embed, embed, () => void testEmbed())}
      </SimpleGrid>
      {status && (
        <Card withBorder>
          <Title order={2} size="h4" mb="xs">
            Roles (version {status.version})
          </Title>
          <Group gap="xs">
            {status.roles.map((r) => (
              <Badge key={r.role} color={r.ready ? 'green' : 'red'} variant="light" title={r.detail}>
                {r.role}: {r.ready ? 'ready' : r.detail || 'not ready'}
              </Badge>
            ))}
          </Group>
        </Card>
      )}
    </Stack>
  );
}

type UsageRow = { date: string; workspace: string; tokens: number };

/** Accepts the usage shapes a server may answer with: rows, or `{ days: rows }` / `{ usage: rows }`. */
function normaliseUsage(body: unknown, workspace: string): UsageRow[] {
  const b = body as { rows?: unknown[]; days?: unknown[]; usage?: unknown[] } | null;
  const rows = Array.isArray(body) ? body : (b?.rows ?? b?.days ?? b?.usage ?? []);
  return (rows as Record<string, unknown>[])
    .map((r) => ({
      date: String(r.date ?? r.day ?? '').slice(0, 10),
      workspace,
      tokens: Number(r.tokens ?? r.totalTokens ?? (Number(r.promptTokens ?? 0) + Number(r.completionTokens ?? 0))),
    }))
    .filter((r) => r.date && Number.isFinite(r.tokens));
}

const COLORS = ['#228be6', '#40c057', '#fab005', '#be4bdb', '#fd7e14', '#15aabf', '#fa5252'];

function QuotaRow({ id, name, today }: { id: string; name: string; today?: number }) {
  const [value, setValue] = useState<number | ''>('');
  const [state, setState] = useState<{ saved?: boolean; error?: unknown; unavailable?: boolean }>({});
  useEffect(() => {
    api<{ dailyTokens: number | null }>('GET', `/api/quotas/workspaces/${id}`).then(
      (q) => setValue(q.dailyTokens ?? ''),
      (err: unknown) => setState({ unavailable: err instanceof ApiError && err.status === 404 }),
    );
  }, [id]);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    try {
      await api('PUT', `/api/quotas/workspaces/${id}`, { dailyTokens: value === '' ? null : value });
      setState({ saved: true });
    } catch (err) {
      setState({ error: err });
    }
  };
  return (
    <form onSubmit={save}>
      <Group align="flex-end" wrap="wrap" gap="sm">
        <NumberInput label={`${name}: tokens per day`} placeholder="no limit" min={0} step={1000} thousandSeparator="," value={value} onChange={(v) => setValue(typeof v === 'number' ? v : '')} w={240} disabled={state.unavailable} />
        <Button type="submit" variant="light" disabled={state.unavailable}>
          Save
        </Button>
        <Text size="xs" c="dimmed">
          {today !== undefined ? `${today.toLocaleString()} used today` : ''}
        </Text>
        {state.saved && (
          <Text size="xs" c="green" role="status">
            Saved
          </Text>
        )}
        {state.unavailable && (
          <Text size="xs" c="dimmed">
            This server has no quota API yet.
          </Text>
        )}
      </Group>
      {state.error != null && (
        <Text size="xs" c="red" role="alert">
          {errorText(state.error)}
        </Text>
      )}
    </form>
  );
}

function Usage() {
  const [today, setToday] = useState<Record<string, number>>({});
  const [rows, setRows] = useState<UsageRow[] | null>(null);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const { list: workspaces } = useWorkspaces();
  useEffect(() => {
    if (!workspaces) return;
    // Usage is kept per workspace (the chat role's usage method); the chart stacks the workspaces the admin can see.
    const seen: Record<string, number> = {};
    const usageOf = async (w: { id: string; name: string }) => {
      const b = await api<{ today?: { tokens?: number } }>('GET', `${wsPath(w.id)}/usage?days=30`);
      if (typeof b?.today?.tokens === 'number') seen[w.name] = b.today.tokens;
      return normaliseUsage(b, w.name);
    };
    void Promise.allSettled(workspaces.map(usageOf)).then((all) => {
      setToday(seen);
      const ok = all.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
      const failed = all.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed && ok.length === 0 && all.every((r) => r.status === 'rejected')) {
        const err = failed.reason;
        setUnavailable(err instanceof ApiError && err.status === 404 ? 'This server does not report token usage yet.' : errorText(err));
      } else setRows(ok);
    });
  }, [workspaces]);

  // The last 30 UTC days, so a quiet day shows as a gap rather than disappearing from the axis.
  const days = Array.from({ length: 30 }, (_, i) => new Date(Date.now() - (29 - i) * 86_400_000).toISOString().slice(0, 10));
  const wss = [...new Set((rows ?? []).map((r) => r.workspace))];
  const perDay = days.map((d) => wss.map((w) => (rows ?? []).filter((r) => r.date === d && r.workspace === w).reduce((s, r) => s + r.tokens, 0)));
  const max = Math.max(1, ...perDay.map((v) => v.reduce((a, b) => a + b, 0)));
  const W = 640;
  const H = 220;
  const bw = days.length ? Math.min(40, (W - 40) / days.length - 4) : 0;

  return (
    <Stack>
      <Card withBorder>
        <Title order={2} size="h4" mb="xs">
          Tokens per day, by workspace
        </Title>
        {unavailable && <EmptyState title="No usage data">{unavailable}</EmptyState>}
        {rows && rows.length === 0 && <EmptyState title="No usage yet">Token usage appears here once people chat.</EmptyState>}
        {rows && rows.length > 0 && (
          <>
            <svg viewBox={`0 0 ${W} ${H + 30}`} width="100%" role="img" aria-label={`Tokens per day for ${days.length} days`}>
              {perDay.map((vals, i) => {
                let y = H;
                return vals.map((v, j) => {
                  const h = (v / max) * (H - 10);
                  y -= h;
                  return (
                    <rect key={`${i}-${j}`} x={30 + i * ((W - 40) / days.length)} y={y} width={bw} height={h} fill={COLORS[j % COLORS.length]}>
                      <title>{`${days[i]} · ${wss[j]}: ${v} tokens`}</title>
                    </rect>
                  );
                });
              })}
              <line x1={28} y1={H} x2={W} y2={H} stroke="currentColor" strokeOpacity={0.3} />
              <text x={0} y={12} fontSize={11} fill="currentColor">
                {max}
              </text>
              {days.map((d, i) =>
                i % Math.ceil(days.length / 8) === 0 ? (
                  <text key={d} x={30 + i * ((W - 40) / days.length)} y={H + 16} fontSize={11} fill="currentColor">
                    {d.slice(5)}
                  </text>
                ) : null,
              )}
            </svg>
            <Group gap="md">
              {wss.map((w, j) => (
                <Group key={w} gap={4}>
                  <span style={{ width: 10, height: 10, background: COLORS[j % COLORS.length], display: 'inline-block', borderRadius: 2 }} />
                  <Text size="xs">{w}</Text>
                </Group>
              ))}
            </Group>
          </>
        )}
      </Card>
      <Card withBorder>
        <Title order={2} size="h4" mb="xs">
          Daily token budgets
        </Title>
        <Text size="sm" c="dimmed" mb="sm">
          A workspace over its budget gets 429 answers until the next UTC day. Empty means no limit.
        </Text>
        <Stack gap="xs">
          {(workspaces ?? []).map((w) => (
            <QuotaRow key={w.id} id={w.id} name={w.name} today={today[w.name]} />
          ))}
        </Stack>
      </Card>
    </Stack>
  );
}

function ConfigView() {
  const { config, error } = useConfig();
  return (
    <Stack>
      <ErrorAlert error={error} />
      <Text size="sm" c="dimmed">
        The effective configuration of this server, secrets redacted. Change it with <Code>DOCUPOD_*</Code> environment variables.
      </Text>
      {config && (
        <Code block aria-label="Effective configuration" style={{ maxHeight: 520, overflow: 'auto' }}>
          {JSON.stringify(config, null, 2)}
        </Code>
      )}
    </Stack>
  );
}
