#!/usr/bin/env python3
"""python3 verify_pyjwt.py TOKENS.json WARMUP_S WINDOW_S ALG...

PyJWT's jwt.decode with the key object loaded once; checks the signature,
exp, iat, iss and aud. Prints "pyjwt ALG verifies_per_second"; single thread.
"""
import base64
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives import serialization

file, warmup, window, *algs = sys.argv[1:]
tokens = json.load(open(file))


def verifier(alg):
    t = tokens[alg]
    if alg == "HS256":
        key = base64.urlsafe_b64decode(t["secret"] + "=" * (-len(t["secret"]) % 4))
    else:
        key = serialization.load_pem_public_key(t["public_pem"].encode())
    token = t["token"]
    return lambda: jwt.decode(token, key, algorithms=[alg], audience="api",
                              issuer="https://auth.example")


def run(call, seconds):
    """Calls for `seconds`, reading the clock every 64 calls; calls/s."""
    start = time.perf_counter()
    n = 0
    while True:
        for _ in range(64):
            call()
        n += 64
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


for alg in algs:
    call = verifier(alg)
    if call()["sub"] != "user-12345":
        raise SystemExit(f"pyjwt {alg}: wrong claims")
    run(call, float(warmup))
    print("pyjwt", alg, f"{run(call, float(window)):.0f}")
