// Search through MCP vs the same search through the HTTP API, in one run against one server: the whole product
// (every role, embedded PGlite in a temp directory) listening on 127.0.0.1, a workspace holding the Debian Reference
// (BENCH_MCP_FILES of its chapters, default all), an API key. Each query goes both ways, interleaved in alternating
// order so that load on the shared machine hits both alike: POST /api/workspaces/{ws}/search with fetch, and the
// `search` tool with the official SDK client (Client + StreamableHTTPClientTransport, connected once, as an agent
// stays connected). Client-side wall time per call; p50/p99 over BENCH_MCP_QUERIES queries (3 words of a random
// sentence of the corpus) after a warm-up. Prints the load average: the machine is shared.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, corpusFiles, dist, fmtMs, htmlText, machine, percentile, rng } from './lib/common.js';

const QUERIES = Number(process.env.BENCH_MCP_QUERIES ?? 300);
const FILES = Number(process.env.BENCH_MCP_FILES ?? 1000);
const K = 10;

export async function run() {
  const { loadConfig } = await import(dist('config/schema.js'));
  const { startRuntime } = await import(dist('modules/runtime.js'));
  const { silentLogger } = await import(dist('observability/logger.js'));
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');

  const dir = mkdtempSync(path.join(os.tmpdir(), 'docupod-bench-mcp-'));
  const config = loadConfig({ DOCUPOD_DATA_DIR: dir, DOCUPOD_LOG_LEVEL: 'silent', DOCUPOD_METRICS_ENABLED: 'false' });
  const runtime = await startRuntime(config, silentLogger(), {});
  try {
    await runtime.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${runtime.app.server.address().port}`;
    const session = await api(base, 'POST', '/api/auth/signup', { body: { email: 'bench@example.com', password: 'correct horse battery' } });
    const ws = await api(base, 'POST', '/api/workspaces', { token: session.accessToken, body: { name: 'Debian Reference' } });
    const { key } = await api(base, 'POST', '/api/keys', { token: session.accessToken, body: { name: 'bench' } });

    const files = corpusFiles().slice(0, FILES);
    const form = new globalThis.FormData();
    for (const f of files) form.append('file', new Blob([f.bytes]), f.name);
    const t0 = performance.now();
    const up = await fetch(`${base}/api/workspaces/${ws.slug}/documents`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    if (up.status !== 202) throw new Error(`upload: ${up.status} ${await up.text()}`);
    for (;;) {
      const { documents } = await api(base, 'GET', `/api/workspaces/${ws.slug}/documents?limit=1000`, { token: key });
      if (documents.every((d) => ['indexed', 'failed'].includes(d.state))) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const stats = await api(base, 'GET', `/api/workspaces/${ws.slug}/stats`, { token: key });
    console.log(`${files.length} chapters, ${stats.chunks} chunks indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const rand = rng(23);
    const words = files.flatMap((f) => htmlText(f.bytes.toString('utf8')).split(/\s+/).filter((w) => /^[A-Za-z]{4,}$/.test(w)));
    const queries = Array.from({ length: QUERIES + 20 }, () => {
      const i = Math.floor(rand() * (words.length - 3));
      return words.slice(i, i + 3).join(' ');
    });

    const client = new Client({ name: 'bench', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
    const viaHttp = async (query) => {
      const r = await api(base, 'POST', `/api/workspaces/${ws.slug}/search`, { token: key, body: { query, k: K } });
      return r.results.length;
    };
    const viaMcp = async (query) => {
      const r = await client.callTool({ name: 'search', arguments: { query, workspace: ws.slug, k: K } });
      if (r.isError) throw new Error(r.content[0].text);
      return r.structuredContent.results.length;
    };
    const time = async (fn, q) => {
      const s = performance.now();
      const n = await fn(q);
      return { ms: performance.now() - s, n };
    };
    const http = [];
    const mcp = [];
    let mismatches = 0;
    for (const [i, q] of queries.entries()) {
      // Alternate which goes first, so caching of a query's terms favours neither.
      let a;
      let b;
      if (i % 2) {
        a = await time(viaHttp, q);
        b = await time(viaMcp, q);
      } else {
        b = await time(viaMcp, q);
        a = await time(viaHttp, q);
      }
      if (a.n !== b.n) mismatches++;
      if (i < 20) continue; // warm-up
      http.push(a.ms);
      mcp.push(b.ms);
    }
    await client.close();
    const row = (name, xs) => `| ${name} | ${fmtMs(percentile(xs, 50))} | ${fmtMs(percentile(xs, 99))} |`;
    console.log(`${machine()}; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}; ${QUERIES} queries, k=${K}`);
    console.log('| search through | p50 ms | p99 ms |\n|---|---|---|');
    console.log(row('HTTP API (POST /api/workspaces/{ws}/search)', http));
    console.log(row('MCP (tools/call search, Streamable HTTP)', mcp));
    const overhead = mcp.map((m, i) => m - http[i]);
    console.log(`MCP minus HTTP per query: median ${fmtMs(percentile(overhead, 50))} ms; result counts differed on ${mismatches} queries`);
  } finally {
    await runtime.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
