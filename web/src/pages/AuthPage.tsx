import { Anchor, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, setSession, type Session } from '../api/client';
import { Link, navigate } from '../router';
import { ErrorAlert } from '../ui';

export function AuthPage({ mode }: { mode: 'login' | 'signup' }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const signup = mode === 'signup';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = signup ? { email, password, ...(name ? { name } : {}) } : { email, password };
      const s = await api<Session>('POST', signup ? '/api/auth/signup' : '/api/auth/login', body);
      setSession(s);
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder shadow="sm" p="xl" w="100%" maw={420}>
        <form onSubmit={submit} aria-labelledby="auth-title" noValidate={false}>
          <Stack>
            <div>
              <Title order={1} size="h2" id="auth-title">
                {signup ? 'Create your account' : 'Sign in to docupod'}
              </Title>
              <Text c="dimmed" size="sm">
                {signup ? 'The first account on a new server becomes its administrator.' : 'Chat with your documents.'}
              </Text>
            </div>
            <ErrorAlert title={signup ? 'Could not sign up' : 'Could not sign in'} error={error} />
            {signup && <TextInput label="Name" autoComplete="name" value={name} onChange={(e) => setName(e.currentTarget.value)} />}
            <TextInput label="Email" type="email" required autoComplete="email" value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <PasswordInput
              label="Password"
              required
              minLength={signup ? 8 : 1}
              description={signup ? 'At least 8 characters' : undefined}
              autoComplete={signup ? 'new-password' : 'current-password'}
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
            />
            <Button type="submit" loading={busy} fullWidth>
              {signup ? 'Sign up' : 'Sign in'}
            </Button>
            <Text size="sm" ta="center">
              {signup ? 'Already have an account? ' : 'New here? '}
              <Anchor component={Link} to={signup ? '/login' : '/signup'}>
                {signup ? 'Sign in' : 'Create an account'}
              </Anchor>
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
