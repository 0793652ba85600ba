// The bare-Fastify peer of docupod's GET /api/me for the chat benchmark: one route, the same JWT check (jose, HS256
// only, issuer and audience "docupod", typ "access", a subject), 401 otherwise, the same JSON body, no logging, no
// schemas, no database (the user is looked up in memory from BENCH_ME, docupod's own /api/me answer).
// Usage: BENCH_JWT_SECRET=… BENCH_ME='{…}' node bench/chat/bare-fastify.js <port>
import Fastify from 'fastify';
import { jwtVerify } from 'jose';
import { TextEncoder } from 'node:util';

const key = new TextEncoder().encode(process.env.BENCH_JWT_SECRET);
const me = JSON.parse(process.env.BENCH_ME);
const users = new Map([[me.user.id, me]]);
const app = Fastify({ logger: false });

app.get('/api/me', async (request, reply) => {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (!m) return reply.code(401).send({ error: 'authentication required' });
  let sub;
  try {
    const { payload } = await jwtVerify(m[1], key, { algorithms: ['HS256'], issuer: 'docupod', audience: 'docupod' });
    if (payload.typ === 'access' && typeof payload.sub === 'string') sub = payload.sub;
  } catch {
    /* 401 below */
  }
  const found = sub && users.get(sub);
  if (!found) return reply.code(401).send({ error: 'invalid or expired access token' });
  return found;
});
app.get('/healthz', async () => ({ status: 'ok' }));

await app.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
console.log('ready');
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
