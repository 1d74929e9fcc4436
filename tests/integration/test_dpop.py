"""DPoP-bound token sessions (RFC 9449, docs/bound-sessions.md) over HTTP: a
real `tessera serve` and the example resource service, with keys and proofs
made only by npm's `dpop` and `jose` (tests/interop/npm/dpop_tool.mjs), an
implementation independent of tessera's; PyJWT reads the access tokens.

Run: test_dpop.py --tessera PATH [--resource-service PATH] [unittest args]
(scripts/node-tools.sh installs the npm packages into build/tools/npm.)
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import jwt  # PyJWT (Debian's python3-jwt)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

RESOURCE_SERVICE = None  # --resource-service PATH
tools = authority.npm_tools


class Client:
    """A DPoP key pair held by npm's dpop/jose, in a file of `directory`."""

    def __init__(self, directory, alg):
        self.file = os.path.join(directory, f"key-{alg}-{os.urandom(4).hex()}.json")
        out = self._node("keygen", alg, self.file)
        self.jkt = json.loads(out)["jkt"]

    def _node(self, *args, env=None):
        r = subprocess.run(["node", os.path.join(tools(), "dpop_tool.mjs"), *args],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            raise AssertionError(f"dpop_tool {args[0]} failed: {r.stderr[-400:]}")
        return r.stdout.strip()

    def proof(self, method, url, access_token=None, nonce=None, iat_offset=0):
        return self._node("proof", self.file, method, url, access_token or "-", nonce or "-",
                          env={"IAT_OFFSET": str(iat_offset)} if iat_offset else None)


def claims_of(access_token):
    """The access token's claims, unverified (the signature is other suites')."""
    return jwt.decode(access_token, options={"verify_signature": False})


class DpopCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tessera-dpop-")
        cls.auth = Authority(args=getattr(cls, "ARGS", None)).start()
        cls.base = f"http://127.0.0.1:{cls.auth.port}"
        cls.owner = Client(cls.dir, "ES256")

    @classmethod
    def tearDownClass(cls):
        cls.auth.stop_cleanly()
        cls.auth.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def bound(self, client=None, subject="dora"):
        body = self.auth.issue(subject, "token", dpop_jkt=(client or self.owner).jkt)
        self.assertEqual(body["token_type"], "DPoP")
        return body

    def refresh(self, refresh_token, proof=None):
        headers = {"DPoP": proof} if proof is not None else None
        return self.auth.request("POST", "/v1/tokens/refresh", {"refresh_token": refresh_token},
                                 headers=headers)

    def refresh_url(self):
        return self.base + "/v1/tokens/refresh"

    def assertRefused(self, r, status, code):
        self.assertEqual((r.status, r.code), (status, code), r)


class TestDpopRefresh(DpopCase):
    def test_issue_binds_the_session_and_its_access_tokens_name_the_key(self):
        body = self.bound()
        self.assertEqual(claims_of(body["access_token"])["cnf"], {"jkt": self.owner.jkt})
        # Introspection answers the binding without a proof (RFC 9449 §6.2).
        r = self.auth.introspect(body["access_token"])
        self.assertEqual((r.status, r.json["active"]), (200, True), r)
        self.assertEqual(r.json["cnf"], {"jkt": self.owner.jkt})
        plain = self.auth.issue("erin", "token")
        self.assertEqual(plain["token_type"], "Bearer")
        self.assertNotIn("cnf", claims_of(plain["access_token"]))

    def test_issue_refuses_a_bad_thumbprint_and_cookie_mode(self):
        for body in ({"subject": "dora", "mode": "token", "dpop_jkt": "abc"},
                     {"subject": "dora", "mode": "token", "dpop_jkt": 7},
                     {"subject": "dora", "mode": "cookie", "dpop_jkt": self.owner.jkt}):
            r = self.auth.request("POST", "/v1/sessions", body, auth=True)
            self.assertRefused(r, 400, "invalid_request")

    def test_each_algorithm_renews_with_a_proof_by_its_key(self):
        for alg in ("ES256", "Ed25519", "RS256"):
            with self.subTest(alg=alg):
                client = Client(self.dir, alg)
                body = self.bound(client)
                r = self.refresh(body["refresh_token"], client.proof("POST", self.refresh_url()))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json["token_type"], "DPoP")
                self.assertEqual(claims_of(r.json["access_token"])["cnf"]["jkt"], client.jkt)
                self.assertNotEqual(r.json["refresh_token"], body["refresh_token"])

    def test_without_a_proof_the_answer_is_a_dpop_challenge(self):
        body = self.bound()
        r = self.refresh(body["refresh_token"])
        self.assertRefused(r, 401, "dpop_proof_invalid")
        challenge = r.header("WWW-Authenticate") or ""
        self.assertTrue(challenge.startswith('DPoP error="invalid_dpop_proof"'), challenge)
        self.assertIn("ES256", challenge)
        # Nothing was revoked: the key's proof still renews.
        r = self.refresh(body["refresh_token"], self.owner.proof("POST", self.refresh_url()))
        self.assertEqual(r.status, 200, r)

    def test_a_proof_for_another_request_or_time_is_refused(self):
        body = self.bound()
        url = self.refresh_url()
        for label, proof in (
                ("htu", self.owner.proof("POST", self.base + "/oauth2/token")),
                ("htm", self.owner.proof("PUT", url)),
                ("stale iat", self.owner.proof("POST", url, iat_offset=-600)),
                ("future iat", self.owner.proof("POST", url, iat_offset=600)),
                ("garbage", "not-a-proof")):
            with self.subTest(label):
                self.assertRefused(self.refresh(body["refresh_token"], proof), 401,
                                   "dpop_proof_invalid")
        # Two DPoP headers, even with a good proof among them (RFC 9449 §4.3).
        good = self.owner.proof("POST", url)
        conn = http.client.HTTPConnection("127.0.0.1", self.auth.port, timeout=10)
        try:
            data = json.dumps({"refresh_token": body["refresh_token"]}).encode()
            conn.putrequest("POST", "/v1/tokens/refresh")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
            conn.putheader("DPoP", good)
            conn.putheader("DPoP", good)
            conn.endheaders(data)
            r = conn.getresponse()
            problem = json.loads(r.read())
            self.assertEqual((r.status, problem.get("code")), (401, "dpop_proof_invalid"))
        finally:
            conn.close()
        # Nothing above spent the token: the key's own proof renews.
        self.assertEqual(self.refresh(body["refresh_token"], self.owner.proof("POST", url)).status,
                         200)

    def test_a_replayed_proof_is_refused(self):
        body = self.bound()
        proof = self.owner.proof("POST", self.refresh_url())
        first = self.refresh(body["refresh_token"], proof)
        self.assertEqual(first.status, 200, first)
        # The same proof with the successor: its jti is spent.
        self.assertRefused(self.refresh(first.json["refresh_token"], proof), 401,
                           "dpop_proof_invalid")

    def test_a_proof_by_another_key_revokes_the_family(self):
        body = self.bound()
        thief = Client(self.dir, "ES256")
        r = self.refresh(body["refresh_token"], thief.proof("POST", self.refresh_url()))
        self.assertRefused(r, 401, "dpop_key_mismatch")
        # The owner, key in hand, finds the session ended.
        r = self.refresh(body["refresh_token"], self.owner.proof("POST", self.refresh_url()))
        self.assertRefused(r, 401, "session_revoked")
        r = self.auth.introspect(body["refresh_token"])
        self.assertEqual((r.status, r.json["active"]), (200, False))

    def test_the_oauth2_token_endpoint_takes_the_proof_too(self):
        body = self.bound()
        form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
        r = self.auth.request("POST", "/oauth2/token", form=form)
        self.assertEqual((r.status, r.json.get("error")), (400, "invalid_dpop_proof"), r)
        r = self.auth.request("POST", "/oauth2/token", form=form, headers={
            "DPoP": self.owner.proof("POST", self.base + "/oauth2/token")})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["token_type"], "DPoP")
        self.assertEqual(claims_of(r.json["access_token"])["cnf"]["jkt"], self.owner.jkt)
        meta = self.auth.request("GET", "/.well-known/oauth-authorization-server").json
        self.assertEqual(set(meta["dpop_signing_alg_values_supported"]),
                         {"ES256", "EdDSA", "Ed25519", "RS256"})


