// DPoP proof verification (RFC 9449, tessera/dpop.hpp) per algorithm, beside
// the raw OpenSSL primitive measured in the same run, so figures compare as
// ratios:
//   DpopVerifier::verify (the whole check: parse, client key from the header
//     jwk, signature, claims, htu normalisation, thumbprint, replay cache)
//   Key::verify of the same signature under an already parsed key
//   Key::from_public_jwk of the header's jwk (the key build a proof costs)
//   raw EVP_DigestVerify of the same signature, the EVP_PKEY built once
// and the resource-side verifier (AccessVerifier::verify) with a DPoP-bound
// token and its proof beside the same verifier with a bearer token, the
// verified-token cache on and off: what DPoP adds at a resource.
#include <benchmark/benchmark.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "tessera/dpop.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwk.hpp"
#include "tessera/jwt.hpp"
#include "tessera/random.hpp"
#include "tessera/verify.hpp"

namespace {

using namespace tessera;
using std::chrono::seconds;
namespace json = boost::json;

constexpr UnixSeconds kNow{seconds{1'700'000'000}};
constexpr std::size_t kPool = 256;  // distinct proofs (the replay cache refuses repeats)

struct Fixture {
  explicit Fixture(Algorithm alg) : key(*Key::generate(alg, "client", CsprngRandom::instance())) {
    jwk = json::parse(*key.public_jwk()).as_object();
    jwk.erase("kid");
    jwk.erase("use");
    jwk.erase("alg");
    const json::object header{{"typ", "dpop+jwt"}, {"alg", to_string(alg)}, {"jwk", jwk}};
    const std::string h = base64url_encode(json::serialize(header));
    for (std::size_t i = 0; i < kPool; ++i) {
      const json::object claims{{"jti", "01HZX3NDEKTSV4RRFFQ69G5F" + std::to_string(i)},
                                {"htm", "POST"},
                                {"htu", "https://server.example/token"},
                                {"iat", kNow.time_since_epoch().count()}};
      const std::string input = h + "." + base64url_encode(json::serialize(claims));
      proofs.push_back(input + "." + base64url_encode(*key.sign(input)));
    }
    const std::string& p = proofs.front();
    input = p.substr(0, p.rfind('.'));
    signature = *base64url_decode(std::string_view(p).substr(p.rfind('.') + 1));
    jwk_text = json::serialize(jwk);
  }
  Key key;
  json::object jwk;
  std::string jwk_text;
  std::vector<std::string> proofs;
  std::string input;
  Bytes signature;
};

Fixture& fixture(Algorithm alg) {
  static Fixture es(Algorithm::ES256), ed(Algorithm::EdDSA), rs(Algorithm::RS256);
  return alg == Algorithm::ES256 ? es : alg == Algorithm::EdDSA ? ed : rs;
}

Bytes b64(const json::object& o, const char* name) {
  return *base64url_decode(o.at(name).as_string());
}

// An EVP_PKEY for the client's public key, built with plain OpenSSL calls
// from the JWK members.
EVP_PKEY* raw_public_pkey(Algorithm alg, const json::object& jwk) {
  if (alg == Algorithm::EdDSA) {
    const Bytes x = b64(jwk, "x");
    return EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr, x.data(), x.size());
  }
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  std::string point;
  const char* type = "EC";
  if (alg == Algorithm::ES256) {
    const Bytes x = b64(jwk, "x"), y = b64(jwk, "y");
    point = "\x04" + std::string(as_chars(x)) + std::string(as_chars(y));
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  } else {
    type = "RSA";
    const Bytes nb = b64(jwk, "n"), eb = b64(jwk, "e");
    n = BN_bin2bn(nb.data(), static_cast<int>(nb.size()), nullptr);
    e = BN_bin2bn(eb.data(), static_cast<int>(eb.size()), nullptr);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
  }
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(n);
  BN_free(e);
  return pkey;
}

void BM_DpopVerify(benchmark::State& state, Algorithm alg) {
  Fixture& f = fixture(alg);
  auto verifier = std::make_unique<DpopVerifier>();
  const DpopCheck check{.method = "POST", .url = "https://server.example/token"};
  std::size_t i = 0;
  for (auto _ : state) {
    if (i == kPool) {  // every proof used once: a fresh replay cache
      state.PauseTiming();
      verifier = std::make_unique<DpopVerifier>();
      i = 0;
      state.ResumeTiming();
    }
    auto r = verifier->verify(f.proofs[i++], check, kNow);
    if (!r) state.SkipWithError("DPoP verify failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_DpopVerify, ES256, Algorithm::ES256);
BENCHMARK_CAPTURE(BM_DpopVerify, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_DpopVerify, RS256, Algorithm::RS256);

void BM_KeyVerifySignatureOnly(benchmark::State& state, Algorithm alg) {
  Fixture& f = fixture(alg);
  const Key client = *Key::from_public_jwk(f.jwk_text);
  for (auto _ : state) {
    if (!client.verify(f.input, f.signature)) state.SkipWithError("verify failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_KeyVerifySignatureOnly, ES256, Algorithm::ES256);
BENCHMARK_CAPTURE(BM_KeyVerifySignatureOnly, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_KeyVerifySignatureOnly, RS256, Algorithm::RS256);

void BM_ClientKeyFromJwk(benchmark::State& state, Algorithm alg) {
  Fixture& f = fixture(alg);
  for (auto _ : state) {
    auto k = Key::from_public_jwk(f.jwk_text);
    if (!k) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(k);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_ClientKeyFromJwk, ES256, Algorithm::ES256);
BENCHMARK_CAPTURE(BM_ClientKeyFromJwk, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_ClientKeyFromJwk, RS256, Algorithm::RS256);

void BM_RawOpenSslVerify(benchmark::State& state, Algorithm alg) {
  Fixture& f = fixture(alg);
  EVP_PKEY* pkey = raw_public_pkey(alg, f.jwk);
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
        EVP_DigestVerifyInit_ex(ctx, nullptr, alg == Algorithm::EdDSA ? nullptr : "SHA256", nullptr,
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
BENCHMARK_CAPTURE(BM_RawOpenSslVerify, ES256, Algorithm::ES256);
BENCHMARK_CAPTURE(BM_RawOpenSslVerify, EdDSA, Algorithm::EdDSA);
BENCHMARK_CAPTURE(BM_RawOpenSslVerify, RS256, Algorithm::RS256);

// --- at a resource: AccessVerifier with and without DPoP ----------------------

constexpr std::string_view kResource = "https://api.example/hello";

struct Resource {
  explicit Resource(Algorithm client_alg)
      : authority(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance())),
        client(*Key::generate(client_alg, "client", CsprngRandom::instance())) {
    KeySet pub;
    (void)pub.add(authority, KeyState::active);
    keys = std::make_unique<verify::StaticKeySource>(std::move(pub));
    JwtClaims c;
    c.iss = "https://auth.example";
    c.sub = "alice";
    c.aud = {"api"};
    c.iat = kNow;
    c.exp = kNow + seconds{900};
    c.jti = "01HZX3NDEKTSV4RRFFQ69G5F00";
    c.sid = "01HZX3NDEKTSV4RRFFQ69G5F01";
    bearer = *sign_jwt(authority, c);
    c.cnf_jkt = *client.thumbprint();
    bound = *sign_jwt(authority, c);
    auto jwk = json::parse(*client.public_jwk()).as_object();
    const json::object header{{"typ", "dpop+jwt"}, {"alg", to_string(client_alg)}, {"jwk", jwk}};
    const std::string h = base64url_encode(json::serialize(header));
    for (std::size_t i = 0; i <= kPool; ++i) {  // the last one warms a fresh verifier
      const json::object claims{{"jti", "resource-" + std::to_string(i)},
                                {"htm", "GET"},
                                {"htu", kResource},
                                {"iat", kNow.time_since_epoch().count()},
                                {"ath", dpop_ath(bound)}};
      const std::string input = h + "." + base64url_encode(json::serialize(claims));
      proofs.push_back(input + "." + base64url_encode(*client.sign(input)));
    }
  }
  Key authority, client;
  std::unique_ptr<verify::StaticKeySource> keys;
  std::string bearer, bound;
  std::vector<std::string> proofs;
};

void BM_ResourceVerify(benchmark::State& state, Algorithm client_alg, bool dpop, bool cache) {
  static Resource es(Algorithm::ES256), ed(Algorithm::EdDSA);
  Resource& r = client_alg == Algorithm::ES256 ? es : ed;
  ManualClock clock(kNow);
  const verify::VerifierOptions options{
      .issuer = "https://auth.example", .audiences = {"api"}, .cache_entries = cache ? 1000u : 0u};
  auto make = [&] {
    auto v = std::make_unique<verify::AccessVerifier>(options, *r.keys, clock);
    // Warm the verified-token cache (and the replay cache's first entry).
    const DpopPresented warm{.proof = r.proofs[kPool], .method = "GET", .url = kResource};
    (void)v->verify(dpop ? r.bound : r.bearer, &warm);
    return v;
  };
  auto v = make();
  std::size_t i = 0;
  for (auto _ : state) {
    if (i == kPool) {  // every proof used once: a fresh verifier
      state.PauseTiming();
      v = make();
      i = 0;
      state.ResumeTiming();
    }
    const DpopPresented p{.proof = r.proofs[i++], .method = "GET", .url = kResource};
    auto out = dpop ? v->verify(r.bound, &p) : v->verify(r.bearer);
    if (!out) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_ResourceVerify, bearer_cache, Algorithm::ES256, false, true);
BENCHMARK_CAPTURE(BM_ResourceVerify, dpop_ES256_cache, Algorithm::ES256, true, true);
BENCHMARK_CAPTURE(BM_ResourceVerify, dpop_EdDSA_cache, Algorithm::EdDSA, true, true);
BENCHMARK_CAPTURE(BM_ResourceVerify, bearer_nocache, Algorithm::ES256, false, false);
BENCHMARK_CAPTURE(BM_ResourceVerify, dpop_ES256_nocache, Algorithm::ES256, true, false);
BENCHMARK_CAPTURE(BM_ResourceVerify, dpop_EdDSA_nocache, Algorithm::EdDSA, true, false);

}  // namespace

BENCHMARK_MAIN();
