#include "tessera/dpop.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "result_matchers.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwk.hpp"
#include "tessera/random.hpp"

namespace tessera {
namespace {

namespace json = boost::json;
using std::chrono::seconds;
using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

constexpr UnixSeconds kNow{seconds{1'700'000'000}};
constexpr std::string_view kMethod = "POST";
constexpr std::string_view kUrl = "https://server.example/token";

// A client: a key made with tessera's own generator, its public JWK as a
// client sends it (no kid, use or alg) and its thumbprint.
struct Client {
  Key key;
  json::object jwk;
  std::string jkt;
};

const Client& client(Algorithm alg) {
  static std::map<Algorithm, Client> clients;  // RSA generation is slow: once per run
  auto it = clients.find(alg);
  if (it == clients.end()) {
    Key key = *Key::generate(alg, "client", CsprngRandom::instance());
    auto jwk = json::parse(*key.public_jwk()).as_object();
    jwk.erase("kid");
    jwk.erase("use");
    jwk.erase("alg");
    std::string jkt = *key.thumbprint();
    it = clients.emplace(alg, Client{std::move(key), std::move(jwk), std::move(jkt)}).first;
  }
  return it->second;
}

json::object header_for(const Client& c) {
  return {{"typ", "dpop+jwt"}, {"alg", to_string(c.key.algorithm())}, {"jwk", c.jwk}};
}

json::object claims_for(std::string_view jti) {
  return {{"jti", jti}, {"htm", kMethod}, {"htu", kUrl}, {"iat", kNow.time_since_epoch().count()}};
}

// header.claims signed by `signer`.
std::string sign_proof(const Key& signer, const json::object& header, const json::object& claims) {
  const std::string input =
      base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));
  return input + "." + base64url_encode(*signer.sign(input));
}

std::string proof(const Client& c, const json::object& claims) {
  return sign_proof(c.key, header_for(c), claims);
}

int counter = 0;
std::string fresh_jti() {
  return "jti-" + std::to_string(++counter);
}

DpopCheck request() {
  return DpopCheck{.method = kMethod, .url = kUrl};
}

class DpopPerAlgorithm : public ::testing::TestWithParam<Algorithm> {
 protected:
  const Client& c() const { return client(GetParam()); }
  DpopVerifier verifier;
};

TEST_P(DpopPerAlgorithm, AcceptsAProofAndReturnsItsClaims) {
  const std::string jti = fresh_jti();
  auto r = verifier.verify(proof(c(), claims_for(jti)), request(), kNow);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->jkt, c().jkt);
  EXPECT_EQ(r->jti, jti);
  EXPECT_EQ(r->iat, kNow);
  EXPECT_EQ(r->htm, kMethod);
  EXPECT_EQ(r->htu, kUrl);
  EXPECT_FALSE(r->has_nonce);
  EXPECT_EQ(verifier.replay_cache_size(), 1u);
}

TEST_P(DpopPerAlgorithm, ReplayedJtiIsRefusedAndADistinctOnePasses) {
  const std::string p = proof(c(), claims_for(fresh_jti()));
  EXPECT_THAT(verifier.verify(p, request(), kNow), Succeeds());
  EXPECT_THAT(verifier.verify(p, request(), kNow + seconds{1}),
              FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(verifier.verify(proof(c(), claims_for(fresh_jti())), request(), kNow), Succeeds());
}

TEST_P(DpopPerAlgorithm, SignatureByAnotherKeyThanTheHeaderJwkIsRefused) {
  auto other = Key::generate(GetParam(), "other", CsprngRandom::instance());
  ASSERT_TRUE(other);
  EXPECT_THAT(verifier.verify(sign_proof(*other, header_for(c()), claims_for(fresh_jti())),
                              request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_P(DpopPerAlgorithm, PrivateJwkInTheHeaderIsRefused) {
  auto header = header_for(c());
  auto priv = json::parse(c().key.private_jwk()).as_object();
  priv.erase("kid");
  header["jwk"] = priv;
  EXPECT_THAT(
      verifier.verify(sign_proof(c().key, header, claims_for(fresh_jti())), request(), kNow),
      FailsWith(ErrorCode::dpop_proof_invalid));
  // Only "d" added to the public JWK.
  auto with_d = header_for(c());
  with_d["jwk"].as_object()["d"] = "AQAB";
  EXPECT_THAT(
      verifier.verify(sign_proof(c().key, with_d, claims_for(fresh_jti())), request(), kNow),
      FailsWith(ErrorCode::dpop_proof_invalid));
}

INSTANTIATE_TEST_SUITE_P(Asymmetric, DpopPerAlgorithm,
                         ::testing::Values(Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256),
                         [](const auto& info) { return std::string(to_string(info.param)); });

class Dpop : public ::testing::Test {
 protected:
  const Client& c() const { return client(Algorithm::ES256); }
  Result<DpopProof> verify_claims(const json::object& claims, const DpopCheck& check = request(),
                                  UnixSeconds now = kNow) {
    return verifier.verify(proof(c(), claims), check, now);
  }
  Result<DpopProof> verify_header(const json::object& header) {
    return verifier.verify(sign_proof(c().key, header, claims_for(fresh_jti())), request(), kNow);
  }
  DpopVerifier verifier;
};

TEST_F(Dpop, TypMustBeExactlyDpopJwt) {
  for (const char* typ : {"JWT", "at+jwt", "DPoP+jwt", "application/dpop+jwt", ""}) {
    auto h = header_for(c());
    h["typ"] = typ;
    EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid)) << typ;
  }
  auto h = header_for(c());
  h.erase("typ");
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, AlgNoneIsRefused) {
  auto h = header_for(c());
  h["alg"] = "none";
  const std::string unsigned_proof = base64url_encode(json::serialize(h)) + "." +
                                     base64url_encode(json::serialize(claims_for(fresh_jti()))) +
                                     ".";
  EXPECT_THAT(verifier.verify(unsigned_proof, request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, Ed25519IsTheFullySpecifiedNameOfEdDsaAndFitsNoOtherKey) {
  // RFC 9864: npm's dpop signs Ed25519 keys with alg "Ed25519".
  const Client& ed = client(Algorithm::EdDSA);
  auto h = header_for(ed);
  h["alg"] = "Ed25519";
  auto r = verifier.verify(sign_proof(ed.key, h, claims_for(fresh_jti())), request(), kNow);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->jkt, ed.jkt);
  auto ec = header_for(c());
  ec["alg"] = "Ed25519";
  EXPECT_THAT(verify_header(ec), FailsWith(ErrorCode::dpop_proof_invalid));
  for (const char* other : {"Ed448", "ed25519", "ES256K"}) {
    h["alg"] = other;
    EXPECT_THAT(verifier.verify(sign_proof(ed.key, h, claims_for(fresh_jti())), request(), kNow),
                FailsWith(ErrorCode::dpop_proof_invalid))
        << other;
  }
}

TEST_F(Dpop, Hs256IsRefusedWhateverTheJwk) {
  auto hmac = Key::generate(Algorithm::HS256, "h", CsprngRandom::instance());
  ASSERT_TRUE(hmac);
  auto oct = json::parse(hmac->private_jwk()).as_object();
  oct.erase("kid");
  oct.erase("alg");
  json::object h{{"typ", "dpop+jwt"}, {"alg", "HS256"}, {"jwk", oct}};
  EXPECT_THAT(verifier.verify(sign_proof(*hmac, h, claims_for(fresh_jti())), request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
  oct.erase("k");
  h["jwk"] = oct;
  EXPECT_THAT(verifier.verify(sign_proof(*hmac, h, claims_for(fresh_jti())), request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
  auto with_ec = header_for(c());
  with_ec["alg"] = "HS256";
  EXPECT_THAT(verifier.verify(sign_proof(*hmac, with_ec, claims_for(fresh_jti())), request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, JwkMustBePresentAndFitTheAlg) {
  auto h = header_for(c());
  h.erase("jwk");
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
  h["jwk"] = "not an object";
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
  h = header_for(c());
  h["jwk"] = client(Algorithm::EdDSA).jwk;  // ES256 with an Ed25519 key
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
  h = header_for(c());
  h["alg"] = "RS512";
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
  h = header_for(c());
  h["crit"] = json::array{"exp"};
  EXPECT_THAT(verify_header(h), FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, MalformedProofsAreRefused) {
  const std::string good = proof(c(), claims_for(fresh_jti()));
  for (const std::string& bad :
       {std::string(), std::string("abc"), std::string("a.b"), good + ".x", std::string("..."),
        "!" + good, good.substr(0, good.rfind('.') + 1)}) {
    EXPECT_THAT(verifier.verify(bad, request(), kNow), FailsWith(ErrorCode::dpop_proof_invalid))
        << bad;
  }
  const std::string header = base64url_encode(json::serialize(header_for(c())));
  EXPECT_THAT(verifier.verify(header + ".bm90IGpzb24.c2ln", request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, OversizeProofIsRefusedBeforeParsing) {
  auto claims = claims_for(fresh_jti());
  claims["pad"] = std::string(kMaxDpopProofBytes, 'p');
  const std::string big = proof(c(), claims);
  ASSERT_GT(big.size(), kMaxDpopProofBytes);
  EXPECT_THAT(verifier.verify(big, request(), kNow), FailsWith(ErrorCode::dpop_proof_invalid));
  // Just under the limit passes.
  claims = claims_for(fresh_jti());
  claims["pad"] = std::string(5000, 'p');
  const std::string under = proof(c(), claims);
  ASSERT_LE(under.size(), kMaxDpopProofBytes);
  EXPECT_THAT(verifier.verify(under, request(), kNow), Succeeds());
}

TEST_F(Dpop, RequiredClaims) {
  for (const char* name : {"jti", "htm", "htu", "iat"}) {
    auto claims = claims_for(fresh_jti());
    claims.erase(name);
    EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid)) << name;
  }
  auto claims = claims_for(fresh_jti());
  claims["iat"] = "1700000000";
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
  claims = claims_for(std::string(kMaxDpopJtiBytes + 1, 'j'));
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
  claims = claims_for("");
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
  claims = claims_for(std::string(kMaxDpopJtiBytes, 'j'));
  EXPECT_THAT(verify_claims(claims), Succeeds());
  claims = claims_for(fresh_jti());
  claims["jti"] = 42;
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, HtmIsComparedExactly) {
  auto claims = claims_for(fresh_jti());
  claims["htm"] = "GET";
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
  claims = claims_for(fresh_jti());
  claims["htm"] = "post";
  EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, HtuIsComparedNormalised) {
  for (const char* other :
       {"https://server.example/other", "http://server.example/token",
        "https://other.example/token", "https://server.example:8443/token",
        "https://server.example/token/", "https://server.example/TOKEN", "not a url"}) {
    auto claims = claims_for(fresh_jti());
    claims["htu"] = other;
    EXPECT_THAT(verify_claims(claims), FailsWith(ErrorCode::dpop_proof_invalid)) << other;
  }
  auto claims = claims_for(fresh_jti());
  claims["htu"] = "https://EXAMPLE.com:443/token?x=1";
  DpopCheck check = request();
  check.url = "https://example.com/token";
  auto r = verify_claims(claims, check);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->htu, "https://EXAMPLE.com:443/token?x=1");
  // The request side is normalised too.
  claims = claims_for(fresh_jti());
  check.url = "HTTPS://Server.Example:443/token?a=b#frag";
  EXPECT_THAT(verify_claims(claims, check), Succeeds());
  // A request URL that is not one is the caller's bug.
  check.url = "/token";
  EXPECT_THAT(verify_claims(claims_for(fresh_jti()), check), FailsWith(ErrorCode::invalid_request));
}

TEST(DpopHtu, Normalisation) {
  EXPECT_EQ(normalize_htu("https://EXAMPLE.com:443/token?x=1"), "https://example.com/token");
  EXPECT_EQ(normalize_htu("HTTP://Example.COM:80/a/B#f"), "http://example.com/a/B");
  EXPECT_EQ(normalize_htu("http://example.com:443/"), "http://example.com:443/");
  EXPECT_EQ(normalize_htu("https://example.com:80"), "https://example.com:80/");
  EXPECT_EQ(normalize_htu("https://example.com"), "https://example.com/");
  EXPECT_EQ(normalize_htu("https://example.com:/x"), "https://example.com/x");
  EXPECT_EQ(normalize_htu("https://example.com:0443/x"), "https://example.com/x");
  EXPECT_EQ(normalize_htu("https://[::1]:8443/x"), "https://[::1]:8443/x");
  EXPECT_EQ(normalize_htu("https://[::1]:443/x"), "https://[::1]/x");
  EXPECT_EQ(normalize_htu("https://example.com?q"), "https://example.com/");
  for (const char* bad :
       {"", "/token", "example.com/token", "ftp://example.com/", "https://", "https:///x",
        "https://user@example.com/", "https://example.com:99999/", "https://example.com:8a/",
        "https://example.com:0/", "https://exa mple.com/", "https://[::1/", "https://[::1]x/"}) {
    EXPECT_EQ(normalize_htu(bad), std::nullopt) << bad;
  }
}

TEST_F(Dpop, IatWindow) {
  auto at = [](UnixSeconds t) {
    auto claims = claims_for(fresh_jti());
    claims["iat"] = t.time_since_epoch().count();
    return claims;
  };
  EXPECT_THAT(verify_claims(at(kNow - seconds{61})), FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(verify_claims(at(kNow + seconds{61})), FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(verify_claims(at(kNow - seconds{60})), Succeeds());
  EXPECT_THAT(verify_claims(at(kNow + seconds{60})), Succeeds());
  auto fractional = claims_for(fresh_jti());
  fractional["iat"] = 1'700'000'000.5;
  EXPECT_THAT(verify_claims(fractional), Succeeds());

  DpopVerifier strict(DpopOptions{.iat_window = seconds{5}});
  EXPECT_THAT(strict.verify(proof(c(), at(kNow - seconds{6})), request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(strict.verify(proof(c(), at(kNow - seconds{5})), request(), kNow), Succeeds());
}

TEST_F(Dpop, AthIsRequiredWithAnAccessTokenAndMustMatch) {
  const std::string token = "an-access-token";
  DpopCheck check = request();
  check.access_token = token;
  EXPECT_THAT(verify_claims(claims_for(fresh_jti()), check),
              FailsWith(ErrorCode::dpop_proof_invalid));
  auto claims = claims_for(fresh_jti());
  claims["ath"] = dpop_ath("another-access-token");
  EXPECT_THAT(verify_claims(claims, check), FailsWith(ErrorCode::dpop_proof_invalid));
  claims = claims_for(fresh_jti());
  claims["ath"] = base64url_encode(sha256(token));
  EXPECT_THAT(verify_claims(claims, check), Succeeds());
  // RFC 9449 §7.1's example token and its ath.
  EXPECT_EQ(dpop_ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
}

TEST_F(Dpop, NonceWhenRequired) {
  DpopCheck check = request();
  check.nonce = "server-nonce-1";
  EXPECT_THAT(verify_claims(claims_for(fresh_jti()), check), FailsWith(ErrorCode::use_dpop_nonce));
  auto claims = claims_for(fresh_jti());
  claims["nonce"] = "server-nonce-0";
  EXPECT_THAT(verify_claims(claims, check), FailsWith(ErrorCode::use_dpop_nonce));
  claims = claims_for(fresh_jti());
  claims["nonce"] = "server-nonce-1";
  auto r = verify_claims(claims, check);
  ASSERT_THAT(r, Succeeds());
  EXPECT_TRUE(r->has_nonce);
  // A nonce the server did not ask for is reported, not refused.
  claims = claims_for(fresh_jti());
  claims["nonce"] = "whatever";
  r = verify_claims(claims);
  ASSERT_THAT(r, Succeeds());
  EXPECT_TRUE(r->has_nonce);
}

TEST_F(Dpop, ExpectedJktMatchingAndMismatching) {
  DpopCheck check = request();
  check.expected_jkt = c().jkt;
  EXPECT_THAT(verify_claims(claims_for(fresh_jti()), check), Succeeds());
  const Client& other = client(Algorithm::EdDSA);
  EXPECT_THAT(verifier.verify(proof(other, claims_for(fresh_jti())), check, kNow),
              FailsWith(ErrorCode::dpop_key_mismatch));
  // A proof that is invalid anyway stays dpop_proof_invalid (no revocation on it).
  auto bad = claims_for(fresh_jti());
  bad["htm"] = "GET";
  EXPECT_THAT(verifier.verify(proof(other, bad), check, kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
}

TEST_F(Dpop, ErrorDetailsHoldNeitherTheProofNorTheAccessToken) {
  const std::string token = "secret-access-token-value";
  DpopCheck check = request();
  check.access_token = token;
  check.nonce = "secret-nonce-value";
  auto claims = claims_for(fresh_jti());
  claims["ath"] = dpop_ath("x");
  std::vector<std::string> proofs = {proof(c(), claims), proof(c(), claims_for(fresh_jti())),
                                     "x" + proof(c(), claims)};
  claims["ath"] = dpop_ath(token);
  claims["nonce"] = "stale-nonce";
  proofs.push_back(proof(c(), claims));
  for (const std::string& p : proofs) {
    auto r = verifier.verify(p, check, kNow);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().detail.find(token), std::string::npos) << r.error();
    EXPECT_EQ(r.error().detail.find("secret-nonce"), std::string::npos) << r.error();
    EXPECT_EQ(r.error().detail.find("stale-nonce"), std::string::npos) << r.error();
    EXPECT_EQ(r.error().detail.find(p.substr(0, 20)), std::string::npos) << r.error();
  }
}

TEST_F(Dpop, TheKeyCacheSkipsTheHeaderNeverTheSignature) {
  // A header seen before: its key comes from the cache.
  EXPECT_THAT(verify_claims(claims_for(fresh_jti())), Succeeds());
  EXPECT_EQ(verifier.key_cache_size(), 1u);
  auto again = verify_claims(claims_for(fresh_jti()));
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(again->jkt, c().jkt);
  EXPECT_EQ(verifier.key_cache_size(), 1u);
  // The same header over a signature by another key: refused, the cache
  // notwithstanding, and nothing of it is remembered.
  const Client& other = client(Algorithm::EdDSA);
  const std::string forged = sign_proof(other.key, header_for(c()), claims_for(fresh_jti()));
  EXPECT_THAT(verifier.verify(forged, request(), kNow), FailsWith(ErrorCode::dpop_proof_invalid));
  // A header whose signature failed is not cached.
  const std::string bad_first = sign_proof(c().key, header_for(other), claims_for(fresh_jti()));
  EXPECT_THAT(verifier.verify(bad_first, request(), kNow),
              FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_EQ(verifier.key_cache_size(), 1u);
}

TEST_F(Dpop, TheKeyCacheIsBoundedAndCanBeTurnedOff) {
  DpopVerifier small(DpopOptions{.key_cache_entries = 2});
  DpopVerifier off(DpopOptions{.key_cache_entries = 0});
  for (Algorithm alg : {Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256}) {
    const Client& k = client(alg);
    EXPECT_THAT(small.verify(proof(k, claims_for(fresh_jti())), request(), kNow), Succeeds());
    EXPECT_THAT(off.verify(proof(k, claims_for(fresh_jti())), request(), kNow), Succeeds());
    EXPECT_LE(small.key_cache_size(), 2u);
  }
  EXPECT_EQ(small.key_cache_size(), 2u);
  EXPECT_EQ(off.key_cache_size(), 0u);
  // The oldest went: its client still verifies (by the slow path).
  EXPECT_THAT(
      small.verify(proof(client(Algorithm::ES256), claims_for(fresh_jti())), request(), kNow),
      Succeeds());
}

TEST_F(Dpop, ReplayCacheIsBoundedAndExpires) {
  DpopVerifier small(DpopOptions{.iat_window = seconds{60}, .replay_capacity = 3});
  std::vector<std::string> proofs;
  for (int i = 0; i < 4; ++i) {
    auto claims = claims_for(fresh_jti());
    claims["iat"] = (kNow + seconds{i}).time_since_epoch().count();
    proofs.push_back(proof(c(), claims));
    EXPECT_THAT(small.verify(proofs.back(), request(), kNow), Succeeds());
    EXPECT_LE(small.replay_cache_size(), 3u);
  }
  // The first (soonest to expire) was evicted; the later ones are still held.
  EXPECT_THAT(small.verify(proofs[3], request(), kNow), FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(small.verify(proofs[1], request(), kNow), FailsWith(ErrorCode::dpop_proof_invalid));
  // Once past iat + window an entry goes, and its proof is refused by iat anyway.
  EXPECT_THAT(small.verify(proofs[3], request(), kNow + seconds{64}),
              FailsWith(ErrorCode::dpop_proof_invalid));
  EXPECT_THAT(small.verify(proof(c(),
                                 [&] {
                                   auto cl = claims_for(fresh_jti());
                                   cl["iat"] = (kNow + seconds{64}).time_since_epoch().count();
                                   return cl;
                                 }()),
                           request(), kNow + seconds{64}),
              Succeeds());
  EXPECT_EQ(small.replay_cache_size(), 1u);
}

TEST_F(Dpop, ConcurrentReplaysAdmitExactlyOne) {
  const std::string p = proof(c(), claims_for(fresh_jti()));
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (verifier.verify(p, request(), kNow)) accepted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 1);
}

// --- proofs made by an independent implementation (PyJWT) ------------------

struct Vector {
  std::string alg, proof, jkt, htm, htu, jti, access_token, nonce;
  std::int64_t iat = 0;
};

std::vector<Vector> python_vectors() {
  const std::string cmd = std::string("/usr/bin/python3 ") + TESSERA_DPOP_VECTORS_SCRIPT;
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  if (::pclose(pipe) != 0) return {};
  std::vector<Vector> vectors;
  std::size_t start = 0;
  while (start < out.size()) {
    const std::size_t end = out.find('\n', start);
    const auto o = json::parse(out.substr(start, end - start)).as_object();
    auto s = [&](const char* n) { return std::string(o.at(n).as_string()); };
    vectors.push_back(Vector{s("alg"), s("proof"), s("jkt"), s("htm"), s("htu"), s("jti"),
                             s("access_token"), s("nonce"), o.at("iat").as_int64()});
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return vectors;
}

TEST(DpopInterop, PyJwtProofsAreAcceptedAndTamperedOnesRefused) {
  const auto vectors = python_vectors();
  ASSERT_EQ(vectors.size(), 3u) << "dpop_vectors.py (python3-jwt, python3-cryptography) failed";
  for (const Vector& v : vectors) {
    SCOPED_TRACE(v.alg);
    const UnixSeconds now{seconds{v.iat}};
    DpopCheck check{.method = v.htm, .url = v.htu};
    check.access_token = v.access_token;
    check.nonce = v.nonce;
    check.expected_jkt = v.jkt;
    {
      DpopVerifier verifier;
      auto r = verifier.verify(v.proof, check, now);
      ASSERT_THAT(r, Succeeds());
      EXPECT_EQ(r->jkt, v.jkt);  // our thumbprint is the one Python computed
      EXPECT_EQ(r->jti, v.jti);
      EXPECT_TRUE(r->has_nonce);
      EXPECT_THAT(verifier.verify(v.proof, check, now), FailsWith(ErrorCode::dpop_proof_invalid));
    }
    DpopVerifier verifier;
    // Tampered claims: htm changed, the signature kept.
    const auto dot1 = v.proof.find('.');
    const auto dot2 = v.proof.rfind('.');
    std::string payload;
    ASSERT_TRUE(base64url_decode_into(v.proof.substr(dot1 + 1, dot2 - dot1 - 1), payload));
    auto claims = json::parse(payload).as_object();
    claims["htm"] = "GET";
    const std::string tampered_claims = v.proof.substr(0, dot1 + 1) +
                                        base64url_encode(json::serialize(claims)) +
                                        v.proof.substr(dot2);
    DpopCheck get = check;
    get.method = "GET";
    EXPECT_THAT(verifier.verify(tampered_claims, get, now),
                FailsWith(ErrorCode::dpop_proof_invalid));
    // Tampered signature: one bit of its first byte.
    std::string sig;
    ASSERT_TRUE(base64url_decode_into(v.proof.substr(dot2 + 1), sig));
    sig[0] = static_cast<char>(sig[0] ^ 0x01);
    EXPECT_THAT(verifier.verify(v.proof.substr(0, dot2 + 1) + base64url_encode(sig), check, now),
                FailsWith(ErrorCode::dpop_proof_invalid));
    // Another request, or another time, refuses the genuine proof.
    DpopCheck elsewhere = check;
    elsewhere.url = "https://server.example/other";
    EXPECT_THAT(verifier.verify(v.proof, elsewhere, now), FailsWith(ErrorCode::dpop_proof_invalid));
    EXPECT_THAT(verifier.verify(v.proof, check, now + seconds{61}),
                FailsWith(ErrorCode::dpop_proof_invalid));
    // The untampered proof still passes this verifier (nothing above was recorded).
    EXPECT_THAT(verifier.verify(v.proof, check, now), Succeeds());
  }
}

}  // namespace
}  // namespace tessera
