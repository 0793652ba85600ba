import type { Command } from 'commander';
import { z } from 'zod';
import type { ApiKey, User } from '../roles/gateway/auth/schemas.js';
import { randomToken } from '../roles/gateway/auth/secrets.js';
import { withBackend } from './ingest.js';

// `docupod user create` and `docupod apikey create`, e.g. to bootstrap the first admin when sign-up is closed, or to
// give a script a key. Like every command they go through the admin API: of the server owning the local data
// directory or one the command starts on it (as the local operator), or of DOCUPOD_URL with an admin's
// DOCUPOD_API_KEY. Keys for another user need the local operator (POST /api/users/{id}/keys).

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const Email = z.email();

function email(value: string): string {
  if (!Email.safeParse(value.trim()).success) throw new Error(`--email: "${value}" is not an e-mail address`);
  return value.trim();
}

interface UserCreateOptions {
  email: string;
  password?: string;
  passwordStdin?: boolean;
  name?: string;
  admin?: boolean;
}

async function userCreate(opts: UserCreateOptions): Promise<void> {
  if (opts.password && opts.passwordStdin) throw new Error('give either --password or --password-stdin, not both');
  let password = opts.passwordStdin ? await readStdin() : opts.password;
  const generated = password === undefined;
  password ??= randomToken(18);
  if (password.length < 8) throw new Error('the password must have at least 8 characters');
  if (opts.password) console.error('note: --password is visible to other local users in the process list; prefer --password-stdin');
  const body = { email: email(opts.email), password, ...(opts.name ? { name: opts.name } : {}), role: opts.admin ? 'admin' : 'member' };
  const user = await withBackend({}, (backend) => backend.call<User>('POST', '/api/users', body));
  console.log(`created ${user.role} ${user.email} (id ${user.id})`);
  if (generated) console.log(`password (shown once): ${password}`);
}

interface ApiKeyCreateOptions {
  email: string;
  name: string;
  workspace?: string[];
  expiresInDays?: string;
}

async function apiKeyCreate(opts: ApiKeyCreateOptions): Promise<void> {
  const expiresInDays = opts.expiresInDays === undefined ? undefined : Number(opts.expiresInDays);
  if (expiresInDays !== undefined && (!Number.isInteger(expiresInDays) || expiresInDays < 1))
    throw new Error('--expires-in-days must be a whole number of days, at least 1');
  const created = await withBackend({}, async (backend) => {
    const wanted = email(opts.email).toLowerCase();
    const user = (await backend.call<User[]>('GET', '/api/users')).find((u) => u.email.toLowerCase() === wanted);
    if (!user) throw new Error(`no user with e-mail ${opts.email}; create one with: docupod user create --email ${opts.email}`);
    const body = { name: opts.name, ...(opts.workspace?.length ? { workspaces: opts.workspace } : {}), ...(expiresInDays ? { expiresInDays } : {}) };
    return backend.call<ApiKey & { key: string }>('POST', `/api/users/${user.id}/keys`, body);
  });
  // The key alone on stdout so scripts can capture it; the description on stderr.
  const scope = created.workspaceIds ? `workspaces ${created.workspaceIds.join(', ')}` : 'every workspace of its owner';
  console.error(`created API key "${created.name}" (id ${created.id}, ${scope}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}); it is shown once:`);
  console.log(created.key);
}

export function registerAuthCommands(program: Command): void {
  const user = program.command('user').description('manage user accounts (through the admin API)');
  user
    .command('create')
    .description('create a user (whatever the sign-up policy); without a password option one is generated and printed')
    .requiredOption('--email <email>', 'e-mail address (the login name)')
    .option('--password <password>', 'the password (visible in the process list; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--name <name>', 'display name')
    .option('--admin', 'make the user an instance admin')
    .action(userCreate);

  const apikey = program.command('apikey').description('manage API keys (through the admin API)');
  apikey
    .command('create')
    .description('create an API key for a user and print it (once)')
    .requiredOption('--email <email>', 'the user the key acts as')
    .requiredOption('--name <name>', 'a name to tell the key apart')
    .option('--workspace <slug-or-id...>', 'limit the key to these workspaces (repeatable); default: all of the user’s')
    .option('--expires-in-days <days>', 'expire the key after this many days')
    .action(apiKeyCreate);
}
