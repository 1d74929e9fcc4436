'use strict';
// express 5 + express-session, as its README shows: MemoryStore by default,
// or STORE=sqlite for the same get/set/destroy store on better-sqlite3.
// POST /login creates a session; GET /me reads it (401 without one).
const express = require('express');
const session = require('express-session');

const app = express();
app.disable('x-powered-by');
app.use(session({
  secret: process.env.SESSION_SECRET,
  resave: false,
  saveUninitialized: false,
  rolling: false,
  cookie: { maxAge: 3600 * 1000 },
  store: process.env.STORE === 'sqlite' ? require('./sqlite-store')('express', session.Store) : undefined,
}));

app.post('/login', (req, res) => {
  req.session.userId = `user-${Math.floor(Math.random() * 5000)}`;
  res.json({ ok: true });
});

app.get('/me', (req, res) => {
  if (!req.session.userId) return res.status(401).json({ error: 'unauthenticated' });
  res.json({ sub: req.session.userId });
});

const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(server.address().port);
});
