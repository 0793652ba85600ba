import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOL_NAMES, WRITE_TOOL_NAMES } from '../src/roles/gateway/mcp/tools.js';
import { addMember, as, createKey, createWorkspace, signup, type Session } from './fixtures/auth.js';
import { uploadIndexed } from './fixtures/documents.js';
import { startTestServer, type TestServer } from './fixtures/server.js';

// docupod as an MCP server, driven by the official SDK client: over Streamable HTTP against a listening server, and
// over stdio through `docupod mcp` (the built bin/docupod.js). The tools must see exactly what the key may see.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const section = (title: string, sentence: string, filler: string) =>
  `## ${title}\n\n${sentence}\n\n${Array.from({ length: 14 }, (_, i) => `${filler} paragraph ${i + 1} keeps the section long enough to need several chunks.`).join(' ')}\n`;
const HANDBOOK =
  '# Operations handbook\n\n' +
  section('Backups', 'Nightly backups are kept for 35 days in the cold storage bucket.', 'Backup policy') +
  section('Deploys', 'Deploys go out on Tuesdays after the change review.', 'Deploy routine') +
  section('On call', 'The on-call engineer answers pages within fifteen minutes.', 'On-call rota');
const SECRET = '# Salaries\n\nThe salary bands are reviewed every March by the compensation committee.\n';

let s: TestServer;
let base: string;
let owner: Session;
let handbookKey: { id: string; key: string };

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

