"""Webhooks (docs/events.md "Webhooks"): a real `tessera serve` POSTs the
outbox's events to a receiver that verifies each one with the npm
`standardwebhooks` package (tests/interop/npm/receiver.mjs), an implementation
independent of tessera's.

Run: test_webhooks.py --tessera PATH [unittest args]
(scripts/node-tools.sh installs the receiver's package into build/tools/npm.)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import authority  # noqa: E402
from authority import Authority  # noqa: E402

tools = authority.npm_tools  # build/tools/npm, installed on first use


def new_secret():
    out = subprocess.run([authority.TESSERA, "webhooks", "new-secret"], check=True,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    secret = out.stdout.strip()
    assert secret.startswith("whsec_"), "new-secret printed no whsec_ secret"
    return secret


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


class Receiver:
    """receiver.mjs on a free port; what it verified, line by line."""

    def __init__(self, secret):
        self.dir = tempfile.mkdtemp(prefix="tessera-hook-")
        self.log = os.path.join(self.dir, "events.jsonl")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(["node", os.path.join(tools(), "receiver.mjs"), port_file,
                                      self.log], cwd=tools(),
                                     env=dict(os.environ, WEBHOOK_SECRET=secret),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not read_text(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the webhook receiver did not start")
            time.sleep(0.05)
        self.port = int(read_text(port_file))
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def control(self, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        urllib.request.urlopen(f"http://127.0.0.1:{self.port}/control?{query}", timeout=5).read()

    def lines(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def delivered(self):
        """Verified and answered 2xx."""
        return [x for x in self.lines() if "refused" not in x and 200 <= x["answered"] < 300]

    def wait_for(self, predicate, timeout=20, what="events"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if predicate(got):
                return got
            time.sleep(0.05)
        summary = [(x.get("type"), x.get("answered"), x.get("refused")) for x in self.lines()]
        raise AssertionError(f"the receiver did not get the {what} within {timeout}s: {summary}")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def serve_with_hooks(receiver_urls, secret, data_dir=None, extra=()):
    auth = Authority(args=["--webhook-urls", ",".join(receiver_urls), *extra], data_dir=data_dir,
                     env={"TESSERA_WEBHOOK_SECRET": secret})
    return auth.start()


class TestWebhooks(unittest.TestCase):
    def setUp(self):
        self.secret = new_secret()
        self.receiver = Receiver(self.secret)
        self.addCleanup(self.receiver.close)
        self.auth = serve_with_hooks([self.receiver.url], self.secret,
                                     extra=["--refresh-grace", "0s"])
        self.addCleanup(self.auth.cleanup)

    def test_every_kind_of_event_arrives_signed_and_without_secrets(self):
        a = self.auth
        cookie = a.issue("alice", mode="cookie")
        r = a.request("DELETE", f"/v1/subjects/alice/sessions/{cookie['session']['id']}", auth=True)
        self.assertEqual(r.status, 204, r)
        first = a.issue("bob")
        refreshed = a.refresh(first["refresh_token"])
        self.assertEqual(refreshed.status, 200, refreshed)
        # refresh_grace 0: any reuse is a replay, and the lineage ends.
        replay = a.refresh(first["refresh_token"])
        self.assertEqual((replay.status, replay.code), (401, "refresh_token_reused"), replay)
        r = a.request("POST", "/v1/subjects/carol/epoch", auth=True)
        self.assertEqual(r.status, 200, r)
        family = a.issue("dave")
        r = a.request("POST", "/v1/logout",
                      {"refresh_token": family["refresh_token"], "scope": "family"})
        self.assertEqual(r.status, 200, r)

        got = self.receiver.wait_for(
            lambda xs: {"session.revoked", "subject.epoch_bumped", "family.revoked",
                        "session.replay_detected"}
            <= {x["type"] for x in xs} and any(
                x["type"] == "session.revoked" and x["data"]["subject"] == "dave" for x in xs))
        self.assertFalse([x for x in self.receiver.lines() if "refused" in x],
                         "every request verified with standardwebhooks")
        by_type = {}
        for x in got:
            by_type.setdefault(x["type"], []).append(x)
        revoked = [x["data"] for x in by_type["session.revoked"]]
        self.assertIn({"subject": "alice", "session_id": cookie["session"]["id"]},
                      [{"subject": d["subject"], "session_id": d["session_id"]} for d in revoked])
        self.assertIn("revoked", [d["reason"] for d in revoked if d["subject"] == "alice"])
        bumped = by_type["subject.epoch_bumped"][0]["data"]
        self.assertEqual((bumped["subject"], bumped["global"]), ("carol", False))
        self.assertGreaterEqual(bumped["epoch"], 1)
        fam = [x["data"] for x in by_type["family.revoked"] if x["data"]["subject"] == "dave"]
        self.assertEqual(len(fam), 1)
        self.assertEqual(fam[0]["reason"], "logout")
        replays = [x["data"] for x in by_type.get("session.replay_detected", [])]
        self.assertEqual([(d["subject"], d["reason"]) for d in replays],
                         [("bob", "refresh_token_reused")])
        ids = [x["id"] for x in got]
        self.assertTrue(all(i.startswith("evt_") for i in ids))
        self.assertEqual(len(ids), len(set(ids)), "each event once while the receiver is up")
        for x in got:
            for secret in (first["refresh_token"], family["refresh_token"], cookie["session_token"],
                           self.secret, self.auth.api_key):
                self.assertNotIn(secret, x["raw"], f"a secret in a {x['type']} webhook")

    def test_a_signing_key_rotation_is_announced(self):
        subprocess.run([authority.TESSERA, "keys", "rotate", "--data-dir", self.auth.data_dir],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        self.auth.send_signal(signal.SIGHUP)
        got = self.receiver.wait_for(lambda xs: any(x["type"] == "signing_key.rotated" for x in xs),
                                     what="signing_key.rotated")
        kid = [x for x in got if x["type"] == "signing_key.rotated"][0]["data"]["kid"]
        jwks = self.auth.request("GET", "/.well-known/jwks.json").json
        self.assertIn(kid, [k["kid"] for k in jwks["keys"]])

    def test_a_receiver_that_refuses_gets_the_event_again_with_the_same_id(self):
        self.receiver.control(status=503)
        s = self.auth.issue("erin")
        r = self.auth.request("DELETE", f"/v1/subjects/erin/sessions/{s['session']['id']}",
                              auth=True)
        self.assertEqual(r.status, 204, r)
        deadline = time.monotonic() + 10
        while not any(x.get("answered") == 503 for x in self.receiver.lines()):
            self.assertLess(time.monotonic(), deadline, "no attempt reached the receiver")
            time.sleep(0.05)
        refused_id = [x for x in self.receiver.lines() if x.get("answered") == 503][0]["id"]
        self.assertEqual(self.receiver.delivered(), [])
        self.receiver.control(status=204)
        got = self.receiver.wait_for(lambda xs: len(xs) >= 1, what="retried event")
        self.assertEqual(got[0]["id"], refused_id, "a retry keeps the event's id")
        self.assertIn("webhook_delivery_failed", self.auth.log_text())


class TestWebhookReceivers(unittest.TestCase):
    def test_a_receiver_with_another_secret_refuses_every_webhook(self):
        # The receivers' check is real: signed with another secret, nothing verifies.
        receiver = Receiver(new_secret())
        self.addCleanup(receiver.close)
        auth = serve_with_hooks([receiver.url], new_secret())
        self.addCleanup(auth.cleanup)
        s = auth.issue("frank")
        auth.request("DELETE", f"/v1/subjects/frank/sessions/{s['session']['id']}", auth=True)
        deadline = time.monotonic() + 10
        while not receiver.lines():
            self.assertLess(time.monotonic(), deadline, "nothing reached the receiver")
            time.sleep(0.05)
        self.assertIn("refused", receiver.lines()[0])
        self.assertEqual(receiver.delivered(), [])

    def test_an_endpoint_that_is_down_holds_back_no_other(self):
        secret = new_secret()
        up = Receiver(secret)
        self.addCleanup(up.close)
        down = Receiver(secret)
        self.addCleanup(down.close)
        down.control(status=500)
        auth = serve_with_hooks([down.url, up.url], secret)
        self.addCleanup(auth.cleanup)
        for i in range(5):
            s = auth.issue(f"grace{i}")
            auth.request("DELETE", f"/v1/subjects/grace{i}/sessions/{s['session']['id']}",
                         auth=True)
        up.wait_for(lambda xs: len(xs) == 5, timeout=10, what="five events at the endpoint up")
        self.assertEqual(down.delivered(), [])
        down.control(status=204)
        down.wait_for(lambda xs: len({x["id"] for x in xs}) == 5, timeout=90,
                      what="the backlog once the endpoint is back")
        self.assertEqual(len({x["id"] for x in up.delivered()}), 5)

    def test_every_event_is_delivered_after_a_kill_9_mid_delivery(self):
        secret = new_secret()
        receiver = Receiver(secret)
        self.addCleanup(receiver.close)
        receiver.control(delay_ms=150)  # deliveries in flight when the authority dies
        data_dir = tempfile.mkdtemp(prefix="tessera-it-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        auth = serve_with_hooks([receiver.url], secret, data_dir=data_dir)
        ids = []
        for i in range(20):
            s = auth.issue(f"heidi{i}")
            r = auth.request("DELETE", f"/v1/subjects/heidi{i}/sessions/{s['session']['id']}",
                             auth=True)
            self.assertEqual(r.status, 204, r)
            ids.append(s["session"]["id"])
        receiver.wait_for(lambda xs: len(xs) >= 2, what="the first deliveries")
        auth.stop(sig=signal.SIGKILL)
        before = {x["data"]["session_id"] for x in receiver.delivered()}
        self.assertLess(len(before), 20, "killed before the end of the delivery")
        receiver.control(delay_ms=0)
        again = Authority(args=auth.args_extra, env=auth.env_extra, data_dir=data_dir)
        again.api_key = auth.api_key
        again.start()
        self.addCleanup(again.cleanup)
        got = receiver.wait_for(
            lambda xs: {x["data"].get("session_id") for x in xs} >= set(ids), timeout=30,
            what="every event after the restart")
        self.assertEqual({x["data"]["session_id"] for x in got if x["type"] == "session.revoked"},
                         set(ids))


class TestWebhookSettings(unittest.TestCase):
    def run_serve(self, *args, env=None):
        d = tempfile.mkdtemp(prefix="tessera-it-")
        self.addCleanup(shutil.rmtree, d, True)
        return subprocess.run([authority.TESSERA, "serve", "--data-dir", d, "--listen",
                               "127.0.0.1:0", *args], capture_output=True, text=True,
                              env=dict(os.environ, **(env or {})), timeout=20,
                              stdin=subprocess.DEVNULL)

    def test_urls_without_a_secret_do_not_start(self):
        r = self.run_serve("--webhook-urls", "http://127.0.0.1:9/hook")
        self.assertEqual(r.returncode, 2)
        self.assertIn("webhook_urls: needs webhook_secret", r.stderr)

    def test_a_bad_secret_is_refused_without_being_repeated(self):
        bad = "whsec_dG9vc2hvcnQ="
        r = self.run_serve("--webhook-urls", "http://127.0.0.1:9/hook",
                           env={"TESSERA_WEBHOOK_SECRET": bad})
        self.assertEqual(r.returncode, 2)
        self.assertIn("webhook_secret:", r.stderr)
        self.assertNotIn("dG9vc2hvcnQ", r.stderr + r.stdout)

    def test_a_url_that_is_not_http_is_refused(self):
        r = self.run_serve("--webhook-urls", "ftp://example.com/hook",
                           env={"TESSERA_WEBHOOK_SECRET": new_secret()})
        self.assertEqual(r.returncode, 2)
        self.assertIn("webhook_urls:", r.stderr)


if __name__ == "__main__":
    authority.run_tests(__file__)
