// better-auth as its docs set it up: email + password, the built-in SQLite
// adapter on a better-sqlite3 database (WAL, synchronous=FULL, as the other
// peers' SQLite store), served by toNodeHandler on node:http. Prints its port
// on stdout once listening. WRITE=1 sets session.updateAge to 0, so that every
// GET /api/auth/get-session extends the session and writes it (the peer of
// tessera's refresh); otherwise get-session is a read. Cookie cache stays off
// (its default), so each call reaches the database.
import http from "node:http";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";

const db = new Database(process.env.DB_PATH);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");

// Listen first: baseURL (its origin check) needs the port.
let handler = null;
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const options = {
  database: db,
  secret: process.env.SESSION_SECRET,
  baseURL: `http://127.0.0.1:${port}`,
  emailAndPassword: { enabled: true },
  session: process.env.WRITE === "1" ? { updateAge: 0 } : {},
  // Its rate limiter is on in production; the benchmark is one client.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
};
const { runMigrations } = await getMigrations(options);
await runMigrations();
const auth = betterAuth(options);
handler = toNodeHandler(auth);
console.log(port);
