"""Issues sessions against a running authority for the HTTP load benchmark
and writes their tokens, one per line, for wrk's Lua scripts to read.

  prepare.py PORT API_KEY MODE COUNT OUT_FILE      (MODE: cookie | token)

Cookie mode writes session tokens; token mode writes refresh tokens. Runs 8
keep-alive connections in parallel. The tokens are secrets of a throwaway
benchmark authority; the file is created 0600 and deleted by the caller.
"""
import http.client
import json
import os
import sys
import threading

port, api_key, mode, count, out = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                                   int(sys.argv[4]), sys.argv[5])
key = "session_token" if mode == "cookie" else "refresh_token"
tokens = [None] * count
errors = []


def work(start, step):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(start, count, step):
        body = json.dumps({"subject": f"bench-{i % 5000}", "mode": mode})
        c.request("POST", "/v1/sessions", body=body,
                  headers={"Authorization": f"Bearer {api_key}",
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 201:
            errors.append(r.status)
            return
        tokens[i] = json.loads(data)[key]
    c.close()


threads = [threading.Thread(target=work, args=(s, 8)) for s in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit(f"prepare: issue answered {errors[0]}")
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("\n".join(tokens) + "\n")
