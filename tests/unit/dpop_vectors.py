#!/usr/bin/python3
"""DPoP proofs (RFC 9449) made by an independent implementation: PyJWT and
python3-cryptography (Debian's packages), for tessera's dpop_test.

Prints one JSON object per line, one per algorithm (ES256, EdDSA, RS256):
{"alg", "proof", "jkt", "htm", "htu", "iat", "jti", "access_token",
"nonce"}. Every proof is for the same request (POST https://server.example
/token at iat 1700000000) and carries ath (of access_token) and nonce. The
thumbprint is computed here, from the key's public numbers (RFC 7638), not
by the library that signs.

Run: /usr/bin/python3 dpop_vectors.py
"""

import base64
import hashlib
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

HTM = "POST"
HTU = "https://server.example/token"
IAT = 1700000000
ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"  # RFC 9449 §7.1's example
NONCE = "eyJ7S_zG.eyJH0-Z.HX4w-7v"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def uint(n: int) -> str:
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def thumbprint(jwk: dict, members) -> str:
    canonical = json.dumps({m: jwk[m] for m in sorted(members)}, separators=(",", ":"))
    return b64u(hashlib.sha256(canonical.encode("ascii")).digest())


def keys():
    k = ec.generate_private_key(ec.SECP256R1())
    n = k.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64u(n.x.to_bytes(32, "big")),
           "y": b64u(n.y.to_bytes(32, "big"))}
    yield "ES256", k, jwk, ("crv", "kty", "x", "y")

    k = ed25519.Ed25519PrivateKey.generate()
    raw = k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
    yield "EdDSA", k, jwk, ("crv", "kty", "x")

    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = k.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": uint(n.n), "e": uint(n.e)}
    yield "RS256", k, jwk, ("e", "kty", "n")


def main():
    ath = b64u(hashlib.sha256(ACCESS_TOKEN.encode("ascii")).digest())
    for alg, key, jwk, members in keys():
        jti = f"python-{alg}-proof"
        claims = {"jti": jti, "htm": HTM, "htu": HTU, "iat": IAT, "ath": ath, "nonce": NONCE}
        proof = jwt.encode(claims, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})
        if isinstance(proof, bytes):
            proof = proof.decode("ascii")
        print(json.dumps({"alg": alg, "proof": proof, "jkt": thumbprint(jwk, members),
                          "htm": HTM, "htu": HTU, "iat": IAT, "jti": jti,
                          "access_token": ACCESS_TOKEN, "nonce": NONCE}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
