"""Sessions linked to an upstream identity provider (docs/upstream.md), over
a real `tessera serve`:
- OpenID Connect Back-Channel Logout from a test provider that signs its
  logout tokens with PyJWT and serves its JWKS on loopback (provider.py);
- the liveness refresh against that provider (fresh, revoked, transient,
  fail closed) and against a second, real `tessera serve` as the upstream.

Run: test_upstream.py --tessera PATH [unittest args]
"""

import json
import os
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import authority  # noqa: E402
from authority import Authority  # noqa: E402
from provider import BCL_EVENT, Provider  # noqa: E402


def providers_file(directory, *providers):
    path = os.path.join(directory, "upstream_providers.json")
    with open(path, "w") as f:
        json.dump([{"issuer": p.issuer, "client_id": p.client_id,
                    "client_secret": p.client_secret} for p in providers], f)
    os.chmod(path, 0o600)
    return path


def wait_until(predicate, timeout=20, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout}s")


class UpstreamTest(unittest.TestCase):
    ARGS = []

    def setUp(self):
        self.provider = Provider()
        self.addCleanup(self.provider.close)
        self.dir = tempfile.mkdtemp(prefix="tessera-up-")
        self.a = Authority(data_dir=self.dir, args=[
            "--upstream-providers", providers_file(self.dir, self.provider), *self.ARGS])
        self.a.owns_dir = True
        self.a.start()
        self.addCleanup(self.a.cleanup)

    def issue(self, subject, sid=None, sub=None, refresh=None, mode="cookie", issuer=None):
        upstream = {"issuer": issuer or self.provider.issuer}
        if sid is not None:
            upstream["sid"] = sid
        if sub is not None:
            upstream["sub"] = sub
        if refresh is not None:
            upstream["refresh_token"] = refresh
        r = self.a.request("POST", "/v1/sessions", {"subject": subject, "mode": mode,
                                                    "upstream": upstream}, auth=True)
        self.assertEqual(r.status, 201, f"{r!r}")
        return r.json

    def live(self, issued):
        if "session_token" in issued:
            return self.a.validate(issued["session_token"]).status == 200
        return self.a.refresh(issued["refresh_token"]).status == 200

    def reason(self, issued):
        r = self.a.request("GET", f"/v1/subjects/{issued['session']['subject']}/sessions",
                           auth=True)
        ids = [s["id"] for s in r.json["sessions"]]
        return "live" if issued["session"]["id"] in ids else "ended"

    def logout(self, token, content_type="application/x-www-form-urlencoded"):
        from urllib.parse import urlencode
        return self.a.request("POST", "/v1/upstream/backchannel-logout",
                              raw=urlencode({"logout_token": token}).encode(),
                              headers={"Content-Type": content_type})


