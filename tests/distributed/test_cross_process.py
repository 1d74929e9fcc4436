"""Across processes (docs/design.md §1, §5, §7): several `tessera serve`
instances on one PostgreSQL, an epoch bump reaching a resource service
through Redis, and a PostgreSQL outage under HTTP traffic.

Needs the servers of scripts/with-servers.sh (TESSERA_TEST_POSTGRES_URL,
TESSERA_TEST_REDIS_URL, TESSERA_TEST_PG_BIN). Without them the tests fail
when TESSERA_REQUIRE_SERVERS=1 (make test, CI), and are skipped otherwise.

  test_cross_process.py --tessera PATH --resource-service PATH [unittest args]
"""

import os
import secrets
import shutil
import socket
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import authority  # noqa: E402
from authority import Authority, free_port, need  # noqa: E402

RESOURCE_SERVICE = None


def fresh_schema():
    return "x_" + secrets.token_hex(6)


def shared_keys():
    """Signing and secret keys that every instance of a test loads."""
    d = tempfile.mkdtemp(prefix="tessera-keys-")
    subprocess.run([authority.TESSERA, "keys", "generate", "--data-dir", d], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d, ["--signing-keys", os.path.join(d, "keys", "signing.jwks"),
               "--secret-keys", os.path.join(d, "keys", "secrets.json")]


class TestTwoAuthoritiesOnePostgres(unittest.TestCase):
    """Two instances, one database: the renewal rules hold across them."""

    def setUp(self):
        url = need("TESSERA_TEST_POSTGRES_URL")
        self.keys_dir, key_args = shared_keys()
        args = key_args + ["--store", url, "--postgres-schema", fresh_schema(),
                           "--refresh-grace", "1s"]
        self.a = Authority(args=args).start()
        self.b = Authority(args=args).start()

    def tearDown(self):
        self.a.cleanup()
        self.b.cleanup()
        shutil.rmtree(self.keys_dir, ignore_errors=True)

    def test_concurrent_refreshes_split_across_instances_make_one_lineage(self):
        issued = self.a.issue("alice-" + secrets.token_hex(4))
        token = issued["refresh_token"]
        results = [None] * 50
        barrier = threading.Barrier(50)

        def go(i):
            barrier.wait()
            results[i] = (self.a if i % 2 == 0 else self.b).refresh(token)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted({r.status for r in results})
        self.assertEqual(statuses, [200], f"statuses {statuses}, codes "
                         f"{sorted({str(r.code) for r in results})}")
        successors = {r.json["refresh_token"] for r in results}
        self.assertEqual(len(successors), 1, "two lineages: instances disagreed")
        sessions = self.b.request("GET", f"/v1/subjects/{issued['session']['subject']}/sessions",
                                  auth=True).json["sessions"]
        self.assertEqual([s["generation"] for s in sessions], [1])
        # The successor renews at either instance.
        self.assertEqual(self.b.refresh(successors.pop()).status, 200)

    def test_a_replay_at_b_of_a_token_rotated_at_a_revokes_the_family(self):
        issued = self.a.issue("bob-" + secrets.token_hex(4))
        first = issued["refresh_token"]
        rotated = self.a.refresh(first)
        self.assertEqual(rotated.status, 200)
        successor = rotated.json["refresh_token"]
        # Past the 1 s grace window (whole seconds: it ends within 2 s of the
        # rotation): `first` is now a replay.
        time.sleep(2.05)
        replay = self.b.refresh(first)
        self.assertEqual((replay.status, replay.code), (401, "refresh_token_reused"))
        after = self.a.refresh(successor)
        self.assertEqual(after.status, 401, "the successor still works after a replay")
        self.assertFalse(self.a.introspect(issued["access_token"]).json["active"])


class TestEpochBumpReachesAResourceService(unittest.TestCase):
    """authority --redis-url → Redis pub/sub → resource service's verifier."""

    def setUp(self):
        redis_url = need("TESSERA_TEST_REDIS_URL")
        if RESOURCE_SERVICE is None:
            self.fail("--resource-service PATH is required")
        self.auth = Authority(args=["--redis-url", redis_url]).start()
        self.dir = tempfile.mkdtemp(prefix="tessera-rs-")
        self.rs, self.rs_port, self.log = authority.start_resource_service(
            RESOURCE_SERVICE, self.auth, redis_url, self.dir)

    def tearDown(self):
        self.rs.terminate()
        self.rs.wait(timeout=10)
        self.log.close()
        self.auth.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def hello(self, token):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.rs_port, timeout=5)
        try:
            c.request("GET", "/hello", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            return r.status, r.getheader("WWW-Authenticate") or "", r.read()
        finally:
            c.close()

    def test_a_bump_makes_older_tokens_fail_at_the_resource_service_within_a_second(self):
        subject = "carol-" + secrets.token_hex(4)
        token = self.auth.issue(subject)["access_token"]
        status, _, _ = self.hello(token)
        self.assertEqual(status, 200)
        self.hello(token)  # the epoch is now in the service's in-process cache (60 s TTL)
        start = time.monotonic()
        bump = self.auth.request("POST", f"/v1/subjects/{subject}/epoch", auth=True)
        self.assertEqual(bump.status, 200)
        while True:
            status, challenge, _ = self.hello(token)
            took = time.monotonic() - start
            if status == 401:
                break
            self.assertLess(took, 3.0, "the bump never reached the resource service")
            time.sleep(0.002)
        self.assertIn("epoch_stale", challenge)
        print(f"epoch bump propagation through the authority and Redis: {took * 1000:.1f} ms",
              file=sys.stderr)
        self.assertLess(took, 1.0)
        # A token minted after the bump is accepted.
        fresh = self.auth.issue(subject)["access_token"]
        self.assertEqual(self.hello(fresh)[0], 200)


class TestRedisDownAtTheAuthority(unittest.TestCase):
    """A bump still succeeds (the store is the record) and serve reports the
    failed publication in its log."""

    def test_a_bump_that_cannot_be_published_is_logged(self):
        auth = Authority(args=["--redis-url", f"redis://127.0.0.1:{free_port()}",
                               "--key-reload-interval", "1s"]).start()
        try:
            subject = "gina-" + secrets.token_hex(4)
            bump = auth.request("POST", f"/v1/subjects/{subject}/epoch", auth=True)
            self.assertEqual((bump.status, bump.json["epoch"]), (200, 1))
            deadline = time.monotonic() + 5
            while "epoch_publish_failed" not in auth.log_text():
                self.assertLess(time.monotonic(), deadline, "the failed publication was not logged")
                time.sleep(0.1)
            self.assertEqual(auth.stop(), 0)
        finally:
            auth.cleanup()


class TestRateLimitsAcrossInstances(unittest.TestCase):
    """Failed attempts count over every instance through Redis: a guesser
    who alternates between two authorities is refused once the shared
    window is over its allowance, long before either instance's own bucket
    is empty; then both refuse that address and no other."""

    def setUp(self):
        redis_url = need("TESSERA_TEST_REDIS_URL")
        # burst 10, 1/min: one instance alone lets 10 through at once; the
        # shared 10 s window allows 10 + 10/60 over both.
        args = ["--redis-url", redis_url, "--trusted-proxies", "127.0.0.1",
                "--rate-limit-auth-failures", "1/min", "--rate-limit-auth-burst", "10"]
        self.a = Authority(args=args).start()
        self.b = Authority(args=args).start()

    def tearDown(self):
        self.a.cleanup()
        self.b.cleanup()

    def test_a_guesser_spread_over_two_instances_is_refused_by_both(self):
        # A client address of this run only (through the trusted proxy's
        # X-Forwarded-For), so other tests on this Redis never add to it.
        client = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        headers = {"X-Forwarded-For": client}
        # Start early in a 10 s window, so the run does not straddle two.
        if time.time() % 10 > 4:
            time.sleep(10 - time.time() % 10 + 0.05)
        answers = []
        for i in range(20):
            one = self.a if i % 2 == 0 else self.b
            r = one.request("POST", "/v1/tokens/refresh",
                            {"refresh_token": "guess-" + secrets.token_hex(16)}, headers=headers)
            answers.append(r.status)
            if r.status == 429:
                self.assertEqual(r.code, "rate_limited")
                self.assertGreaterEqual(int(r.header("Retry-After")), 1)
                break
            time.sleep(0.25)  # > the 100 ms flush: each instance hears the total
        self.assertEqual(answers[-1], 429, f"never limited: {answers}")
        self.assertTrue(11 <= len(answers) <= 13,
                        f"the shared allowance is 10 (+ flush lag), not 20: {answers}")
        self.assertTrue(all(s == 401 for s in answers[:-1]), answers)
        for one in (self.a, self.b):
            r = one.request("POST", "/v1/tokens/refresh", {"refresh_token": "guess"},
                            headers=headers)
            self.assertEqual(r.status, 429, "both instances refuse the address")
        other = dict(headers, **{"X-Forwarded-For": "192.0.2.77"})
        self.assertEqual(self.b.request("POST", "/v1/tokens/refresh", {"refresh_token": "guess"},
                                        headers=other).status, 401)


class TestResourceServiceVerifier(unittest.TestCase):
    """The example resource service against a real authority, without Redis:
    keys over HTTP (rotation, fail-closed start) and liveness by
    introspection."""

    def start_rs(self, authority_url, *extra):
        ready = os.path.join(self.dir, f"port-{time.time_ns()}")
        env = dict(os.environ, TESSERA_API_KEY=self.auth.api_key)
        log = open(os.path.join(self.dir, "rs.log"), "ab")
        proc = subprocess.Popen([RESOURCE_SERVICE, "--listen", "127.0.0.1:0", "--ready-file",
                                 ready, "--authority", authority_url, *extra],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return proc, None
            try:
                with open(ready) as f:
                    return proc, int(f.read().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        proc.kill()
        self.fail("resource_service never became ready")

    def setUp(self):
        if RESOURCE_SERVICE is None:
            self.fail("--resource-service PATH is required")
        self.auth = Authority(args=["--key-reload-interval", "1s"]).start()
        self.dir = tempfile.mkdtemp(prefix="tessera-rs-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)
        self.auth.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def hello(self, port, token):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/hello", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            return r.status, r.getheader("WWW-Authenticate") or ""
        finally:
            c.close()

    def test_no_keys_no_service(self):
        proc, port = self.start_rs(f"http://127.0.0.1:{free_port()}")
        self.assertIsNone(port, "started without any key")
        self.assertNotEqual(proc.wait(timeout=10), 0)

    def test_a_logout_reaches_the_service_through_introspection(self):
        proc, port = self.start_rs(f"http://127.0.0.1:{self.auth.port}", "--liveness")
        self.procs.append(proc)
        issued = self.auth.issue("erin-" + secrets.token_hex(4))
        self.assertEqual(self.hello(port, issued["access_token"])[0], 200)
        out = self.auth.request("POST", "/v1/logout", {"refresh_token": issued["refresh_token"]})
        self.assertEqual(out.status, 200)
        deadline = time.monotonic() + 3
        while True:
            status, challenge = self.hello(port, issued["access_token"])
            if status == 401:
                break
            self.assertLess(time.monotonic(), deadline, "a revoked session still admitted")
            time.sleep(0.05)
        self.assertIn("session_revoked", challenge)

    def test_tokens_of_a_rotated_key_verify_without_a_restart(self):
        proc, port = self.start_rs(f"http://127.0.0.1:{self.auth.port}")
        self.procs.append(proc)
        old = self.auth.issue("frank-" + secrets.token_hex(4))["access_token"]
        self.assertEqual(self.hello(port, old)[0], 200)
        # Two rotations: the signing key is then one that did not exist when
        # the resource service fetched the JWKS (one rotation would activate
        # the pre-published `next` key, which it already holds).
        for _ in range(2):
            subprocess.run([authority.TESSERA, "keys", "rotate", "--data-dir",
                            self.auth.data_dir],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.auth.send_signal(__import__("signal").SIGHUP)
        import jwt
        deadline = time.monotonic() + 5
        while True:
            new = self.auth.issue("frank-" + secrets.token_hex(4))["access_token"]
            if jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]:
                break
            self.assertLess(time.monotonic(), deadline, "the authority did not rotate")
            time.sleep(0.1)
        # The resource service's cached JWKS lacks the new kid: it looks
        # again (once), and both tokens verify.
        self.assertEqual(self.hello(port, new)[0], 200)
        self.assertEqual(self.hello(port, old)[0], 200)


class TestPostgresRestartUnderTraffic(unittest.TestCase):
    """An outage answers 503 store_unavailable, never a wrong 401, and service
    resumes by itself. The test runs a PostgreSQL of its own (restarting the
    shared one would break the tests beside it)."""

    def setUp(self):
        self.bin = need("TESSERA_TEST_PG_BIN")
        self.dir = tempfile.mkdtemp(prefix="tessera-pg-")
        self.as_pg = []
        if os.geteuid() == 0:
            self.as_pg = ["runuser", "-u", "postgres", "--"]
            os.chmod(self.dir, 0o777)
        self.port = free_port()
        subprocess.run(self.as_pg + [f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U",
                                     "postgres", "--auth=trust", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pg("start")
        self.auth = Authority(args=[
            "--store", f"postgresql://postgres@127.0.0.1:{self.port}/postgres"]).start()

    def pg(self, action):
        cmd = self.as_pg + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-w", "-t", "60"]
        if action == "start":
            cmd += ["-l", f"{self.dir}/log", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir}",
                    "start"]
        else:
            cmd += ["-m", "immediate", "stop"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def tearDown(self):
        self.auth.cleanup()
        subprocess.run(self.as_pg + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m",
                                     "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_requests_during_an_outage_answer_503_and_service_resumes(self):
        subject = "dave-" + secrets.token_hex(4)
        cookie = self.auth.issue(subject, mode="cookie")["session_token"]
        self.assertEqual(self.auth.validate(cookie).status, 200)
        self.pg("stop")
        for _ in range(5):
            r = self.auth.validate(cookie)
            self.assertEqual((r.status, r.code), (503, "store_unavailable"),
                             "an outage must never look like a bad session")
            issue = self.auth.request("POST", "/v1/sessions", {"subject": subject,
                                                               "mode": "token"}, auth=True)
            self.assertEqual((issue.status, issue.code), (503, "store_unavailable"))
        ready = self.auth.request("GET", "/readyz")
        self.assertEqual(ready.status, 503)
        self.pg("start")
        deadline = time.monotonic() + 10
        while True:
            r = self.auth.validate(cookie)
            if r.status == 200:
                break
            self.assertEqual((r.status, r.code), (503, "store_unavailable"))
            self.assertLess(time.monotonic(), deadline, "service did not resume by itself")
            time.sleep(0.1)
        # Reads answer again; readiness comes back once a write goes through
        # (or 10 s after the last failed one).
        issue = self.auth.request("POST", "/v1/sessions", {"subject": subject, "mode": "token"},
                                  auth=True)
        self.assertEqual(issue.status, 201)
        self.assertEqual(self.auth.request("GET", "/readyz").status, 200)
        self.assertEqual(self.auth.stop(), 0)


class Forwarder:
    """A TCP forwarder on loopback standing for the network between the
    authority and Redis: cut() drops every connection and refuses new ones
    (a partition the resource services do not see), restore() heals it."""

    def __init__(self, target_port):
        self.target = target_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.restore()

    def restore(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def cut(self):
        with self.lock:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            self.listener.close()
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []

    def _accept(self, ls):
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def redis_get(port, key):
    """GET over RESP, no client library."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        k = key.encode()
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k))
        data = b""
        while b"\r\n" not in data or (data.startswith(b"$") and not data.startswith(b"$-1")
                                        and data.count(b"\r\n") < 2):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if data.startswith(b"$-1"):
        return None
    return data.split(b"\r\n")[1].decode()


class TestABumpLostToRedisIsDeliveredLater(unittest.TestCase):
    """The outbox: a bump the authority could not publish (Redis unreachable
    for it alone) is retried until Redis takes it, also across a kill -9."""

    def setUp(self):
        redis_url = need("TESSERA_TEST_REDIS_URL")
        if RESOURCE_SERVICE is None:
            self.fail("--resource-service PATH is required")
        self.redis_port = int(redis_url.rsplit(":", 1)[1])
        self.net = Forwarder(self.redis_port)
        self.data_dir = tempfile.mkdtemp(prefix="tessera-outbox-")
        self.args = ["--redis-url", f"redis://127.0.0.1:{self.net.port}"]
        self.auth = Authority(args=self.args, data_dir=self.data_dir).start()
        self.dir = tempfile.mkdtemp(prefix="tessera-rs-")
        self.rs, self.rs_port, self.log = authority.start_resource_service(
            RESOURCE_SERVICE, self.auth, redis_url, self.dir)

    def tearDown(self):
        self.rs.terminate()
        self.rs.wait(timeout=10)
        self.log.close()
        self.auth.cleanup()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def hello(self, token):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.rs_port, timeout=5)
        try:
            c.request("GET", "/hello", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def test_a_bump_made_while_redis_is_unreachable_reaches_the_resource_service_later(self):
        subject = "outbox-" + secrets.token_hex(4)
        token = self.auth.issue(subject)["access_token"]
        self.assertEqual(self.hello(token), 200)  # sv:{subject} = 0 is now in Redis
        self.net.cut()
        bump = self.auth.request("POST", f"/v1/subjects/{subject}/epoch", auth=True)
        self.assertEqual(bump.status, 200, "the store is the record: the bump succeeds")
        time.sleep(1.0)
        self.assertEqual(redis_get(self.redis_port, f"sv:{subject}"), "0",
                         "the bump cannot have reached Redis yet")
        self.net.restore()
        start = time.monotonic()
        while redis_get(self.redis_port, f"sv:{subject}") != "1":
            self.assertLess(time.monotonic() - start, 20, "the bump was never delivered")
            time.sleep(0.1)
        took = time.monotonic() - start
        deadline = time.monotonic() + 10  # the service's cache TTL (5 s) at most
        while self.hello(token) == 200:
            self.assertLess(time.monotonic(), deadline, "the service still admits the token")
            time.sleep(0.1)
        self.assertIn("epoch_publish_failed", self.auth.log_text())
        print(f"a bump lost to a partition reached Redis {took:.2f}s after it healed",
              flush=True)

    def test_undelivered_bumps_survive_a_kill_9_and_are_delivered_after_restart(self):
        subjects = [f"kill-{secrets.token_hex(3)}-{i}" for i in range(20)]
        self.net.cut()
        for s in subjects:
            self.assertEqual(
                self.auth.request("POST", f"/v1/subjects/{s}/epoch", auth=True).status, 200)
        self.auth.send_signal(signal.SIGKILL)
        self.auth.proc.wait(timeout=10)
        self.auth.log.close()
        self.assertEqual([redis_get(self.redis_port, f"sv:{s}") for s in subjects],
                         [None] * len(subjects), "nothing reached Redis before the kill")
        self.net.restore()
        again = Authority(args=self.args, data_dir=self.data_dir)
        again.api_key = self.auth.api_key
        self.auth = again.start()
        # An event in flight at the kill stays leased for 10 s.
        deadline = time.monotonic() + 30
        while True:
            got = [redis_get(self.redis_port, f"sv:{s}") for s in subjects]
            if got == ["1"] * len(subjects):
                break
            self.assertLess(time.monotonic(), deadline,
                            f"{got.count('1')} of {len(subjects)} bumps delivered after restart")
            time.sleep(0.1)
        print(f"{len(subjects)} bumps pending at kill -9, all delivered after restart", flush=True)


def main():
    global RESOURCE_SERVICE
    RESOURCE_SERVICE, argv = authority.run_with_resource_service("test_cross_process.py")
    unittest.main(argv=argv, verbosity=2)


if __name__ == "__main__":
    main()
