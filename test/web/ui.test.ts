// The web UI in a real browser: the built product (all roles, in-process, on a fresh database) listens on a port,
// playwright-core drives Debian's Chromium (never a downloaded browser) through the main journeys, and each main page
// is saved as a screenshot under test-results/web/ for a person to look at.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../fixtures/server.js';

const CHROMIUM = process.env.DOCUPOD_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..', '..');
const DIST = join(ROOT, 'web', 'dist');
const SHOTS = join(ROOT, 'test-results', 'web');
const haveChromium = existsSync(CHROMIUM);
// CI installs chromium (.ci/run); elsewhere a missing browser skips these tests instead of failing the suite.
const run = haveChromium || process.env.CI ? describe : describe.skip;

const HANDBOOK = `# Employee handbook

## Vacation policy

Every employee receives twenty-five days of paid vacation per year. Unused vacation days expire at the end of March of
the following year. Requests go to your team lead at least two weeks in advance.

## Remote work

Staff may work remotely up to three days per week after their probation period.
`;
const FAQ = `Frequently asked questions about the backup system.

How often are backups taken? The backup system takes a snapshot of every database each night at 02:00 UTC and keeps
snapshots for thirty days. Restores are requested through the operations desk.
`;

/** Gzipped size of the JavaScript index.html loads before anything else (entry script and its modulepreloads). */
export function initialJsGzipBytes(dist: string): { bytes: number; files: string[] } {
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const files = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.js)"/g)].map((m) => m[1]!);
  const bytes = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(dist, f))).length, 0);
  return { bytes, files };
}

// Browser-side code is written as strings: the root tsconfig has no DOM types, and these lines run in Chromium.
const accessToken = async (p: Page) =>
  ((await p.evaluate(`JSON.parse(localStorage.getItem('docupod.session') || '{}').accessToken`)) as string | undefined);

