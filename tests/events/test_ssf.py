"""The SSF transmitter (docs/events.md "SSF"): a real `tessera serve` with
RS256 keys pushes CAEP session-revoked Security Event Tokens (RFC 8417,
RFC 8935) to a receiver on loopback, which verifies each SET with PyJWT
through the authority's JWKS (an implementation independent of tessera's).

Run: test_ssf.py --tessera PATH [unittest args]
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

import jwt  # noqa: E402  (Debian's python3-jwt)

CAEP = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
PUSH = "urn:ietf:rfc:8935"


class Receiver:
    """An RFC 8935 push endpoint: keeps every SET it is sent, answers 202."""

    def __init__(self, status=202):
        self.sets = []
        self.status = status
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                with receiver.lock:
                    receiver.sets.append({"body": body,
                                          "content_type": self.headers.get("Content-Type"),
                                          "authorization": self.headers.get("Authorization")})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.sets) >= n:
                    return list(self.sets)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.sets)} SETs arrived, not {n}")


class TestSsfTransmitter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = Authority(args=["--ssf", "true", "--signing-alg", "RS256",
                                "--key-reload-interval", "1s"]).start()
        cls.base = f"http://127.0.0.1:{cls.a.port}"

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop_cleanly()
        finally:
            cls.a.cleanup()

    def create_stream(self, receiver, aud="https://receiver.example", **extra):
        body = {"delivery": {"method": PUSH, "endpoint_url": receiver.url,
                             "authorization_header": "Bearer receiver-secret"},
                "events_requested": [CAEP], "aud": aud, "description": "test"}
        body.update(extra)
        r = self.a.request("POST", "/ssf/streams", body, auth=True)
        self.assertEqual(r.status, 201, f"{r!r} {r.body[:300]!r}")
        self.assertNotIn(b"receiver-secret", r.body)
        stream = r.json
        self.addCleanup(self.a.request, "DELETE", f"/ssf/streams?stream_id={stream['stream_id']}",
                        auth=True)
        return stream

    def verify(self, token, aud="https://receiver.example"):
        config = self.a.request("GET", "/.well-known/ssf-configuration").json
        keys = jwt.PyJWKClient(config["jwks_uri"])
        key = keys.get_signing_key_from_jwt(token)
        self.assertEqual(jwt.get_unverified_header(token)["typ"], "secevent+jwt")
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=aud,
                          issuer=config["issuer"], options={"require": ["iat", "jti"]})

    def test_the_configuration_names_the_transmitter(self):
        r = self.a.request("GET", "/.well-known/ssf-configuration")
        self.assertEqual(r.status, 200, f"{r!r}")
        c = r.json
        self.assertEqual(c["issuer"], self.base)
        self.assertEqual(c["jwks_uri"], self.base + "/.well-known/jwks.json")
        self.assertEqual(c["delivery_methods_supported"], [PUSH])
        self.assertEqual(c["configuration_endpoint"], self.base + "/ssf/streams")
        self.assertEqual(c["spec_version"], "1_0")

    def test_a_revocation_reaches_the_stream_as_a_verified_caep_set(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        stream = self.create_stream(receiver)
        self.assertEqual(stream["events_delivered"], [CAEP])
        self.assertEqual(stream["delivery"], {"method": PUSH, "endpoint_url": receiver.url})
        self.assertEqual(stream["iss"], self.base)
        s = self.a.issue("ssf-alice", mode="cookie")
        r = self.a.request("DELETE", f"/v1/subjects/ssf-alice/sessions/{s['session']['id']}",
                           auth=True)
        self.assertEqual(r.status, 204)
        got = receiver.wait(1)[0]
        self.assertEqual(got["content_type"], "application/secevent+jwt")
        self.assertEqual(got["authorization"], "Bearer receiver-secret")
        claims = self.verify(got["body"])
        self.assertEqual(claims["sub_id"], {"format": "complex",
                                            "session": {"format": "opaque",
                                                        "id": s["session"]["id"]},
                                            "user": {"format": "opaque", "id": "ssf-alice"}})
        event = claims["events"][CAEP]
        self.assertEqual(event["initiating_entity"], "admin")
        self.assertEqual(event["reason_admin"], {"en": "revoked"})
        self.assertTrue(claims["jti"].startswith("evt_"))
        self.assertNotIn(s["session_token"], got["body"])
        # RFC 7009 revocation is a revocation too (Keycloak's transmitter misses it).
        t = self.a.issue("ssf-alice", mode="token")
        r = self.a.request("POST", "/oauth2/revoke", form={"token": t["refresh_token"]})
        self.assertEqual(r.status, 200)
        claims = self.verify(receiver.wait(2)[1]["body"])
        self.assertEqual(claims["sub_id"]["session"]["id"], t["session"]["id"])
        self.assertEqual(claims["events"][CAEP]["initiating_entity"], "user")

    def test_a_logout_everywhere_announces_each_session_and_the_user(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        self.create_stream(receiver, aud="rcv-2")
        t = self.a.issue("ssf-bob", mode="token")
        self.a.issue("ssf-bob", mode="cookie")
        r = self.a.request("POST", "/v1/logout", {"refresh_token": t["refresh_token"],
                                                   "scope": "all"})
        self.assertEqual(r.status, 200, f"{r!r}")
        sets = [self.verify(x["body"], aud="rcv-2") for x in receiver.wait(3)]
        sessions = [c["sub_id"]["session"]["id"] for c in sets if c["sub_id"]["format"] == "complex"]
        users = [c["sub_id"]["id"] for c in sets if c["sub_id"]["format"] == "opaque"]
        self.assertEqual(len(sessions), 2)
        self.assertEqual(users, ["ssf-bob"], "the epoch bump: every session of the user")
        self.assertTrue(all(c["events"][CAEP]["initiating_entity"] in ("user", "admin")
                            for c in sets))

    def test_streams_are_listed_read_and_deleted_and_need_the_ssf_scope(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        stream = self.create_stream(receiver)
        sid = stream["stream_id"]
        listed = self.a.request("GET", "/ssf/streams", auth=True)
        self.assertIn(sid, [s["stream_id"] for s in listed.json])
        self.assertNotIn(b"receiver-secret", listed.body)
        one = self.a.request("GET", f"/ssf/streams?stream_id={sid}", auth=True)
        self.assertEqual(one.json["stream_id"], sid)
        key = self.a.create_api_key(f"no-ssf-{time.time_ns()}", "sessions:read")
        self.a.send_signal(__import__("signal").SIGHUP)
        self.a.wait_for_key(key, works=True)
        r = self.a.request("GET", "/ssf/streams", auth=f"Bearer {key}")
        self.assertEqual((r.status, r.code), (403, "insufficient_scope"))
        self.assertEqual(self.a.request("GET", "/ssf/streams").status, 401)
        self.assertEqual(self.a.request("DELETE", f"/ssf/streams?stream_id={sid}",
                                        auth=True).status, 204)
        self.assertEqual(self.a.request("GET", f"/ssf/streams?stream_id={sid}",
                                        auth=True).status, 404)
        s = self.a.issue("ssf-carol", mode="cookie")
        self.a.request("DELETE", f"/v1/subjects/ssf-carol/sessions/{s['session']['id']}",
                       auth=True)
        time.sleep(1.0)
        self.assertEqual(receiver.sets, [], "a deleted stream is sent nothing")

    def test_bad_stream_requests_are_refused(self):
        for body in ({}, {"delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": "http://x/"}},
                     {"delivery": {"method": PUSH}},
                     {"delivery": {"method": PUSH, "endpoint_url": "ftp://x/"}},
                     {"delivery": {"method": PUSH, "endpoint_url": "http://x/"},
                      "events_requested": "x" * 600},
                     {"delivery": {"method": PUSH, "endpoint_url": "http://x/"}, "aud": [1]}):
            r = self.a.request("POST", "/ssf/streams", body, auth=True)
            self.assertEqual((r.status, r.code), (400, "invalid_request"), body)

    def test_a_stream_made_by_the_cli_is_taken_by_the_running_server(self):
        receiver = Receiver()
        self.addCleanup(receiver.close)
        out = subprocess.run([authority.TESSERA, "ssf", "create", "--data-dir", self.a.data_dir,
                              "--endpoint", receiver.url, "--aud", "cli-aud"],
                             capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL)
        sid = json.loads(out.stdout)["stream_id"]
        self.addCleanup(subprocess.run, [authority.TESSERA, "ssf", "delete", "--data-dir",
                                         self.a.data_dir, sid], capture_output=True)
        deadline = time.monotonic() + 10
        while sid not in [s["stream_id"] for s in
                          self.a.request("GET", "/ssf/streams", auth=True).json]:
            self.assertLess(time.monotonic(), deadline, "serve did not reload the streams")
            time.sleep(0.1)
        s = self.a.issue("ssf-dan", mode="cookie")
        self.a.request("DELETE", f"/v1/subjects/ssf-dan/sessions/{s['session']['id']}", auth=True)
        claims = self.verify(receiver.wait(1)[0]["body"], aud="cli-aud")
        self.assertEqual(claims["sub_id"]["user"]["id"], "ssf-dan")


class TestSsfOff(unittest.TestCase):
    def test_an_hs256_signing_key_refuses_to_start(self):
        a = Authority(args=["--ssf", "true", "--signing-alg", "HS256"])
        self.addCleanup(a.cleanup)
        with self.assertRaises(RuntimeError) as e:
            a.start()
        self.assertIn("ssf: the active signing key is HS256", str(e.exception))

    def test_without_the_setting_the_routes_are_404(self):
        a = Authority().start()
        self.addCleanup(a.cleanup)
        self.assertEqual(a.request("GET", "/.well-known/ssf-configuration").status, 404)
        self.assertEqual(a.request("GET", "/ssf/streams", auth=True).status, 404)


if __name__ == "__main__":
    authority.run_tests(__file__)
