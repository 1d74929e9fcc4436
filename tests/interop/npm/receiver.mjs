// A webhook receiver that verifies what it gets with the npm
// `standardwebhooks` package (an implementation independent of tessera's),
// for tests/events/test_webhooks.py (installed by scripts/node-tools.sh tests/interop/npm).
//
// node receiver.mjs PORT_FILE LOG_FILE   (secret in WEBHOOK_SECRET)
// Every request to /hook is verified (signature, timestamp tolerance); a
// verified one is appended to LOG_FILE as one JSON line
// {"id", "type", "data", "raw"} and answered 204, a refused one answered
// 400 and logged as {"refused": reason}. GET /control?status=N makes /hook
// answer N (after verifying) until set back to 204; ?delay_ms=N delays.
import { appendFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const [portFile, logFile] = process.argv.slice(2);
const wh = new Webhook(process.env.WEBHOOK_SECRET);
let status = 204;
let delayMs = 0;

const server = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname === "/control") {
    if (url.searchParams.has("status")) status = Number(url.searchParams.get("status"));
    if (url.searchParams.has("delay_ms")) delayMs = Number(url.searchParams.get("delay_ms"));
    res.writeHead(200).end("ok");
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks).toString("utf8");
    let line;
    let code = status;
    try {
      const payload = wh.verify(raw, req.headers);
      line = { id: req.headers["webhook-id"], type: payload.type, data: payload.data,
               timestamp: payload.timestamp, answered: code, raw };
    } catch (e) {
      code = 400;
      line = { refused: String(e.message || e) };
    }
    setTimeout(() => {
      appendFileSync(logFile, JSON.stringify(line) + "\n");
      res.writeHead(code).end();
    }, delayMs);
  });
});
server.listen(0, "127.0.0.1", () => {
  writeFileSync(portFile, String(server.address().port));
});
