#!/usr/bin/python3
"""Integration tests: a real `tessera serve` process driven over HTTP.

Run: /usr/bin/python3 test_http.py --tessera PATH [unittest args, e.g. a class name]
"""

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

_counter = [0]
_counter_lock = threading.Lock()


def subject(prefix="user"):
    with _counter_lock:
        _counter[0] += 1
        return f"{prefix}-{os.getpid()}-{_counter[0]}"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fake_jwt(header, payload, signature=b"x" * 64):
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()),
                     b64url(signature)])


class AuthorityTest(unittest.TestCase):
    ENV = {}
    ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.a = Authority(env=cls.ENV, args=cls.ARGS).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop_cleanly()
        finally:
            cls.a.cleanup()

    def assertProblem(self, r, status, code):
        self.assertEqual(r.status, status, f"{r!r}")
        self.assertEqual(r.header("Content-Type"), "application/problem+json")
        p = r.json
        for k in ("type", "title", "status", "code", "detail"):
            self.assertIn(k, p)
        self.assertEqual(p["status"], status)
        self.assertEqual(p["code"], code, f"detail: {p.get('detail')}")

    def assertKeys(self, obj, keys):
        """Names only the missing keys: the object may hold tokens."""
        missing = [k for k in keys if k not in obj]
        self.assertEqual(missing, [], "missing members")

    def assertServing(self):
        self.assertEqual(self.a.request("GET", "/healthz").status, 200)


class TestPublicEndpoints(AuthorityTest):
    def test_healthz_and_readyz(self):
        r = self.a.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        r = self.a.request("GET", "/readyz")
        self.assertEqual(r.status, 200)

    def test_jwks_has_public_keys_only_and_cache_control(self):
        r = self.a.request("GET", "/.well-known/jwks.json")
        self.assertEqual(r.status, 200)
        self.assertIn("max-age=", r.header("Cache-Control"))
        keys = r.json["keys"]
        self.assertGreaterEqual(len(keys), 1)
        for k in keys:
            self.assertIn("kid", k)
            for private in ("d", "p", "q", "dp", "dq", "qi", "k"):
                self.assertNotIn(private, k)

    def test_metrics_render_prometheus_text_with_route_templates(self):
        s = subject()
        self.a.request("GET", f"/v1/subjects/{s}/sessions", auth=True)
        r = self.a.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        text = r.body.decode()
        self.assertIn("tessera_http_requests_total", text)
        self.assertIn('route="/v1/subjects/{subject}/sessions"', text)
        self.assertIn("tessera_http_request_duration_seconds_bucket", text)
        self.assertIn("tessera_lifecycle_events_total", text)
        self.assertIn("tessera_errors_total", text)
        self.assertNotIn(s, text, "a raw path leaked into a metric label")

    def test_unknown_route_is_404_problem(self):
        r = self.a.request("GET", "/nope")
        self.assertProblem(r, 404, "invalid_request")
        r = self.a.request("GET", "/v1/subjects/x/whatever", auth=True)
        self.assertProblem(r, 404, "invalid_request")

    def test_wrong_method_is_405_with_allow(self):
        for method, path, allow in [("PUT", "/healthz", "GET, HEAD"),
                                    ("GET", "/v1/sessions", "POST"),
                                    ("DELETE", "/oauth2/revoke", "POST"),
                                    ("POST", "/v1/subjects/x/sessions", "GET, HEAD, DELETE"),
                                    ("PATCH", "/v1/subjects/x/epoch", "GET, HEAD, POST"),
                                    ("DELETE", "/v1/epoch", "GET, HEAD, POST")]:
            r = self.a.request(method, path)
            self.assertProblem(r, 405, "invalid_request")
            self.assertEqual(r.header("Allow"), allow)

    def test_head_wherever_get_with_the_get_headers_and_no_body(self):
        s = subject()
        self.a.issue(s)
        for path, auth in [("/healthz", False), ("/readyz", False),
                           ("/.well-known/jwks.json", False), ("/metrics", True),
                           (f"/v1/subjects/{s}/sessions", True), (f"/v1/subjects/{s}/epoch", True),
                           ("/v1/epoch", True)]:
            get = self.a.request("GET", path, auth=auth)
            head = self.a.request("HEAD", path, auth=auth)
            self.assertEqual(head.status, 200, path)
            self.assertEqual(head.body, b"", path)
            self.assertEqual(head.header("Content-Type"), get.header("Content-Type"), path)
            if path != "/metrics":  # the metrics move between the two calls
                self.assertEqual(head.header("Content-Length"), str(len(get.body)), path)
        # HEAD reads: it never bumps an epoch (POST does).
        before = self.a.request("GET", f"/v1/subjects/{s}/epoch", auth=True).json["epoch"]
        self.a.request("HEAD", f"/v1/subjects/{s}/epoch", auth=True)
        self.a.request("HEAD", "/v1/epoch", auth=True)
        self.assertEqual(self.a.request("GET", f"/v1/subjects/{s}/epoch", auth=True).json["epoch"],
                         before)
        # Without the API key: refused as GET is (the problem body left out).
        self.assertEqual(self.a.request("HEAD", "/v1/epoch").status, 401)

    def test_request_id_is_echoed_if_sane_else_generated(self):
        r = self.a.request("GET", "/healthz", headers={"X-Request-Id": "abc-DEF_123"})
        self.assertEqual(r.header("X-Request-Id"), "abc-DEF_123")
        r = self.a.request("GET", "/healthz", headers={"X-Request-Id": "bad id!"})
        self.assertNotEqual(r.header("X-Request-Id"), "bad id!")
        self.assertTrue(r.header("X-Request-Id"))
        r = self.a.request("GET", "/healthz", headers={"X-Request-Id": "a" * 65})
        self.assertNotEqual(r.header("X-Request-Id"), "a" * 65)


class TestServiceAuth(AuthorityTest):
    SERVICE = [("POST", "/v1/sessions"), ("POST", "/v1/sessions/validate"),
               ("POST", "/v1/sessions/rotate"),
               ("GET", "/v1/subjects/x/sessions"), ("DELETE", "/v1/subjects/x/sessions"),
               ("DELETE", "/v1/subjects/x/sessions/01J0000000000000000000000"),
               ("GET", "/v1/subjects/x/epoch"), ("POST", "/v1/subjects/x/epoch"),
               ("GET", "/v1/epoch"), ("POST", "/v1/epoch"), ("POST", "/oauth2/introspect")]

    def test_missing_or_wrong_api_key_is_401_unauthorized(self):
        for method, path in self.SERVICE:
            for auth in (False, "Bearer wrong-key", f"Basic {self.a.api_key}", "Bearer ",
                         f"Bearer {self.a.api_key}x"):
                r = self.a.request(method, path, body={}, auth=auth)
                self.assertProblem(r, 401, "unauthorized")
                self.assertEqual(r.header("WWW-Authenticate"), "Bearer")

    def test_scheme_is_case_insensitive(self):
        r = self.a.request("GET", "/v1/subjects/x/epoch", auth=f"bearer {self.a.api_key}")
        self.assertEqual(r.status, 200)

    def test_the_key_as_an_oauth_client_secret(self):
        def basic(user, secret):
            return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        ok = self.a.request("GET", "/v1/subjects/x/epoch", auth=basic("any-client", self.a.api_key))
        self.assertEqual(ok.status, 200, f"{ok!r}")
        quoted = urllib.parse.quote(self.a.api_key, safe="")
        ok = self.a.request("GET", "/v1/epoch", auth=basic("c%3A1", quoted))
        self.assertEqual(ok.status, 200, f"{ok!r}")
        for auth in (basic("any-client", "wrong"), basic("", ""), "Basic !!!",
                     "Basic " + base64.b64encode(self.a.api_key.encode()).decode()):
            self.assertProblem(self.a.request("GET", "/v1/epoch", auth=auth), 401, "unauthorized")


