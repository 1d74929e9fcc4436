"""A real `tessera serve` process for the integration tests, and an HTTP
client for it. Standard library only (plus PyJWT where a test needs it).

Secrets (the API key, tokens) never reach test output: assertion messages
print statuses, codes and problem details, never request or response bodies
that carry tokens.
"""

import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

TESSERA = None  # set by the test runner from --tessera


def take_path_flags(argv, flags):
    """Removes each `--flag PATH` of `flags` from argv (in place) and returns
    {flag: absolute path} for those given; `--tessera` also sets TESSERA."""
    global TESSERA
    found = {}
    for flag in flags:
        if flag in argv:
            i = argv.index(flag)
            found[flag] = os.path.abspath(argv[i + 1])
            del argv[i:i + 2]
    if "--tessera" in found:
        TESSERA = found["--tessera"]
    return found


def need(var):
    """The value of a server's environment variable (scripts/with-servers.sh
    sets them); without it the test fails when TESSERA_REQUIRE_SERVERS=1
    (make test, CI) and is skipped otherwise."""
    value = os.environ.get(var)
    if value:
        return value
    if os.environ.get("TESSERA_REQUIRE_SERVERS") == "1":
        raise AssertionError(f"{var} is not set (run through scripts/with-servers.sh)")
    raise unittest.SkipTest(f"{var} is not set")


_NPM_TOOLS = None


def npm_tools():
    """The directory of tests/interop/npm's packages and scripts, installed
    by scripts/node-tools.sh on first use (once per process)."""
    global _NPM_TOOLS
    if _NPM_TOOLS is None:
        root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        out = subprocess.run([os.path.join(root, "scripts", "node-tools.sh"),
                              os.path.join(root, "tests", "interop", "npm")],
                             check=True, capture_output=True, text=True, timeout=300)
        _NPM_TOOLS = out.stdout.strip().splitlines()[-1]
    return _NPM_TOOLS


