#!/usr/bin/python3
"""Integration tests of TLS on the listener (docs/http.md "TLS"): a real
`tessera serve` with tls_cert/tls_key (and tls_client_ca), driven by
Python's ssl module and curl. Every certificate is made here, in a temporary
directory, with the openssl command: a throwaway CA, server certificates
for 127.0.0.1/localhost and a client certificate.

Run: /usr/bin/python3 test_tls.py --tessera PATH [unittest args, e.g. a class name]
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authority  # noqa: E402
from authority import Authority  # noqa: E402


class Pki:
    """A throwaway CA and the certificates it issues, as PEM files in `dir`."""

    def __init__(self, directory, name="test-ca"):
        self.dir = directory
        self.ca_key = self.path(f"{name}.key")
        self.ca_cert = self.path(f"{name}.pem")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2",
                     "-subj", f"/CN=tessera {name}",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def path(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def openssl(*args):
        r = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace')}")

    def issue(self, name, serial, usage="serverAuth", key="rsa:2048"):
        """Returns (cert path, key path) of a new leaf certificate; a server
        certificate names 127.0.0.1 and localhost. RSA by default, so that a
        client offering only RSA key exchange could be served were it allowed."""
        key_path, csr, cert = self.path(f"{name}.key"), self.path(f"{name}.csr"), \
            self.path(f"{name}.pem")
        ext = self.path(f"{name}.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write(f"extendedKeyUsage={usage}\n")
            if usage == "serverAuth":
                f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        curve = ["-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else []
        self.openssl("req", "-newkey", key, *curve, "-nodes", "-keyout", key_path, "-out", csr,
                     "-subj", f"/CN={name}")
        self.openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                     "-set_serial", str(serial), "-days", "2", "-out", cert, "-extfile", ext)
        return cert, key_path


def client_context(pki, cert=None):
    """Verifies the server against the test CA (and its name: 127.0.0.1)."""
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


def https(a, ctx, method="GET", path="/healthz", body=None, auth=False, timeout=10):
    """(status, peer certificate DER, TLS version, cipher) of one request on
    a fresh connection."""
    hdrs = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    if auth:
        hdrs["Authorization"] = f"Bearer {a.api_key}"
    conn = http.client.HTTPSConnection("127.0.0.1", a.port, timeout=timeout, context=ctx)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        r.read()
        return r.status, conn.sock.getpeercert(binary_form=True), conn.sock.version(), \
            conn.sock.cipher()[0]
    finally:
        conn.close()


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(path):
    with open(path) as f:
        return fingerprint(ssl.PEM_cert_to_DER_cert(f.read()))


def wait_for(pred, limit=5.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def old_protocol_context(pki):
    """A client that speaks TLS 1.0 and 1.1 only (security level 0: OpenSSL 3
    refuses them otherwise)."""
    ctx = client_context(pki)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def serves_old_protocols_to(pki, cert, ctx):
    """Control: `ctx` does complete a TLS 1.1 handshake with a server that
    allows it, so a refusal by tessera is tessera's."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.load_cert_chain(*cert)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    outcome = {}

    def accept():
        try:
            raw, _ = listener.accept()
            with server_ctx.wrap_socket(raw, server_side=True) as s:
                outcome["server"] = s.version()
        except (OSError, ssl.SSLError) as e:
            outcome["server_error"] = str(e)

    t = threading.Thread(target=accept)
    t.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                outcome["client"] = s.version()
    except (OSError, ssl.SSLError) as e:
        outcome["client_error"] = str(e)
    t.join(timeout=5)
    listener.close()
    return outcome.get("client") in ("TLSv1", "TLSv1.1")


class TlsTest(unittest.TestCase):
    """One `tessera serve` per class with a server certificate from a fresh CA."""
    CLIENT_CA = False
    ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-tls-")
        cls.pki = Pki(cls.tmp)
        cls.server_cert = cls.pki.issue("server", 1001)
        cls.cert_path = os.path.join(cls.tmp, "tls.pem")
        cls.key_path = os.path.join(cls.tmp, "tls.key")
        shutil.copy(cls.server_cert[0], cls.cert_path)
        shutil.copy(cls.server_cert[1], cls.key_path)
        args = ["--tls-cert", cls.cert_path, "--tls-key", cls.key_path] + cls.ARGS
        if cls.CLIENT_CA:
            args += ["--tls-client-ca", cls.pki.ca_cert]
        cls.a = Authority(args=args).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.a.stop_cleanly()
        finally:
            cls.a.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)


