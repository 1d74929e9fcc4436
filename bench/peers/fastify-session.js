'use strict';
// fastify 5 + @fastify/session, as its README shows: MemoryStore by default,
// or STORE=sqlite for the custom-store shape of its docs on better-sqlite3.
// POST /login creates a session; GET /me reads it (401 without one).
const fastify = require('fastify')({ logger: false });
const store = process.env.STORE === 'sqlite' ? require('./sqlite-store')('fastify') : undefined;

fastify.register(require('@fastify/cookie'));
fastify.register(require('@fastify/session'), {
  secret: process.env.SESSION_SECRET,
  cookie: { secure: false, maxAge: 3600 * 1000 },
  saveUninitialized: false,
  rolling: false,
  store,
});

fastify.post('/login', async (request) => {
  request.session.set('userId', `user-${Math.floor(Math.random() * 5000)}`);
  return { ok: true };
});

fastify.get('/me', async (request, reply) => {
  const userId = request.session.get('userId');
  if (!userId) return reply.code(401).send({ error: 'unauthenticated' });
  return { sub: userId };
});

fastify.listen({ host: '127.0.0.1', port: Number(process.env.PORT || 0) }).then(() => {
  console.log(fastify.server.address().port);
});