class TestCookieMode(AuthorityTest):
    ENV = {"TESSERA_MAX_SESSIONS_PER_SUBJECT": "3", "TESSERA_BIND_FINGERPRINT": "true"}

    def test_issue_sets_cookie_and_validate_reads_body_or_cookie(self):
        s = subject()
        r = self.a.request("POST", "/v1/sessions",
                           {"subject": s, "mode": "cookie",
                            "metadata": {"ip": "203.0.113.7", "user_agent": "ua", "device": "d"},
                            "data": {"role": "admin"}, "unknown_field": 1}, auth=True)
        self.assertEqual(r.status, 201)
        body = r.json
        self.assertKeys(body, ("session", "session_token", "expires_at"))
        sess = body["session"]
        self.assertEqual(sess["subject"], s)
        self.assertEqual(sess["mode"], "cookie")
        self.assertEqual(sess["metadata"]["ip"], "203.0.113.7")
        self.assertEqual(sess["data"], {"role": "admin"})
        cookie = r.header("Set-Cookie")
        self.assertIsNotNone(cookie)
        name, _, rest = cookie.partition("=")
        self.assertEqual(name, "tessera_session")
        value = rest.split(";")[0]
        self.assertTrue(value == body["session_token"], "the cookie is not the session token")
        attrs = [a.strip() for a in cookie.split(";")[1:]]
        self.assertIn("HttpOnly", attrs)
        self.assertIn("Path=/", attrs)
        self.assertIn("SameSite=Lax", attrs)
        self.assertNotIn("Secure", attrs)  # --cookie-secure false
        max_age = [a for a in attrs if a.startswith("Max-Age=")]
        self.assertEqual(len(max_age), 1)
        self.assertGreater(int(max_age[0].split("=")[1]), 0)

        r = self.a.validate(body["session_token"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["active"], True)
        self.assertEqual(r.json["session"]["id"], sess["id"])

        r = self.a.request("POST", "/v1/sessions/validate", raw=b"", auth=True,
                           headers={"Cookie": f"other=1; tessera_session={value}; x=y"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["session"]["id"], sess["id"])

    def test_rotate_replaces_the_session_in_its_family_and_revokes_the_old(self):
        s = subject()
        old = self.a.issue(s, "cookie", data={"role": "admin"})
        r = self.a.request("POST", "/v1/sessions/rotate",
                           {"session_token": old["session_token"]}, auth=True)
        self.assertEqual(r.status, 200)
        new = r.json
        self.assertEqual(new["mode"], "cookie")
        self.assertNotEqual(new["session"]["id"], old["session"]["id"])
        self.assertNotEqual(new["session_token"], old["session_token"])
        self.assertEqual(new["session"]["family_id"], old["session"]["family_id"])
        self.assertEqual(new["expires_at"], old["expires_at"])
        self.assertEqual(new["session"]["data"], {"role": "admin"})
        self.assertEqual(r.header("Cache-Control"), "no-store")
        cookie = r.header("Set-Cookie")
        self.assertTrue(cookie.startswith(f"tessera_session={new['session_token']};"), cookie)
        self.assertProblem(self.a.validate(old["session_token"]), 401, "session_revoked")
        self.assertEqual(self.a.validate(new["session_token"]).status, 200)
        listed = self.a.request("GET", f"/v1/subjects/{s}/sessions", auth=True).json["sessions"]
        self.assertEqual([x["id"] for x in listed], [new["session"]["id"]])
        # The old token rotates no more: one successor per session.
        r = self.a.request("POST", "/v1/sessions/rotate",
                           {"session_token": old["session_token"]}, auth=True)
        self.assertProblem(r, 401, "session_revoked")
        # From the cookie, as the app forwards it.
        r = self.a.request("POST", "/v1/sessions/rotate", raw=b"", auth=True,
                           headers={"Cookie": f"tessera_session={new['session_token']}"})
        self.assertEqual(r.status, 200)
        self.assertProblem(self.a.validate(new["session_token"]), 401, "session_revoked")

    def test_rotate_refuses_token_mode_garbage_and_nothing(self):
        t = self.a.issue(subject(), "token")
        self.assertProblem(self.a.request("POST", "/v1/sessions/rotate", {}, auth=True),
                           400, "invalid_request")
        self.assertProblem(self.a.request("POST", "/v1/sessions/rotate",
                                          {"session_token": "tss_nope"}, auth=True),
                           401, "invalid_token")
        self.assertProblem(self.a.request("POST", "/v1/sessions/rotate",
                                          {"session_token": t["refresh_token"]}, auth=True),
                           401, "invalid_token")

    def test_two_session_cookies_are_refused_not_answered_with_the_first(self):
        # Cookie tossing: a sibling subdomain sets its own tessera_session
        # for the parent domain; the browser then sends both.
        mine = self.a.issue(subject(), "cookie")
        theirs = self.a.issue(subject(), "cookie")
        both = {"Cookie": f"tessera_session={theirs['session_token']}; "
                          f"tessera_session={mine['session_token']}"}
        for path, auth in [("/v1/sessions/validate", True), ("/v1/sessions/rotate", True),
                           ("/v1/logout", False)]:
            r = self.a.request("POST", path, raw=b"", auth=auth, headers=both)
            self.assertProblem(r, 400, "invalid_request")
            self.assertIn("more than one session cookie", r.json["detail"])
        for t in (mine, theirs):  # nothing was revoked or rotated
            self.assertEqual(self.a.validate(t["session_token"]).status, 200)

    def test_validate_without_token_is_400(self):
        r = self.a.request("POST", "/v1/sessions/validate", {}, auth=True)
        self.assertProblem(r, 400, "invalid_request")

    def test_garbage_session_token_is_invalid_token(self):
        for t in ("garbage", "tss_" + "A" * 43, "tss_short", ""):
            r = self.a.validate(t)
            self.assertProblem(r, 401, "invalid_token")

    def test_logout_with_cookie_clears_it_and_revokes(self):
        s = subject()
        body = self.a.issue(s, "cookie")
        token = body["session_token"]
        cookie = {"Cookie": f"tessera_session={token}"}
        # CSRF: the cookie alone, or with another site's Origin, changes nothing.
        for extra in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                      {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"}):
            r = self.a.request("POST", "/v1/logout", raw=b"", headers={**cookie, **extra})
            self.assertProblem(r, 403, "origin_not_allowed")
            self.assertIsNone(r.header("Set-Cookie"))
        self.assertEqual(self.a.validate(token).status, 200)
        r = self.a.request("POST", "/v1/logout", raw=b"",
                           headers={**cookie, "Origin": f"http://127.0.0.1:{self.a.port}"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"revoked": 1})
        cookie = r.header("Set-Cookie")
        self.assertTrue(cookie.startswith("tessera_session=;"))
        self.assertIn("Max-Age=0", cookie)
        self.assertProblem(self.a.validate(token), 401, "session_revoked")
        # Idempotent.
        r = self.a.request("POST", "/v1/logout", {"session_token": token})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"revoked": 0})

    def test_cap_evicts_least_recently_seen(self):
        s = subject()
        first = self.a.issue(s, "cookie")["session_token"]
        time.sleep(1.05)  # last_seen_at is in seconds
        others = [self.a.issue(s, "cookie")["session_token"] for _ in range(3)]
        self.assertProblem(self.a.validate(first), 401, "session_revoked")
        for t in others:
            self.assertEqual(self.a.validate(t).status, 200)
        r = self.a.request("GET", f"/v1/subjects/{s}/sessions", auth=True)
        self.assertEqual(len(r.json["sessions"]), 3)

    def test_fingerprint_mismatch_revokes(self):
        s = subject()
        token = self.a.issue(s, "cookie", fingerprint="fp-1")["session_token"]
        self.assertEqual(self.a.validate(token, fingerprint="fp-1").status, 200)
        self.assertProblem(self.a.validate(token, fingerprint="fp-2"), 401, "fingerprint_mismatch")
        self.assertProblem(self.a.validate(token, fingerprint="fp-1"), 401, "session_revoked")


class TestTokenMode(AuthorityTest):
    def test_issue_token_mode_shape(self):
        s = subject()
        r = self.a.request("POST", "/v1/sessions",
                           {"subject": s, "mode": "token", "claims": {"role": "reader"}},
                           auth=True)
        self.assertEqual(r.status, 201)
        b = r.json
        self.assertKeys(b, ("session", "access_token", "token_type", "access_expires_at",
                            "refresh_token", "refresh_expires_at"))
        self.assertEqual(b["token_type"], "Bearer")
        self.assertIsNone(r.header("Set-Cookie"))
        self.assertEqual(r.header("Cache-Control"), "no-store")

    def test_refresh_rotates_and_old_token_replay_revokes_family(self):
        s = subject()
        b = self.a.issue(s)
        r1 = self.a.refresh(b["refresh_token"])
        self.assertEqual(r1.status, 200)
        n1 = r1.json
        self.assertTrue(n1["refresh_token"] != b["refresh_token"], "refresh did not rotate")
        self.assertEqual(n1["session"]["generation"], 1)
        r2 = self.a.refresh(n1["refresh_token"])
        self.assertEqual(r2.status, 200)
        n2 = r2.json
        # The first token is two generations old: replay.
        self.assertProblem(self.a.refresh(b["refresh_token"]), 401, "refresh_token_reused")
        self.assertProblem(self.a.refresh(n2["refresh_token"]), 401, "session_revoked")

    def test_refresh_answer_leaves_out_metadata_and_data(self):
        # A public answer: the holder of a refresh token learns neither the
        # IP and user agent recorded at issue nor the app's data; the
        # service endpoints still show both.
        s = subject()
        b = self.a.issue(s, metadata={"ip": "203.0.113.9", "user_agent": "UA/1"},
                         data={"plan": "gold"})
        self.assertEqual(b["session"]["metadata"]["ip"], "203.0.113.9")
        self.assertEqual(b["session"]["data"], {"plan": "gold"})
        r = self.a.refresh(b["refresh_token"])
        self.assertEqual(r.status, 200)
        public = r.json["session"]
        self.assertNotIn("metadata", public)
        self.assertNotIn("data", public)
        self.assertNotIn(b"203.0.113.9", r.body)
        self.assertNotIn(b"gold", r.body)
        self.assertEqual(public["id"], b["session"]["id"])
        self.assertEqual(public["generation"], 1)
        listed = self.a.request("GET", f"/v1/subjects/{s}/sessions", auth=True)
        self.assertEqual(listed.status, 200)
        self.assertEqual(listed.json["sessions"][0]["metadata"]["ip"], "203.0.113.9")
        self.assertEqual(listed.json["sessions"][0]["data"], {"plan": "gold"})

    def test_refresh_bad_input(self):
        self.assertProblem(self.a.refresh("garbage"), 401, "invalid_token")
        self.assertProblem(self.a.refresh("tsr_" + "B" * 43), 401, "invalid_token")
        r = self.a.request("POST", "/v1/tokens/refresh", {"refresh_token": 42})
        self.assertProblem(r, 400, "invalid_request")
        r = self.a.request("POST", "/v1/tokens/refresh", {})
        self.assertProblem(r, 400, "invalid_request")

    def test_access_token_verifies_with_pyjwt_against_jwks(self):
        import jwt
        s = subject()
        b = self.a.issue(s, claims={"role": "reader"})
        jwks = self.a.request("GET", "/.well-known/jwks.json").json
        header = jwt.get_unverified_header(b["access_token"])
        self.assertEqual(header["typ"], "at+jwt")
        jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        key = jwt.PyJWK(jwk).key
        claims = jwt.decode(b["access_token"], key, algorithms=[header["alg"]],
                            audience="tessera", issuer="tessera")
        self.assertEqual(claims["sub"], s)
        self.assertEqual(claims["sid"], b["session"]["id"])
        self.assertEqual(claims["role"], "reader")
        self.assertEqual(claims["exp"], b["access_expires_at"])

    def test_logout_scopes(self):
        s = subject()
        a, b2, c = (self.a.issue(s) for _ in range(3))
        # others: every session of the subject but the caller's.
        r = self.a.request("POST", "/v1/logout", {"access_token": a["access_token"],
                                                  "scope": "others"})
        self.assertEqual(r.json, {"revoked": 2})
        self.assertIsNone(r.header("Set-Cookie"))
        self.assertProblem(self.a.refresh(b2["refresh_token"]), 401, "session_revoked")
        self.assertEqual(self.a.refresh(a["refresh_token"]).status, 200)

        # family: the refreshed lineage.
        s2 = subject()
        f = self.a.issue(s2)
        g = self.a.issue(s2)
        r = self.a.request("POST", "/v1/logout", {"refresh_token": f["refresh_token"],
                                                  "scope": "family"})
        self.assertEqual(r.json, {"revoked": 1})
        self.assertEqual(self.a.refresh(g["refresh_token"]).status, 200)

        # all: every session and the epoch moves.
        s3 = subject()
        x, y = self.a.issue(s3), self.a.issue(s3)
        e0 = self.a.request("GET", f"/v1/subjects/{s3}/epoch", auth=True).json["epoch"]
        r = self.a.request("POST", "/v1/logout", {"refresh_token": x["refresh_token"],
                                                  "scope": "all"})
        self.assertEqual(r.json, {"revoked": 2})
        e1 = self.a.request("GET", f"/v1/subjects/{s3}/epoch", auth=True).json["epoch"]
        self.assertGreater(e1, e0)
        self.assertFalse(self.a.introspect(y["access_token"]).json["active"])

        # session (default) by access token.
        s4 = subject()
        z = self.a.issue(s4)
        r = self.a.request("POST", "/v1/logout", {"access_token": z["access_token"]})
        self.assertEqual(r.json, {"revoked": 1})

    def test_logout_bad_input(self):
        r = self.a.request("POST", "/v1/logout", {})
        self.assertProblem(r, 400, "invalid_request")
        r = self.a.request("POST", "/v1/logout", {"refresh_token": ["x"]})
        self.assertProblem(r, 400, "invalid_request")
        b = self.a.issue(subject())
        r = self.a.request("POST", "/v1/logout", {"refresh_token": b["refresh_token"],
                                                  "scope": "galaxy"})
        self.assertProblem(r, 400, "invalid_request")


class TestSubjects(AuthorityTest):
    def test_list_revoke_ownership_and_epoch(self):
        s, other = subject(), subject()
        a = self.a.issue(s)
        b = self.a.issue(s, "cookie")
        o = self.a.issue(other)
        r = self.a.request("GET", f"/v1/subjects/{s}/sessions", auth=True)
        self.assertEqual(r.status, 200)
        ids = [x["id"] for x in r.json["sessions"]]
        self.assertEqual(sorted(ids), sorted([a["session"]["id"], b["session"]["id"]]))

        # Ownership: another subject's id is 404, and nothing is revoked.
        r = self.a.request("DELETE", f"/v1/subjects/{s}/sessions/{o['session']['id']}", auth=True)
        self.assertProblem(r, 404, "session_not_found")
        self.assertEqual(self.a.introspect(o["access_token"]).json["active"], True)
        r = self.a.request("DELETE", f"/v1/subjects/{s}/sessions/01J0000000000000000000000X",
                           auth=True)
        self.assertProblem(r, 404, "session_not_found")

        r = self.a.request("DELETE", f"/v1/subjects/{s}/sessions/{a['session']['id']}", auth=True)
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        self.assertProblem(self.a.refresh(a["refresh_token"]), 401, "session_revoked")

        c = self.a.issue(s)
        r = self.a.request("DELETE",
                           f"/v1/subjects/{s}/sessions?except={c['session']['id']}", auth=True)
        self.assertEqual(r.json, {"revoked": 1})
        self.assertEqual(self.a.refresh(c["refresh_token"]).status, 200)
        r = self.a.request("DELETE", f"/v1/subjects/{s}/sessions", auth=True)
        self.assertEqual(r.json, {"revoked": 1})

        r = self.a.request("GET", f"/v1/subjects/{s}/epoch", auth=True)
        self.assertEqual(r.status, 200)
        e = r.json["epoch"]
        r = self.a.request("POST", f"/v1/subjects/{s}/epoch", auth=True)
        self.assertEqual(r.json, {"epoch": e + 1})

    def test_subject_in_path_is_percent_decoded(self):
        s = subject("ä/b c")
        b = self.a.issue(s)
        path = "/v1/subjects/" + urllib.parse.quote(s, safe="") + "/sessions"
        r = self.a.request("GET", path, auth=True)
        self.assertEqual(r.status, 200)
        self.assertEqual([x["id"] for x in r.json["sessions"]], [b["session"]["id"]])
        r = self.a.request("GET", "/v1/subjects/%zz/sessions", auth=True)
        self.assertProblem(r, 400, "invalid_request")

    def test_epoch_bump_makes_access_tokens_inactive(self):
        s = subject()
        b = self.a.issue(s)
        self.assertTrue(self.a.introspect(b["access_token"]).json["active"])
        self.a.request("POST", f"/v1/subjects/{s}/epoch", auth=True)
        self.assertFalse(self.a.introspect(b["access_token"]).json["active"])
        # A fresh access token carries the new epoch.
        n = self.a.refresh(b["refresh_token"]).json
        self.assertTrue(self.a.introspect(n["access_token"]).json["active"])

    def test_global_epoch_bump_ends_older_access_tokens_and_raises_every_subject(self):
        s = subject()
        b = self.a.issue(s)
        self.assertTrue(self.a.introspect(b["access_token"]).json["active"])
        # s's own epoch goes above the global one first: the bump must pass it.
        for _ in range(3):
            self.a.request("POST", f"/v1/subjects/{s}/epoch", auth=True)
        b = self.a.refresh(b["refresh_token"]).json
        self.assertTrue(self.a.introspect(b["access_token"]).json["active"])
        own = self.a.request("GET", f"/v1/subjects/{s}/epoch", auth=True).json["epoch"]
        r = self.a.request("GET", "/v1/epoch", auth=True)
        self.assertEqual(r.status, 200)
        g = r.json["epoch"]
        r = self.a.request("POST", "/v1/epoch", auth=True)
        self.assertEqual(r.status, 200)
        m = r.json["epoch"]
        self.assertGreater(m, max(g, own))
        self.assertEqual(self.a.request("GET", "/v1/epoch", auth=True).json, {"epoch": m})
        self.assertEqual(self.a.introspect(b["access_token"]).json, {"active": False})
        for who in (s, subject()):
            e = self.a.request("GET", f"/v1/subjects/{who}/epoch", auth=True).json["epoch"]
            self.assertEqual(e, m, who)
        # Nothing was revoked: the session renews, and its new token is active.
        n = self.a.refresh(b["refresh_token"])
        self.assertEqual(n.status, 200)
        self.assertTrue(self.a.introspect(n.json["access_token"]).json["active"])


class TestOAuth(AuthorityTest):
    def test_introspect_access_refresh_session_and_garbage(self):
        s = subject()
        t = self.a.issue(s)
        c = self.a.issue(s, "cookie")
        r = self.a.introspect(t["access_token"])
        self.assertEqual(r.status, 200)
        j = r.json
        self.assertEqual(j["active"], True)
        for k in ("sub", "sid", "exp", "iat", "iss", "aud", "token_type"):
            self.assertIn(k, j)
        self.assertEqual(j["sub"], s)
        self.assertEqual(j["sid"], t["session"]["id"])
        self.assertEqual(j["token_type"], "access_token")
        j = self.a.introspect(t["refresh_token"]).json
        self.assertEqual((j["active"], j["token_type"], j["sid"]),
                         (True, "refresh_token", t["session"]["id"]))
        j = self.a.introspect(c["session_token"]).json
        self.assertEqual((j["active"], j["token_type"]), (True, "session_token"))
        for garbage in ("garbage", "tsr_" + "A" * 43, "tss_", "a.b.c", "x" * 9000,
                        fake_jwt({"alg": "none", "typ": "at+jwt"}, {"sub": "x"}, b"")):
            r = self.a.introspect(garbage)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json, {"active": False})
        # JSON bodies are accepted too.
        r = self.a.request("POST", "/oauth2/introspect", {"token": t["access_token"]}, auth=True)
        self.assertEqual(r.json["active"], True)
        # Missing token parameter.
        r = self.a.request("POST", "/oauth2/introspect", form={"nottoken": "x"}, auth=True)
        self.assertProblem(r, 400, "invalid_request")

    def test_introspect_after_refresh_and_logout(self):
        s = subject()
        t = self.a.issue(s)
        n = self.a.refresh(t["refresh_token"]).json
        # The retired token is in grace (default 10 s): still active.
        self.assertTrue(self.a.introspect(t["refresh_token"]).json["active"])
        self.assertTrue(self.a.introspect(n["refresh_token"]).json["active"])
        self.a.request("POST", "/v1/logout", {"refresh_token": n["refresh_token"]})
        for tok in (t["access_token"], n["access_token"], n["refresh_token"]):
            self.assertEqual(self.a.introspect(tok).json, {"active": False})

    def test_revoke_is_always_200_and_revokes(self):
        s = subject()
        t = self.a.issue(s)
        r = self.a.request("POST", "/oauth2/revoke", form={"token": t["refresh_token"],
                                                            "token_type_hint": "refresh_token"})
        self.assertEqual(r.status, 200)
        self.assertFalse(self.a.introspect(t["access_token"]).json["active"])
        for tok in ("garbage", t["refresh_token"], "tss_" + "A" * 43, "a.b.c"):
            r = self.a.request("POST", "/oauth2/revoke", form={"token": tok})
            self.assertEqual(r.status, 200)
        c = self.a.issue(s, "cookie")
        r = self.a.request("POST", "/oauth2/revoke", form={"token": c["session_token"]})
        self.assertEqual(r.status, 200)
        self.assertProblem(self.a.validate(c["session_token"]), 401, "session_revoked")