class TestTls(TlsTest):
    ARGS = ["--header-timeout", "2s", "--log-level", "debug"]

    def test_verified_client_gets_healthz_and_issues_a_session(self):
        ctx = client_context(self.pki)
        status, der, version, _ = https(self.a, ctx)
        self.assertEqual(status, 200)
        self.assertEqual(fingerprint(der), pem_fingerprint(self.server_cert[0]))
        self.assertEqual(version, "TLSv1.3", "TLS 1.3 is preferred when the client speaks it")
        status, _, _, _ = https(self.a, ctx, "POST", "/v1/sessions",
                                {"subject": "tls-alice", "mode": "token"}, auth=True)
        self.assertEqual(status, 201)

    def test_localhost_is_a_name_of_the_certificate(self):
        ctx = client_context(self.pki)
        with socket.create_connection(("127.0.0.1", self.a.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))

    def test_tls12_client_gets_an_ecdhe_aead_cipher(self):
        ctx = client_context(self.pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        status, _, version, cipher = https(self.a, ctx)
        self.assertEqual(status, 200)
        self.assertEqual(version, "TLSv1.2")
        self.assertTrue(cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA" in cipher),
                        cipher)

    def test_tls12_client_offering_only_rsa_key_exchange_is_refused(self):
        ctx = client_context(self.pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA")
        with self.assertRaises(ssl.SSLError):
            https(self.a, ctx)
        self.assertEqual(https(self.a, client_context(self.pki))[0], 200)

    def test_tls11_client_is_refused(self):
        ctx = old_protocol_context(self.pki)
        if not serves_old_protocols_to(self.pki, self.server_cert, ctx):
            self.skipTest("this OpenSSL cannot speak TLS 1.1 even at security level 0")
        with self.assertRaises(ssl.SSLError) as caught:
            https(self.a, old_protocol_context(self.pki))
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper())

    def test_tls12_renegotiation_is_refused(self):
        # s_client's "R" line asks for a renegotiation; the server answers
        # with a no_renegotiation alert and the session goes no further.
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.a.port}",
                            "-tls1_2", "-CAfile", self.pki.ca_cert], input=b"R\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        out = r.stdout.decode(errors="replace")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)
        self.assertEqual(https(self.a, client_context(self.pki))[0], 200)

    def test_plain_http_on_the_tls_port_gets_no_http_answer(self):
        s = socket.create_connection(("127.0.0.1", self.a.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        self.assertFalse(data.startswith(b"HTTP/"), data[:40])
        self.assertNotIn(b"200 OK", data)
        # Logged at debug with OpenSSL's reason, without the request.
        self.assertTrue(wait_for(lambda: '"event":"tls_handshake_failed"' in self.a.log_text()),
                        "no tls_handshake_failed logged")
        failed = [line for line in self.a.log_text().splitlines()
                  if '"event":"tls_handshake_failed"' in line]
        self.assertNotIn("healthz", "\n".join(failed))
        self.assertEqual(https(self.a, client_context(self.pki))[0], 200)

    def test_curl_with_the_ca_gets_healthz(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed: the curl check of TLS is skipped")
        r = subprocess.run([curl, "-sS", "--cacert", self.pki.ca_cert, "-o", os.devnull,
                            "-w", "%{http_code} %{ssl_verify_result}",
                            f"https://127.0.0.1:{self.a.port}/healthz"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(r.stdout.decode(), "200 0")
        # Without the CA, curl does not trust the throwaway certificate.
        r = subprocess.run([curl, "-sS", "-o", os.devnull,
                            f"https://127.0.0.1:{self.a.port}/healthz"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        self.assertNotEqual(r.returncode, 0)

    def test_client_that_never_sends_a_client_hello_is_closed_within_header_timeout(self):
        s = socket.create_connection(("127.0.0.1", self.a.port), timeout=10)
        t0 = time.monotonic()
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        elapsed = time.monotonic() - t0
        s.close()
        self.assertEqual(data, b"")
        self.assertGreater(elapsed, 1.5, "closed before header_timeout")
        self.assertLess(elapsed, 4.5, "the silent client outlived header_timeout (2s)")
        self.assertEqual(https(self.a, client_context(self.pki))[0], 200)

    def test_keep_alive_serves_several_requests_on_one_tls_connection(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.a.port, timeout=10,
                                           context=client_context(self.pki))
        try:
            for _ in range(3):
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            conn.close()


class TestTlsClientCertificates(TlsTest):
    CLIENT_CA = True

    def test_client_without_a_certificate_is_refused(self):
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            https(self.a, client_context(self.pki))

    def test_client_with_a_certificate_of_the_ca_gets_200(self):
        caller = self.pki.issue("service-a", 2001, usage="clientAuth", key="ec")
        status, _, _, _ = https(self.a, client_context(self.pki, caller))
        self.assertEqual(status, 200)

    def test_client_with_a_certificate_of_another_ca_is_refused(self):
        other = Pki(self.tmp, name="other-ca")
        stranger = other.issue("stranger", 3001, usage="clientAuth", key="ec")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            https(self.a, client_context(self.pki, stranger))


class TestTlsReload(TlsTest):
    def replace_files(self, cert, key):
        # Each file replaced whole (rename), as a deployment tool would.
        for src, dst in ((cert, self.cert_path), (key, self.key_path)):
            tmp = dst + ".new"
            shutil.copy(src, tmp)
            os.replace(tmp, dst)

    def served_fingerprint(self):
        return fingerprint(https(self.a, client_context(self.pki))[1])

    def test_sighup_serves_the_new_certificate_and_a_broken_one_keeps_the_old(self):
        first = pem_fingerprint(self.server_cert[0])
        self.assertEqual(self.served_fingerprint(), first)
        # A connection opened before the reload.
        held = http.client.HTTPSConnection("127.0.0.1", self.a.port, timeout=10,
                                           context=client_context(self.pki))
        held.request("GET", "/healthz")
        held.getresponse().read()

        renewed = self.pki.issue("server-renewed", 1002)
        self.replace_files(*renewed)
        self.a.send_signal(signal.SIGHUP)
        second = pem_fingerprint(renewed[0])
        self.assertTrue(wait_for(lambda: self.served_fingerprint() == second),
                        "SIGHUP did not bring the new certificate to new connections")
        self.assertIn('"event":"tls_reloaded"', self.a.log_text())
        # The held connection still works, on the certificate it started with.
        held.request("GET", "/healthz")
        r = held.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertEqual(fingerprint(held.sock.getpeercert(binary_form=True)), first)
        held.close()

        # A broken PEM: the reload fails, the previous certificate stays.
        with open(self.cert_path, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        self.a.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: '"event":"tls_reload_failed"' in self.a.log_text()),
                        "no tls_reload_failed logged")
        self.assertIsNone(self.a.proc.poll(), "tessera serve died on a broken certificate")
        self.assertEqual(self.served_fingerprint(), second)

        # A certificate that does not match the key: refused the same way.
        mismatched = self.pki.issue("server-mismatched", 1003)
        shutil.copy(mismatched[0], self.cert_path)
        failures = self.a.log_text().count('"event":"tls_reload_failed"')
        self.a.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(
            lambda: self.a.log_text().count('"event":"tls_reload_failed"') > failures))
        self.assertIn("tls_key: ", self.a.log_text())
        self.assertIn("mismatch", self.a.log_text())
        self.assertEqual(self.served_fingerprint(), second)

        with open(renewed[1]) as f:
            key_body = f.read().splitlines()[1]
        self.assertNotIn(key_body, self.a.log_text(), "key material in the log")


class TestTlsStartup(unittest.TestCase):
    """Settings that stop `tessera serve` at start, naming the setting."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tessera-tls-")
        cls.pki = Pki(cls.tmp)
        cls.cert = cls.pki.issue("server", 1001)
        cls.other = cls.pki.issue("other", 1002)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def serve(self, *args, env=None, listen="127.0.0.1:0", mode="dev", wait_ready=False):
        data = tempfile.mkdtemp(dir=self.tmp)
        full_env = dict(os.environ)
        full_env.update(env or {})
        ready = os.path.join(data, "port")
        proc = subprocess.Popen([authority.TESSERA, "serve", "--data-dir", data, "--listen",
                                 listen, "--ready-file", ready, "--mode", mode, *args],
                                env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        if not wait_ready:
            out, _ = proc.communicate(timeout=30)
            return proc.returncode, out.decode(errors="replace")
        ok = wait_for(lambda: os.path.exists(ready) or proc.poll() is not None, 20)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        self.assertTrue(ok and os.path.exists(ready), out.decode(errors="replace")[-2000:])
        return proc.returncode, out.decode(errors="replace")

    def test_unreadable_certificate_stops_start_naming_tls_cert(self):
        rc, out = self.serve("--tls-cert", os.path.join(self.tmp, "missing.pem"),
                             "--tls-key", self.cert[1])
        self.assertEqual(rc, 2, out)
        self.assertIn("tls_cert: cannot read", out)

    def test_key_of_another_certificate_stops_start_naming_tls_key(self):
        rc, out = self.serve("--tls-cert", self.cert[0], "--tls-key", self.other[1])
        self.assertEqual(rc, 2, out)
        self.assertIn("tls_key: ", out)
        self.assertIn("mismatch", out)

    def test_encrypted_key_stops_start_instead_of_prompting(self):
        encrypted = os.path.join(self.tmp, "encrypted.key")
        Pki.openssl("pkey", "-in", self.cert[1], "-aes256", "-passout", "pass:unused-test-pass",
                    "-out", encrypted)
        rc, out = self.serve("--tls-cert", self.cert[0], "--tls-key", encrypted)
        self.assertEqual(rc, 2, out)
        self.assertIn("tls_key: cannot use", out)

    def test_certificate_without_key_stops_start_naming_tls_key(self):
        rc, out = self.serve("--tls-cert", self.cert[0])
        self.assertEqual(rc, 2, out)
        self.assertIn("tls_key: must be set", out)

    def production_args(self):
        keys = os.path.join(self.tmp, "keys")
        signing, secrets = os.path.join(keys, "signing.jwks"), os.path.join(keys, "secrets.json")
        if not os.path.exists(signing):
            r = subprocess.run([authority.TESSERA, "keys", "generate", "--signing-keys", signing,
                                "--secret-keys", secrets], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        digest = hashlib.sha256(b"tsk_unused").hexdigest()
        return ["--signing-keys", signing, "--secret-keys", secrets, "--audit-log", "none",
                "--store", "memory:", "--api-key-hashes", f"sha256:{digest}"]

    def test_production_plaintext_on_all_addresses_starts_with_a_warning(self):
        rc, out = self.serve(*self.production_args(), listen="0.0.0.0:0", mode="production",
                             wait_ready=True)
        self.assertEqual(rc, 0, out[-2000:])
        warnings = [json.loads(line) for line in out.splitlines()
                    if '"event":"plaintext_listener"' in line]
        self.assertEqual(len(warnings), 1, out[-2000:])
        self.assertEqual(warnings[0]["level"], "warn")
        self.assertIn("is not loopback and tls_cert is not set", warnings[0]["detail"])
        self.assertTrue(warnings[0]["detail"].startswith("listen 0.0.0.0:"))

    def test_production_with_tls_or_on_loopback_and_dev_do_not_warn(self):
        for listen, mode, extra in (
                ("0.0.0.0:0", "production", ["--tls-cert", self.cert[0], "--tls-key",
                                             self.cert[1]]),
                ("127.0.0.1:0", "production", []),
                ("0.0.0.0:0", "dev", [])):
            args = (self.production_args() if mode == "production" else []) + extra
            rc, out = self.serve(*args, listen=listen, mode=mode, wait_ready=True)
            self.assertEqual(rc, 0, out[-2000:])
            self.assertNotIn("plaintext_listener", out, f"{mode} on {listen}")


if __name__ == "__main__":
    authority.run_tests("test_tls.py")
