import {
  AppShell,
  Avatar,
  Burger,
  Center,
  Group,
  Loader,
  Menu,
  NavLink,
  ScrollArea,
  Select,
  Text,
  UnstyledButton,
} from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { createContext, lazy, Suspense, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, currentSession, onSession, setSession, type Workspace } from './api/client';
import { Link, match, navigate, usePath } from './router';
import { ErrorAlert } from './ui';
import { AuthPage } from './pages/AuthPage';

// Every page but sign-in is its own chunk, loaded on first visit.
const WorkspacesPage = lazy(() => import('./pages/WorkspacesPage'));
const DocumentsPage = lazy(() => import('./pages/DocumentsPage'));
const ChatPage = lazy(() => import('./pages/ChatPage'));
const SearchPage = lazy(() => import('./pages/SearchPage'));
const MembersPage = lazy(() => import('./pages/MembersPage'));
const KeysPage = lazy(() => import('./pages/KeysPage'));
const AdminPage = lazy(() => import('./pages/AdminPage'));

export interface WorkspacesState {
  list: Workspace[] | null;
  error: unknown;
  reload: () => Promise<void>;
}
const WorkspacesContext = createContext<WorkspacesState>({ list: null, error: null, reload: async () => {} });
export const useWorkspaces = () => useContext(WorkspacesContext);

/** The workspace named in the URL, with the caller's role in it. */
export function useWorkspace(slug: string): Workspace | undefined {
  const { list } = useWorkspaces();
  return list?.find((w) => w.slug === slug || w.id === slug);
}

export function useUser() {
  const [s, set] = useState(currentSession());
  useEffect(() => onSession(set), []);
  return s?.user ?? null;
}

