import { Button, Card, Group, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, ws as wsPath, type Member } from '../api/client';
import { useUser, useWorkspace, useWorkspaces } from '../App';
import { navigate } from '../router';
import { EmptyState, ErrorAlert, formatDate } from '../ui';

const ROLES = ['owner', 'editor', 'viewer'] as const;

export default function MembersPage({ ws }: { ws: string }) {
  const workspace = useWorkspace(ws);
  const me = useUser();
  const { reload } = useWorkspaces();
  const isOwner = workspace?.role === 'owner';
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<string>('viewer');
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setMembers(await api<Member[]>('GET', `${wsPath(ws)}/members`));
    } catch (err) {
      setError(err);
    }
  }, [ws]);
  useEffect(() => void load(), [load]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', `${wsPath(ws)}/members`, { email, role });
      setEmail('');
      await load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const change = async (m: Member, r: string) => {
    try {
      await api('PATCH', `${wsPath(ws)}/members/${m.userId}`, { role: r });
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (m: Member) => {
    if (!window.confirm(`Remove ${m.email} from this workspace?`)) return;
    try {
      await api('DELETE', `${wsPath(ws)}/members/${m.userId}`);
      await load();
    } catch (err) {
      setError(err);
    }
  };
  const deleteWorkspace = async () => {
    if (!workspace || window.prompt(`Type the workspace name (${workspace.name}) to delete it with all its documents and chats.`) !== workspace.name) return;
    try {
      await api('DELETE', wsPath(ws));
      await reload();
      navigate('/workspaces');
    } catch (err) {
      setError(err);
    }
  };

  return (
    <Stack maw={900}>
      <Title order={1} size="h2">
        Members
      </Title>
      <ErrorAlert error={error} onClose={() => setError(null)} />
      {isOwner && (
        <Card withBorder component="section" aria-label="Add a member">
          <form onSubmit={add}>
            <Group align="flex-end" wrap="wrap">
              <TextInput label="Email of an existing user" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} style={{ flex: '1 1 240px' }} />
              <Select label="Role" data={[...ROLES]} value={role} onChange={(v) => v && setRole(v)} allowDeselect={false} w={130} />
              <Button type="submit" loading={busy}>
                Add member
              </Button>
            </Group>
          </form>
        </Card>
      )}
      {members && members.length === 0 && <EmptyState title="No members" />}
      {members && members.length > 0 && (
        <Table.ScrollContainer minWidth={520}>
          <Table aria-label="Workspace members">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Member</Table.Th>
                <Table.Th>Role</Table.Th>
                <Table.Th>Since</Table.Th>
                {isOwner && <Table.Th>Actions</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {members.map((m) => (
                <Table.Tr key={m.userId}>
                  <Table.Td>
                    <Text size="sm">{m.name || m.email}</Text>
                    {m.name && (
                      <Text size="xs" c="dimmed">
                        {m.email}
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    {isOwner && m.userId !== me?.id ? (
                      <Select aria-label={`Role of ${m.email}`} data={[...ROLES]} value={m.role} onChange={(v) => v && void change(m, v)} allowDeselect={false} w={120} size="xs" />
                    ) : (
                      <Text size="sm">{m.role}</Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Text size="xs" c="dimmed">
                      {formatDate(m.createdAt)}
                    </Text>
                  </Table.Td>
                  {isOwner && (
                    <Table.Td>
                      {m.userId !== me?.id && (
                        <Button size="compact-xs" variant="subtle" color="red" onClick={() => void remove(m)} aria-label={`Remove ${m.email}`}>
                          Remove
                        </Button>
                      )}
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      {isOwner && (
        <Card withBorder component="section" aria-label="Danger zone">
          <Group justify="space-between">
            <div>
              <Text fw={600}>Delete this workspace</Text>
              <Text size="sm" c="dimmed">
                Removes its documents, index and chats for everyone.
              </Text>
            </div>
            <Button color="red" variant="outline" onClick={() => void deleteWorkspace()}>
              Delete workspace
            </Button>
          </Group>
        </Card>
      )}
    </Stack>
  );
}
