"""`make bench-events` (not in CI): the outbox's delivery lag under load and
its backlog drain rate, against a Release `tessera serve` (SQLite FULL) and
a private redis-server, both on loopback.

1. Lag: while wrk drives validate traffic, N subject epochs are bumped one
   by one over HTTP; a Redis subscriber notes when each subject's
   publication arrives. Lag = arrival - the bump request's sending (the
   commit is in between, so this bounds commit → delivery from above).
2. Drain: with Redis not running, M bumps are made (their events pend);
   then redis-server starts on the port the authority was given, and the
   time until tessera_events_delivered_total has grown by M gives the rate.

Prints a Markdown table (and, unless NO_DOC=1, writes it into
docs/benchmarks.md between the bench-events markers).

  bench_events.py TESSERA_BINARY
"""

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUMPS = int(os.environ.get("BUMPS", "400"))
BACKLOG = int(os.environ.get("BACKLOG", "5000"))
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_redis(port, work):
    return subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly",
                             "no", "--dir", work], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


class Serve:
    def __init__(self, tessera, work, redis_port):
        self.key = "tsk_" + secrets.token_urlsafe(32)
        env = dict(os.environ, TESSERA_API_KEY_HASHES="sha256:" +
                   hashlib.sha256(self.key.encode()).hexdigest())
        ready = os.path.join(work, "port")
        self.proc = subprocess.Popen(
            [tessera, "serve", "--data-dir", os.path.join(work, "data"), "--listen",
             "127.0.0.1:0", "--ready-file", ready, "--access-log", "false", "--audit-log",
             "none", "--redis-url", f"redis://127.0.0.1:{redis_port}",
             "--max-connections-per-client", "0"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with open(ready) as f:
                    self.port = int(f.read().strip())
                    break
            except (FileNotFoundError, ValueError):
                if time.monotonic() > deadline:
                    raise RuntimeError("serve did not start")
                time.sleep(0.05)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def post(self, path, body=None):
        self.conn.request("POST", path, json.dumps(body or {}),
                          {"Authorization": f"Bearer {self.key}",
                           "Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read()

    def delivered(self):
        self.conn.request("GET", "/metrics")
        text = self.conn.getresponse().read().decode()
        return int(re.search(r"^tessera_events_delivered_total (\d+)", text, re.M).group(1))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def subscribe(port, arrivals, ready):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\ntessera:epochs\r\n")
    buf = b""
    ready.set()
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        now = time.monotonic()
        buf += chunk
        # *3 $7 message $14 tessera:epochs $n subject
        while True:
            m = re.match(rb"\*3\r\n\$7\r\nmessage\r\n\$14\r\ntessera:epochs\r\n\$(\d+)\r\n", buf)
            if not m:
                i = buf.find(b"*3\r\n$7\r\nmessage", 1)
                if buf.startswith(b"*3\r\n$9\r\nsubscribe"):
                    end = buf.find(b":1\r\n")
                    if end < 0:
                        break
                    buf = buf[end + 4:]
                    continue
                if i < 0:
                    break
                buf = buf[i:]
                continue
            n = int(m.group(1))
            start = m.end()
            if len(buf) < start + n + 2:
                break
            arrivals[buf[start:start + n].decode()] = now
            buf = buf[start + n + 2:]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    tessera = sys.argv[1]
    work = tempfile.mkdtemp(prefix="tessera-bench-events-")
    redis_port = free_port()
    redis = start_redis(redis_port, work)
    wait_port(redis_port)
    serve = Serve(tessera, work, redis_port)
    rows = []
    try:
        # 1. Lag under load.
        cookies = os.path.join(work, "cookies")
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench/http/prepare.py"),
                        str(serve.port), serve.key, "cookie", "2000", cookies], check=True,
                       stdout=subprocess.DEVNULL)
        arrivals, answered = {}, {}
        ready = threading.Event()
        threading.Thread(target=subscribe, args=(redis_port, arrivals, ready), daemon=True).start()
        ready.wait(5)
        load = subprocess.Popen(
            ["wrk", "-t1", "-c32", "-d60s", "-s", os.path.join(ROOT, "bench/http/validate.lua"),
             f"http://127.0.0.1:{serve.port}"],
            env=dict(os.environ, TOKENS=cookies, API_KEY=serve.key),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        for i in range(BUMPS):
            subject = f"lag-{i}"
            answered[subject] = time.monotonic()  # sent: the commit is after this
            status, _ = serve.post(f"/v1/subjects/{subject}/epoch")
            assert status == 200, status
            time.sleep(0.02)
        time.sleep(2)
        load.terminate()
        load.wait()
        lags = [(arrivals[s] - answered[s]) * 1000 for s in answered if s in arrivals]
        rows.append(("delivery lag under validate load (wrk -c32): bump request sent → "
                     "its Redis PUBLISH received (the commit is in between)",
                     f"{len(lags)}/{BUMPS} delivered; p50 {statistics.median(lags):.1f} ms, "
                     f"p99 {pct(lags, 99):.1f} ms, max {max(lags):.1f} ms"))

        # 2. Backlog drain.
        redis.kill()
        redis.wait()
        before = serve.delivered()
        t0 = time.monotonic()
        for i in range(BACKLOG):
            status, _ = serve.post(f"/v1/subjects/drain-{i}/epoch")
            assert status == 200, status
        made = time.monotonic() - t0
        # The dispatcher backs off while Redis is down (up to 60 s): start
        # it again and wait for the whole backlog.
        redis = start_redis(redis_port, work)
        wait_port(redis_port)
        t1 = time.monotonic()
        first = None
        while True:
            n = serve.delivered() - before
            if n > 0 and first is None:
                first = (time.monotonic(), n)
            if n >= BACKLOG:
                break
            if time.monotonic() - t1 > 300:
                raise RuntimeError("the backlog did not drain in 300 s")
            time.sleep(0.02)
        done = time.monotonic()
        drained = done - t1
        rate = (BACKLOG - first[1]) / max(done - first[0], 1e-3)
        rows.append(("backlog drain: bumps made with Redis down, then Redis started",
                     f"{BACKLOG} events (made at {BACKLOG / made:,.0f} bumps/s) all delivered "
                     f"{drained:.1f} s after Redis came back (the backoff wait included); "
                     f"once delivery began: {rate:,.0f} events/s"))
    finally:
        serve.stop()
        redis.kill()
        shutil.rmtree(work, ignore_errors=True)

    machine = subprocess.run(["bash", "-c", f". {ROOT}/scripts/bench-lib.sh && machine_description"],
                             capture_output=True, text=True).stdout.strip()
    table = [f"Last run: {time.strftime('%Y-%m-%d')} — `make bench-events` (Release, SQLite "
             f"FULL, a private redis-server, loopback). {machine}", "",
             "| measure | figure |", "|---|---|"]
    table += [f"| {a} | {b} |" for a, b in rows]
    text = "\n".join(table)
    print(text)
    if os.environ.get("NO_DOC") != "1":
        path = os.path.join(ROOT, "docs/benchmarks.md")
        doc = open(path).read()
        begin, end = "<!-- bench-events:begin -->", "<!-- bench-events:end -->"
        if begin in doc:
            doc = doc[:doc.index(begin) + len(begin)] + "\n" + text + "\n" + doc[doc.index(end):]
        else:
            doc += f"\n## Event delivery (`make bench-events`)\n\n{begin}\n{text}\n{end}\n"
        open(path, "w").write(doc)


if __name__ == "__main__":
    main()