def free_port():
    """A loopback port nothing listens on (for now)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_resource_service(binary, auth, redis_url, directory):
    """examples/resource_service against the Authority `auth` (its API key
    for epochs and introspection) and Redis at `redis_url` (None: none), on a free port,
    its log in `directory`. Returns (process, port, log file); raises
    AssertionError when it exits or is not ready within 20 s."""
    ready = os.path.join(directory, "port")
    log = open(os.path.join(directory, "rs.log"), "wb")
    args = [binary, "--listen", "127.0.0.1:0", "--ready-file", ready,
            "--authority", f"http://127.0.0.1:{auth.port}"]
    if redis_url:
        args += ["--redis", redis_url]
    proc = subprocess.Popen(
        args,
        env=dict(os.environ, TESSERA_API_KEY=auth.api_key), stdout=log,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            log.close()
            raise AssertionError(f"resource_service exited {proc.returncode}")
        try:
            with open(ready) as f:
                return proc, int(f.read().strip()), log
        except (FileNotFoundError, ValueError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            raise AssertionError("resource_service never became ready")
        time.sleep(0.05)


def run_with_resource_service(script):
    """The main of a test file that takes --tessera PATH and
    --resource-service PATH; returns the latter (None when not given)."""
    argv = list(sys.argv)
    rs = take_path_flags(argv, ("--tessera", "--resource-service")).get("--resource-service")
    if TESSERA is None:
        sys.exit(f"usage: {script} --tessera PATH [--resource-service PATH] [unittest args]")
    return rs, argv


def run_tests(script):
    """The main of a test file that needs only --tessera PATH."""
    argv = list(sys.argv)
    take_path_flags(argv, ("--tessera",))
    if TESSERA is None:
        sys.exit(f"usage: {script} --tessera PATH [unittest args]")
    unittest.main(module="__main__", argv=argv, verbosity=2)
READY_WAIT_S = 20.0


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def code(self):
        try:
            return self.json.get("code")
        except (ValueError, AttributeError):
            return None

    def __repr__(self):  # never the body: it may hold a token
        return f"<Response {self.status} code={self.code!r}>"


class Authority:
    """Starts `tessera serve` on a fresh (or given) data dir, port 0."""

    def __init__(self, env=None, args=None, data_dir=None, secure_cookie=False):
        # secure_cookie=False (most tests): the cookie is plain
        # `tessera_session`; True: the defaults, `__Host-tessera_session`.
        self.secure_cookie = secure_cookie
        self.env_extra = dict(env or {})
        self.args_extra = list(args or [])
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="tessera-it-")
        self.api_key = secrets.token_urlsafe(32)
        self.proc = None
        self.port = None
        self.log_path = None

    def start(self):
        if TESSERA is None:
            raise RuntimeError("--tessera PATH is required")
        ready = os.path.join(self.data_dir, "port")
        if os.path.exists(ready):
            os.unlink(ready)
        env = dict(os.environ)
        digest = hashlib.sha256(self.api_key.encode()).hexdigest()
        env["TESSERA_API_KEY_HASHES"] = f"sha256:{digest}"
        env.update(self.env_extra)
        args = [TESSERA, "serve", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0",
                "--ready-file", ready, "--mode", "dev",
                "--cookie-secure", "true" if self.secure_cookie else "false"]
        args += self.args_extra
        self.log_path = os.path.join(self.data_dir, f"serve-{time.time_ns()}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tessera serve exited with {self.proc.returncode} before it "
                                   f"was ready; log:\n{self.log_tail()}")
            try:
                with open(ready) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"tessera serve wrote no ready file within {READY_WAIT_S}s; "
                           f"log:\n{self.log_tail()}")

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return "(no log)"

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def create_api_key(self, name, scopes):
        """`tessera api-keys create` on this data dir; the key (shown once).
        A running server takes it on its next reload (send SIGHUP)."""
        out = subprocess.run([TESSERA, "api-keys", "create", "--data-dir", self.data_dir,
                              "--name", name, "--scopes", scopes],
                             capture_output=True, check=True, stdin=subprocess.DEVNULL)
        return json.loads(out.stdout)["key"]

    def revoke_api_key(self, name):
        subprocess.run([TESSERA, "api-keys", "revoke", "--data-dir", self.data_dir, name],
                       capture_output=True, check=True, stdin=subprocess.DEVNULL)

    def wait_for_key(self, key, works=True, timeout=10):
        """Until an API key is accepted (or, works=False, refused) by GET /v1/epoch."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.request("GET", "/v1/epoch", auth=f"Bearer {key}")
            if (r.status != 401) == works:
                return r
            time.sleep(0.05)
        raise AssertionError(f"API key still {'refused' if works else 'accepted'} after {timeout}s")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    def sanitizer_report(self):
        """The first sanitizer finding in the log, or None."""
        try:
            text = self.log_text()
        except OSError:
            return None
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            if marker in text:
                i = text.index(marker)
                return text[i:i + 300]
        return None

    def stop_cleanly(self):
        """SIGTERM; raises unless the server exits 0 with no sanitizer finding."""
        rc = self.stop()
        finding = self.sanitizer_report()
        if rc != 0 or finding:
            raise AssertionError(f"tessera serve exited {rc}; sanitizer: {finding}; log:\n"
                                 f"{self.log_tail()}")

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # HTTP ---------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, auth=False, raw=None,
                form=None, timeout=10):
        hdrs = {}
        data = None
        if raw is not None:
            data = raw
        elif form is not None:
            from urllib.parse import urlencode
            data = urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if auth is True:
            hdrs["Authorization"] = f"Bearer {self.api_key}"
        elif isinstance(auth, str):
            hdrs["Authorization"] = auth
        hdrs.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def connect(self, timeout=10, source="127.0.0.1"):
        """A raw socket; `source` another loopback address (127.0.0.2) is
        another client to the server."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                     source_address=(source, 0))
        return s

    # Shortcuts ----------------------------------------------------------
    def issue(self, subject, mode="token", **extra):
        body = {"subject": subject, "mode": mode}
        body.update(extra)
        r = self.request("POST", "/v1/sessions", body, auth=True)
        if r.status != 201:
            raise AssertionError(f"issue failed: {r!r}")
        return r.json

    def validate(self, token, **extra):
        body = {"session_token": token}
        body.update(extra)
        return self.request("POST", "/v1/sessions/validate", body, auth=True)

    def refresh(self, token):
        return self.request("POST", "/v1/tokens/refresh", {"refresh_token": token})

    def introspect(self, token):
        return self.request("POST", "/oauth2/introspect", form={"token": token}, auth=True)
