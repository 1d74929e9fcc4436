#!/usr/bin/env python3
"""The example app of docs/guide-proxies.md: a page that a proxy protects
with tessera's forward-auth, and the login that gives the browser its
session cookie. Python's standard library only.

The proxy (nginx.conf, Caddyfile beside this file) asks tessera about every
request and passes the answer on as `X-Tessera-Subject`; it strips that
header from what the browser sends, so the app can believe it. With
`authz_upstream_token = true` the proxy also passes tessera's short-lived
access token as `Authorization: Bearer`, for services that verify it
themselves (`tessera::verify`); this app only says whether it got one
(`--show-upstream-token` shows it, for the tests). The app itself talks to
tessera only to log in and out, with its API key.

    TESSERA_URL=http://127.0.0.1:8080 TESSERA_API_KEY=tsk_... \\
        python3 app.py --port 8000

Routes: GET / and /api/whoami (behind forward-auth), GET/POST /login,
POST /logout, GET /healthz.
"""
import argparse
import html
import http.client
import http.server
import json
import os
import urllib.parse

TESSERA = urllib.parse.urlsplit(os.environ.get("TESSERA_URL", "http://127.0.0.1:8080"))
API_KEY = os.environ.get("TESSERA_API_KEY", "")
SHOW_UPSTREAM_TOKEN = False
COOKIE = os.environ.get("TESSERA_COOKIE_NAME", "tessera_session")


def tessera(method, path, body):
    """One call to the authority; returns (status, headers, parsed JSON)."""
    conn = http.client.HTTPConnection(TESSERA.hostname, TESSERA.port or 80, timeout=10)
    try:
        conn.request(method, path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json",
                              "Authorization": f"Bearer {API_KEY}"})
        r = conn.getresponse()
        data = r.read()
        return r.status, r.getheaders(), json.loads(data) if data else {}
    finally:
        conn.close()


def page(title, body):
    return (f"<!doctype html><html lang=en><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><body>{body}</body></html>").encode()


class App(http.server.BaseHTTPRequestHandler):
    server_version = "browser-app"

    def log_message(self, fmt, *args):  # quiet: the tests read stdout
        pass

    def send(self, status, body=b"", ctype="text/html; charset=utf-8", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def cookie(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    def same_origin(self):
        # CSRF for the app's own form: a browser sends Origin on every POST.
        origin = self.headers.get("Origin")
        return origin is not None and urllib.parse.urlsplit(origin).netloc == self.headers["Host"]

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        user = self.headers.get("X-Tessera-Subject", "")
        if url.path == "/healthz":
            return self.send(200, b"ok", "text/plain")
        if url.path == "/login":
            rd = urllib.parse.parse_qs(url.query).get("rd", ["/"])[0]
            return self.send(200, page("Sign in", (
                "<h1>Sign in</h1><form method=post action=/login>"
                f"<input type=hidden name=rd value='{html.escape(rd, quote=True)}'>"
                "<label>User <input name=user autocomplete=username></label> "
                "<button>Sign in</button></form>")))
        if url.path == "/api/whoami":
            answer = {"subject": user}
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                answer["upstream_token"] = auth[7:] if SHOW_UPSTREAM_TOKEN else True
            return self.send(200, json.dumps(answer).encode(), "application/json")
        if url.path == "/":
            return self.send(200, page("Home", (
                f"<h1>Hello, <span id=user>{html.escape(user)}</span></h1>"
                "<p><a href=/account>Your devices</a></p>"
                "<form method=post action=/logout><button>Sign out</button></form>")))
        return self.send(404, page("Not found", "<h1>Not found</h1>"))

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode()) if length else {}
        if not self.same_origin():
            return self.send(403, page("Refused", "<h1>Cross-site form refused</h1>"))
        if url.path == "/login":
            user = form.get("user", [""])[0].strip()
            if not user:
                return self.send(400, page("Sign in", "<h1>Name a user</h1>"))
            # A real app checks the password here. Then tessera issues the
            # session; its Set-Cookie goes to the browser as it is.
            status, headers, _ = tessera("POST", "/v1/sessions", {
                "subject": user, "mode": "cookie",
                "metadata": {"ip": self.headers.get("X-Forwarded-For", self.client_address[0]),
                             "user_agent": self.headers.get("User-Agent", "")}})
            if status != 201:
                return self.send(502, page("Error", f"<h1>tessera answered {status}</h1>"))
            rd = form.get("rd", ["/"])[0]
            target = urllib.parse.urlsplit(rd)
            # Only back to this host: never an open redirect.
            if target.netloc not in ("", self.headers["Host"]) or not rd.startswith(("/", "http")):
                rd = "/"
            cookies = [("Set-Cookie", v) for k, v in headers if k.lower() == "set-cookie"]
            return self.send(303, headers=[("Location", rd)] + cookies)
        if url.path == "/logout":
            token = self.cookie()
            out = [("Location", "/login")]
            if token:
                _, headers, _ = tessera("POST", "/v1/logout", {"session_token": token})
                out += [("Set-Cookie", v) for k, v in headers if k.lower() == "set-cookie"]
            return self.send(303, headers=out)
        return self.send(404, page("Not found", "<h1>Not found</h1>"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--ready-file", help="write the port here once listening")
    ap.add_argument("--show-upstream-token", action="store_true",
                    help="/api/whoami returns the upstream token itself (tests only)")
    args = ap.parse_args()
    global SHOW_UPSTREAM_TOKEN
    SHOW_UPSTREAM_TOKEN = args.show_upstream_token
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), App)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.replace(args.ready_file + ".tmp", args.ready_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
