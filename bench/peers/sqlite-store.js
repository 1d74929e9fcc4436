'use strict';
// The smallest session store of the @fastify/session docs' custom-store
// example (get/set/destroy), on better-sqlite3 with WAL and synchronous=FULL,
// the same durability tessera's SQLite store runs with. express-session
// accepts the same shape once it extends its Store class (see express-session.js).
const Database = require('better-sqlite3');

module.exports = function sqliteStore(_flavour, Base) {
  const db = new Database(process.env.DB_PATH);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, sess TEXT NOT NULL, expires INTEGER NOT NULL)');
  const getStmt = db.prepare('SELECT sess, expires FROM sessions WHERE sid = ?');
  const setStmt = db.prepare('INSERT OR REPLACE INTO sessions (sid, sess, expires) VALUES (?, ?, ?)');
  const delStmt = db.prepare('DELETE FROM sessions WHERE sid = ?');
  const expiry = (session) => {
    const e = session.cookie && session.cookie.expires;
    return e ? new Date(e).getTime() : Date.now() + 86400 * 1000;
  };
  const methods = {
    get(sid, callback) {
      const row = getStmt.get(sid);
      if (!row || row.expires < Date.now()) return callback(null, null);
      callback(null, JSON.parse(row.sess));
    },
    set(sid, session, callback) {
      setStmt.run(sid, JSON.stringify(session), expiry(session));
      callback(null);
    },
    destroy(sid, callback) {
      delStmt.run(sid);
      callback(null);
    },
  };
  if (!Base) return methods;
  class SqliteStore extends Base {}
  Object.assign(SqliteStore.prototype, methods);
  return new SqliteStore();
};