class TestBackchannelLogout(UpstreamTest):
    def test_a_logout_by_sid_ends_the_sessions_of_that_login_only(self):
        a1 = self.issue("alice", sid="op-sid-1", sub="op-alice")
        a2 = self.issue("alice", sid="op-sid-1", sub="op-alice", mode="token")
        other = self.issue("alice", sid="op-sid-2", sub="op-alice")
        plain = self.a.issue("alice", mode="cookie")
        r = self.logout(self.provider.logout_token(sid="op-sid-1", sub="op-alice"))
        self.assertEqual(r.status, 200, f"{r!r} {r.body[:200]!r}")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        v = self.a.validate(a1["session_token"])
        self.assertEqual((v.status, v.code), (401, "session_revoked"))
        self.assertEqual(self.a.refresh(a2["refresh_token"]).status, 401)
        self.assertTrue(self.live(other))
        self.assertTrue(self.live(plain))

    def test_a_logout_by_sub_alone_ends_every_login_of_that_subject(self):
        s1 = self.issue("bob", sid="op-sid-3", sub="op-bob")
        s2 = self.issue("bob", sid="op-sid-4", sub="op-bob")
        carol = self.issue("carol", sid="op-sid-5", sub="op-carol")
        r = self.logout(self.provider.logout_token(sub="op-bob", alg="ES256"))
        self.assertEqual(r.status, 200, f"{r!r} {r.body[:200]!r}")
        self.assertFalse(self.live(s1))
        self.assertFalse(self.live(s2))
        self.assertTrue(self.live(carol))

    def test_an_unknown_login_is_200_and_ends_nothing(self):
        s = self.issue("dave", sid="op-sid-6")
        self.assertEqual(self.logout(self.provider.logout_token(sid="nobody")).status, 200)
        self.assertTrue(self.live(s))

    def test_every_malformed_or_forged_logout_token_is_400_and_ends_nothing(self):
        s = self.issue("erin", sid="op-sid-7", sub="op-erin")
        p = self.provider
        forged = {
            "typ JWT": p.logout_token(sid="op-sid-7", typ="JWT"),
            "no typ": p.logout_token(sid="op-sid-7", typ=None),
            "typ at+jwt": p.logout_token(sid="op-sid-7", typ="at+jwt"),
            "key not in the JWKS": p.logout_token(sid="op-sid-7", key=p.other),
            "unknown kid": p.logout_token(sid="op-sid-7", key=p.other, kid="rsa-9"),
            "another issuer": p.logout_token(sid="op-sid-7", iss="https://evil.example"),
            "another audience": p.logout_token(sid="op-sid-7", aud="someone-else"),
            "a nonce": p.logout_token(sid="op-sid-7", nonce="n-1"),
            "no events": p.logout_token(sid="op-sid-7", events=None),
            "another event": p.logout_token(sid="op-sid-7", events={"urn:other": {}}),
            "event not an object": p.logout_token(sid="op-sid-7", events={BCL_EVENT: "x"}),
            "neither sid nor sub": p.logout_token(),
            "no jti": p.logout_token(sid="op-sid-7", jti=None),
            "expired": p.logout_token(sid="op-sid-7", exp=int(time.time()) - 300,
                                      iat=int(time.time()) - 400),
            "issued in the future": p.logout_token(sid="op-sid-7", iat=int(time.time()) + 600,
                                                   exp=int(time.time()) + 900),
            "too old": p.logout_token(sid="op-sid-7", iat=int(time.time()) - 3600,
                                      exp=int(time.time()) + 600),
            "no exp": p.logout_token(sid="op-sid-7", exp=None),
            "garbage": "not.a.jwt",
            "alg none": "eyJhbGciOiJub25lIiwidHlwIjoibG9nb3V0K2p3dCJ9."
                        + __import__("base64").urlsafe_b64encode(json.dumps(
                            {"iss": p.issuer, "aud": p.client_id, "sid": "op-sid-7",
                             "events": {BCL_EVENT: {}}, "jti": "x", "iat": int(time.time()),
                             "exp": int(time.time()) + 60}).encode()).rstrip(b"=").decode()
                        + ".",
        }
        for what, token in forged.items():
            r = self.logout(token)
            self.assertEqual(r.status, 400, f"{what}: {r!r}")
            self.assertEqual(r.json["error"], "invalid_request", what)
        self.assertEqual(self.logout(p.logout_token(sid="op-sid-7"), "application/json").status,
                         400)
        self.assertTrue(self.live(s), "nothing forged ended the session")

    def test_a_replayed_logout_token_is_refused(self):
        s = self.issue("frank", sid="op-sid-8")
        token = self.provider.logout_token(sid="op-sid-8")
        self.assertEqual(self.logout(token).status, 200)
        self.assertFalse(self.live(s))
        r = self.logout(token)
        self.assertEqual(r.status, 400, f"{r!r}")

    def test_issue_refuses_a_bad_upstream_object(self):
        for upstream in ({"sid": "x"}, {"issuer": self.provider.issuer},
                         {"issuer": self.provider.issuer, "sid": 7},
                         {"issuer": self.provider.issuer, "sid": "x", "refresh_token": ""},
                         {"issuer": self.provider.issuer, "sid": "x", "extra": 1}, "text"):
            r = self.a.request("POST", "/v1/sessions", {"subject": "gina", "mode": "cookie",
                                                        "upstream": upstream}, auth=True)
            self.assertEqual((r.status, r.code), (400, "invalid_request"), upstream)

    def test_the_upstream_refresh_token_is_never_returned(self):
        s = self.issue("hank", sid="op-sid-9", refresh="prt_secret_never_shown")
        for r in (self.a.request("GET", "/v1/subjects/hank/sessions", auth=True),
                  self.a.validate(s["session_token"])):
            self.assertNotIn(b"prt_secret_never_shown", r.body)
        self.assertNotIn("prt_secret_never_shown", self.a.log_text())


