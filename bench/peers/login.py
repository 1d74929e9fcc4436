"""Logs in COUNT times against a peer and writes one session cookie
("name=value") per line for me.lua.

  login.py PORT PATH BODY_JSON COUNT OUT_FILE

8 keep-alive connections in parallel; each login is a fresh session (no
cookie is sent back). The file is created 0600.
"""
import http.client
import os
import sys
import threading

port, path, body, count, out = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                 int(sys.argv[4]), sys.argv[5])
cookies = [None] * count
errors = []


def work(start, step):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(start, count, step):
        c.request("POST", path, body=body.replace("{i}", str(i)),
                  headers={"Content-Type": "application/json",
                           "Origin": f"http://127.0.0.1:{port}"})
        r = c.getresponse()
        r.read()
        set_cookie = r.getheader("Set-Cookie")
        if r.status >= 300 or not set_cookie:
            errors.append(r.status)
            return
        cookies[i] = "; ".join(p.split(";")[0] for p in r.headers.get_all("Set-Cookie"))
    c.close()


threads = [threading.Thread(target=work, args=(s, 8)) for s in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f"login: {path} answered {errors[0]}")
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("\n".join(cookies) + "\n")
