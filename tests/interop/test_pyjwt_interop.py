#!/usr/bin/python3
"""Interop with an independent JOSE implementation: the system Python's PyJWT
(Debian python3-jwt) with python3-cryptography.

Both ways, for EdDSA, ES256, HS256 and RS256: tokens tessera signs verify in PyJWT
(key taken from tessera's JWK), and tokens PyJWT signs (keys made by
cryptography, published as JWKs written here) verify in tessera.

usage: test_pyjwt_interop.py PATH/TO/jose_tool
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives import serialization

TOOL = None
ISS = "https://auth.example"
AUD = "api"
# The JWK members that are private key material (RFC 7518 §6.2.2, §6.3.2).
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_uint(n: int) -> str:
    """RFC 7518 §2 Base64urlUInt: big-endian, no leading zero bytes."""
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def run(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=30)


class TesseraSignsPyJwtVerifies(unittest.TestCase):
    def check(self, alg):
        with tempfile.TemporaryDirectory() as tmp:
            keygen = run("keygen", alg, f"k-{alg}")
            self.assertEqual(keygen.returncode, 0, keygen.stderr)
            jwk = json.loads(keygen.stdout)
            path = os.path.join(tmp, "key.jwk")
            with open(path, "w") as f:
                json.dump(jwk, f)
            now = int(time.time())
            signed = run("sign", path, "alice", ISS, AUD, str(now), str(now + 600))
            self.assertEqual(signed.returncode, 0, signed.stderr)
            token = signed.stdout.strip()

            header = jwt.get_unverified_header(token)
            self.assertEqual(header, {"alg": alg, "kid": f"k-{alg}", "typ": "at+jwt"})
            if alg == "HS256":
                key = jwt.PyJWK(jwk).key
            else:
                public = {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}
                key = jwt.PyJWK(public).key
            claims = jwt.decode(token, key, algorithms=[alg], audience=AUD, issuer=ISS)
            self.assertEqual(claims["sub"], "alice")
            self.assertEqual(claims["exp"], now + 600)
            self.assertEqual(claims["sid"], "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            self.assertEqual(claims["sv"], 7)
            self.assertEqual(claims["scope"], "read write")

            # A tampered payload must fail in PyJWT too (sanity of the check).
            h, p, s = token.split(".")
            forged = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
            forged["sub"] = "mallory"
            bad = ".".join([h, b64u(json.dumps(forged).encode()), s])
            with self.assertRaises(jwt.InvalidSignatureError):
                jwt.decode(bad, key, algorithms=[alg], audience=AUD, issuer=ISS)

    def test_eddsa(self):
        self.check("EdDSA")

    def test_es256(self):
        self.check("ES256")

    def test_hs256(self):
        self.check("HS256")

    def test_rs256(self):
        self.check("RS256")


class PyJwtSignsTesseraVerifies(unittest.TestCase):
    def keys(self, alg):
        """(signing key for PyJWT, JWK for tessera) from cryptography."""
        if alg == "EdDSA":
            priv = ed25519.Ed25519PrivateKey.generate()
            raw = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return priv, {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        if alg == "ES256":
            priv = ec.generate_private_key(ec.SECP256R1())
            nums = priv.public_key().public_numbers()
            return priv, {"kty": "EC", "crv": "P-256", "x": b64u(nums.x.to_bytes(32, "big")),
                          "y": b64u(nums.y.to_bytes(32, "big"))}
        if alg == "RS256":
            priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            nums = priv.public_key().public_numbers()
            return priv, {"kty": "RSA", "n": b64u_uint(nums.n), "e": b64u_uint(nums.e)}
        secret = os.urandom(32)
        return secret, {"kty": "oct", "k": b64u(secret)}

    def check(self, alg):
        with tempfile.TemporaryDirectory() as tmp:
            signing, jwk = self.keys(alg)
            jwk.update({"kid": f"py-{alg}", "alg": alg, "use": "sig"})
            path = os.path.join(tmp, "jwks.json")
            with open(path, "w") as f:
                json.dump({"keys": [jwk]}, f)
            now = int(time.time())
            claims = {"iss": ISS, "sub": "bob", "aud": [AUD, "other"], "iat": now, "exp": now + 300,
                      "sid": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "sv": 4, "tenant": "acme"}
            token = jwt.encode(claims, signing, algorithm=alg, headers={"kid": f"py-{alg}", "typ": "at+jwt"})
            out = run("verify", path, token, ISS, AUD, str(now))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            lines = dict(line.split("=", 1) for line in out.stdout.splitlines()[1:])
            self.assertEqual(lines["alg"], alg)
            self.assertEqual(lines["sub"], "bob")
            self.assertEqual(lines["sv"], "4")
            self.assertEqual(json.loads(lines["custom"]), {"tenant": "acme"})

            # Expired in tessera's eyes (beyond the 30 s leeway).
            out = run("verify", path, token, ISS, AUD, str(now + 331))
            self.assertEqual(out.stdout.strip(), "token_expired")
            # Wrong audience.
            out = run("verify", path, token, ISS, "billing", str(now))
            self.assertEqual(out.stdout.strip(), "audience_mismatch")
            # Signed by another key under the same kid.
            other, _ = self.keys(alg)
            forged = jwt.encode(claims, other, algorithm=alg, headers={"kid": f"py-{alg}", "typ": "at+jwt"})
            out = run("verify", path, forged, ISS, AUD, str(now))
            self.assertEqual(out.stdout.strip(), "signature_invalid")

    def test_eddsa(self):
        self.check("EdDSA")

    def test_es256(self):
        self.check("ES256")

    def test_hs256(self):
        self.check("HS256")

    def test_rs256(self):
        self.check("RS256")

    def test_pyjwt_alg_none_token_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, jwk = self.keys("EdDSA")
            jwk.update({"kid": "k"})
            path = os.path.join(tmp, "jwks.json")
            with open(path, "w") as f:
                json.dump({"keys": [jwk]}, f)
            now = int(time.time())
            token = jwt.encode({"iss": ISS, "sub": "x", "aud": AUD, "iat": now, "exp": now + 60}, None,
                               algorithm="none", headers={"kid": "k", "typ": "at+jwt"})
            out = run("verify", path, token, ISS, AUD, str(now))
            self.assertEqual(out.stdout.strip(), "algorithm_not_allowed")


if __name__ == "__main__":
    TOOL = sys.argv.pop(1)
    unittest.main(verbosity=2)