class TestOAuthToken(AuthorityTest):
    """POST /oauth2/token (RFC 6749 §6) and the RFC 8414 metadata."""

    def token(self, **form):
        return self.a.request("POST", "/oauth2/token", form=form)

    def assertOAuthError(self, r, status, error):
        self.assertEqual(r.status, status, f"{r!r}")
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.json["error"], error, r.json.get("error_description"))

    def test_the_refresh_grant_rotates_as_the_v1_route_does(self):
        t = self.a.issue(subject())
        r = self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertEqual(r.status, 200, f"{r!r}")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.header("Pragma"), "no-cache")
        j = r.json
        self.assertEqual(sorted(j), ["access_token", "expires_in", "refresh_token", "token_type"])
        self.assertEqual(j["token_type"], "Bearer")
        self.assertTrue(880 <= j["expires_in"] <= 900, j["expires_in"])  # access_ttl 15m
        self.assertNotEqual(j["refresh_token"], t["refresh_token"])
        self.assertTrue(self.a.introspect(j["access_token"]).json["active"])
        # Within the grace window the previous token answers the same pair.
        again = self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertEqual(again.status, 200, f"{again!r}")
        self.assertEqual(again.json["refresh_token"], j["refresh_token"])
        # And the pair goes on through /v1/tokens/refresh: one lineage.
        self.assertEqual(self.a.refresh(j["refresh_token"]).status, 200)

    def test_refusals_speak_oauth(self):
        t = self.a.issue(subject())
        self.assertOAuthError(self.token(refresh_token=t["refresh_token"]), 400,
                              "invalid_request")
        self.assertOAuthError(self.token(grant_type="password", username="u", password="p"), 400,
                              "unsupported_grant_type")
        self.assertOAuthError(self.token(grant_type="refresh_token"), 400, "invalid_request")
        r = self.a.request("POST", "/oauth2/token",
                           {"grant_type": "refresh_token", "refresh_token": t["refresh_token"]})
        self.assertOAuthError(r, 400, "invalid_request")  # JSON is not the token endpoint's
        for bad in ("garbage", "tsr_" + "A" * 43, t["access_token"]):
            r = self.token(grant_type="refresh_token", refresh_token=bad)
            self.assertOAuthError(r, 400, "invalid_grant")
        self.a.request("POST", "/v1/logout", {"refresh_token": t["refresh_token"]})
        r = self.token(grant_type="refresh_token", refresh_token=t["refresh_token"])
        self.assertOAuthError(r, 400, "invalid_grant")
        self.assertEqual(r.json["code"], "session_revoked")

    def test_the_metadata_names_every_endpoint(self):
        r = self.a.request("GET", "/.well-known/oauth-authorization-server")
        self.assertEqual(r.status, 200, f"{r!r}")
        m = r.json
        base = f"http://127.0.0.1:{self.a.port}"
        self.assertEqual(m["issuer"], base)
        self.assertEqual(m["token_endpoint"], base + "/oauth2/token")
        self.assertEqual(m["introspection_endpoint"], base + "/oauth2/introspect")
        self.assertEqual(m["revocation_endpoint"], base + "/oauth2/revoke")
        self.assertEqual(m["jwks_uri"], base + "/.well-known/jwks.json")
        self.assertEqual(m["grant_types_supported"], ["refresh_token"])
        self.assertIn("EdDSA", m["access_token_signing_alg_values_supported"])
        self.assertNotIn("HS256", m["access_token_signing_alg_values_supported"])
        r = self.a.request("GET", "/.well-known/oauth-authorization-server",
                           headers={"Host": "evil example"})
        self.assertProblem(r, 400, "invalid_request")


