"""A test identity provider on loopback: OpenID Connect discovery, a JWKS,
a token endpoint for the refresh grant, and OpenID Connect Back-Channel
Logout tokens signed with PyJWT (an implementation independent of
tessera's), for tests/upstream/test_upstream.py.

Standard library, PyJWT and cryptography only (Debian's python3-jwt and
python3-cryptography).
"""

import base64
import http.server
import json
import secrets
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

BCL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def b64u_uint(n, length=None):
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Provider:
    """Serves /.well-known/openid-configuration, /jwks and /token; signs
    logout tokens. `refresh_tokens` maps a live refresh token to its login;
    `mode` is "up", "down" (503 for every grant) or "invalid_client"."""

    def __init__(self, client_id="tessera-rp", client_secret="rp-secret"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not published
        self.refresh_tokens = {}
        self.grants = []  # (refresh token presented, Authorization header, login or None)
        self.mode = "up"
        self.lock = threading.Lock()
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    self.answer(200, {"issuer": provider.issuer,
                                      "jwks_uri": provider.issuer + "/jwks",
                                      "token_endpoint": provider.issuer + "/token",
                                      "backchannel_logout_supported": True,
                                      "backchannel_logout_session_supported": True})
                elif self.path == "/jwks":
                    self.answer(200, provider.jwks())
                else:
                    self.answer(404, {"error": "not_found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if self.path != "/token":
                    self.answer(404, {"error": "not_found"})
                    return
                presented = form.get("refresh_token", [""])[0]
                with provider.lock:
                    mode = provider.mode
                    login = provider.refresh_tokens.pop(presented, None) if mode == "up" else None
                    provider.grants.append((presented, self.headers.get("Authorization"), login))
                    if login is not None:
                        rotated = "prt_" + secrets.token_urlsafe(24)
                        provider.refresh_tokens[rotated] = login
                if mode == "down":
                    self.answer(503, {"error": "temporarily_unavailable"})
                elif mode == "invalid_client":
                    self.answer(401, {"error": "invalid_client"})
                elif form.get("grant_type") != ["refresh_token"] or login is None:
                    self.answer(400, {"error": "invalid_grant"})
                else:
                    self.answer(200, {"access_token": "pat_" + secrets.token_urlsafe(16),
                                      "token_type": "Bearer", "expires_in": 300,
                                      "refresh_token": rotated})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def jwks(self):
        rsa_pub = self.rsa.public_key().public_numbers()
        ec_pub = self.ec.public_key().public_numbers()
        return {"keys": [
            {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
             "n": b64u_uint(rsa_pub.n), "e": b64u_uint(rsa_pub.e)},
            {"kty": "EC", "kid": "ec-1", "alg": "ES256", "use": "sig", "crv": "P-256",
             "x": b64u_uint(ec_pub.x, 32), "y": b64u_uint(ec_pub.y, 32)},
        ]}

    def new_refresh_token(self, login):
        token = "prt_" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = login
        return token

    def logout_token(self, sid=None, sub=None, alg="RS256", typ="logout+jwt", key=None,
                     kid=None, **overrides):
        """A logout token as the spec has it; keyword arguments replace or
        (with the value None) drop claims."""
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 120,
                  "jti": secrets.token_urlsafe(12), "events": {BCL_EVENT: {}}}
        if sid is not None:
            claims["sid"] = sid
        if sub is not None:
            claims["sub"] = sub
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        if key is None:
            key = self.rsa if alg == "RS256" else self.ec
        headers = {"kid": kid or ("rsa-1" if alg == "RS256" else "ec-1")}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(claims, key, algorithm=alg, headers=headers)