export function App() {
  const user = useUser();
  const path = usePath();
  if (!user) {
    if (path !== '/login' && path !== '/signup') {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path)}`;
      queueMicrotask(() => navigate(`/login${next}`, { replace: true }));
    }
    return <AuthPage mode={path === '/signup' ? 'signup' : 'login'} />;
  }
  return <Shell />;
}

function PageLoader() {
  return (
    <Center py="xl" aria-live="polite">
      <Loader aria-label="Loading page" />
    </Center>
  );
}

const WS_PAGES = [
  { key: 'documents', label: 'Documents' },
  { key: 'chat', label: 'Chat' },
  { key: 'search', label: 'Search' },
  { key: 'members', label: 'Members' },
] as const;

function Shell() {
  const user = useUser()!;
  const path = usePath();
  const [opened, { toggle, close }] = useDisclosure(false);
  const [list, setList] = useState<Workspace[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const reload = useCallback(async () => {
    try {
      setList(await api<Workspace[]>('GET', '/api/workspaces'));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void reload();
  }, [reload]);
  useEffect(close, [path, close]);

  const wsMatch = match('/w/:ws/:page/:rest?', path) ?? match('/w/:ws', path);
  const currentWs = wsMatch?.ws ?? (list?.[0]?.slug as string | undefined);
  const lastWs = localStorage.getItem('docupod.workspace');
  useEffect(() => {
    if (wsMatch?.ws) localStorage.setItem('docupod.workspace', wsMatch.ws);
  }, [wsMatch?.ws]);

  // `/` and `/w/:ws` go to the documents page of the last-used (or first) workspace, or to the workspace list.
  useEffect(() => {
    if (!list) return;
    if (path === '/' || path === '/login' || path === '/signup') {
      const next = new URLSearchParams(location.search).get('next');
      if (next && next.startsWith('/') && !next.startsWith('//')) return navigate(next, { replace: true });
      const pick = list.find((w) => w.slug === lastWs) ?? list[0];
      navigate(pick ? `/w/${pick.slug}/documents` : '/workspaces', { replace: true });
    } else if (wsMatch && !wsMatch.page) navigate(`/w/${wsMatch.ws}/documents`, { replace: true });
  }, [list, path, lastWs, wsMatch]);

  const ctx = useMemo(() => ({ list, error, reload }), [list, error, reload]);
  const logout = async () => {
    const rt = currentSession()?.refreshToken;
    await api('POST', '/api/auth/logout', rt ? { refreshToken: rt } : {}).catch(() => undefined);
    setSession(null);
    navigate('/login', { replace: true });
  };

  let page: ReactNode = <PageLoader />;
  let m: Record<string, string> | null;
  if (path === '/workspaces') page = <WorkspacesPage />;
  else if (path === '/keys') page = <KeysPage />;
  else if (path === '/admin') page = user.role === 'admin' ? <AdminPage /> : <ErrorAlert title="Admins only" error="This page is for administrators." />;
  else if ((m = match('/w/:ws/documents', path))) page = <DocumentsPage ws={m.ws!} />;
  else if ((m = match('/w/:ws/chat/:chat?', path))) page = <ChatPage ws={m.ws!} chatId={m.chat} />;
  else if ((m = match('/w/:ws/search', path))) page = <SearchPage ws={m.ws!} />;
  else if ((m = match('/w/:ws/members', path))) page = <MembersPage ws={m.ws!} />;
  else if (path !== '/' && !match('/w/:ws', path) && path !== '/login' && path !== '/signup')
    page = <ErrorAlert title="Page not found" error={`There is no page at ${path}.`} />;

  const wsOptions = (list ?? []).map((w) => ({ value: w.slug, label: w.name }));
  const activePage = wsMatch?.page;

  return (
    <WorkspacesContext.Provider value={ctx}>
      <AppShell header={{ height: 56 }} navbar={{ width: 240, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
        <AppShell.Header>
          <Group h="100%" px="md" justify="space-between" wrap="nowrap">
            <Group gap="sm" wrap="nowrap">
              <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={opened ? 'Close navigation' : 'Open navigation'} />
              <UnstyledButton component={Link} to="/" aria-label="docupod home">
                <Group gap={6} wrap="nowrap">
                  <img src="/favicon.svg" alt="" width={24} height={24} />
                  <Text fw={700} size="lg" visibleFrom="xs">
                    docupod
                  </Text>
                </Group>
              </UnstyledButton>
            </Group>
            <Group gap="sm" wrap="nowrap">
              {wsOptions.length > 0 && (
                <Select
                  aria-label="Workspace"
                  data={wsOptions}
                  value={currentWs ?? null}
                  onChange={(v) => v && navigate(`/w/${v}/${activePage && WS_PAGES.some((p) => p.key === activePage) ? activePage : 'documents'}`)}
                  allowDeselect={false}
                  w={{ base: 150, sm: 220 }}
                  size="sm"
                />
              )}
              <Menu position="bottom-end" withinPortal>
                <Menu.Target>
                  <UnstyledButton aria-label={`Account menu for ${user.email}`} px={6} py={4} style={{ borderRadius: 8 }}>
                    <Group gap={8} wrap="nowrap">
                      <Avatar size={30} radius="xl" color="blue" name={user.name || user.email} />
                      <Text size="sm" truncate maw={160} visibleFrom="sm">
                        {user.name || user.email}
                      </Text>
                    </Group>
                  </UnstyledButton>
                </Menu.Target>
                <Menu.Dropdown>
                  <Menu.Label>{user.email}</Menu.Label>
                  <Menu.Item component={Link} to="/keys">
                    API keys
                  </Menu.Item>
                  <Menu.Item onClick={() => void logout()}>Sign out</Menu.Item>
                </Menu.Dropdown>
              </Menu>
            </Group>
          </Group>
        </AppShell.Header>

        <AppShell.Navbar p="sm" aria-label="Main navigation">
          <AppShell.Section grow component={ScrollArea}>
            {currentWs && (
              <>
                <Text size="xs" c="dimmed" tt="uppercase" fw={700} px="sm" pb={4}>
                  {list?.find((w) => w.slug === currentWs)?.name ?? currentWs}
                </Text>
                {WS_PAGES.map((p) => (
                  <NavLink
                    key={p.key}
                    component={Link}
                    to={`/w/${currentWs}/${p.key}`}
                    label={p.label}
                    active={activePage === p.key}
                    aria-current={activePage === p.key ? 'page' : undefined}
                  />
                ))}
              </>
            )}
            <Text size="xs" c="dimmed" tt="uppercase" fw={700} px="sm" pt="md" pb={4}>
              Account
            </Text>
            <NavLink component={Link} to="/workspaces" label="Workspaces" active={path === '/workspaces'} aria-current={path === '/workspaces' ? 'page' : undefined} />
            <NavLink component={Link} to="/keys" label="API keys" active={path === '/keys'} aria-current={path === '/keys' ? 'page' : undefined} />
            {user.role === 'admin' && <NavLink component={Link} to="/admin" label="Admin" active={path === '/admin'} aria-current={path === '/admin' ? 'page' : undefined} />}
          </AppShell.Section>
          <AppShell.Section>
            <Text size="xs" c="dimmed" px="sm">
              <a href="/docs">API documentation</a>
            </Text>
          </AppShell.Section>
        </AppShell.Navbar>

        <AppShell.Main>
          <ErrorAlert title="Could not load workspaces" error={error} />
          <Suspense fallback={<PageLoader />}>{page}</Suspense>
        </AppShell.Main>
      </AppShell>
    </WorkspacesContext.Provider>
  );
}