class TestOAuthMetadataPublicUrl(AuthorityTest):
    ARGS = ["--public-url", "https://auth.example.com/tessera/"]

    def test_the_metadata_uses_public_url_with_its_path(self):
        m = self.a.request("GET", "/.well-known/oauth-authorization-server").json
        self.assertEqual(m["issuer"], "https://auth.example.com/tessera")
        self.assertEqual(m["token_endpoint"], "https://auth.example.com/tessera/oauth2/token")


class TestOAuthClients(AuthorityTest):
    """npm's oauth4webapi, unmodified, discovers and uses the authority."""

    def test_oauth4webapi_discovers_refreshes_introspects_and_revokes(self):
        tools = authority.npm_tools()
        t = self.a.issue(subject())
        issuer = f"http://127.0.0.1:{self.a.port}"
        r = subprocess.run(["node", os.path.join(tools, "oauth_client.mjs"), issuer], cwd=tools,
                           env=dict(os.environ, REFRESH_TOKEN=t["refresh_token"],
                                    API_KEY=self.a.api_key),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        out = json.loads(r.stdout)
        self.assertEqual(out["issuer"], issuer)
        refreshed = out["refreshed"]
        self.assertEqual(refreshed["token_type"].lower(), "bearer")
        self.assertTrue(0 < refreshed["expires_in"] <= 900)
        self.assertEqual((refreshed["access_token"], refreshed["rotated"]), (True, True))
        self.assertEqual(out["introspection"]["active"], True)
        self.assertEqual(out["introspection"]["sub"], t["session"]["subject"])
        self.assertTrue(out["revoked"])
        self.assertEqual((out["after_revocation"], out["after_revocation_status"]),
                         ("invalid_grant", 400))


class TestTokenErrorCodes(AuthorityTest):
    """Every token code reachable over HTTP, through logout with an access token."""

    def logout(self, token):
        return self.a.request("POST", "/v1/logout", {"access_token": token})

    def test_codes(self):
        jwks = self.a.request("GET", "/.well-known/jwks.json").json
        kid = jwks["keys"][0]["kid"]
        alg = jwks["keys"][0]["alg"]
        other_alg = "ES256" if alg != "ES256" else "EdDSA"
        now = int(time.time())
        claims = {"iss": "tessera", "sub": "x", "aud": "tessera", "iat": now, "exp": now + 60}
        cases = [
            ("x" * 9000, "token_too_large"),
            ("a.b.c", "invalid_token"),
            (fake_jwt({"alg": "none", "typ": "at+jwt"}, claims, b""), "algorithm_not_allowed"),
            (fake_jwt({"alg": alg, "kid": "no-such-kid", "typ": "at+jwt"}, claims),
             "key_not_found"),
            (fake_jwt({"alg": other_alg, "kid": kid, "typ": "at+jwt"}, claims),
             "algorithm_mismatch"),
            (fake_jwt({"alg": alg, "kid": kid, "typ": "at+jwt"}, claims), "signature_invalid"),
        ]
        for token, code in cases:
            self.assertProblem(self.logout(token), 401, code)
        self.assertServing()


class TestRs256Signing(AuthorityTest):
    """An authority whose keys are RS256 (signing_alg): the JWKS publishes the
    RSA public keys, its tokens verify in PyJWT and come back through logout,
    and an RS256 header is pinned to its key."""
    ENV = {"TESSERA_SIGNING_ALG": "RS256"}

    def test_jwks_publishes_rsa_keys_and_tokens_verify_in_pyjwt(self):
        import jwt
        jwks = self.a.request("GET", "/.well-known/jwks.json").json
        self.assertTrue(jwks["keys"])
        for k in jwks["keys"]:
            self.assertEqual((k["kty"], k["alg"], k["use"], k["e"]), ("RSA", "RS256", "sig", "AQAB"))
            self.assertFalse({"d", "p", "q", "dp", "dq", "qi"} & k.keys(), "private member published")
        s = subject()
        b = self.a.issue(s)
        header = jwt.get_unverified_header(b["access_token"])
        self.assertEqual(header["alg"], "RS256")
        jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
        claims = jwt.decode(b["access_token"], jwt.PyJWK(jwk).key, algorithms=["RS256"],
                            audience="tessera", issuer="tessera")
        self.assertEqual(claims["sub"], s)

        now = int(time.time())
        forged = {"iss": "tessera", "sub": "x", "aud": "tessera", "iat": now, "exp": now + 60}
        for token, code in [
            (fake_jwt({"alg": "EdDSA", "kid": header["kid"], "typ": "at+jwt"}, forged),
             "algorithm_mismatch"),
            (fake_jwt({"alg": "RS256", "kid": header["kid"], "typ": "at+jwt"}, forged, b"x" * 256),
             "signature_invalid"),
            (fake_jwt({"alg": "RS256", "kid": header["kid"], "typ": "at+jwt"}, forged, b"x" * 255),
             "signature_invalid"),
        ]:
            r = self.a.request("POST", "/v1/logout", {"access_token": token})
            self.assertProblem(r, 401, code)
        r = self.a.request("POST", "/v1/logout", {"access_token": b["access_token"]})
        self.assertLess(r.status, 300, f"{r!r}")


class TestBadInput(AuthorityTest):
    def test_malformed_json_wrong_types_invalid_utf8(self):
        cases = [b"{", b"[]", b"null", b'{"subject": "a", "mode": "token"', b"\xff\xfe",
                 b'{"subject": "\xff", "mode": "token"}', b'{"subject": 1, "mode": "token"}',
                 b'{"subject": "a"}', b'{"subject": "a", "mode": "bogus"}',
                 b'{"subject": "a", "mode": "token", "data": [1]}',
                 b'{"subject": "a", "mode": "token", "metadata": {"ip": 5}}',
                 b'{"subject": "a", "mode": "token", "claims": "x"}',
                 b'{"subject": "", "mode": "token"}',
                 b'{"subject": "a", "mode": "token", "fingerprint": 3}',
                 b"[" * 10000 + b"]" * 10000]
        for raw in cases:
            r = self.a.request("POST", "/v1/sessions", raw=raw, auth=True,
                               headers={"Content-Type": "application/json"})
            self.assertProblem(r, 400, "invalid_request")
        self.assertServing()

    def test_huge_body_is_413(self):
        r = self.a.request("POST", "/v1/sessions", raw=b"x" * (65 * 1024), auth=True)
        self.assertProblem(r, 413, "payload_too_large")
        # Declared too large: refused before the body is read.
        s = self.a.connect()
        s.sendall(b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-1\r\n"
                  b"Content-Length: 100000000\r\n\r\n")
        data = recv_all(s)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:40])
        self.assertIn(b"X-Request-Id: big-1", data)
        # Chunked past the limit.
        s = self.a.connect()
        chunk = b"x" * 8192
        s.sendall(b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(10):
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass
        data = recv_all(s)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:40])
        self.assertServing()

    def test_header_too_large_is_431(self):
        s = self.a.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        data = recv_all(s)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 431"), data[:40])
        self.assertServing()

    def test_garbage_http_is_400_and_closed(self):
        s = self.a.connect()
        s.sendall(b"\x00\x01 garbage\r\n\r\n")
        data = recv_all(s)
        s.close()
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 400"), data[:40])
        self.assertServing()

    def test_ambiguous_framing_is_400_and_closed_never_smuggled(self):
        """RFC 9112 §6.1, §6.3, §3.2, §5.2, §2.2: each case is refused and the connection
        closed, so a pipelined request behind it is never read as a body or
        answered."""
        behind = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: smuggled\r\n\r\n"
        cases = {
            "final coding not chunked":
                b"POST /v1/sessions/validate HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello",
            "TE beside CL": b"POST /v1/sessions/validate HTTP/1.1\r\nHost: x\r\n"
                            b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            "chunked twice": b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "gzip last": b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\n"
                         b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            "no Host": b"GET /healthz HTTP/1.1\r\nX-Request-Id: nohost\r\n\r\n",
            "two Hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n b\r\n\r\n",
            "obs-fold by tab": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n\tb\r\n\r\n",
            "space before the first field":
                b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n",
        }
        for name, raw in cases.items():
            with self.subTest(case=name):
                s = self.a.connect()
                s.sendall(raw + behind)
                data = recv_all(s)
                s.close()
                self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:60])
                self.assertEqual(data.count(b"\r\nServer: tessera/"), 1, data)  # one answer
                self.assertNotIn(b"smuggled", data)
                self.assertIn(b"Connection: close", data)
        # HTTP/1.0 needs no Host; a sound chunked body still works.
        s = self.a.connect()
        s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        self.assertTrue(recv_all(s).startswith(b"HTTP/1.0 200"))
        s.close()
        body = b'{"refresh_token":"nope"}'
        s = self.a.connect()
        s.sendall(b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        data = recv_all(s)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:60])  # read, then refused
        self.assertServing()

    def test_pipelined_requests_are_answered_in_order(self):
        s = self.a.connect()
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: r%d\r\n\r\n"
        s.sendall(b"".join(req % i for i in range(5)) +
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
        s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200"), 6)
        positions = [data.index(b"X-Request-Id: r%d" % i) for i in range(5)]
        self.assertEqual(positions, sorted(positions))

    def test_access_log_never_holds_a_secret(self):
        b = self.a.issue(subject(), "cookie")
        self.a.validate(b["session_token"])
        t = self.a.issue(subject())
        self.a.refresh(t["refresh_token"])
        self.a.introspect(t["access_token"])
        time.sleep(0.2)
        log = self.a.log_text()
        for secret in (b["session_token"], t["refresh_token"], t["access_token"],
                       self.a.api_key):
            self.assertFalse(secret in log, "a secret is in the server log")
        lines = [l for l in log.splitlines() if '"route"' in l]
        self.assertTrue(lines)
        j = json.loads(lines[-1][lines[-1].index("{"):])
        for k in ("method", "route", "status", "code", "latency_us", "request_id", "remote"):
            self.assertIn(k, j)

    def test_access_log_names_the_route_template_and_the_code(self):
        s = subject("logged")
        self.a.request("GET", f"/v1/subjects/{s}/sessions", auth="Bearer wrong-key")
        self.a.request("GET", "/healthz")
        time.sleep(0.2)
        lines = [json.loads(l[l.index("{"):]) for l in self.a.log_text().splitlines()
                 if '"http_request"' in l]
        seen = [(j["method"], j["route"], j["status"], j["code"]) for j in lines]
        self.assertIn(("GET", "/v1/subjects/{subject}/sessions", 401, "unauthorized"), seen)
        self.assertIn(("GET", "/healthz", 200, ""), seen)
        self.assertFalse(any(s in l for l in self.a.log_text().splitlines()))


def recv_all(s, timeout=10):
    s.settimeout(timeout)
    chunks = []
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    except (socket.timeout, ConnectionResetError):
        pass
    return b"".join(chunks)


class TestSlowClients(AuthorityTest):
    ARGS = ["--read-timeout", "3s", "--header-timeout", "1s"]
    ENV = {"TESSERA_MAX_CONNECTIONS": "16", "TESSERA_IDLE_CONNECTION_TIMEOUT": "1s",
           "TESSERA_HEALTH_CONNECTIONS": "2"}

    def test_idle_keep_alive_connection_is_closed(self):
        s = self.a.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        t0 = time.monotonic()
        data = recv_all(s, timeout=10)  # the answer, then the close
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:20])
        self.assertGreater(time.monotonic() - t0, 0.8)
        self.assertLess(time.monotonic() - t0, 1.9, "closed by read_timeout, not the idle one")

    def test_slowloris_does_not_block_and_is_dropped(self):
        s = self.a.connect()
        start = time.monotonic()
        dropped = threading.Event()

        def dribble():
            try:
                for ch in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                    s.sendall(bytes([ch]))
                    time.sleep(0.1)
            except OSError:
                dropped.set()
        t = threading.Thread(target=dribble)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        self.assertEqual(self.a.request("GET", "/healthz").status, 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        t.join(timeout=15)
        elapsed = time.monotonic() - start
        self.assertTrue(dropped.is_set() or recv_all(s, 1) == b"")
        self.assertLess(elapsed, 2.5, "the slow client was not dropped after header_timeout")
        s.close()

    def test_the_body_has_read_timeout_after_the_head(self):
        # A head at once, then a body dribbled over 2 s: past header_timeout
        # (1 s) but within read_timeout (3 s) of the head, so it is answered.
        body = json.dumps({"refresh_token": "x" * 40}).encode()
        s = self.a.connect()
        s.sendall(b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        step = 2.0 / len(body)
        for ch in body:
            s.sendall(bytes([ch]))
            time.sleep(step)
        data = recv_all(s, timeout=5)
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 401"), data[:40])

    def test_idle_connection_without_request_is_dropped(self):
        s = self.a.connect()
        t0 = time.monotonic()
        data = recv_all(s, timeout=10)
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - t0, 2.0, "header_timeout (1 s) counts from the connect")
        s.close()

    def test_beyond_the_limit_health_checks_still_get_in_and_the_rest_is_closed(self):
        held = [self.a.connect() for _ in range(16)]
        time.sleep(0.2)
        # One of the 2 health connections: /healthz answers, once.
        check = self.a.connect()
        check.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(check, timeout=5)
        check.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:20])
        self.assertIn(b"Connection: close", data)
        other = self.a.connect()
        other.sendall(b"GET /v1/epoch HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(other, timeout=5)
        other.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 503"), data[:20])
        self.assertIn(b'"code":"overloaded"', data)
        # Both health connections taken (idle): the next one is closed at once.
        time.sleep(0.2)
        taken = [self.a.connect() for _ in range(2)]
        time.sleep(0.2)
        extra = self.a.connect()
        t0 = time.monotonic()
        self.assertEqual(recv_all(extra, timeout=5), b"")
        self.assertLess(time.monotonic() - t0, 0.8, "closed at once, not by a timeout")
        extra.close()
        for h in held + taken:
            h.close()
        time.sleep(0.3)
        self.assertServing()


class TestConnectionsPerClient(AuthorityTest):
    ENV = {"TESSERA_MAX_CONNECTIONS_PER_CLIENT": "4"}

    def test_one_client_cannot_take_every_connection(self):
        held = [self.a.connect() for _ in range(4)]
        time.sleep(0.2)
        fifth = self.a.connect()
        t0 = time.monotonic()
        self.assertEqual(recv_all(fifth, timeout=5), b"", "a fifth connection of one client")
        self.assertLess(time.monotonic() - t0, 0.8)
        fifth.close()
        # Another client is served meanwhile.
        s = self.a.connect(source="127.0.0.2")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(recv_all(s, timeout=5).startswith(b"HTTP/1.1 200"))
        s.close()
        # A connection given back is a connection the client may open again.
        held.pop().close()
        time.sleep(0.3)
        again = self.a.connect()
        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(recv_all(again, timeout=5).startswith(b"HTTP/1.1 200"))
        again.close()
        for h in held:
            h.close()


class TestConcurrentClients(AuthorityTest):
    def test_many_keep_alive_clients_at_once_all_answered(self):
        import http.client
        errors = []

        def client(n):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.a.port, timeout=20)
                auth = {"Authorization": f"Bearer {self.a.api_key}",
                        "Content-Type": "application/json"}
                for i in range(20):
                    conn.request("POST", "/v1/sessions",
                                 json.dumps({"subject": f"load-{n}", "mode": "cookie"}), auth)
                    r = conn.getresponse()
                    token = json.loads(r.read())["session_token"]
                    if r.status != 201:
                        errors.append(("issue", r.status))
                    conn.request("POST", "/v1/sessions/validate",
                                 json.dumps({"session_token": token}), auth)
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        errors.append(("validate", r.status))
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(("exception", type(e).__name__))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        # The cap (10 by default) held under concurrent issuing.
        r = self.a.request("GET", "/v1/subjects/load-0/sessions", auth=True)
        self.assertLessEqual(len(r.json["sessions"]), 10)


