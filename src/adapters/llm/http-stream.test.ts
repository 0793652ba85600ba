import { once } from 'node:events';
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStream } from './http-stream.js';

// The line reader against a real node:http server whose handler writes the body piece by piece, as the test asks.
let server: http.Server;
let url: string;
let handler: (res: ServerResponse) => void | Promise<void>;
beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => void handler(res));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const tick = () => new Promise((r) => setTimeout(r, 20));
const open = () => openStream({ label: 'test', url, body: {}, maxRetries: 0, idleTimeoutMs: 2_000 });

describe('openStream line reader', () => {
  it('batches the lines of one read, drops blank lines and CR, joins lines and characters split across reads', async () => {
    handler = async (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\r\n\r\ndata: two\n\n');
      await tick();
      const euro = Buffer.from('data: 3 €\n', 'utf8');
      res.write(euro.subarray(0, euro.length - 3)); // splits the three bytes of € and leaves the line open
      await tick();
      res.write(euro.subarray(euro.length - 3));
      await tick();
      res.end('last line without a newline');
    };
    const batches: string[][] = [];
    for await (const b of (await open()).batches()) batches.push(b);
    expect(batches).toEqual([['data: one', 'data: two'], ['data: 3 €'], ['last line without a newline']]);
  });

  it('delivers every line in order to a slow reader (the body pauses and resumes)', async () => {
    const n = 200;
    handler = async (res) => {
      res.writeHead(200);
      for (let i = 0; i < n; i++) {
        res.write(`line ${i}\n`);
        await new Promise((r) => setTimeout(r, 1)); // one line a read, more reads than the reader keeps
      }
      res.end();
    };
    const stream = await open();
    const got: string[] = [];
    for await (const line of stream.lines()) {
      got.push(line);
      if (got.length === 1) await new Promise((r) => setTimeout(r, 300)); // lets many reads pile up unread
    }
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `line ${i}`));
  });

  it('ends the upstream request when the reader stops early', async () => {
    let closed!: Promise<unknown>;
    handler = (res) => {
      res.writeHead(200);
      res.write('first\n');
      closed = once(res, 'close');
    };
    for await (const line of (await open()).lines()) {
      expect(line).toBe('first');
      break;
    }
    await closed; // hangs (test timeout) if the connection stays open
    expect(true).toBe(true);
  });

  it('fails a read when the body breaks off', async () => {
    handler = async (res) => {
      res.writeHead(200);
      res.write('first\n');
      await tick();
      res.socket?.destroy();
    };
    const lines: string[] = [];
    const err = await (async () => {
      for await (const line of (await open()).lines()) lines.push(line);
    })().catch((e: unknown) => e);
    expect(lines).toEqual(['first']);
    expect((err as Error).message).toMatch(/test at .* broke off mid-answer/);
  });
});