async function connect(token: string, query = '', at = base): Promise<Client> {
  const client = new Client({ name: 'docupod-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${at}/mcp${query}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return client;
}

async function listening(srv: TestServer): Promise<string> {
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = srv.app.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

beforeAll(async () => {
  s = await startTestServer();
  await s.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = s.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  owner = await signup(s.app, 'mcp-owner@example.com');
  await createWorkspace(s.app, owner, 'Handbook');
  await createWorkspace(s.app, owner, 'Secret');
  await uploadIndexed(s, owner, 'handbook', 'ops/handbook.md', HANDBOOK);
  await uploadIndexed(s, owner, 'secret', 'salaries.md', SECRET);
  await uploadIndexed(s, owner, 'handbook', 'ops/glossary.md', '# Glossary\n\nRPO: how much data a restore may lose.\n');
  handbookKey = await createKey(s.app, owner, { name: 'agent', workspaces: ['handbook'] });
});
afterAll(async () => s?.close());

describe('MCP over Streamable HTTP', () => {
  it('lists the tools, each with a description and a JSON Schema for its input', async () => {
    const client = await connect(handbookKey.key);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    for (const t of tools) {
      expect(t.description!.length, t.name).toBeGreaterThan(40);
      expect(t.inputSchema.type).toBe('object');
      expect(t.annotations?.readOnlyHint, t.name).toBe(true);
    }
    const search = tools.find((t) => t.name === 'search')!;
    expect(search.inputSchema.required).toEqual(['query']);
    expect((search.inputSchema.properties as Record<string, { maximum?: number }>).k!.maximum).toBe(50);
    await client.close();
  });

  it('carries an agent’s whole round trip: list tools → search → get_document → ask, with the answer streamed as progress', async () => {
    const client = await connect(handbookKey.key);
    expect((await client.listTools()).tools.length).toBe(TOOL_NAMES.length);

    const found = (await client.callTool({ name: 'search', arguments: { query: 'how long are backups kept', workspace: 'handbook', k: 3 } })) as CallToolResult;
    expect(found.isError, text(found)).toBeFalsy();
    const top = (found.structuredContent as { results: Array<{ source: string; documentId: string; chunkId: string; headingPath: string[]; snippet: string }> }).results[0]!;
    expect(top.source).toBe('ops/handbook.md');
    expect(top.headingPath).toContain('Backups');
    expect(top.snippet).toMatch(/kept for 35 days/);
    expect(top.snippet.length).toBeLessThanOrEqual(322);
    expect(text(found)).toContain(`chunkId ${top.chunkId}`);

    // The whole document, a page of chunks at a time, with heading paths and without the chunks' overlaps twice.
    const first = (await client.callTool({ name: 'get_document', arguments: { documentId: top.documentId, workspace: 'handbook', limit: 2 } })) as CallToolResult;
    expect(first.isError, text(first)).toBeFalsy();
    const page1 = first.structuredContent as { nextOffset: number | null; document: { chunkCount: number } };
    expect(page1.document.chunkCount).toBeGreaterThan(2);
    expect(page1.nextOffset).toBe(2);
    expect(text(first)).toContain('## Operations handbook › Backups');
    let whole = '';
    for (let offset: number | null = 0; offset !== null; ) {
      const page = (await client.callTool({ name: 'get_document', arguments: { documentId: top.documentId, workspace: 'handbook', offset, limit: 2 } })) as CallToolResult;
      const sc = page.structuredContent as { nextOffset: number | null; chunks: Array<{ text: string }> };
      whole += sc.chunks.map((c) => c.text).join('\n');
      offset = sc.nextOffset;
    }
    for (const fact of ['kept for 35 days', 'Deploys go out on Tuesdays', 'within fifteen minutes']) expect(whole).toContain(fact);

    // The workspace's documents, a page at a time.
    const listed = (await client.callTool({ name: 'list_documents', arguments: { workspace: 'handbook', limit: 1 } })) as CallToolResult;
    expect(listed.structuredContent).toMatchObject({ total: 2, nextOffset: 1, documents: [{ source: 'ops/glossary.md', state: 'indexed' }] });
    const rest = (await client.callTool({ name: 'list_documents', arguments: { workspace: 'handbook', limit: 1, offset: 1 } })) as CallToolResult;
    expect(rest.structuredContent).toMatchObject({ nextOffset: null, documents: [{ id: top.documentId, source: 'ops/handbook.md' }] });

    const chunk = (await client.callTool({ name: 'get_chunk', arguments: { chunkId: top.chunkId, workspace: 'handbook' } })) as CallToolResult;
    expect(text(chunk)).toContain('kept for 35 days');

    const progress: string[] = [];
    const answer = (await client.callTool({ name: 'ask', arguments: { question: 'How long are nightly backups kept?', workspace: 'handbook' } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ''),
    })) as CallToolResult;
    expect(answer.isError, text(answer)).toBeFalsy();
    const sc = answer.structuredContent as { answer: string; citations: Array<{ source: string; n: number }> };
    expect(sc.answer).toMatch(/35 days/);
    expect(sc.citations[0]!.source).toBe('ops/handbook.md');
    expect(text(answer)).toMatch(/Sources:\n\[1\] ops\/handbook\.md/);
    expect(progress.join('')).toContain('35 days');
    await client.close();
  });

  it('lets a key limited to one workspace see only that one: another answers exactly like a workspace that does not exist', async () => {
    const client = await connect(handbookKey.key);
    const listed = (await client.callTool({ name: 'list_workspaces', arguments: {} })) as CallToolResult;
    expect((listed.structuredContent as { workspaces: Array<{ slug: string }> }).workspaces.map((w) => w.slug)).toEqual(['handbook']);

    const secretDoc = (await as(s.app, owner)({ url: '/api/workspaces/secret/documents' })).json().documents[0].id as string;
    const secretChunk = (await as(s.app, owner)({ method: 'POST', url: '/api/workspaces/secret/search', payload: { query: 'salary bands' } })).json().results[0].chunkId as string;
    for (const [ws, missing] of [
      ['secret', 'no-such-workspace'],
      [(await as(s.app, owner)({ url: '/api/workspaces/secret' })).json().id as string, '00000000-0000-4000-8000-000000000000'],
    ]) {
      for (const [name, args] of [
        ['search', { query: 'salary bands' }],
        ['list_documents', {}],
        ['get_document', { documentId: secretDoc }],
        ['get_chunk', { chunkId: secretChunk }],
        ['ask', { question: 'When are salary bands reviewed?' }],
      ] as const) {
        const hidden = (await client.callTool({ name, arguments: { ...args, workspace: ws } })) as CallToolResult;
        const absent = (await client.callTool({ name, arguments: { ...args, workspace: missing } })) as CallToolResult;
        expect(hidden.isError, `${name} in ${ws}`).toBe(true);
        expect(text(hidden)).toBe(`Not found: workspace ${ws} not found`);
        expect(text(absent)).toBe(`Not found: workspace ${missing} not found`);
      }
    }
    // Ids from the other workspace, asked through the reachable one, are just unknown ids.
    const viaOwn = (await client.callTool({ name: 'get_document', arguments: { documentId: secretDoc, workspace: 'handbook' } })) as CallToolResult;
    expect(text(viaOwn)).toBe(`Not found: document ${secretDoc} not found`);
    const chunkViaOwn = (await client.callTool({ name: 'get_chunk', arguments: { chunkId: secretChunk, workspace: 'handbook' } })) as CallToolResult;
    expect(text(chunkViaOwn)).toBe(`Not found: chunk ${secretChunk} not found`);
    // Without a workspace argument the key's only workspace is used; the owner's login (two workspaces) must name one.
    const implicit = (await client.callTool({ name: 'search', arguments: { query: 'salary bands deploys' } })) as CallToolResult;
    expect((implicit.structuredContent as { workspace: string }).workspace).toBe('handbook');
    const ownerClient = await connect(owner.accessToken);
    expect(text(await ownerClient.callTool({ name: 'search', arguments: { query: 'backups' } }))).toMatch(/name a workspace: you can reach 2/);
    const viaDefault = await connect(owner.accessToken, '?workspace=secret');
    expect((await viaDefault.callTool({ name: 'search', arguments: { query: 'salary bands' } }) as CallToolResult).structuredContent).toMatchObject({ workspace: 'secret' });
    await Promise.all([client.close(), ownerClient.close(), viaDefault.close()]);
  });

  it('refuses a revoked key on its very next call, and a request without a key, with 401', async () => {
    const key = await createKey(s.app, owner, { name: 'to revoke' });
    const client = await connect(key.key);
    expect(((await client.callTool({ name: 'list_workspaces', arguments: {} })) as CallToolResult).isError).toBeFalsy();
    expect((await as(s.app, owner)({ method: 'DELETE', url: `/api/keys/${key.id}` })).statusCode).toBe(204);
    await expect(client.callTool({ name: 'list_workspaces', arguments: {} })).rejects.toThrow(/401/);
    await expect(connect('dp_not_a_real_key_at_all')).rejects.toThrow(/401/);
    const bare = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('publishes OAuth protected-resource metadata (RFC 9728) for /mcp, and every 401 from /mcp points to it', async () => {
    // The SDK client's own discovery (path-inserted URL first) finds it without credentials.
    const meta = await discoverOAuthProtectedResourceMetadata(new URL(`${base}/mcp`));
    expect(meta).toEqual({ resource: `${base}/mcp`, bearer_methods_supported: ['header'], resource_name: 'docupod', resource_documentation: `${base}/docs` });
    // No authorization server: keys are docupod API keys, not OAuth tokens from elsewhere.
    expect(meta).not.toHaveProperty('authorization_servers');
    const root = await fetch(`${base}/.well-known/oauth-protected-resource`);
    expect(root.status).toBe(200);
    expect(await root.json()).toEqual(meta);

    const post = (authorization?: string) =>
      fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization ? { authorization } : {}) },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
    for (const res of [await post(), await post('Bearer dp_not_a_real_key_at_all')]) {
      expect(res.status).toBe(401);
      const params = extractWWWAuthenticateParams(res);
      expect(params.resourceMetadataUrl?.href).toBe(`${base}/.well-known/oauth-protected-resource/mcp`);
      expect(await (await fetch(params.resourceMetadataUrl!)).json()).toEqual(meta);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="docupod"/);
    }
    expect((await post('Bearer dp_not_a_real_key_at_all')).headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    // Other routes' 401s are unchanged.
    expect((await fetch(`${base}/api/workspaces`)).headers.get('www-authenticate')).toBe('Bearer realm="docupod"');
  });

  it('counts ask against the same quotas as chat: a key over its requests per minute gets a rate-limit error', async () => {
    const key = await createKey(s.app, owner, { name: 'limited agent', workspaces: ['handbook'] });
    const put = await as(s.app, owner)({ method: 'PUT', url: `/api/quotas/keys/${key.id}`, payload: { requestsPerMinute: 1 } });
    expect(put.statusCode, put.body).toBe(200);
    const client = await connect(key.key);
    const ask = () => client.callTool({ name: 'ask', arguments: { question: 'When do deploys go out?' } }) as Promise<CallToolResult>;
    expect((await ask()).isError).toBeFalsy();
    const refused = await ask();
    expect(refused.isError).toBe(true);
    expect(text(refused)).toMatch(/^Too many requests: this API key may make 1 chat requests per minute/);
    await client.close();
  });

  it('answers hostile arguments with MCP errors, never a crash, and keeps serving', async () => {
    const client = await connect(handbookKey.key);
    const hostile: Array<[string, Record<string, unknown>]> = [
      ['search', {}],
      ['search', { query: '' }],
      ['search', { query: '   ' }],
      ['search', { query: 'x'.repeat(2001) }],
      ['search', { query: 'backups', k: 0 }],
      ['search', { query: 'backups', k: 1e9 }],
      ['search', { query: 'backups', k: 'ten' }],
      ['search', { query: 'backups', mode: 'telepathy' }],
      ['search', { query: 'a\u0000b' }],
      ['search', { query: 'tail\udc00' }],
      ['search', { query: 'backups', workspace: '\u0000' }],
      ['search', { query: 'backups', workspace: '' }],
      ['search', { query: 'backups', workspace: '../../etc/passwd' }],
      ['search', { query: { $gt: '' } }],
      ['search', { query: 'backups', sources: ['['.repeat(600)] }],
      ['get_document', { documentId: 'not-a-uuid' }],
      ['get_document', { documentId: '00000000-0000-4000-8000-000000000000', offset: -1 }],
      ['get_document', { documentId: '00000000-0000-4000-8000-000000000000' }],
      ['get_chunk', { chunkId: "'; drop table chunks; --" }],
      ['list_documents', { state: 'haunted' }],
      ['list_documents', { limit: 1e6 }],
      ['ask', { question: '' }],
      ['ask', { question: ['why'] }],
      ['no_such_tool', {}],
      ['search', JSON.parse(`{"query":${'['.repeat(500)}"deep"${']'.repeat(500)}}`) as Record<string, unknown>],
    ];
    for (const [name, args] of hostile) {
      const outcome = await client.callTool({ name, arguments: args }).then(
        (r) => ({ isError: (r as CallToolResult).isError, message: text(r) }),
        // Thrown: only as a JSON-RPC error of the protocol (McpError), never a failed HTTP exchange.
        (err: Error & { code?: number }) => ({ isError: err instanceof McpError, message: `${err.code}: ${err.message}` }),
      );
      expect(outcome.isError, `${name} ${JSON.stringify(args).slice(0, 80)}`).toBe(true);
      expect(outcome.message).not.toMatch(/internal error|\n\s+at /);
    }
    // Keys a tool does not declare are ignored, however deep.
    const extra = (await client.callTool({ name: 'search', arguments: JSON.parse(`{"query":"backups","extra":${'['.repeat(500)}${']'.repeat(500)}}`) })) as CallToolResult;
    expect(extra.isError).toBeFalsy();
    // Invalid JSON and the wrong verbs are HTTP errors of the transport, as the spec has them.
    const post = (body: string) =>
      fetch(`${base}/mcp`, { method: 'POST', headers: { authorization: `Bearer ${handbookKey.key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body });
    expect((await post('{"jsonrpc":')).status).toBe(400);
    expect((await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"\\u0000"}}}')).status).toBe(200);
    expect((await fetch(`${base}/mcp`, { headers: { authorization: `Bearer ${handbookKey.key}` } })).status).toBe(405);
    const ok = (await client.callTool({ name: 'search', arguments: { query: 'backups' } })) as CallToolResult;
    expect(ok.isError).toBeFalsy();
    await client.close();
  });

  it('offers each readable document as a resource docupod://{workspace}/{document}, read as get_document reads it, scoped like the tools', async () => {
    const client = await connect(handbookKey.key);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(['docupod://{workspace}/{document}']);
    const { resources, nextCursor } = await client.listResources();
    expect(nextCursor).toBeUndefined();
    // Only the key's workspace: the secret workspace's document is not listed.
    expect(resources.map((r) => r.name).sort()).toEqual(['ops/glossary.md', 'ops/handbook.md']);
    const handbook = resources.find((r) => r.name === 'ops/handbook.md')!;
    expect(handbook.uri).toMatch(/^docupod:\/\/handbook\/[0-9a-f-]{36}$/);
    const read = await client.readResource({ uri: handbook.uri });
    const body = (read.contents[0] as { text: string }).text;
    for (const fact of ['## Operations handbook › Backups', 'kept for 35 days', 'Deploys go out on Tuesdays', 'within fifteen minutes']) expect(body).toContain(fact);
    // The same text get_document gives (all its chunks in one page), after get_document's heading line.
    const id = handbook.uri.split('/').pop()!;
    const doc = text(await client.callTool({ name: 'get_document', arguments: { documentId: id, limit: 50 } }));
    expect(doc.slice(doc.indexOf('\n\n') + 2)).toBe(body);

    // Another workspace's document answers exactly like a workspace that does not exist; an unknown id is not found.
    const secretDoc = (await as(s.app, owner)({ url: '/api/workspaces/secret/documents' })).json().documents[0].id as string;
    const failure = (uri: string) => client.readResource({ uri }).then(() => 'read', (err: McpError) => `${err.code} ${err.message}`);
    expect(await failure(`docupod://secret/${secretDoc}`)).toBe('-32002 MCP error -32002: Not found: workspace secret not found');
    expect(await failure(`docupod://no-such-workspace/${secretDoc}`)).toBe('-32002 MCP error -32002: Not found: workspace no-such-workspace not found');
    expect(await failure(`docupod://handbook/${secretDoc}`)).toBe(`-32002 MCP error -32002: Not found: document ${secretDoc} not found`);
    expect(await failure('docupod://handbook/not-a-uuid')).toBe('-32002 MCP error -32002: Not found: document not-a-uuid not found');
    await expect(client.listResources({ cursor: 'garbage' })).rejects.toThrow(/invalid cursor/);
    // The owner's login lists both workspaces' documents.
    const ownerClient = await connect(owner.accessToken);
    expect((await ownerClient.listResources()).resources.map((r) => r.uri.split('/')[2]).sort()).toEqual(['handbook', 'handbook', 'secret']);
    await Promise.all([client.close(), ownerClient.close()]);
  });

  it('offers the prompt "answer from my documents", which tells the agent to search, read and cite', async () => {
    const client = await connect(handbookKey.key);
    const { prompts } = await client.listPrompts();
    expect(prompts).toEqual([
      expect.objectContaining({
        name: 'answer_from_documents',
        title: 'Answer from my documents',
        arguments: [expect.objectContaining({ name: 'question', required: true }), expect.objectContaining({ name: 'workspace', required: false })],
      }),
    ]);
    const got = await client.getPrompt({ name: 'answer_from_documents', arguments: { question: 'How long are backups kept?', workspace: 'handbook' } });
    const body = (got.messages[0]!.content as { text: string }).text;
    expect(got.messages[0]!.role).toBe('user');
    expect(body).toContain('Question: How long are backups kept?');
    expect(body).toMatch(/search tool with workspace "handbook"/);
    expect(body).toMatch(/get_document/);
    expect(body).toMatch(/cite its source/);
    expect(body).toMatch(/do not answer the question, say so/);
    // Without a workspace it names none; a workspace the key cannot reach is refused like in the tools.
    expect(((await client.getPrompt({ name: 'answer_from_documents', arguments: { question: 'q?' } })).messages[0]!.content as { text: string }).text).not.toMatch(/workspace "/);
    await expect(client.getPrompt({ name: 'answer_from_documents', arguments: { question: 'q?', workspace: 'secret' } })).rejects.toThrow('Not found: workspace secret not found');
    await expect(client.getPrompt({ name: 'answer_from_documents', arguments: {} })).rejects.toThrow(McpError);
    await client.close();
  });

  it('counts calls and errors by tool name only in /metrics', async () => {
    const metrics = (await s.app.inject({ url: '/metrics' })).body;
    const lines = metrics.split('\n').filter((l) => l.startsWith('docupod_mcp_'));
    expect(lines.some((l) => /^docupod_mcp_tool_duration_seconds_count\{[^}]*tool="search"[^}]*\} [1-9]/.test(l)), lines.join('\n')).toBe(true);
    expect(lines.some((l) => /^docupod_mcp_tool_errors_total\{[^}]*tool="search"[^}]*\} [1-9]/.test(l))).toBe(true);
    const tools = new Set<string>();
    for (const l of lines) {
      expect(l).not.toMatch(/handbook|secret|no_such_tool|[0-9a-f]{8}-[0-9a-f]{4}-/);
      // The tool is the only label of its own; `role` is the process-wide default label, `le` the histogram bucket.
      for (const [, name, value] of l.matchAll(/(\w+)="([^"]*)"/g)) {
        expect(['tool', 'role', 'le']).toContain(name);
        if (name === 'tool') tools.add(value!);
      }
    }
    expect([...tools].every((t) => (TOOL_NAMES as readonly string[]).includes(t))).toBe(true);
  });
});

describe('MCP write tools (DOCUPOD_MCP_WRITE)', () => {
  let w: TestServer;
  let wBase: string;
  let editor: Session;
  let viewer: Session;
  beforeAll(async () => {
    w = await startTestServer({ env: { DOCUPOD_MCP_WRITE: 'true', DOCUPOD_UPLOAD_LIMIT: '1KB' } });
    wBase = await listening(w);
    editor = await signup(w.app, 'mcp-editor@example.com');
    viewer = await signup(w.app, 'mcp-viewer@example.com');
    await createWorkspace(w.app, editor, 'Drafts');
    await addMember(w.app, editor, 'drafts', viewer.email, 'viewer');
  });
  afterAll(async () => w?.close());

  it('are absent from tools/list and uncallable while the setting is off (the default)', async () => {
    const client = await connect(handbookKey.key);
    const names = (await client.listTools()).tools.map((t) => t.name);
    for (const name of WRITE_TOOL_NAMES) {
      expect(names).not.toContain(name);
      const args = name === 'add_document' ? { name: 'x.md', text: 'x', workspace: 'handbook' } : { documentId: '00000000-0000-4000-8000-000000000000', workspace: 'handbook' };
      const outcome = await client.callTool({ name, arguments: args }).then((r) => text(r), (err: Error) => err.message);
      expect(outcome).toMatch(new RegExp(`Tool ${name} not found`));
    }
    await client.close();
  });

  it('with the setting on, let an editor add a text that becomes searchable, then delete it', async () => {
    const key = await createKey(w.app, editor, { name: 'writer', workspaces: ['drafts'] });
    const client = await connect(key.key, '', wBase);
    const tools = (await client.listTools()).tools;
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES, ...WRITE_TOOL_NAMES].sort());
    expect(tools.find((t) => t.name === 'delete_document')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(tools.find((t) => t.name === 'add_document')!.inputSchema.required).toEqual(['name', 'text']);

    const added = (await client.callTool({
      name: 'add_document',
      arguments: { name: 'notes/retro.md', text: '# Retro\n\nThe quarterly retrospective happens on the first Friday of April.\n' },
    })) as CallToolResult;
    expect(added.isError, text(added)).toBeFalsy();
    const doc = (added.structuredContent as { document: { id: string; source: string; duplicate: boolean } }).document;
    expect(doc).toMatchObject({ source: 'notes/retro.md', duplicate: false });
    let state = '';
    for (let i = 0; i < 200 && state !== 'indexed'; i++) {
      const listed = (await client.callTool({ name: 'list_documents', arguments: {} })) as CallToolResult;
      state = (listed.structuredContent as { documents: Array<{ id: string; state: string }> }).documents.find((d) => d.id === doc.id)?.state ?? '';
      if (state === 'failed') throw new Error(text(listed));
      if (state !== 'indexed') await new Promise((r) => setTimeout(r, 50));
    }
    const found = (await client.callTool({ name: 'search', arguments: { query: 'quarterly retrospective' } })) as CallToolResult;
    expect((found.structuredContent as { results: Array<{ documentId: string }> }).results[0]?.documentId).toBe(doc.id);
    // The same text under the same name again: a duplicate, nothing new.
    const again = (await client.callTool({ name: 'add_document', arguments: { name: 'notes/retro.md', text: '# Retro\n\nThe quarterly retrospective happens on the first Friday of April.\n' } })) as CallToolResult;
    expect(again.structuredContent).toMatchObject({ document: { id: doc.id, duplicate: true } });

    const deleted = (await client.callTool({ name: 'delete_document', arguments: { documentId: doc.id } })) as CallToolResult;
    expect(deleted.isError, text(deleted)).toBeFalsy();
    expect((await as(w.app, editor)({ url: `/api/workspaces/drafts/documents/${doc.id}` })).statusCode).toBe(404);
    const gone = (await client.callTool({ name: 'get_document', arguments: { documentId: doc.id } })) as CallToolResult;
    expect(text(gone)).toBe(`Not found: document ${doc.id} not found`);
    const twice = (await client.callTool({ name: 'delete_document', arguments: { documentId: doc.id } })) as CallToolResult;
    expect(text(twice)).toBe(`Not found: document ${doc.id} not found`);
    await client.close();
  });

  it('refuse a read-only member with the HTTP API’s forbidden error, and change nothing', async () => {
    await uploadIndexed(w, editor, 'drafts', 'keep.md', '# Keep\n\nThis document must survive a viewer.\n');
    const keepId = (await as(w.app, editor)({ url: '/api/workspaces/drafts/documents' })).json().documents[0].id as string;
    const client = await connect(viewer.accessToken, '', wBase);
    const add = (await client.callTool({ name: 'add_document', arguments: { name: 'intruder.md', text: 'not wanted', workspace: 'drafts' } })) as CallToolResult;
    const del = (await client.callTool({ name: 'delete_document', arguments: { documentId: keepId, workspace: 'drafts' } })) as CallToolResult;
    for (const r of [add, del]) {
      expect(r.isError).toBe(true);
      expect(text(r)).toBe('Forbidden: this needs the editor role in workspace drafts; you are viewer');
    }
    // The HTTP API says the same to the same member.
    expect((await as(w.app, viewer)({ method: 'DELETE', url: `/api/workspaces/drafts/documents/${keepId}` })).json().detail).toBe(
      'this needs the editor role in workspace drafts; you are viewer',
    );
    const docs = (await as(w.app, editor)({ url: '/api/workspaces/drafts/documents' })).json() as { total: number; documents: Array<{ source: string }> };
    expect(docs.documents.map((d) => d.source)).toEqual(['keep.md']);
    // Reading stays open to the viewer.
    expect(((await client.callTool({ name: 'get_document', arguments: { documentId: keepId, workspace: 'drafts' } })) as CallToolResult).isError).toBeFalsy();
    await client.close();
  });

  it('refuse a text over the upload limit and hostile names with MCP errors', async () => {
    const client = await connect(editor.accessToken, '?workspace=drafts', wBase);
    for (const args of [{ name: '', text: 'x' }, { name: 'a.md', text: '' }, { name: 'a\u0000.md', text: 'x' }, { name: 'x'.repeat(1025), text: 'x' }, { name: 'a.md' }]) {
      const outcome = await client.callTool({ name: 'add_document', arguments: args }).then(
        (r) => ({ isError: (r as CallToolResult).isError, message: text(r) }),
        (err: Error) => ({ isError: err instanceof McpError, message: err.message }),
      );
      expect(outcome.isError, JSON.stringify(args).slice(0, 60)).toBe(true);
      expect(outcome.message).not.toMatch(/internal error/);
    }
    const big = (await client.callTool({ name: 'add_document', arguments: { name: 'big.md', text: 'é'.repeat(600) } })) as CallToolResult;
    expect(text(big)).toMatch(/the text is 1200 bytes, more than the upload limit of 1000 bytes \(DOCUPOD_UPLOAD_LIMIT\)/);
    expect((await as(w.app, editor)({ url: '/api/workspaces/drafts/documents' })).json().documents.map((d: { source: string }) => d.source)).not.toContain('big.md');
    await client.close();
  });
});