class TestDpopNonce(DpopCase):
    """dpop_nonce: the server nonce of RFC 9449 §8 at both refresh endpoints."""
    ARGS = ["--dpop-nonce", "true"]

    def test_the_first_proof_learns_the_nonce_and_the_retry_renews(self):
        body = self.bound()
        url = self.refresh_url()
        r = self.refresh(body["refresh_token"], self.owner.proof("POST", url))
        self.assertRefused(r, 401, "use_dpop_nonce")
        self.assertTrue((r.header("WWW-Authenticate") or "").startswith(
            'DPoP error="use_dpop_nonce"'), r.header("WWW-Authenticate"))
        nonce = r.header("DPoP-Nonce")
        self.assertTrue(nonce, "no DPoP-Nonce on use_dpop_nonce")
        self.assertRefused(self.refresh(body["refresh_token"],
                                        self.owner.proof("POST", url, nonce="stale-or-forged")),
                           401, "use_dpop_nonce")
        r = self.refresh(body["refresh_token"], self.owner.proof("POST", url, nonce=nonce))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("DPoP-Nonce"), "a success carries the next nonce")

    def test_the_issue_answer_and_the_oauth2_endpoint_carry_it_too(self):
        r = self.auth.request("POST", "/v1/sessions",
                              {"subject": "dora", "mode": "token", "dpop_jkt": self.owner.jkt},
                              auth=True)
        self.assertEqual(r.status, 201, r)
        nonce = r.header("DPoP-Nonce")
        self.assertTrue(nonce, "the issue of a bound session names the nonce")
        form = {"grant_type": "refresh_token", "refresh_token": r.json["refresh_token"]}
        token_url = self.base + "/oauth2/token"
        bad = self.auth.request("POST", "/oauth2/token", form=form,
                                headers={"DPoP": self.owner.proof("POST", token_url)})
        self.assertEqual((bad.status, bad.json.get("error")), (400, "use_dpop_nonce"), bad)
        self.assertTrue(bad.header("DPoP-Nonce"))
        good = self.auth.request("POST", "/oauth2/token", form=form, headers={
            "DPoP": self.owner.proof("POST", token_url, nonce=nonce)})
        self.assertEqual(good.status, 200, good)
        self.assertEqual(good.json["token_type"], "DPoP")