class TestBrowserOrigins(AuthorityTest):
    ENV = {"TESSERA_CORS_ALLOWED_ORIGINS": "https://app.example, http://localhost:5173"}
    APP = "https://app.example"

    def preflight(self, path, origin, method="POST", headers="content-type"):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        return self.a.request("OPTIONS", path, headers=h)

    def test_preflight_for_a_listed_origin_on_every_public_route(self):
        for path, method in [("/v1/tokens/refresh", "POST"), ("/v1/logout", "POST"),
                             ("/.well-known/jwks.json", "GET"),
                             ("/v1/authz/auth-request", "GET"),
                             ("/v1/authz/forward-auth", "GET")]:
            with self.subTest(path=path):
                r = self.preflight(path, self.APP, method)
                self.assertEqual(r.status, 204, f"{r!r}")
                self.assertEqual(r.header("Access-Control-Allow-Origin"), self.APP)
                self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
                self.assertIn(method, r.header("Access-Control-Allow-Methods"))
                self.assertNotIn("OPTIONS", r.header("Access-Control-Allow-Methods"))
                self.assertIn("Content-Type", r.header("Access-Control-Allow-Headers"))
                self.assertEqual(r.header("Access-Control-Max-Age"), "600")
                self.assertIn("Origin", r.header("Vary"))

    def test_preflight_refused_for_other_origins_methods_and_headers(self):
        for origin, method, headers in [("https://evil.example", "POST", "content-type"),
                                        ("https://app.example.evil", "POST", None),
                                        ("null", "POST", None),
                                        (self.APP, "DELETE", None),
                                        (self.APP, "POST", "content-type, x-evil")]:
            with self.subTest(origin=origin, method=method, headers=headers):
                r = self.preflight("/v1/tokens/refresh", origin, method, headers)
                self.assertProblem(r, 403, "origin_not_allowed")
                self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_options_without_preflight_and_on_service_routes(self):
        r = self.a.request("OPTIONS", "/.well-known/jwks.json")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("Allow"), "GET, HEAD, OPTIONS")
        # A service endpoint takes no CORS: an API key never belongs in a page.
        r = self.preflight("/v1/sessions", self.APP)
        self.assertProblem(r, 405, "invalid_request")
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))

    def test_answers_carry_cors_headers_for_listed_origins_only(self):
        r = self.a.request("GET", "/.well-known/jwks.json", headers={"Origin": self.APP})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), self.APP)
        self.assertEqual(r.header("Access-Control-Allow-Credentials"), "true")
        self.assertIn("X-Request-Id", r.header("Access-Control-Expose-Headers"))
        self.assertEqual(r.header("Vary"), "Origin")
        r = self.a.request("GET", "/.well-known/jwks.json",
                           headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        self.assertEqual(r.header("Vary"), "Origin")
        r = self.a.request("GET", "/healthz", headers={"Origin": self.APP})
        self.assertIsNone(r.header("Access-Control-Allow-Origin"))
        # A refresh from the page: the pair, readable by it; a refusal too.
        t = self.a.issue(subject())
        r = self.a.request("POST", "/v1/tokens/refresh", {"refresh_token": t["refresh_token"]},
                           headers={"Origin": self.APP})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Access-Control-Allow-Origin"), self.APP)
        r = self.a.request("POST", "/v1/tokens/refresh", {"refresh_token": "tsr_nope"},
                           headers={"Origin": self.APP})
        self.assertProblem(r, 401, "invalid_token")
        self.assertEqual(r.header("Access-Control-Allow-Origin"), self.APP)

    def test_logout_by_cookie_from_a_listed_origin_or_same_origin_fetch(self):
        for extra in ({"Origin": "http://localhost:5173"}, {"Sec-Fetch-Site": "same-origin"}):
            token = self.a.issue(subject(), "cookie")["session_token"]
            r = self.a.request("POST", "/v1/logout", raw=b"",
                               headers={"Cookie": f"tessera_session={token}", **extra})
            self.assertEqual(r.status, 200, f"{extra}: {r!r}")
            self.assertProblem(self.a.validate(token), 401, "session_revoked")
        # A token in the body is no ambient credential: no Origin needed.
        token = self.a.issue(subject(), "cookie")["session_token"]
        r = self.a.request("POST", "/v1/logout", {"session_token": token},
                           headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 200)


class TestAccountPage(AuthorityTest):
    FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    PHONE = ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/126.0 Mobile Safari/537.36")

    def origin(self):
        return f"http://127.0.0.1:{self.a.port}"

    def page(self, token):
        r = self.a.request("GET", "/account", headers={"Cookie": f"tessera_session={token}"})
        self.assertEqual(r.status, 200, f"{r!r}")
        csrf_cookie = [c for c in r.headers_named("Set-Cookie") if c.startswith("tessera_csrf=")]
        self.assertEqual(len(csrf_cookie), 1)
        self.assertIn("SameSite=Strict", csrf_cookie[0])
        self.assertIn("HttpOnly", csrf_cookie[0])
        value = csrf_cookie[0].split(";")[0].split("=", 1)[1]
        self.assertIn(f'name="csrf" value="{value}"'.encode(), r.body)
        return r, value

    def post(self, token, csrf_cookie, form, origin=None):
        cookie = f"tessera_session={token}"
        if csrf_cookie is not None:
            cookie += f"; tessera_csrf={csrf_cookie}"
        return self.a.request("POST", "/account", form=form,
                              headers={"Cookie": cookie, "Origin": origin or self.origin()})

    def test_the_page_lists_the_devices_with_a_strict_policy(self):
        s = subject("acct")
        here = self.a.issue(s, "cookie", metadata={"ip": "203.0.113.5",
                                                   "user_agent": self.FIREFOX})
        self.a.issue(s, "cookie", metadata={"ip": "198.51.100.9", "user_agent": self.PHONE})
        self.a.issue(s, "cookie", metadata={"device": "Kitchen <tablet>"})
        self.a.issue(subject("someone-else"), "cookie", metadata={"ip": "192.0.2.99"})
        r, _ = self.page(here["session_token"])
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        csp = r.header("Content-Security-Policy")
        self.assertIn("default-src 'none'", csp)
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn(b"<script", r.body)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        body = r.body.decode()
        self.assertIn("Firefox on Linux", body)
        self.assertIn("Chrome on Android", body)
        self.assertIn("Kitchen &lt;tablet&gt;", body)  # escaped, never markup
        self.assertIn("203.0.113.5", body)
        self.assertNotIn("192.0.2.99", body)  # another subject's session
        self.assertEqual(body.count('<span class="tag">this device</span>'), 1)
        self.assertIn('name="viewport"', body)
        # The style the CSP allows is the page's own: its hash matches.
        import re
        style = re.search(r"<style>(.*?)</style>", body).group(1)
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        self.assertIn(f"'sha256-{digest}'", csp)

    def test_sign_out_a_device_then_every_other_then_this_one(self):
        s = subject("acct")
        here = self.a.issue(s, "cookie")["session_token"]
        other = self.a.issue(s, "cookie")
        third = self.a.issue(s, "cookie")["session_token"]
        _, csrf = self.page(here)
        r = self.post(here, csrf, {"csrf": csrf, "action": "sign_out",
                                   "session": other["session"]["id"]})
        self.assertEqual(r.status, 303, f"{r!r}")
        self.assertEqual(r.header("Location"), "/account")
        self.assertProblem(self.a.validate(other["session_token"]), 401, "session_revoked")
        self.assertEqual(self.a.validate(third).status, 200)
        r = self.post(here, csrf, {"csrf": csrf, "action": "sign_out_others"})
        self.assertEqual(r.status, 303)
        self.assertProblem(self.a.validate(third), 401, "session_revoked")
        self.assertEqual(self.a.validate(here).status, 200)
        r = self.post(here, csrf, {"csrf": csrf, "action": "sign_out",
                                   "session": self.a.validate(here).json["session"]["id"]})
        self.assertEqual(r.status, 303)
        self.assertTrue(r.header("Set-Cookie").startswith("tessera_session=;"))
        self.assertProblem(self.a.validate(here), 401, "session_revoked")
        r = self.a.request("GET", "/account", headers={"Cookie": f"tessera_session={here}"})
        self.assertEqual(r.status, 401)  # no login URL configured: a page that says so
        self.assertTrue(r.header("Content-Type").startswith("text/html"))

    def test_forms_need_the_origin_and_the_double_submit_token(self):
        s = subject("acct")
        here = self.a.issue(s, "cookie")["session_token"]
        other = self.a.issue(s, "cookie")["session_token"]
        _, csrf = self.page(here)
        for cookie, form, origin in [
                (None, {"csrf": csrf, "action": "sign_out_others"}, None),
                (csrf, {"action": "sign_out_others"}, None),
                (csrf, {"csrf": csrf + "x", "action": "sign_out_others"}, None),
                (csrf, {"csrf": csrf, "action": "sign_out_others"}, "https://evil.example")]:
            r = self.post(here, cookie, form, origin)
            self.assertProblem(r, 403, "origin_not_allowed")
        self.assertEqual(self.a.validate(other).status, 200, "a refused form revoked")
        r = self.post(here, csrf, {"csrf": csrf, "action": "explode"})
        self.assertProblem(r, 400, "invalid_request")
        # Another subject's session id changes nothing.
        stranger = self.a.issue(subject("stranger"), "cookie")
        r = self.post(here, csrf, {"csrf": csrf, "action": "sign_out",
                                   "session": stranger["session"]["id"]})
        self.assertEqual(r.status, 303)
        self.assertEqual(self.a.validate(stranger["session_token"]).status, 200)


class TestExpiry(AuthorityTest):
    # Times are whole seconds on the server, so every deadline below lands
    # up to 1 s earlier than its nominal value: the checks leave that margin.
    ENV = {"TESSERA_IDLE_TIMEOUT": "2s", "TESSERA_SESSION_TTL": "4s",
           "TESSERA_REFRESH_GRACE": "2s", "TESSERA_TOUCH_INTERVAL": "1s"}

    def test_idle_and_absolute_expiry(self):
        s = subject()
        t0 = time.monotonic()
        idle = self.a.issue(s, "cookie")["session_token"]
        refresh = self.a.issue(s)["refresh_token"]
        idle_checked = False
        while True:
            time.sleep(0.5)
            elapsed = time.monotonic() - t0
            if elapsed > 2.05 and not idle_checked:
                self.assertProblem(self.a.validate(idle), 401, "session_idle_timeout")
                idle_checked = True
            r = self.a.refresh(refresh)  # activity: the idle deadline moves, not the absolute
            if r.status != 200:
                break
            refresh = r.json["refresh_token"]
            self.assertLess(elapsed, 4.2, "the session outlived its absolute expiry")
        self.assertTrue(idle_checked)
        self.assertProblem(r, 401, "session_expired")
        self.assertGreater(elapsed, 2.9, "expired before the absolute deadline")
        self.assertFalse(self.a.introspect(refresh).json["active"])


class TestParallelRefresh(AuthorityTest):
    ENV = {"TESSERA_REFRESH_GRACE": "2s"}

    def test_parallel_refresh_converges_then_replay_revokes(self):
        s = subject()
        b = self.a.issue(s)
        original = b["refresh_token"]
        results = [None] * 50
        barrier = threading.Barrier(50)

        def worker(i):
            barrier.wait()
            results[i] = self.a.refresh(original)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = [r.status for r in results]
        self.assertEqual(statuses, [200] * 50, [r.code for r in results if r.status != 200])
        successors = {r.json["refresh_token"] for r in results}
        self.assertEqual(len(successors), 1, "parallel refreshes forked the lineage")
        successor = successors.pop()
        time.sleep(3.05)  # past the 2 s grace (whole seconds on the server)
        self.assertProblem(self.a.refresh(original), 401, "refresh_token_reused")
        self.assertProblem(self.a.refresh(successor), 401, "session_revoked")


class TestConfiguredEdges(AuthorityTest):
    ENV = {"TESSERA_METRICS_PUBLIC": "false", "TESSERA_COOKIE_NAME": "sid",
           "TESSERA_COOKIE_DOMAIN": "example.test", "TESSERA_COOKIE_PATH": "/app",
           "TESSERA_COOKIE_SAME_SITE": "Strict"}

    def test_private_metrics_need_the_api_key(self):
        self.assertProblem(self.a.request("GET", "/metrics"), 401, "unauthorized")
        r = self.a.request("GET", "/metrics", auth=True)
        self.assertEqual(r.status, 200)

    def test_cookie_attributes_follow_the_settings(self):
        r = self.a.request("POST", "/v1/sessions", {"subject": subject(), "mode": "cookie"},
                           auth=True)
        self.assertEqual(r.status, 201)
        cookie = r.header("Set-Cookie")
        self.assertTrue(cookie.startswith("sid="))
        attrs = [a.strip() for a in cookie.split(";")[1:]]
        for want in ("Domain=example.test", "Path=/app", "SameSite=Strict", "HttpOnly"):
            self.assertIn(want, attrs)
        token = r.json["session_token"]
        r = self.a.request("POST", "/v1/sessions/validate", raw=b"", auth=True,
                           headers={"Cookie": f"tessera_session={token}"})
        self.assertProblem(r, 400, "invalid_request")  # not the configured name
        r = self.a.request("POST", "/v1/sessions/validate", raw=b"", auth=True,
                           headers={"Cookie": f"sid={token}"})
        self.assertEqual(r.status, 200)

    def test_expect_100_continue_is_answered(self):
        body = json.dumps({"subject": subject(), "mode": "token"}).encode()
        s = self.a.connect()
        s.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + self.a.api_key.encode() + b"\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        s.settimeout(5)
        first = s.recv(64)
        self.assertTrue(first.startswith(b"HTTP/1.1 100"), first[:20])
        s.sendall(body)
        data = first + recv_all(s)
        s.close()
        self.assertIn(b"HTTP/1.1 201", data)

    def test_lifecycle_events_are_counted(self):
        self.a.issue(subject())
        text = self.a.request("GET", "/metrics", auth=True).body.decode()
        line = next(l for l in text.splitlines()
                    if l.startswith('tessera_lifecycle_events_total{event="issued"}'))
        self.assertGreaterEqual(int(line.split()[-1]), 1)


class TestForwardAuth(AuthorityTest):
    """The forward-auth mounts over a real socket: the parts a proxy depends
    on that Api-level tests cannot see (framing, HEAD, the peer address)."""
    ARGS = ["--trusted-proxies", "127.0.0.1/32", "--authz-allowed-hosts", "app.test",
            "--authz-login-url", "https://auth.test/login"]

    def cookie(self):
        return self.a.issue(f"fa-{os.getpid()}", mode="cookie")["session_token"]

    def test_a_declared_body_is_never_waited_for(self):
        # nginx keeps the original Content-Length on its body-less sub-request.
        token = self.cookie()
        s = self.a.connect()
        s.sendall(b"GET /v1/authz/auth-request HTTP/1.1\r\nHost: app.test\r\n"
                  b"Content-Length: 1000\r\nCookie: tessera_session=" + token.encode() +
                  b"\r\n\r\n")
        t0 = time.monotonic()
        data = recv_all(s, timeout=5)  # the answer, then the close (the body cannot be framed)
        s.close()
        self.assertLess(time.monotonic() - t0, 1.5, "waited for a body it should ignore")
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        self.assertTrue(head.startswith("HTTP/1.1 200"), head.splitlines()[0] if head else "")
        self.assertIn("X-Tessera-Subject: fa-", head)
        self.assertIn("Content-Length: 0", head)

    def test_keep_alive_sub_requests_without_a_body_share_a_connection(self):
        token = self.cookie()
        s = self.a.connect()
        req = (b"GET /v1/authz/forward-auth HTTP/1.1\r\nHost: app.test\r\n"
               b"Cookie: tessera_session=" + token.encode() + b"\r\n\r\n")
        s.sendall(req + req)
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        self.assertEqual(data.count(b"HTTP/1.1 200"), 2)

    def test_head_has_the_headers_and_no_body(self):
        s = self.a.connect()
        s.sendall(b"HEAD /v1/authz/auth-request HTTP/1.1\r\nHost: app.test\r\n"
                  b"Connection: close\r\n\r\n")
        data = recv_all(s, timeout=5)
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 401"), head[:20])
        self.assertIn(b"WWW-Authenticate: Bearer", head)
        self.assertIn(b"Location: https://auth.test/login?rd=", head)
        self.assertEqual(body, b"")

    def test_a_trusted_proxy_is_believed_about_the_original_request(self):
        # The test client is 127.0.0.1, configured as the proxy.
        r = self.a.request("GET", "/v1/authz/forward-auth",
                           headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.test",
                                    "X-Forwarded-Uri": "/orders?id=7", "X-Forwarded-Method": "GET",
                                    "Accept": "text/html"})
        self.assertEqual(r.status, 302)
        self.assertEqual(r.header("Location"),
                         "https://auth.test/login?rd=https%3A%2F%2Fapp.test%2Forders%3Fid%3D7")
        self.assertEqual(r.header("Cache-Control"), "no-store")


