// Load client for the concurrent-streams part of the chat benchmark, in its own process (its CPU is not docupod's).
// Opens `streams` SSE chat completions against `url`, `rampPerSec` new ones a second, each asking for `tokens` tokens
// of model tps20 (one every 50 ms upstream), and records for every stream: status, tokens seen, whether [DONE] came,
// and every gap between consecutive content tokens as the client saw it. Prints one JSON line with the summary.
// Usage: node bench/chat/streams.js '<json config>'
import http from 'node:http';
import { clearInterval, setInterval } from 'node:timers';

const cfg = JSON.parse(process.argv[2]);
const { url, key, streams, rampPerSec, tokens, timeoutMs } = cfg;
const target = new URL(url);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
const body = JSON.stringify({ model: 'tps20', messages: [{ role: 'user', content: 'Say something for the benchmark.' }], stream: true, max_tokens: tokens });

const MARK = '"delta":{"content":" t';
const gaps = [];
const firstTokenMs = [];
const errors = {};
let open = 0;
let peakOpen = 0;
// Open is not streaming: a request still waiting for its first token holds a socket but no 20 tokens/s stream.
let streaming = 0;
let peakStreaming = 0;

let ok = 0;
const err = (why) => {
  errors[why] = (errors[why] ?? 0) + 1;
};
const t0 = performance.now();
// Client-side event-loop lateness: a gap the client itself inflated is not docupod's.
let loopLag = [];
let lagLast = performance.now();
const lagTimer = setInterval(() => {
  const now = performance.now();
  loopLag.push(now - lagLast - 20);
  lagLast = now;
}, 20);

function one() {
  return new Promise((resolve) => {
    const start = performance.now();
    let seen = 0;
    let last = 0;
    let finished = false;
    let gotDone = false;
    const end = (why) => {
      if (finished) return;
      finished = true;
      open--;
      if (seen > 0) streaming--;

      if (why) err(why);
      else if (!gotDone) err('no [DONE]');
      else if (seen < tokens) err('missing tokens');
      else ok++;
      resolve();
    };
    open++;
    peakOpen = Math.max(peakOpen, open);
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return end(`status ${res.statusCode}`);
        }
        // Cheap on purpose (2000 streams × 20 tokens/s through one client process): latin1 decoding and a marker
        // count per read, with a short carry so a marker split across two reads is still seen.
        let carry = '';
        res.on('data', (b) => {
          const now = performance.now();
          const s = carry + b.toString('latin1');
          let i = 0;
          let n = 0;
          while ((i = s.indexOf(MARK, i)) !== -1) {
            n++;
            i += MARK.length;
          }
          if (s.includes('"error"')) err('error event');
          if (s.includes('data: [DONE]')) gotDone = true;
          carry = s.slice(-(MARK.length - 1));
          for (let k = 0; k < n; k++) {
            if (seen === 0) {
              firstTokenMs.push(now - start);
              peakStreaming = Math.max(peakStreaming, ++streaming);
            }
            else gaps.push(now - last);
            last = now;
            seen++;
          }
        });
        res.on('end', () => end());
        res.on('error', () => end('response error'));
        res.on('aborted', () => end('aborted'));
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      end('timeout');
    });
    req.on('error', (e) => end(`request error ${e.code ?? e.message}`));
    req.end(body);
  });
}

const all = [];
const interval = 1000 / rampPerSec;
for (let i = 0; i < streams; i++) {
  const due = t0 + i * interval;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  all.push(one());
}
const rampMs = performance.now() - t0;
await Promise.all(all);
clearInterval(lagTimer);
const q = (xs, p) => {
  const s = Float64Array.from(xs).sort();
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const added = gaps.map((g) => g - 50);
console.log(
  JSON.stringify({
    streams,
    ok,
    errors,
    peakOpen,
    peakStreaming,
    rampMs,
    totalMs: performance.now() - t0,
    gaps: gaps.length,
    addedP50: q(added, 0.5),
    addedP95: q(added, 0.95),
    addedP99: q(added, 0.99),
    addedMax: q(added, 1),
    firstTokenP50: q(firstTokenMs, 0.5),
    firstTokenP99: q(firstTokenMs, 0.99),
    clientLagP99: q(loopLag, 0.99),
  }),
);
process.exit(0);
