import { Alert, Button, Card, Code, CopyButton, Group, MultiSelect, NumberInput, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type ApiKey } from '../api/client';
import { useWorkspaces } from '../App';
import { EmptyState, ErrorAlert, formatDate } from '../ui';

type KeyInfo = Omit<ApiKey, 'key'>;

export default function KeysPage() {
  const { list: workspaces } = useWorkspaces();
  const [keys, setKeys] = useState<KeyInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState('');
  const [scope, setScope] = useState<string[]>([]);
  const [days, setDays] = useState<number | ''>('');
  const [created, setCreated] = useState<ApiKey | null>(null);
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setKeys(await api<KeyInfo[]>('GET', '/api/keys'));
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => void load(), [load]);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const k = await api<ApiKey>('POST', '/api/keys', { name, ...(scope.length ? { workspaces: scope } : {}), ...(days ? { expiresInDays: days } : {}) });
      setCreated(k);
      setName('');
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (k: KeyInfo) => {
    if (!window.confirm(`Revoke the key “${k.name}”? Scripts using it stop working.`)) return;
    try {
      await api('DELETE', `/api/keys/${k.id}`);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const active = (keys ?? []).filter((k) => !k.revokedAt);

  return (
    <Stack maw={960}>
      <Title order={1} size="h2">
        API keys
      </Title>
      <Text c="dimmed" size="sm">
        Use a key as <Code>Authorization: Bearer dp_…</Code> with the REST API, the CLI (<Code>--api-key</Code>) or any OpenAI client pointed at <Code>/v1</Code>.
      </Text>
      <ErrorAlert error={error} onClose={() => setError(null)} />
      {created && (
        <Alert color="green" title={`Key “${created.name}” created: copy it now`} withCloseButton closeButtonLabel="Hide the key" onClose={() => setCreated(null)} data-testid="new-key">
          <Stack gap="xs">
            <Text size="sm">This is the only time the key is shown. Store it somewhere safe.</Text>
            <Group wrap="nowrap" gap="xs">
              <Code block style={{ flex: 1, overflowWrap: 'anywhere', whiteSpace: 'pre-wrap' }} data-testid="new-key-value" aria-label="New API key">
                {created.key}
              </Code>
              <CopyButton value={created.key}>{({ copied, copy }) => <Button onClick={copy} color={copied ? 'teal' : 'blue'}>{copied ? 'Copied' : 'Copy'}</Button>}</CopyButton>
            </Group>
          </Stack>
        </Alert>
      )}
      <Card withBorder component="section" aria-label="Create an API key">
        <form onSubmit={create}>
          <Group align="flex-end" wrap="wrap">
            <TextInput label="Key name" placeholder="e.g. laptop CLI" required value={name} onChange={(e) => setName(e.currentTarget.value)} style={{ flex: '1 1 200px' }} />
            <MultiSelect
              label="Workspaces"
              placeholder={scope.length ? undefined : 'All of mine'}
              data={(workspaces ?? []).map((w) => ({ value: w.slug, label: w.name }))}
              value={scope}
              onChange={setScope}
              clearable
              style={{ flex: '1 1 200px' }}
            />
            <NumberInput label="Expires in (days)" placeholder="never" min={1} max={3650} value={days} onChange={(v) => setDays(typeof v === 'number' ? v : '')} w={150} />
            <Button type="submit" loading={busy} disabled={!name.trim()}>
              Create key
            </Button>
          </Group>
        </form>
      </Card>
      {keys && active.length === 0 && <EmptyState title="No API keys">Create one to use docupod from scripts, the CLI or an OpenAI client.</EmptyState>}
      {active.length > 0 && (
        <Table.ScrollContainer minWidth={560}>
          <Table aria-label="Your API keys">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Name</Table.Th>
                <Table.Th>Key</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th>Expires</Table.Th>
                <Table.Th>Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {active.map((k) => (
                <Table.Tr key={k.id}>
                  <Table.Td>{k.name}</Table.Td>
                  <Table.Td>
                    <Code>{k.prefix}…</Code>
                  </Table.Td>
                  <Table.Td>{formatDate(k.lastUsedAt)}</Table.Td>
                  <Table.Td>{k.expiresAt ? formatDate(k.expiresAt) : 'never'}</Table.Td>
                  <Table.Td>
                    <Button size="compact-xs" color="red" variant="subtle" onClick={() => void revoke(k)} aria-label={`Revoke ${k.name}`}>
                      Revoke
                    </Button>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Stack>
  );
}
