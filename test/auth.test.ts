import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { M } from '../src/modules/graph.js';
import { AuthService } from '../src/roles/gateway/auth/index.js';
import { instanceSettings, users } from '../src/storage/schema.js';
import { PASSWORD, as, bearer, login, signup } from './fixtures/auth.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

const SECRET = 'test-secret-that-is-at-least-32-characters-long'; // the fixture's DOCUPOD_JWT_SECRET
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('sign-up, login and token rotation', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ env: { DOCUPOD_LOGIN_MAX_ATTEMPTS: '3' } });
  });
  afterAll(async () => s?.close());

  it('makes the first user instance admin and later ones members', async () => {
    const admin = await signup(s.app, 'Admin@Example.com', { name: 'Ada' });
    const member = await signup(s.app, 'member@example.com');
    expect(admin.role).toBe('admin');
    expect(member.role).toBe('member');
    const me = await as(s.app, admin)({ url: '/api/me' });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ user: { email: 'admin@example.com', name: 'Ada', role: 'admin' }, via: 'jwt', workspaceIds: null, memberships: [] });
  });

  it('stores passwords as a self-describing scrypt hash, never in clear', async () => {
    const [row] = await s.db.database.db.select().from(users).where(eq(users.email, 'member@example.com'));
    expect(row!.passwordHash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(row!.passwordHash).not.toContain(PASSWORD);
  });

  it('rejects a short password and a taken e-mail (whatever its case)', async () => {
    const short = await s.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'x@example.com', password: 'short' } });
    expect(short.statusCode).toBe(400);
    expect(short.json().errors[0].path).toBe('body.password');
    const dup = await s.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'MEMBER@example.com', password: PASSWORD } });
    expect(dup.statusCode).toBe(409);
  });

  it('logs in, and answers a wrong password and an unknown e-mail alike', async () => {
    const ok = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'member@example.com', password: PASSWORD } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email: 'member@example.com', role: 'member' } });
    const wrong = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'member@example.com', password: 'nope-nope' } });
    const unknown = await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'ghost@example.com', password: 'nope-nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().detail).toBe(unknown.json().detail);
  });

  it('rotates refresh tokens: each works once and the new pair works', async () => {
    const first = await login(s.app, 'member@example.com');
    const r1 = await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: first.refreshToken } });
    expect(r1.statusCode).toBe(200);
    const second = r1.json();
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await as(s.app, second.accessToken)({ url: '/api/me' })).statusCode).toBe(200);
    const r2 = await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: second.refreshToken } });
    expect(r2.statusCode).toBe(200);
  });

  it('revokes the whole family when a used refresh token comes back: the newer sibling stops working too', async () => {
    const stolen = await login(s.app, 'member@example.com');
    const legit = (await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: stolen.refreshToken } })).json();
    const replay = await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: stolen.refreshToken } });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().detail).toMatch(/already used/);
    const sibling = await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: legit.refreshToken } });
    expect(sibling.statusCode).toBe(401);
    // Another login (another family) is unaffected.
    const other = await login(s.app, 'member@example.com');
    expect((await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: other.refreshToken } })).statusCode).toBe(200);
  });

  it('logs out by revoking the refresh token family', async () => {
    const sess = await login(s.app, 'member@example.com');
    const out = await s.app.inject({ method: 'POST', url: '/api/auth/logout', payload: { refreshToken: sess.refreshToken } });
    expect(out.statusCode).toBe(204);
    expect(out.body).toBe('');
    expect((await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: sess.refreshToken } })).statusCode).toBe(401);
  });

  describe('rejects forged and misused tokens with 401 and WWW-Authenticate', () => {
    const now = () => Math.floor(Date.now() / 1000);
    const claims = async () => ({ typ: 'access', sub: (await login(s.app, 'member@example.com')).userId, iss: 'docupod', aud: 'docupod' });
    const sign = async (payload: object, secret = SECRET) =>
      new SignJWT({ ...payload }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));

    const attacks: Record<string, () => Promise<string>> = {
      'alg none': async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...(await claims()), iat: now(), exp: now() + 600 })}.`,
      'alg none with a signature part': async () => {
        const valid = (await login(s.app, 'member@example.com')).accessToken;
        const [, payload, sig] = valid.split('.');
        return `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.${sig}`;
      },
      'a tampered payload': async () => {
        const valid = (await login(s.app, 'member@example.com')).accessToken;
        const admin = (await login(s.app, 'admin@example.com')).userId;
        const [h, p, sig] = valid.split('.');
        const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
        return `${h}.${b64({ ...payload, sub: admin })}.${sig}`;
      },
      'a tampered signature': async () => {
        const valid = (await login(s.app, 'member@example.com')).accessToken;
        const sig = valid.split('.')[2]!;
        return valid.slice(0, -sig.length) + (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
      },
      'an expired token': async () => sign({ ...(await claims()), iat: now() - 3600, exp: now() - 60 }),
      'a token signed with another key': async () => sign({ ...(await claims()), iat: now(), exp: now() + 600 }, 'another-secret-that-is-at-least-32-characters'),
      'another audience': async () => sign({ ...(await claims()), aud: 'someone-else', iat: now(), exp: now() + 600 }),
      'a token of another type': async () => sign({ ...(await claims()), typ: 'refresh', iat: now(), exp: now() + 600 }),
      'HS512 with the right key': async () =>
        new SignJWT({ ...(await claims()) }).setProtectedHeader({ alg: 'HS512' }).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET)),
      'a refresh token used as an access token': async () => (await login(s.app, 'member@example.com')).refreshToken,
      'garbage': async () => 'not-a-token',
      'an unknown API key': async () => 'dp_' + 'A'.repeat(43),
    };

    it('accepts the control: a token this server signed', async () => {
      const token = await sign({ ...(await claims()), iat: now(), exp: now() + 600 });
      expect((await s.app.inject({ url: '/api/me', headers: bearer(token) })).statusCode).toBe(200);
    });

    for (const [name, make] of Object.entries(attacks))
      it(`rejects ${name}`, async () => {
        const res = await s.app.inject({ url: '/api/me', headers: bearer(await make()) });
        expect(res.statusCode).toBe(401);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      });

    it('rejects a missing or non-bearer Authorization header', async () => {
      for (const headers of [{}, { authorization: 'Basic YTpi' }]) {
        const res = await s.app.inject({ url: '/api/me', headers });
        expect(res.statusCode).toBe(401);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      }
    });
  });

  it('rate-limits failed logins per e-mail and address with 429 and Retry-After, shared through the database', async () => {
    await signup(s.app, 'victim@example.com');
    const attempt = (password: string, remoteAddress = '203.0.113.7') =>
      s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'victim@example.com', password }, remoteAddress });
    for (let i = 0; i < 3; i++) expect((await attempt('wrong-password')).statusCode).toBe(401);
    const limited = await attempt(PASSWORD); // even the right password, once over the limit
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(15 * 60);
    expect(limited.json()).toMatchObject({ type: '/problems/rate-limited', status: 429 });
    // The count lives in the database: another gateway on it refuses too.
    const otherPod = new AuthService({ database: s.db.database, config: s.config });
    await expect(otherPod.login({ email: 'victim@example.com', password: PASSWORD }, '203.0.113.7')).rejects.toMatchObject({ status: 429 });
    // Another client address is counted separately.
    expect((await attempt(PASSWORD, '198.51.100.9')).statusCode).toBe(200);
  });

  it('bounds parallel guesses exactly at the limit', async () => {
    await signup(s.app, 'parallel@example.com');
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'parallel@example.com', password: 'guess-guess' }, remoteAddress: '192.0.2.1' }),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
  });

  it('cuts off a disabled account at once: its tokens, keys and password stop working', async () => {
    const u = await signup(s.app, 'leaver@example.com');
    const key = (await as(s.app, u)({ method: 'POST', url: '/api/keys', payload: { name: 'k' } })).json().key as string;
    expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(200); // both now in the auth cache
    const admin = await login(s.app, 'admin@example.com');
    expect((await as(s.app, admin)({ method: 'PATCH', url: `/api/users/${u.userId}`, payload: { disabled: true } })).json()).toMatchObject({ disabled: true });
    expect((await as(s.app, u)({ url: '/api/me' })).statusCode).toBe(401);
    expect((await as(s.app, key)({ url: '/api/me' })).statusCode).toBe(401);
    expect((await s.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refreshToken: u.refreshToken } })).statusCode).toBe(401);
    expect((await s.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: u.email, password: PASSWORD } })).statusCode).toBe(403);
  });

  it('lets only admins list users and read the redacted configuration', async () => {
    const admin = await login(s.app, 'admin@example.com');
    const member = await login(s.app, 'member@example.com');
    const list = await as(s.app, admin)({ url: '/api/users' });
    expect(list.statusCode).toBe(200);
    expect(list.json().map((u: { email: string }) => u.email)).toEqual(expect.arrayContaining(['admin@example.com', 'member@example.com']));
    expect(JSON.stringify(list.json())).not.toMatch(/scrypt|password/i);
    expect((await as(s.app, member)({ url: '/api/users' })).statusCode).toBe(403);
    const config = await as(s.app, admin)({ url: '/api/config' });
    expect(config.statusCode).toBe(200);
    expect(config.json().auth.jwtSecret).toBe('<redacted>');
    expect(config.body).not.toContain(SECRET);
    expect((await as(s.app, member)({ url: '/api/config' })).statusCode).toBe(403);
  });
});

describe('sign-up policy', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });
  const start = async (signupMode: string) => {
    const s = await startTestServer({ env: { DOCUPOD_SIGNUP: signupMode } });
    servers.push(s);
    const auth = s.runtime.get<AuthService>(M.auth);
    return { s, auth };
  };

  it('closed: refuses sign-up, saying an admin must create the account; an admin can', async () => {
    const { s, auth } = await start('closed');
    const res = await s.app.inject({ method: 'POST', url: '/api/auth/signup', payload: { email: 'new@example.com', password: PASSWORD } });
    expect(res.statusCode).toBe(403);
    expect(res.json().detail).toMatch(/an admin must create the account/);
    await auth.createUser({ email: 'root@example.com', password: PASSWORD, role: 'admin' });
    const admin = await login(s.app, 'root@example.com');
    const created = await as(s.app, admin)({ method: 'POST', url: '/api/users', payload: { email: 'new@example.com', password: PASSWORD } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ email: 'new@example.com', role: 'member' });
    expect((await login(s.app, 'new@example.com')).role).toBe('member');
  });

  it('invite: needs an invite for that e-mail, usable once', async () => {
    const { s, auth } = await start('invite');
    await auth.createUser({ email: 'root@example.com', password: PASSWORD, role: 'admin' });
    const admin = await login(s.app, 'root@example.com');
    const post = (payload: object) => s.app.inject({ method: 'POST', url: '/api/auth/signup', payload });
    expect((await post({ email: 'guest@example.com', password: PASSWORD })).statusCode).toBe(403);
    const inv = await as(s.app, admin)({ method: 'POST', url: '/api/invites', payload: { email: 'Guest@example.com' } });
    expect(inv.statusCode).toBe(201);
    const { token } = inv.json();
    expect((await post({ email: 'other@example.com', password: PASSWORD, invite: token })).statusCode).toBe(403);
    const ok = await post({ email: 'guest@example.com', password: PASSWORD, invite: token });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().user.role).toBe('member');
    expect((await post({ email: 'guest2@example.com', password: PASSWORD, invite: token })).statusCode).toBe(403);
    const member = await login(s.app, 'guest@example.com');
    expect((await as(s.app, member)({ method: 'POST', url: '/api/invites', payload: { email: 'x@example.com' } })).statusCode).toBe(403);
  });

  it('generates the JWT secret once in the database when none is configured, so every pod agrees', async () => {
    const s = await startTestServer({ env: { DOCUPOD_JWT_SECRET: '' } });
    servers.push(s);
    const sess = await signup(s.app, 'first@example.com');
    const [row] = await s.db.database.db.select().from(instanceSettings).where(eq(instanceSettings.key, 'jwt_secret'));
    expect(row!.value.length).toBeGreaterThanOrEqual(32);
    // A second gateway on the same database accepts the first one's token.
    const other = new AuthService({ database: s.db.database, config: s.config });
    await expect(other.authenticate(`Bearer ${sess.accessToken}`)).resolves.toMatchObject({ userId: sess.userId, via: 'jwt' });
  });
});