class TestDpopResource(DpopCase):
    """The example resource service (tessera::verify) with DPoP-bound tokens."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if RESOURCE_SERVICE is None:
            raise unittest.SkipTest("--resource-service PATH not given")
        cls.rs, cls.rs_port, cls.rs_log = authority.start_resource_service(
            RESOURCE_SERVICE, cls.auth, None, cls.dir)
        cls.hello = f"http://127.0.0.1:{cls.rs_port}/hello"

    @classmethod
    def tearDownClass(cls):
        cls.rs.terminate()
        cls.rs.wait(timeout=10)
        cls.rs_log.close()
        super().tearDownClass()

    def get(self, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.rs_port, timeout=10)
        try:
            conn.request("GET", "/hello", headers=headers)
            r = conn.getresponse()
            return r.status, r.getheader("WWW-Authenticate") or "", json.loads(r.read() or b"{}")
        finally:
            conn.close()

    def test_a_bound_token_needs_the_dpop_scheme_and_a_proof_by_its_key(self):
        token = self.bound()["access_token"]
        status, _, body = self.get({"Authorization": f"DPoP {token}",
                                    "DPoP": self.owner.proof("GET", self.hello, token)})
        self.assertEqual((status, body.get("hello")), (200, "dora"))

        status, challenge, body = self.get({"Authorization": f"Bearer {token}"})
        self.assertEqual((status, body.get("error")), (401, "dpop_proof_invalid"))
        self.assertTrue(challenge.startswith("DPoP "), challenge)
        for label, proof in (
                ("no ath", self.owner.proof("GET", self.hello)),
                ("another URL", self.owner.proof("GET", self.base + "/hello", token)),
                ("POST", self.owner.proof("POST", self.hello, token))):
            with self.subTest(label):
                status, _, body = self.get({"Authorization": f"DPoP {token}", "DPoP": proof})
                self.assertEqual((status, body.get("error")), (401, "dpop_proof_invalid"))
        thief = Client(self.dir, "Ed25519")
        status, _, body = self.get({"Authorization": f"DPoP {token}",
                                    "DPoP": thief.proof("GET", self.hello, token)})
        self.assertEqual((status, body.get("error")), (401, "dpop_key_mismatch"))

    def test_an_unbound_token_stays_a_bearer_token(self):
        token = self.auth.issue("erin", "token")["access_token"]
        status, _, body = self.get({"Authorization": f"Bearer {token}"})
        self.assertEqual((status, body.get("hello")), (200, "erin"))


class TestDpopForwardAuth(DpopCase):
    """Forward-auth (Traefik/Caddy style) with a DPoP-bound access token: the
    proof is for the original request the trusted proxy describes."""
    ARGS = ["--trusted-proxies", "127.0.0.1/32", "--authz-allowed-hosts", "app.test",
            "--authz-upstream-token", "true"]
    ORIGINAL = "https://app.test/orders"

    def check(self, authorization, proof=None, method="GET"):
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.test",
                   "X-Forwarded-Uri": "/orders?id=7", "X-Forwarded-Method": method,
                   "Authorization": authorization}
        if proof is not None:
            headers["DPoP"] = proof
        return self.auth.request("GET", "/v1/authz/forward-auth", headers=headers)

    def test_a_bound_token_passes_with_its_proof_for_the_original_request(self):
        token = self.bound()["access_token"]
        r = self.check(f"DPoP {token}", self.owner.proof("GET", self.ORIGINAL, token))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Tessera-Subject"), "dora")
        self.assertEqual(r.header("Authorization"), f"DPoP {token}")

    def test_a_bound_token_without_its_proof_or_with_another_is_denied(self):
        token = self.bound()["access_token"]
        thief = Client(self.dir, "ES256")
        for label, auth, proof in (
                ("as a bearer", f"Bearer {token}", None),
                ("no proof", f"DPoP {token}", None),
                ("proof for another URL", f"DPoP {token}",
                 self.owner.proof("GET", "https://app.test/admin", token)),
                ("proof for another method", f"DPoP {token}",
                 self.owner.proof("POST", self.ORIGINAL, token)),
                ("another key", f"DPoP {token}", thief.proof("GET", self.ORIGINAL, token))):
            with self.subTest(label):
                self.assertEqual(self.check(auth, proof).status, 401)

    def test_an_unbound_token_stays_a_bearer_token(self):
        token = self.auth.issue("erin", "token")["access_token"]
        r = self.check(f"Bearer {token}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Authorization"), f"Bearer {token}")


if __name__ == "__main__":
    argv = list(sys.argv)
    found = authority.take_path_flags(argv, ("--tessera", "--resource-service"))
    RESOURCE_SERVICE = found.get("--resource-service")
    if authority.TESSERA is None:
        sys.exit("usage: test_dpop.py --tessera PATH [--resource-service PATH] [unittest args]")
    unittest.main(module="__main__", argv=argv, verbosity=2)