class TestProcessLifecycle(unittest.TestCase):
    def test_sigterm_answers_in_flight_request_and_exits_0(self):
        a = Authority().start()
        try:
            body = json.dumps({"subject": subject(), "mode": "token"}).encode()
            s = a.connect()
            s.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + a.api_key.encode() + b"\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            idle = a.connect()  # a keep-alive connection with no request
            time.sleep(0.3)
            a.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            s.sendall(body[10:])
            data = recv_all(s)
            s.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 201"), data[:40])
            self.assertEqual(recv_all(idle, 5), b"")
            idle.close()
            self.assertEqual(a.stop(timeout=15), 0)
        finally:
            a.cleanup()

    def test_sigterm_gives_a_stuck_request_at_most_drain_timeout(self):
        a = Authority(env={"TESSERA_DRAIN_TIMEOUT": "1s"}).start()
        try:
            s = a.connect()
            s.sendall(b"POST /v1/tokens/refresh HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n{")  # never finished
            time.sleep(0.2)
            t0 = time.monotonic()
            self.assertEqual(a.stop(timeout=10), 0)
            self.assertLess(time.monotonic() - t0, 3.0)
            s.close()
        finally:
            a.cleanup()

    def test_sigkill_keeps_committed_sessions(self):
        a = Authority().start()
        try:
            s = subject()
            issued = [a.issue(s, "cookie") for _ in range(3)]
            tok = a.issue(s)
            self.assertNotEqual(a.stop(signal.SIGKILL), 0)
            b = Authority(data_dir=a.data_dir)
            b.api_key = a.api_key
            b.start()
            try:
                for i in issued:
                    self.assertEqual(b.validate(i["session_token"]).status, 200)
                self.assertEqual(b.refresh(tok["refresh_token"]).status, 200)
                r = b.request("GET", f"/v1/subjects/{s}/sessions", auth=True)
                self.assertEqual(len(r.json["sessions"]), 4)
            finally:
                b.stop()
        finally:
            a.cleanup()

    def test_key_rotation_while_serving(self):
        import subprocess
        import jwt
        a = Authority(args=["--key-reload-interval", "1s"]).start()
        try:
            s = subject()
            old = a.issue(s)
            old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
            rc = subprocess.run([authority.TESSERA, "keys", "rotate", "--data-dir", a.data_dir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            self.assertEqual(rc, 0)
            deadline = time.monotonic() + 10
            new_kid = old_kid
            while time.monotonic() < deadline and new_kid == old_kid:
                time.sleep(0.3)
                new = a.issue(s)
                new_kid = jwt.get_unverified_header(new["access_token"])["kid"]
            self.assertNotEqual(new_kid, old_kid, "the rotated key was not picked up")
            self.assertTrue(a.introspect(old["access_token"]).json["active"])
            self.assertTrue(a.introspect(new["access_token"]).json["active"])
            kids = {k["kid"] for k in a.request("GET", "/.well-known/jwks.json").json["keys"]}
            self.assertLessEqual({old_kid, new_kid}, kids)
        finally:
            a.cleanup()


    def test_a_revoked_key_stops_verifying_at_the_next_reload(self):
        import subprocess
        import jwt
        a = Authority(args=["--key-reload-interval", "1h"]).start()
        try:
            leaked = a.issue(subject())
            kid = jwt.get_unverified_header(leaked["access_token"])["kid"]
            self.assertTrue(a.introspect(leaked["access_token"]).json["active"])
            out = subprocess.run([authority.TESSERA, "keys", "revoke", "--data-dir", a.data_dir,
                                  kid], capture_output=True, stdin=subprocess.DEVNULL)
            self.assertEqual(out.returncode, 0, out.stderr)
            answer = json.loads(out.stdout)
            self.assertEqual((answer["revoked"], answer["rotated"]), (kid, True))
            a.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and a.introspect(leaked["access_token"]).json["active"]:
                time.sleep(0.1)
            self.assertFalse(a.introspect(leaked["access_token"]).json["active"],
                             "a token of the revoked key still verifies")
            kids = {k["kid"] for k in a.request("GET", "/.well-known/jwks.json").json["keys"]}
            self.assertNotIn(kid, kids, "the revoked key is still published")
            fresh = a.issue(subject())
            self.assertEqual(jwt.get_unverified_header(fresh["access_token"])["kid"],
                             answer["active"])
            self.assertTrue(a.introspect(fresh["access_token"]).json["active"])
            unknown = subprocess.run([authority.TESSERA, "keys", "revoke", "--data-dir",
                                      a.data_dir, kid], capture_output=True,
                                     stdin=subprocess.DEVNULL)
            self.assertEqual(unknown.returncode, 3, "not found")
            self.assertIn(b"key_not_found", unknown.stderr + unknown.stdout)
        finally:
            a.cleanup()


class TestReload(unittest.TestCase):
    @staticmethod
    def key_rotations(a):
        text = a.request("GET", "/metrics").body.decode()
        line = next(l for l in text.splitlines()
                    if l.startswith('tessera_lifecycle_events_total{event="key_rotated"}'))
        return int(line.split()[-1])

    def test_sighup_reloads_rotated_keys(self):
        import subprocess
        import jwt
        a = Authority(args=["--key-reload-interval", "1h"]).start()
        try:
            self.assertEqual(self.key_rotations(a), 0)
            old = a.issue(subject())
            old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
            rc = subprocess.run([authority.TESSERA, "keys", "rotate", "--data-dir", a.data_dir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            self.assertEqual(rc, 0)
            a.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            new_kid = old_kid
            while time.monotonic() < deadline and new_kid == old_kid:
                time.sleep(0.1)
                new = a.issue(subject())
                new_kid = jwt.get_unverified_header(new["access_token"])["kid"]
            self.assertNotEqual(new_kid, old_kid, "SIGHUP did not reload the keys")
            self.assertTrue(a.introspect(old["access_token"]).json["active"])
            # The reload that changed the active key is counted once.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.key_rotations(a) != 1:
                time.sleep(0.1)
            self.assertEqual(self.key_rotations(a), 1)
            self.assertEqual(a.stop(), 0)
        finally:
            a.cleanup()


if __name__ == "__main__":
    authority.run_tests("test_http.py")