describe('MCP over stdio (docupod mcp)', () => {
  it('serves the same tools through the built bin/docupod.js, with --workspace (a name or slug, as other commands take it) as the default workspace', async () => {
    // A key for two workspaces: a search that names none needs the default --workspace gives.
    await createWorkspace(s.app, owner, 'Notes');
    const twoKey = await createKey(s.app, owner, { name: 'desktop', workspaces: ['handbook', 'notes'] });
    const client = new Client({ name: 'docupod-stdio-test', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(ROOT, 'bin/docupod.js'), 'mcp', '--workspace', 'Handbook', '--url', base, '--api-key', twoKey.key],
      stderr: 'pipe',
      env: { PATH: process.env.PATH ?? '' },
    });
    await client.connect(transport);
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    const found = (await client.callTool({ name: 'search', arguments: { query: 'deploys tuesdays' } })) as CallToolResult;
    expect(found.structuredContent).toMatchObject({ workspace: 'handbook' });
    expect((found.structuredContent as { results: Array<{ snippet: string }> }).results[0]!.snippet).toMatch(/Tuesdays/);
    const hidden = (await client.callTool({ name: 'list_documents', arguments: { workspace: 'secret' } })) as CallToolResult;
    expect(text(hidden)).toBe('Not found: workspace secret not found');
    await client.close();
  });

  // The desktop setup: no server running, `docupod mcp` opens the local data directory itself (as every command does
  // when nobody serves it). Runs once: the child uses embedded PGlite whatever database the suite runs on.
  it.skipIf(Boolean(process.env.DOCUPOD_TEST_DATABASE_URL))('serves the local data directory when no server runs on it, and leaves it free when stdin closes', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'docupod-mcp-'));
    const env = { PATH: process.env.PATH ?? '', DOCUPOD_DATA_DIR: path.join(dir, 'data'), DOCUPOD_INGEST_PARSER_THREADS: '1' };
    try {
      writeFileSync(path.join(dir, 'runbook.md'), '# Runbook\n\n## Restores\n\nA restore from backup takes about forty minutes.\n');
      await promisify(execFile)(process.execPath, [path.join(ROOT, 'bin/docupod.js'), 'ingest', path.join(dir, 'runbook.md'), '--workspace', 'ops'], { env });
      const client = new Client({ name: 'docupod-desktop-test', version: '1.0.0' });
      const transport = new StdioClientTransport({ command: process.execPath, args: [path.join(ROOT, 'bin/docupod.js'), 'mcp', '--workspace', 'ops'], env, stderr: 'pipe' });
      await client.connect(transport);
      const found = (await client.callTool({ name: 'search', arguments: { query: 'how long does a restore take' } })) as CallToolResult;
      expect(text(found)).toMatch(/runbook\.md › Restores[\s\S]*forty minutes/);
      // While it runs it announces its server, as any command that opened the directory does (other commands use it).
      expect(existsSync(path.join(dir, 'data', 'server.json'))).toBe(true);
      await client.close();
      // Closed: the server it started is stopped and withdrawn, the directory free for the next command.
      for (let i = 0; i < 100 && existsSync(path.join(dir, 'data', 'server.json')); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(path.join(dir, 'data', 'server.json'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with a workspace the key cannot reach, saying so on stderr', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/docupod.js'), 'mcp', '--workspace', 'secret', '--url', base, '--api-key', handbookKey.key], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/no workspace "secret"/);
    expect(out).toBe('');
  });
});