run('web UI in Chromium', () => {
  let s: TestServer;
  let base: string;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let routes: Record<string, unknown> = {};
  const state: { ws?: string; token?: string } = {};
  const consoleErrors: string[] = [];

  const shot = async (p: Page, name: string) => {
    await p.waitForTimeout(150); // let transitions settle so the picture shows the page, not a fade
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const apiCall = async (method: string, path: string, body?: unknown, token = state.token) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`);
    if (!existsSync(join(DIST, 'index.html'))) execFileSync('npm', ['run', 'build', '-w', 'web'], { cwd: ROOT, stdio: 'inherit' });
    mkdirSync(SHOTS, { recursive: true });
    s = await startTestServer();
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = s.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    routes = ((await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> }).paths;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'],
    });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await ctx.newPage();
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(`${page.url()}: ${m.text()} ${m.args().length > 1 ? m.args().slice(1).map(String).join(' ') : ''}`));
    page.on('pageerror', (e) => consoleErrors.push(`${String(e)} ${e.stack ?? ''}`));
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('serves the UI at / and client routes, keeps API 404s as problem+json, caches hashed assets for a year', async () => {
    const index = await fetch(`${base}/w/some-team/chat`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const api404 = await fetch(`${base}/api/nope`);
    expect(api404.status).toBe(404);
    expect(api404.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect((await fetch(`${base}/assets/missing-123.js`)).status).toBe(404);
    expect((await fetch(`${base}/v1/nope`)).headers.get('content-type')).not.toMatch(/text\/html/);
  });

  it('keeps the initial JavaScript under 300 KB gzipped', () => {
    const { bytes, files } = initialJsGzipBytes(DIST);
    console.log(`initial JS: ${(bytes / 1024).toFixed(1)} KB gzipped in ${files.length} files (${files.join(', ')})`);
    expect(bytes).toBeLessThan(300 * 1024);
  });

  it('first sign-up → workspace → two uploads reach indexed → search shows results', async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(/\/login/);
    await page.getByRole('heading', { name: 'Sign in to docupod' }).waitFor();
    await shot(page, '01-sign-in');
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Name').fill('Ada Admin');
    await page.getByRole('textbox', { name: 'Email' }).fill('ada@example.com');
    await page.getByRole('textbox', { name: 'Password' }).fill('correct horse battery');
    await shot(page, '02-sign-up');
    await page.getByRole('button', { name: 'Sign up' }).click();

    // No workspace yet: the app lands on the workspace list with an empty state.
    await page.waitForURL(/\/workspaces$/);
    await page.getByText('No workspaces yet').waitFor();
    await shot(page, '03-workspaces-empty');
    await page.getByLabel('Workspace name').fill('Team Docs');
    await page.getByRole('button', { name: 'Create workspace' }).click();
    await page.waitForURL(/\/w\/[^/]+\/documents$/);
    state.ws = /\/w\/([^/]+)\/documents/.exec(page.url())![1]!;
    state.token = await accessToken(page);
    await page.getByText('No documents yet').waitFor();
    await shot(page, '04-documents-empty');

    await page.locator('#file-input').setInputFiles([
      { name: 'handbook.md', mimeType: 'text/markdown', buffer: Buffer.from(HANDBOOK) },
      { name: 'backup-faq.txt', mimeType: 'text/plain', buffer: Buffer.from(FAQ) },
    ]);
    for (const name of ['handbook.md', 'backup-faq.txt']) {
      await page.locator(`[data-testid="doc-row"][data-source="${name}"][data-state="indexed"]`).waitFor({ timeout: 60_000 });
    }
    await page.getByText(/2 documents · 2 searchable/).waitFor();
    await shot(page, '05-documents-indexed');

    await page.getByRole('link', { name: 'Search', exact: true }).click();
    await page.getByLabel('Query').fill('vacation days');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const lexical = page.getByTestId('results-lexical');
    await lexical.getByTestId('search-hit').first().waitFor();
    expect(await lexical.getByTestId('search-hit').first().textContent()).toContain('handbook');
    expect(await lexical.locator('mark').count()).toBeGreaterThan(0);
    await shot(page, '06-search');
  });

  it('shows why an upload failed (random bytes named x.pdf)', async () => {
    await page.goto(`${base}/w/${state.ws}/documents`);
    await page.locator('#file-input').setInputFiles([{ name: 'x.pdf', mimeType: 'application/pdf', buffer: randomBytes(4096) }]);
    const row = page.locator('[data-testid="doc-row"][data-source="x.pdf"][data-state="failed"]');
    await row.waitFor({ timeout: 60_000 });
    const reason = (await row.getByTestId('failure-reason').textContent()) ?? '';
    expect(reason.length).toBeGreaterThan(5);
    expect(reason).not.toMatch(/\[object Object\]|at .*\.js:\d+/);
    await shot(page, '07-documents-failed');
  });

  it('a viewer sees no upload control and the API refuses their upload', async () => {
    const created = await apiCall('POST', '/api/users', { email: 'vera@example.com', password: 'viewer-password', name: 'Vera Viewer' });
    expect(created.status).toBe(201);
    expect((await apiCall('POST', `/api/workspaces/${state.ws}/members`, { email: 'vera@example.com', role: 'viewer' })).status).toBe(201);

    const vctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const vp = await vctx.newPage();
    await vp.goto(`${base}/login`);
    await vp.getByRole('textbox', { name: 'Email' }).fill('vera@example.com');
    await vp.getByRole('textbox', { name: 'Password' }).fill('viewer-password');
    await vp.getByRole('button', { name: 'Sign in' }).click();
    await vp.waitForURL(/\/documents$/);
    await vp.getByTestId('viewer-notice').waitFor();
    expect(await vp.getByTestId('dropzone').count()).toBe(0);
    expect(await vp.getByRole('button', { name: /Choose files/ }).count()).toBe(0);
    expect(await vp.getByRole('button', { name: /^Delete / }).count()).toBe(0);
    await vp.locator('[data-testid="doc-row"][data-source="handbook.md"]').waitFor();
    await shot(vp, '08-documents-viewer');

    const vtoken = await accessToken(vp);
    const form = new FormData();
    form.append('file', new Blob(['sneaky']), 'sneaky.txt');
    const res = await fetch(`${base}/api/workspaces/${state.ws}/documents`, { method: 'POST', headers: { authorization: `Bearer ${vtoken}` }, body: form });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    await vctx.close();
  });

  it('creates an API key that is shown once and works against the API', async () => {
    await page.goto(`${base}/keys`);
    await page.getByText('No API keys').waitFor();
    await page.getByLabel('Key name').fill('ci script');
    await page.getByRole('button', { name: 'Create key' }).click();
    const value = page.getByTestId('new-key-value');
    await value.waitFor();
    const key = ((await value.textContent()) ?? '').trim();
    expect(key).toMatch(/^dp_/);
    await page.getByRole('button', { name: 'Copy' }).waitFor();
    await shot(page, '09-api-key-created');

    // Works where the contract says: /v1/models once the OpenAI-compatible API exists, else the REST API.
    const target = '/v1/models' in routes ? '/v1/models' : '/api/me';
    const res = await fetch(`${base}${target}`, { headers: { authorization: `Bearer ${key}` } });
    console.log(`API key checked against ${target}: ${res.status}`);
    expect(res.status).toBe(200);

    // Shown once: after a reload only the prefix is listed.
    await page.reload();
    await page.getByRole('table', { name: 'Your API keys' }).waitFor();
    expect(await page.getByTestId('new-key-value').count()).toBe(0);
    expect(await page.getByText(key).count()).toBe(0);
  });

  it('asks a question: streamed answer with a citation, and the source with the quoted span highlighted', async (t) => {
    if (!('/api/workspaces/{ws}/chats/{id}/messages' in routes || '/api/workspaces/{ws}/chats/{chatId}/messages' in routes)) {
      console.log('chat API not on this server yet: chat journey skipped');
      return t.skip();
    }
    await page.goto(`${base}/w/${state.ws}/chat`);
    await page.getByText('Ask your documents').waitFor();
    await shot(page, '10-chat-empty');
    await page.getByLabel('Your question').fill('How many days of paid vacation does an employee get?');
    await page.getByLabel('Your question').press('Enter');
    const answer = page.getByTestId('assistant-message').last();
    await answer.waitFor();
    // Streaming: the message is marked while tokens arrive, then settles with its citations.
    // Polled through locators (CDP), not page.waitForFunction: a string predicate is eval'd in the page, which the
    // UI's Content-Security-Policy (script-src 'self') rightly forbids.
    await vi.waitFor(
      async () => {
        const streaming = await answer.getAttribute('data-streaming');
        const text = (await answer.textContent()) ?? '';
        if (streaming !== null || text.length <= 10) throw new Error('the answer is still streaming');
      },
      { timeout: 60_000, interval: 100 },
    );
    expect(await answer.textContent()).toMatch(/twenty-five|25/i);
    // Streamed: the answer arrived as many SSE token events (the extractive model sends one per word).
    expect(Number(await answer.getAttribute('data-tokens'))).toBeGreaterThan(2);
    const marker = answer.getByTestId('citation-marker').first();
    await marker.waitFor();
    await marker.click();
    const card = page.locator('[data-testid="source-card"][data-selected]');
    await card.waitFor();
    expect(await card.textContent()).toContain('handbook');
    const span = card.getByTestId('highlighted-span');
    await span.waitFor();
    expect(((await span.textContent()) ?? '').length).toBeGreaterThan(5);
    await shot(page, '11-chat-answer-sources');
  });

  it('shows the admin pages: users, models with a connection test, usage per day, members', async () => {
    await page.goto(`${base}/admin`);
    await page.getByRole('table', { name: 'Users' }).getByText('vera@example.com').waitFor();
    await shot(page, '16-admin-users');
    await page.getByRole('tab', { name: 'Models' }).click();
    await page.getByRole('button', { name: 'Test connection' }).first().click();
    const status = page.getByRole('status').first();
    await status.waitFor({ timeout: 30_000 });
    expect(await status.textContent()).not.toContain('[object Object]');
    await shot(page, '17-admin-models');
    await page.getByRole('tab', { name: /Usage/ }).click();
    await page.getByRole('img', { name: /Tokens per day/ }).waitFor();
    await shot(page, '18-admin-usage');
    await page.goto(`${base}/w/${state.ws}/members`);
    await page.getByRole('table', { name: 'Workspace members' }).getByText('vera@example.com').waitFor();
    await shot(page, '19-members');
  });

  it('works on a narrow screen and measures the chat page time to interactive', async () => {
    const nctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const session = (await page.evaluate('localStorage.getItem("docupod.session")')) as string;
    await nctx.addInitScript(`if (!localStorage.getItem('docupod.session')) localStorage.setItem('docupod.session', ${JSON.stringify(session)});`);
    const np = await nctx.newPage();
    await np.goto(`${base}/w/${state.ws}/documents`);
    await np.locator('[data-testid="doc-card"]').first().waitFor();
    await shot(np, '12-narrow-documents');
    await np.getByRole('button', { name: 'Open navigation' }).click();
    await np.getByRole('link', { name: 'Search', exact: true }).waitFor();
    await shot(np, '13-narrow-navigation');
    await np.getByRole('link', { name: 'Chat', exact: true }).click();
    await np.getByLabel('Your question').waitFor();
    await shot(np, '13b-narrow-chat');
    await nctx.close();

    // Time to interactive, cold cache: from navigation start until the question box accepts input and the main
    // thread has had no long task (> 50 ms) for the following 500 ms.
    const tctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await tctx.addInitScript(`
      localStorage.setItem('docupod.session', ${JSON.stringify(session)});
      window.__tti = { lastLong: 0 };
      new PerformanceObserver((l) => l.getEntries().forEach((e) => (window.__tti.lastLong = Math.max(window.__tti.lastLong, e.startTime + e.duration))))
        .observe({ type: 'longtask', buffered: true });
      const check = () => {
        const el = document.querySelector('textarea');
        if (el && !el.disabled) window.__tti.ready = performance.now();
        else requestAnimationFrame(check);
      };
      requestAnimationFrame(check);`);
    const tp = await tctx.newPage();
    await tp.goto(`${base}/w/${state.ws}/chat`);
    await tp.getByLabel('Your question').waitFor();
    await tp.waitForTimeout(600);
    const m = (await tp.evaluate(`(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { ready: window.__tti.ready ?? -1, lastLong: window.__tti.lastLong, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd };
    })()`)) as { ready: number; lastLong: number; dcl: number; load: number };
    const tti = Math.max(m.ready, m.lastLong);
    const { bytes } = initialJsGzipBytes(DIST);
    const metrics = { initialJsGzipKB: +(bytes / 1024).toFixed(1), chatTtiMs: Math.round(tti), chatComposerReadyMs: Math.round(m.ready), domContentLoadedMs: Math.round(m.dcl), loadMs: Math.round(m.load) };
    console.log('web metrics', JSON.stringify(metrics));
    writeFileSync(join(SHOTS, 'metrics.json'), JSON.stringify(metrics, null, 2));
    await shot(tp, '14-chat-page');
    expect(m.ready).toBeGreaterThan(0);
    await tctx.close();
  });

  it('renders problem details, never [object Object], and the main pages logged no errors', async () => {
    await page.goto(`${base}/login`);
    await page.evaluate('localStorage.clear()');
    await page.goto(`${base}/login`);
    // Keyboard only: Tab into the form, type, Enter submits.
    await page.getByRole('heading', { name: 'Sign in to docupod' }).waitFor();
    await page.keyboard.press('Tab');
    await page.keyboard.type('ada@example.com');
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong password');
    expect(await page.getByRole('textbox', { name: 'Email' }).inputValue()).toBe('ada@example.com');
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    expect(text).not.toContain('[object Object]');
    expect(text.length).toBeGreaterThan(20);
    await shot(page, '15-sign-in-error');
    // Failed requests the app handles and explains (a wrong password; vector search without an embedder) are not app errors.
    const unexpected = consoleErrors.filter((e) => !/Failed to load resource: the server responded/.test(e));
    writeFileSync(join(SHOTS, 'console-errors.txt'), unexpected.join('\n\n'));
    expect(unexpected).toEqual([]);
  });
});
