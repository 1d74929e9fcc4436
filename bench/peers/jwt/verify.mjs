// node verify.mjs TOKENS.json PEER WARMUP_S WINDOW_S ALG...
// PEER: fast-jwt (no cache), fast-jwt-cache (createVerifier cache: true, the
// same token again: a hit) or jose (jwtVerify, key imported once). Prints
// "PEER ALG verifies_per_second" per algorithm; single thread.
import { readFileSync } from 'node:fs';
import { createVerifier } from 'fast-jwt';
import { importJWK, jwtVerify } from 'jose';

const [file, peer, warmup, window, ...algs] = process.argv.slice(2);
const tokens = JSON.parse(readFileSync(file, 'utf8'));
const checks = { issuer: 'https://auth.example', audience: 'api' };

async function verifier(alg) {
  const t = tokens[alg];
  if (peer === 'jose') {
    const key = await importJWK({ ...t.jwk, alg }, alg);
    return () => jwtVerify(t.token, key, { ...checks, algorithms: [alg] });
  }
  // fast-jwt checks exp and nbf by default; iss and aud as configured here.
  const verify = createVerifier({
    key: alg === 'HS256' ? Buffer.from(t.secret, 'base64url') : t.public_pem,
    algorithms: [alg],
    allowedIss: checks.issuer,
    allowedAud: checks.audience,
    cache: peer === 'fast-jwt-cache',
  });
  return () => verify(t.token);
}

// Runs for `seconds`, reading the clock every 64 calls; returns calls/s.
// fast-jwt's verifier is synchronous: no await for it, which would only add
// a microtask per call.
async function run(call, seconds) {
  const limit = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  const sync = peer !== 'jose';
  let n = 0;
  let elapsed = 0n;
  do {
    if (sync) for (let i = 0; i < 64; i++) call();
    else for (let i = 0; i < 64; i++) await call();
    n += 64;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return n / (Number(elapsed) / 1e9);
}

for (const alg of algs) {
  const call = await verifier(alg);
  const claims = await call(); // throws on a failed verification
  if ((claims.payload ?? claims).sub !== 'user-12345') throw new Error(`${peer} ${alg}: wrong claims`);
  await run(call, Number(warmup));
  console.log(peer, alg, (await run(call, Number(window))).toFixed(0));
}
