// The peer of the stack benchmark's relay cost: a bare node:http relay that forwards each request to an upstream and
// pipes the answer back byte for byte (keep-alive to the upstream, no parsing): the least any token relay can cost.
// Usage: node bench/stack/relay.js <port> <upstream base URL>   (listens on 127.0.0.1; prints "ready <port>")
import http from 'node:http';

const port = Number(process.argv[2] ?? 0);
const upstream = new URL(process.argv[3]);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const server = http.createServer((req, res) => {
  // Hop-by-hop headers stay on their hop (RFC 9110 §7.6.1), as any proxy does: a client's `connection: close` must
  // not close the relay's kept-alive upstream connection.
  const { connection: _c, 'keep-alive': _k, host: _h, ...headers } = req.headers;
  const out = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent }, (up) => {
    delete up.headers.connection;
    delete up.headers['keep-alive'];
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(out);
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => console.log(`ready ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
