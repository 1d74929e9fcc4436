#!/usr/bin/python3
"""Forward-auth through real proxies: nginx (auth_request) and Caddy
(forward_auth) in front of examples/browser_app, with the configurations
of that directory as docs/guide-proxies.md shows them — only their
loopback ports rewritten to free ones.

Run: /usr/bin/python3 test_proxies.py --tessera PATH [unittest args]
nginx and caddy must be installed (scripts/install-deps.sh proxies), and
for the browser test chromium, node and npm (... browser): a missing one
fails the test, it is never skipped.
"""

import functools
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLE = os.path.join(ROOT, "examples", "browser_app")
# The ports the example configurations name.
TESSERA_PORT, APP_PORT, NGINX_PORT, CADDY_PORT = 8080, 8000, 8081, 8082


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}")


def rewrite(text, ports):
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    return text


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass


class Proxies(unittest.TestCase):
    """One tessera, the app, nginx and Caddy for the whole class."""

    @classmethod
    def setUpClass(cls):
        for tool in ("nginx", "caddy"):
            if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
                raise AssertionError(f"{tool} is not installed (scripts/install-deps.sh proxies)")
        cls.work = tempfile.mkdtemp(prefix="tessera-proxies-")
        cls.procs = []
        nginx_port, caddy_port, app_port = free_port(), free_port(), free_port()
        cls.nginx_port, cls.caddy_port = nginx_port, caddy_port
        # Two static pages for the browser test: one origin CORS allows, one not.
        cls.pages = []
        for _ in range(2):
            handler = functools.partial(Quiet, directory=os.path.join(ROOT, "tests", "browser",
                                                                      "pages"))
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            cls.pages.append(srv)
        cls.listed = f"http://127.0.0.1:{cls.pages[0].server_address[1]}"
        cls.other = f"http://127.0.0.1:{cls.pages[1].server_address[1]}"
        cls.a = Authority(env={
            "TESSERA_CORS_ALLOWED_ORIGINS": cls.listed,
            "TESSERA_PUBLIC_URL": f"http://127.0.0.1:{nginx_port}",
            "TESSERA_AUTHZ_ALLOWED_HOSTS": f"127.0.0.1:{caddy_port}",
            "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
            "TESSERA_AUTHZ_LOGIN_URL": "/login",
            "TESSERA_AUTHZ_UPSTREAM_TOKEN": "true",
        }).start()
        ports = {TESSERA_PORT: cls.a.port, APP_PORT: app_port, NGINX_PORT: nginx_port,
                 CADDY_PORT: caddy_port}
        env = dict(os.environ, TESSERA_URL=f"http://127.0.0.1:{cls.a.port}",
                   TESSERA_API_KEY=cls.a.api_key)
        cls.start([sys.executable, os.path.join(EXAMPLE, "app.py"), "--port", str(app_port),
                   "--show-upstream-token"],
                  app_port, "the example app", env)
        run = os.path.join(cls.work, "nginx")
        os.makedirs(run)
        conf = os.path.join(run, "nginx.conf")
        with open(os.path.join(EXAMPLE, "nginx.conf")) as f, open(conf, "w") as out:
            out.write(rewrite(f.read(), ports))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        cls.start([nginx, "-p", run, "-c", conf], nginx_port, "nginx")
        caddyfile = os.path.join(cls.work, "Caddyfile")
        with open(os.path.join(EXAMPLE, "Caddyfile")) as f, open(caddyfile, "w") as out:
            out.write(rewrite(f.read(), ports))
        cls.start([shutil.which("caddy"), "run", "--config", caddyfile, "--adapter", "caddyfile"],
                  caddy_port, "caddy", dict(os.environ, HOME=cls.work, XDG_DATA_HOME=cls.work,
                                            XDG_CONFIG_HOME=cls.work))

    @classmethod
    def start(cls, argv, port, what, env=None):
        log = open(os.path.join(cls.work, what.replace(" ", "_") + ".log"), "wb")
        p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        cls.procs.append((p, what, log))
        try:
            wait_port(port, p, what)
        except AssertionError:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for p, _, log in reversed(cls.procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        cls.procs = []
        for srv in getattr(cls, "pages", []):
            srv.shutdown()
            srv.server_close()
        cls.pages = []
        if getattr(cls, "a", None):
            cls.a.stop()
            cls.a = None
        shutil.rmtree(cls.work, ignore_errors=True)

    def get(self, port, path, cookie=None, headers=None, method="GET", body=None):
        h = {"Accept": "text/html,application/xhtml+xml"}
        if cookie:
            h["Cookie"] = cookie
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return authority.Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def login(self, port, user):
        origin = f"http://127.0.0.1:{port}"
        r = self.get(port, "/login", method="POST",
                     body=urllib.parse.urlencode({"user": user, "rd": f"{origin}/"}),
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Origin": origin})
        self.assertEqual(r.status, 303, r.body)
        self.assertEqual(r.header("Location"), f"{origin}/")
        cookie = r.header("Set-Cookie")
        self.assertTrue(cookie and cookie.startswith("tessera_session="), cookie)
        return cookie.split(";")[0]

    def verify_access_token(self, token):
        import jwt  # PyJWT: an implementation that is not ours
        header = jwt.get_unverified_header(token)
        self.assertEqual(header["typ"], "at+jwt")
        jwks = self.a.request("GET", "/.well-known/jwks.json").json
        key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        public = jwt.PyJWK(key).key
        return jwt.decode(token, public, algorithms=[header["alg"]], audience="tessera",
                          issuer="tessera")

    def check_proxy(self, port, name):
        origin = f"http://127.0.0.1:{port}"
        # No session: a browser navigation goes to the login page, with the
        # original URL to come back to.
        r = self.get(port, "/some/page?x=1")
        self.assertEqual(r.status, 302, f"{name}: {r!r}")
        location = urllib.parse.urlsplit(r.header("Location"))
        self.assertEqual(location.path, "/login", name)
        self.assertEqual(urllib.parse.parse_qs(location.query)["rd"],
                         [f"{origin}/some/page?x=1"], name)
        # A script gets a 401, never a redirect (nginx: /api/ has no
        # error_page; Caddy: tessera tells navigations from scripts).
        r = self.get(port, "/api/whoami", headers={"Accept": "application/json"})
        self.assertEqual(r.status, 401, f"{name}: {r!r}")
        # A forged identity header without a session gets nowhere.
        r = self.get(port, "/", headers={"X-Tessera-Subject": "mallory"})
        self.assertEqual(r.status, 302, name)

        cookie = self.login(port, f"alice-{name}")
        r = self.get(port, "/", cookie)
        self.assertEqual(r.status, 200, f"{name}: {r!r}")
        self.assertIn(f"<span id=user>alice-{name}</span>".encode(), r.body)
        # The browser's own X-Tessera-Subject never reaches the app.
        r = self.get(port, "/api/whoami", cookie,
                     {"X-Tessera-Subject": "mallory", "Accept": "application/json"})
        self.assertEqual(r.status, 200, name)
        self.assertEqual(r.json["subject"], f"alice-{name}")
        # The app got an access token for the session instead of the cookie,
        # which PyJWT verifies with the authority's JWKS; the next check of
        # the same session hands on the same token.
        token = r.json.get("upstream_token")
        self.assertTrue(token, f"{name}: no upstream token reached the app")
        self.assertNotIn(cookie.split("=", 1)[1], token)
        claims = self.verify_access_token(token)
        self.assertEqual(claims["sub"], f"alice-{name}")
        self.assertTrue(claims["sid"])
        r = self.get(port, "/api/whoami", cookie, {"Accept": "application/json"})
        self.assertEqual(r.json.get("upstream_token"), token, name)
        # A request with a body through the check: the check reads none and
        # does not wait for one.
        t0 = time.monotonic()
        r = self.get(port, "/api/whoami", cookie, {"Content-Type": "text/plain"},
                     method="POST", body=b"x" * 5000)
        self.assertLess(time.monotonic() - t0, 5, name)
        self.assertIn(r.status, (403, 404, 501), name)  # the app's answer, past the check
        # Sign out through the app: the cookie is cleared and no longer works.
        r = self.get(port, "/logout", cookie, {"Origin": origin}, method="POST", body=b"")
        self.assertEqual(r.status, 303, name)
        self.assertIn("Max-Age=0", r.header("Set-Cookie"))
        r = self.get(port, "/", cookie)
        self.assertEqual(r.status, 302, name)

    def test_nginx_auth_request(self):
        self.check_proxy(self.nginx_port, "nginx")

    def test_caddy_forward_auth(self):
        self.check_proxy(self.caddy_port, "caddy")

    # Traefik and Envoy are not packaged in Debian: their requests are
    # replayed as their documentation describes them.
    #  - Traefik forwardAuth: a GET to the address, no body, the original
    #    request's headers copied (Cookie, Accept, ...) plus X-Forwarded-
    #    Method, -Proto, -Host, -Uri and -For.
    #  - Envoy ext_authz (HTTP service, path_prefix /v1/authz/ext-authz):
    #    the original method and path below the prefix, Content-Length: 0,
    #    the headers allowed_headers lets through, Host the original one.
    def traefik(self, method, uri, cookie=None, accept="text/html"):
        host = f"127.0.0.1:{self.nginx_port}"
        h = {"Accept": accept, "X-Forwarded-Method": method, "X-Forwarded-Proto": "http",
             "X-Forwarded-Host": host, "X-Forwarded-Uri": uri, "X-Forwarded-For": "198.51.100.7",
             "User-Agent": "Mozilla/5.0 (replayed)"}
        if cookie:
            h["Cookie"] = cookie
        conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=10)
        try:
            conn.request("GET", "/v1/authz/forward-auth", headers=h)
            r = conn.getresponse()
            return authority.Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def envoy(self, method, path, cookie=None, accept="application/json"):
        h = {"Host": f"127.0.0.1:{self.nginx_port}", "Accept": accept, "Content-Length": "0",
             "X-Forwarded-Proto": "http", "X-Request-Id": "envoy-replay-1",
             "X-Envoy-Expected-Rq-Timeout-Ms": "200"}
        if cookie:
            h["Cookie"] = cookie
        conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=10)
        try:
            conn.putrequest(method, "/v1/authz/ext-authz" + path, skip_host=True,
                            skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            conn.endheaders()
            r = conn.getresponse()
            return authority.Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def test_traefik_forward_auth_replayed(self):
        r = self.traefik("POST", "/orders/new?step=2")
        self.assertEqual(r.status, 303, r)  # a navigation that was a POST: 303
        location = urllib.parse.urlsplit(r.header("Location"))
        self.assertEqual(location.path, "/login")
        self.assertEqual(urllib.parse.parse_qs(location.query)["rd"],
                         [f"http://127.0.0.1:{self.nginx_port}/orders/new?step=2"])
        r = self.traefik("GET", "/api/x", accept="application/json")
        self.assertEqual(r.status, 401)
        self.assertTrue(r.header("WWW-Authenticate"))
        cookie = self.login(self.nginx_port, "carol-traefik")
        r = self.traefik("GET", "/dashboard", cookie)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.header("X-Tessera-Subject"), "carol-traefik")
        self.assertTrue(r.header("X-Tessera-Session-Id"))
        self.assertEqual(r.header("Cache-Control"), "no-store")
        # authResponseHeaders: [Authorization] hands the upstream token on;
        # no Set-Cookie on an allow (addAuthCookiesToResponse has none to add).
        token = (r.header("Authorization") or "").removeprefix("Bearer ")
        self.assertEqual(self.verify_access_token(token)["sub"], "carol-traefik")
        self.assertEqual(r.headers_named("Set-Cookie"), [])

    def test_envoy_ext_authz_replayed(self):
        r = self.envoy("DELETE", "/api/orders/7?force=1")
        self.assertEqual(r.status, 401, r)
        self.assertTrue(r.header("WWW-Authenticate"))
        r = self.envoy("GET", "/inbox", accept="text/html")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(urllib.parse.parse_qs(urllib.parse.urlsplit(
            r.header("Location")).query)["rd"], [f"http://127.0.0.1:{self.nginx_port}/inbox"])
        cookie = self.login(self.nginx_port, "dave-envoy")
        tokens = set()
        for method in ("GET", "POST", "DELETE", "OPTIONS", "PATCH"):
            r = self.envoy(method, "/api/orders/7", cookie)
            self.assertEqual(r.status, 200, f"{method}: {r!r}")  # exactly 200: Envoy's allow
            self.assertEqual(r.body, b"")
            self.assertEqual(r.header("X-Tessera-Subject"), "dave-envoy")
            tokens.add(r.header("Authorization"))
        # allowed_upstream_headers: Authorization — one token for the session.
        self.assertEqual(len(tokens), 1, tokens)
        # Another host than public_url's or the allowed ones: 403.
        conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=10)
        conn.request("GET", "/v1/authz/ext-authz/x",
                     headers={"Host": "other.example", "Cookie": cookie})
        r = conn.getresponse()
        self.assertEqual(r.status, 403)
        conn.close()

    def test_chromium_logs_in_signs_out_a_device_and_meets_csrf_and_cors(self):
        # Debian's chromium through playwright-core (tests/browser/): the
        # whole flow a user sees, in a real browser.
        tools = subprocess.run([os.path.join(ROOT, "scripts", "browser-tools.sh")],
                               check=True, capture_output=True, text=True, timeout=600)
        tools_dir = tools.stdout.strip().splitlines()[-1]
        pair = self.a.issue("alice-cors")  # a token pair, refreshed by two tabs at once
        shot = os.environ.get("TESSERA_ACCOUNT_SCREENSHOT",
                              os.path.join(self.work, "account.png"))
        r = subprocess.run(["node", os.path.join(tools_dir, "browser_test.mjs"),
                            f"http://127.0.0.1:{self.nginx_port}", f"http://127.0.0.1:{self.a.port}",
                            self.listed, self.other, shot, pair["refresh_token"]],
                           capture_output=True, text=True, timeout=180, cwd=tools_dir)
        self.assertEqual(r.returncode, 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertIn("every check passed", r.stdout)
        self.assertTrue(os.path.getsize(shot) > 1000, "no screenshot")

    def test_logout_by_cookie_through_the_proxy_needs_the_apps_origin(self):
        port = self.nginx_port
        cookie = self.login(port, "bob-csrf")
        r = self.get(port, "/v1/logout", cookie, {"Origin": "https://evil.example"},
                     method="POST", body=b"")
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json["code"], "origin_not_allowed")
        self.assertEqual(self.get(port, "/", cookie).status, 200)
        r = self.get(port, "/v1/logout", cookie, {"Origin": f"http://127.0.0.1:{port}"},
                     method="POST", body=b"")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.get(port, "/", cookie).status, 302)


if __name__ == "__main__":
    authority.run_tests("test_proxies.py")
