// A fake OpenAI-compatible upstream for the chat benchmark, in its own process so its CPU is not charged to docupod
// or to the load client. Same wire format as test/fixtures/fake-openai.ts (role chunk, content chunks, finish chunk,
// usage chunk when stream_options.include_usage, [DONE]); the model name picks the pace:
//   model "instant": every token at once;  model "tps20": one token every 50 ms (20 tokens/s).
// max_tokens sets the number of tokens (default 8). GET /stats reports this process's own timer lateness (how much
// later than 50 ms it sent each token), so the benchmark can tell upstream lateness from docupod's.
// Usage: node bench/chat/upstream.js <port>   (listens on 127.0.0.1; prints "ready <port>")
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const GAP_MS = 50;
let lateness = [];
let active = 0;

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    const s = [...lateness].sort((a, b) => a - b);
    const q = (p) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
    sendJson(res, 200, { count: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? NaN, active });
    return;
  }
  if (req.method === 'POST' && req.url === '/stats/reset') {
    lateness = [];
    return sendJson(res, 200, {});
  }
  if (req.method === 'GET' && req.url === '/v1/models') {
    return sendJson(res, 200, { object: 'list', data: ['instant', 'tps20'].map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'bench' })) });
  }
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return sendJson(res, 404, { error: { message: 'not found' } });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return sendJson(res, 400, { error: { message: 'bad json', type: 'invalid_request_error' } });
    }
    const model = body.model;
    if (model !== 'instant' && model !== 'tps20') return sendJson(res, 404, { error: { message: `The model \`${model}\` does not exist`, type: 'invalid_request_error', code: 'model_not_found' } });
    const n = typeof body.max_tokens === 'number' ? body.max_tokens : 8;
    const id = `chatcmpl-${Math.random().toString(36).slice(2)}`;
    const created = 1_700_000_000;
    const includeUsage = body.stream_options?.include_usage === true;
    const usage = { prompt_tokens: 10, completion_tokens: n, total_tokens: 10 + n };
    const chunk = (delta, finish) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...(includeUsage ? { usage: null } : {}) })}\n\n`;
    // A content chunk is chunk({ content: ` t${i}` }, null) assembled from fixed halves: this one process writes every
    // token of every stream (40 000 a second at 2000 streams), so its own per-token cost must stay far below
    // docupod's, or the benchmark measures the fake instead of docupod (its lateness is reported by /stats).
    const [tokenHead, tokenTail] = chunk({ content: '\u0000' }, null).split('"\\u0000"');
    const token = (i) => `${tokenHead}" t${i}"${tokenTail}`;
    const tail = () =>
      chunk({}, 'stop') + (includeUsage ? `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n` : '') + 'data: [DONE]\n\n';
    if (body.stream !== true) {
      return sendJson(res, 200, { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: ' tok'.repeat(n) }, finish_reason: 'stop', logprobs: null }], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    if (model === 'instant') {
      let out = chunk({ role: 'assistant', content: '' }, null);
      for (let i = 0; i < n; i++) out += token(i);
      return void res.end(out + tail());
    }
    active++;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    let i = 0;
    let last = performance.now();
    let timer;
    let closed = false;
    res.on('close', () => {
      if (!closed) active--;
      closed = true;
      clearTimeout(timer);
    });
    const tick = () => {
      if (closed) return;
      const now = performance.now();
      lateness.push(now - last - GAP_MS);
      last = now;
      res.write(token(i));
      if (++i >= n) {
        closed = true;
        active--;
        return void res.end(tail());
      }
      timer = setTimeout(tick, GAP_MS);
    };
    timer = setTimeout(tick, GAP_MS);
  });
});
server.keepAliveTimeout = 60_000;
server.maxConnections = Infinity;
server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
