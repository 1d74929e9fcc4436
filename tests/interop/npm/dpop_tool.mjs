// RFC 9449 DPoP keys and proofs made only with npm's `dpop` and `jose`
// (independent of tessera), for tests/integration/test_dpop.py.
//
// node dpop_tool.mjs keygen ALG KEYFILE
//   makes a key pair (ES256, Ed25519 or RS256), writes its JWKs to KEYFILE and
//   prints {"jkt": <RFC 7638 thumbprint, computed by jose>}
// node dpop_tool.mjs proof KEYFILE HTM HTU [ACCESS_TOKEN] [NONCE]
//   prints a proof for HTM HTU (with ath for ACCESS_TOKEN, nonce NONCE;
//   "-" for none). IAT_OFFSET in the environment moves iat by that many
//   seconds (a stale proof): `dpop` always stamps now, so such a proof is
//   signed with jose's SignJWT instead, with the same header and claims.
import { createHash, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as DPoP from "dpop";
import * as jose from "jose";

const [cmd, ...args] = process.argv.slice(2);

if (cmd === "keygen") {
  const [alg, file] = args;  // dpop names EdDSA over Ed25519 "Ed25519" (RFC 9864)
  const pair = await DPoP.generateKeyPair(alg, { extractable: true });
  const priv = await jose.exportJWK(pair.privateKey);
  const pub = await jose.exportJWK(pair.publicKey);
  writeFileSync(file, JSON.stringify({ alg, priv, pub }), { mode: 0o600 });
  console.log(JSON.stringify({ jkt: await jose.calculateJwkThumbprint(pub, "sha256") }));
} else if (cmd === "proof") {
  const [file, htm, htu, token, nonce] = args;
  const { alg, priv, pub } = JSON.parse(readFileSync(file, "utf8"));
  const pair = {
    privateKey: await jose.importJWK(priv, alg),
    publicKey: await jose.importJWK(pub, alg, { extractable: true }),
  };
  const offset = Number(process.env.IAT_OFFSET || 0);
  const some = (v) => (v === undefined || v === "-" ? undefined : v);
  if (!offset) {
    console.log(await DPoP.generateProof(pair, htu, htm, some(nonce), some(token)));
  } else {
    const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) + offset };
    if (some(token)) claims.ath = createHash("sha256").update(token).digest("base64url");
    if (some(nonce)) claims.nonce = nonce;
    const jwt = await new jose.SignJWT(claims)
      .setProtectedHeader({ typ: "dpop+jwt", alg, jwk: pub })
      .sign(pair.privateKey);
    console.log(jwt);
  }
} else {
  console.error("usage: dpop_tool.mjs keygen ALG KEYFILE | proof KEYFILE HTM HTU [TOKEN] [NONCE]");
  process.exit(2);
}
