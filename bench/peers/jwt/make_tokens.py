#!/usr/bin/env python3
"""Keys and one token per algorithm for scripts/bench-compare-jwt.sh.

The tokens have the shape of bench/core_bench.cpp's: header alg, kid, typ
at+jwt; claims iss, sub, aud (one string), exp, iat, jti, sid, sv. They are
signed here, with plain cryptography calls, so that every peer verifies the
very same bytes. Writes JSON: {alg: {token, secret | public_pem, jwk}}.
"""
import base64
import json
import secrets
import sys
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


now = int(time.time())
# An hour of validity: longer than a whole run, the same number of digits.
claims = {"iss": "https://auth.example", "sub": "user-12345", "aud": "api", "exp": now + 3600,
          "iat": now, "jti": "01HZX3NDEKTSV4RRFFQ69G5FAV", "sid": "01HZX3NDEKTSV4RRFFQ69G5FAW", "sv": 3}


def token(alg: str, sign) -> str:
    head = b64(compact({"alg": alg, "kid": "k1", "typ": "at+jwt"})) + "." + b64(compact(claims))
    return head + "." + b64(sign(head.encode()))


def public_pem(pub) -> str:
    return pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


out = {}

secret = secrets.token_bytes(32)
def hs256(data):
    h = hmac.HMAC(secret, hashes.SHA256())
    h.update(data)
    return h.finalize()
out["HS256"] = {"token": token("HS256", hs256), "secret": b64(secret),
                "jwk": {"kty": "oct", "k": b64(secret)}}

ed = ed25519.Ed25519PrivateKey.generate()
raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
out["EdDSA"] = {"token": token("EdDSA", ed.sign), "public_pem": public_pem(ed.public_key()),
                "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}}

p256 = ec.generate_private_key(ec.SECP256R1())
def es256(data):
    r, s = decode_dss_signature(p256.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
nums = p256.public_key().public_numbers()
out["ES256"] = {"token": token("ES256", es256), "public_pem": public_pem(p256.public_key()),
                "jwk": {"kty": "EC", "crv": "P-256", "x": b64(nums.x.to_bytes(32, "big")),
                        "y": b64(nums.y.to_bytes(32, "big"))}}

with open(sys.argv[1], "w") as f:
    json.dump(out, f)
