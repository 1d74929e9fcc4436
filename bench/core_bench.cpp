// Core hot paths, each beside the raw OpenSSL primitive (or a peer library)
// measured in the same run, so figures compare as ratios:
//   lookup key derivation      vs raw HMAC-SHA256 with a reused EVP_MAC_CTX
//   HS256 verify + claims      vs raw HMAC-SHA256 over the signing input, and libjwt 1.10
//   EdDSA/ES256 verify + claims vs raw EVP_DigestVerify of the same signature
//   AccessVerifier (resource side), with and without its verified-token
//     cache, and with L1 on an in-process epoch cache hit, vs the same raw verify
#include <benchmark/benchmark.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>

#include "tessera/encoding.hpp"
#include "tessera/jwt.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/secret.hpp"
#include "tessera/token_cipher.hpp"
#include "tessera/ulid.hpp"
#include "tessera/verify.hpp"

namespace {

using namespace tessera;
using std::chrono::seconds;

constexpr UnixSeconds kNow{seconds{1'700'000'000}};

JwtClaims claims() {
  JwtClaims c;
  c.iss = "https://auth.example";
  c.sub = "user-12345";
  c.aud = {"api"};
  c.iat = kNow;
  c.exp = kNow + seconds{900};
  c.jti = "01HZX3NDEKTSV4RRFFQ69G5FAV";
  c.sid = "01HZX3NDEKTSV4RRFFQ69G5FAW";
  c.sv = 3;
  return c;
}

VerifyOptions options() {
  VerifyOptions o;
  o.issuer = "https://auth.example";
  o.audiences = {"api"};
  return o;
}

// The value of a string member of a flat JSON object (JWKs here).
std::string member(const std::string& json, const std::string& name) {
  const auto at = json.find("\"" + name + "\":\"");
  const auto start = at + name.size() + 4;
  return json.substr(start, json.find('"', start) - start);
}

// An EVP_PKEY for the public half of a tessera key, built with plain OpenSSL
// calls from the JWK's coordinates.
EVP_PKEY* raw_public_pkey(const Key& key) {
  const std::string jwk = *key.public_jwk();
  const Bytes x = *base64url_decode(member(jwk, "x"));
  if (key.algorithm() == Algorithm::EdDSA)
    return EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, x.data(), x.size());
  const Bytes y = *base64url_decode(member(jwk, "y"));
  std::string point = "\x04";
  point.append(reinterpret_cast<const char*>(x.data()), x.size());
  point.append(reinterpret_cast<const char*>(y.data()), y.size());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("P-256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  return pkey;
}

struct Fixture {
  explicit Fixture(Algorithm alg) : key(*Key::generate(alg, "k1", CsprngRandom::instance())) {
    (void)keys.add(key, KeyState::active);
    token = *sign_jwt(key, claims());
    const auto dot = token.rfind('.');
    input = token.substr(0, dot);
    signature = *base64url_decode(std::string_view(token).substr(dot + 1));
  }
  Key key;
  KeySet keys;
  std::string token, input;
  Bytes signature;
};

// The baseline: HMAC-SHA256 as a careful OpenSSL user writes it, the
// algorithm fetched and the key set once, the context re-initialised per MAC.
class RawHmac {
 public:
  explicit RawHmac(std::span<const std::uint8_t> key)
      : mac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr)), ctx_(EVP_MAC_CTX_new(mac_)) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    EVP_MAC_init(ctx_, key.data(), key.size(), params);
  }
  RawHmac(const RawHmac&) = delete;
  ~RawHmac() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }
  void mac(std::string_view msg, unsigned char (&out)[32]) {
    std::size_t len = 0;
    EVP_MAC_init(ctx_, nullptr, 0, nullptr);
    EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(msg.data()), msg.size());
    EVP_MAC_final(ctx_, out, &len, sizeof out);
  }

 private:
  EVP_MAC* mac_;
  EVP_MAC_CTX* ctx_;
};

// --- lookup keys -----------------------------------------------------------

const std::string kKey(32, 'k');