class TestLivenessRefresh(UpstreamTest):
    ARGS = ["--upstream-check-interval", "1s", "--upstream-retry-interval", "1s",
            "--upstream-max-failure", "4s"]

    def test_fresh_rotates_revoked_ends_and_transient_keeps_until_the_bound(self):
        p = self.provider
        fresh = self.issue("ivy", sid="op-1", refresh=p.new_refresh_token("ivy"))
        doomed_token = p.new_refresh_token("jack")
        doomed = self.issue("jack", sid="op-2", refresh=doomed_token)
        # The provider ends jack's login: the token stops working there.
        with p.lock:
            p.refresh_tokens.pop(doomed_token)
        wait_until(lambda: self.reason(doomed) == "ended", what="jack's session to end")
        v = self.a.validate(doomed["session_token"])
        self.assertEqual((v.status, v.code), (401, "session_revoked"))
        # ivy's token was refreshed and rotated, more than once.
        wait_until(lambda: len([g for g in p.grants if g[2] == "ivy"]) >= 3,
                   what="three grants of ivy's login")
        presented = [t for t, _, login in p.grants if login == "ivy"]
        self.assertEqual(len(set(presented)), len(presented), "each grant used the rotated token")
        self.assertTrue(all(auth and auth.startswith("Basic ") for _, auth, _ in p.grants),
                        "client_secret_basic")
        self.assertTrue(self.live(fresh))
        self.assertIn('"event":"upstream_refresh"', self.a.log_text())

        # The provider goes down: kept (fail open) until upstream_max_failure.
        p.mode = "down"
        down_since = time.monotonic()
        time.sleep(2.0)
        self.assertTrue(self.live(fresh), "kept while the provider is briefly down")
        wait_until(lambda: self.reason(fresh) == "ended", timeout=20,
                   what="the session to fail closed")
        self.assertGreaterEqual(time.monotonic() - down_since, 3.5)

    def test_a_provider_that_refuses_our_client_keeps_sessions_until_the_bound(self):
        p = self.provider
        s = self.issue("kate", sid="op-3", refresh=p.new_refresh_token("kate"))
        p.mode = "invalid_client"
        time.sleep(2.5)
        self.assertTrue(self.live(s), "a misconfigured client is transient, not a logout")


class TestUpstreamIsAnotherTessera(unittest.TestCase):
    """The liveness refresh against a second, real `tessera serve`: its
    RFC 8414 metadata, its /oauth2/token."""

    def test_a_session_follows_its_login_at_the_upstream_tessera(self):
        upstream = Authority().start()
        self.addCleanup(upstream.cleanup)
        login = upstream.issue("lena", mode="token")
        d = tempfile.mkdtemp(prefix="tessera-up-")
        path = os.path.join(d, "providers.json")
        issuer = f"http://127.0.0.1:{upstream.port}"
        with open(path, "w") as f:
            json.dump([{"issuer": issuer, "client_id": "downstream"}], f)
        down = Authority(data_dir=d, args=["--upstream-providers", path,
                                           "--upstream-check-interval", "1s",
                                           "--upstream-retry-interval", "1s"])
        down.owns_dir = True
        down.start()
        self.addCleanup(down.cleanup)
        r = down.request("POST", "/v1/sessions", {
            "subject": "lena", "mode": "cookie",
            "upstream": {"issuer": issuer, "sid": login["session"]["id"], "sub": "lena",
                         "refresh_token": login["refresh_token"]}}, auth=True)
        self.assertEqual(r.status, 201, f"{r!r}")
        s = r.json
        # Refreshed at the upstream: its generation moves.
        wait_until(lambda: upstream.request("GET", "/v1/subjects/lena/sessions", auth=True)
                   .json["sessions"][0]["generation"] >= 2, what="two upstream rotations")
        self.assertEqual(down.validate(s["session_token"]).status, 200)
        # The login ends upstream: the downstream session follows.
        r = upstream.request("DELETE", f"/v1/subjects/lena/sessions/{login['session']['id']}",
                             auth=True)
        self.assertEqual(r.status, 204)
        wait_until(lambda: down.validate(s["session_token"]).status == 401,
                   what="the downstream session to end")
        self.assertEqual(down.validate(s["session_token"]).code, "session_revoked")


if __name__ == "__main__":
    authority.run_tests(__file__)
