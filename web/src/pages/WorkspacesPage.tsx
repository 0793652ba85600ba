import { Badge, Button, Card, Group, SimpleGrid, Stack, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, type Workspace } from '../api/client';
import { useWorkspaces } from '../App';
import { Link, navigate } from '../router';
import { EmptyState, ErrorAlert } from '../ui';

export default function WorkspacesPage() {
  const { list, reload } = useWorkspaces();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const w = await api<Workspace>('POST', '/api/workspaces', { name, ...(description ? { description } : {}) });
      await reload();
      setName('');
      setDescription('');
      navigate(`/w/${w.slug}/documents`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Stack maw={960}>
      <Title order={1} size="h2">
        Workspaces
      </Title>
      <Card withBorder component="section" aria-labelledby="new-ws">
        <form onSubmit={create}>
          <Stack gap="sm">
            <Title order={2} size="h4" id="new-ws">
              New workspace
            </Title>
            <ErrorAlert title="Could not create the workspace" error={error} />
            <Group align="flex-end" wrap="wrap">
              <TextInput label="Workspace name" required value={name} onChange={(e) => setName(e.currentTarget.value)} style={{ flex: '1 1 220px' }} />
              <Textarea label="Description" autosize minRows={1} value={description} onChange={(e) => setDescription(e.currentTarget.value)} style={{ flex: '2 1 260px' }} />
              <Button type="submit" loading={busy} disabled={!name.trim()}>
                Create workspace
              </Button>
            </Group>
          </Stack>
        </form>
      </Card>
      {list && list.length === 0 && (
        <EmptyState title="No workspaces yet">A workspace holds documents and the chats about them. Create one above to start uploading.</EmptyState>
      )}
      <SimpleGrid cols={{ base: 1, sm: 2, md: 3 }}>
        {(list ?? []).map((w) => (
          <Card key={w.id} withBorder component={Link} to={`/w/${w.slug}/documents`} aria-label={`Open workspace ${w.name}`}>
            <Group justify="space-between" wrap="nowrap">
              <Text fw={600} truncate>
                {w.name}
              </Text>
              <Badge variant="light">{w.role}</Badge>
            </Group>
            <Text size="sm" c="dimmed" lineClamp={2}>
              {w.description || w.slug}
            </Text>
          </Card>
        ))}
      </SimpleGrid>
    </Stack>
  );
}