void BM_RawHmacSha256_ReusedCtx(benchmark::State& state) {
  RawHmac hmac(as_bytes(kKey));
  const SecretString token = generate_token(TokenKind::refresh, CsprngRandom::instance());
  std::string msg("tessera/v1/lookup\0refresh\0", 26);
  msg += token.reveal();
  unsigned char out[32];
  for (auto _ : state) {
    hmac.mac(msg, out);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawHmacSha256_ReusedCtx);

void BM_RawHmacSha256_OneShot(benchmark::State& state) {
  const SecretString token = generate_token(TokenKind::refresh, CsprngRandom::instance());
  std::string msg("tessera/v1/lookup\0refresh\0", 26);
  msg += token.reveal();
  unsigned char out[32];
  for (auto _ : state) {
    std::size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, kKey.data(), kKey.size(),
              reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, sizeof out,
              &len);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawHmacSha256_OneShot);

void BM_LookupKeyDerive(benchmark::State& state) {
  auto ring = *LookupKeyRing::create({{1, SecretString(kKey)}});
  const SecretString token = generate_token(TokenKind::refresh, CsprngRandom::instance());
  for (auto _ : state) benchmark::DoNotOptimize(ring.derive(TokenKind::refresh, token));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupKeyDerive);

// --- HS256 -------------------------------------------------------------------

void BM_RawHmacSha256_SigningInput(benchmark::State& state) {
  Fixture f(Algorithm::HS256);
  RawHmac hmac(*base64url_decode(member(f.key.private_jwk(), "k")));
  unsigned char out[32];
  for (auto _ : state) {
    hmac.mac(f.input, out);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawHmacSha256_SigningInput);

void BM_TesseraVerify(benchmark::State& state, Algorithm alg) {
  Fixture f(alg);
  const VerifyOptions o = options();
  for (auto _ : state) {
    auto v = verify_jwt(f.token, f.keys, o, kNow);
    if (!v) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_TesseraVerify, HS256, Algorithm::HS256);
BENCHMARK_CAPTURE(BM_TesseraVerify, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_TesseraVerify, ES256, Algorithm::ES256);

void BM_LibjwtVerify_HS256(benchmark::State& state) {
  // The same claims, signed by libjwt with a key it can be handed raw.
  jwt_t* j = nullptr;
  jwt_new(&j);
  jwt_set_alg(j, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(kKey.data()),
              static_cast<int>(kKey.size()));
  jwt_add_header(j, "kid", "k1");
  jwt_add_grant(j, "iss", "https://auth.example");
  jwt_add_grant(j, "sub", "user-12345");
  jwt_add_grant(j, "aud", "api");
  jwt_add_grant(j, "jti", "01HZX3NDEKTSV4RRFFQ69G5FAV");
  jwt_add_grant(j, "sid", "01HZX3NDEKTSV4RRFFQ69G5FAW");
  jwt_add_grant_int(j, "iat", kNow.time_since_epoch().count());
  jwt_add_grant_int(j, "exp", (kNow + seconds{900}).time_since_epoch().count());
  jwt_add_grant_int(j, "sv", 3);
  char* encoded = jwt_encode_str(j);
  const std::string token(encoded);
  free(encoded);
  jwt_free(j);
  const long now = kNow.time_since_epoch().count();
  for (auto _ : state) {
    jwt_t* d = nullptr;
    if (jwt_decode(&d, token.c_str(), reinterpret_cast<const unsigned char*>(kKey.data()),
                   static_cast<int>(kKey.size())) != 0) {
      state.SkipWithError("libjwt decode failed");
      break;
    }
    // The claims checks tessera does: iss, aud, exp, iat.
    const bool ok = std::strcmp(jwt_get_grant(d, "iss"), "https://auth.example") == 0 &&
                    std::strcmp(jwt_get_grant(d, "aud"), "api") == 0 &&
                    jwt_get_grant_int(d, "exp") > now - 30 &&
                    jwt_get_grant_int(d, "iat") <= now + 30;
    benchmark::DoNotOptimize(ok);
    jwt_free(d);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LibjwtVerify_HS256);

// --- EdDSA / ES256: raw OpenSSL verify of the same signature ---------------

void BM_RawOpenSslVerify(benchmark::State& state, Algorithm alg) {
  Fixture f(alg);
  EVP_PKEY* pkey = raw_public_pkey(f.key);
  std::string sig;  // DER for ECDSA, as OpenSSL wants it; converted once, outside the loop
  if (alg == Algorithm::ES256) {
    ECDSA_SIG* es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(f.signature.data(), 32, nullptr),
                   BN_bin2bn(f.signature.data() + 32, 32, nullptr));
    unsigned char* p = nullptr;
    const int n = i2d_ECDSA_SIG(es, &p);
    sig.assign(reinterpret_cast<char*>(p), static_cast<std::size_t>(n));
    OPENSSL_free(p);
    ECDSA_SIG_free(es);
  } else {
    sig.assign(reinterpret_cast<const char*>(f.signature.data()), f.signature.size());
  }
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        EVP_DigestVerifyInit_ex(ctx, nullptr, alg == Algorithm::ES256 ? "SHA256" : nullptr, nullptr,
                                nullptr, pkey, nullptr) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(f.input.data()),
                         f.input.size()) == 1;
    if (!ok) state.SkipWithError("raw verify failed");
    EVP_MD_CTX_free(ctx);
  }
  state.SetItemsProcessed(state.iterations());
  EVP_PKEY_free(pkey);
}
BENCHMARK_CAPTURE(BM_RawOpenSslVerify, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_RawOpenSslVerify, ES256, Algorithm::ES256);

// --- the resource-side verifier (tessera::verify) -----------------------------

// A constant epoch source: what stands behind the in-process cache.
class ConstantEpoch final : public verify::EpochSource {
 public:
  Result<std::uint64_t> current(std::string_view) override { return 3; }
};

// AccessVerifier::verify: the whole chain, with the verified-token cache off
// (signature every time) or on (the same token again: a hit), optionally
// with L1 answered from an in-process cache.
void BM_AccessVerifier(benchmark::State& state, Algorithm alg, bool cache, bool l1) {
  Fixture f(alg);
  ManualClock clock(kNow);
  verify::StaticKeySource source(f.keys);
  ConstantEpoch behind;
  verify::CachedEpochSource epochs(behind, clock, std::chrono::hours{1});
  verify::AccessVerifier v({.issuer = "https://auth.example",
                            .audiences = {"api"},
                            .cache_entries = cache ? 10'000u : 0u},
                           source, clock, l1 ? &epochs : nullptr);
  for (auto _ : state) {
    auto r = v.verify(f.token);
    if (!r) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_AccessVerifier, EdDSA_nocache, Algorithm::EdDSA, false, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, EdDSA_cache, Algorithm::EdDSA, true, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, ES256_nocache, Algorithm::ES256, false, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, ES256_cache, Algorithm::ES256, true, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, HS256_nocache, Algorithm::HS256, false, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, HS256_cache, Algorithm::HS256, true, false);
BENCHMARK_CAPTURE(BM_AccessVerifier, EdDSA_cache_L1, Algorithm::EdDSA, true, true);

// The L1 check alone on an in-process cache hit.
void BM_CachedEpochHit(benchmark::State& state) {
  ManualClock clock(kNow);
  ConstantEpoch behind;
  verify::CachedEpochSource epochs(behind, clock, std::chrono::hours{1});
  (void)epochs.current("user-12345");
  for (auto _ : state) benchmark::DoNotOptimize(epochs.current("user-12345"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CachedEpochHit);

// --- the rest of the core ----------------------------------------------------

void BM_SignJwt(benchmark::State& state, Algorithm alg) {
  Fixture f(alg);
  const JwtClaims c = claims();
  for (auto _ : state) benchmark::DoNotOptimize(sign_jwt(f.key, c));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_SignJwt, HS256, Algorithm::HS256);
BENCHMARK_CAPTURE(BM_SignJwt, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_SignJwt, ES256, Algorithm::ES256);

void BM_GenerateToken(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(generate_token(TokenKind::session, CsprngRandom::instance()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GenerateToken);

void BM_ParseToken(benchmark::State& state) {
  const SecretString t = generate_token(TokenKind::session, CsprngRandom::instance());
  for (auto _ : state) benchmark::DoNotOptimize(parse_token(TokenKind::session, t.reveal()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseToken);

void BM_TokenCipherSealOpen(benchmark::State& state) {
  auto cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  const SecretString t = generate_token(TokenKind::refresh, CsprngRandom::instance());
  for (auto _ : state)
    benchmark::DoNotOptimize(
        cipher.open(*cipher.seal(t, "01HZX3NDEKTSV4RRFFQ69G5FAW"), "01HZX3NDEKTSV4RRFFQ69G5FAW"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenCipherSealOpen);

void BM_UlidNext(benchmark::State& state) {
  UlidGenerator gen(SystemClock::instance(), CsprngRandom::instance());
  for (auto _ : state) benchmark::DoNotOptimize(gen.next().to_string());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UlidNext);

}  // namespace

BENCHMARK_MAIN();
