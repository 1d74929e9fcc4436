#include "tessera/jwk.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "result_matchers.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/key_set.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

TEST(Algorithm, ParsesOnlyTheAllowList) {
  for (Algorithm alg : kAllAlgorithms) EXPECT_EQ(algorithm_from_string(to_string(alg)), alg);
  for (std::string_view bad :
       {"none", "None", "NONE", "eddsa", "rs256", "RS512", "PS256", "HS512", "ES256K", ""}) {
    EXPECT_FALSE(algorithm_from_string(bad).has_value()) << bad;
  }
}

class KeyPerAlgorithm : public ::testing::TestWithParam<Algorithm> {};

TEST_P(KeyPerAlgorithm, GeneratedKeyRoundTripsThroughItsPrivateJwk) {
  auto key = Key::generate(GetParam(), "k1", CsprngRandom::instance());
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->kid(), "k1");
  EXPECT_EQ(key->algorithm(), GetParam());
  EXPECT_TRUE(key->has_private());
  auto again = Key::from_jwk(key->private_jwk());
  ASSERT_THAT(again, Succeeds());
  auto sig = key->sign("message");
  ASSERT_TRUE(sig);
  EXPECT_TRUE(again->verify("message", as_bytes(*sig)));
  EXPECT_FALSE(again->verify("massage", as_bytes(*sig)));
}

TEST_P(KeyPerAlgorithm, PublicJwkHoldsNoPrivateMaterial) {
  auto key = Key::generate(GetParam(), "k1", CsprngRandom::instance());
  ASSERT_TRUE(key);
  const auto pub = key->public_jwk();
  if (GetParam() == Algorithm::HS256) {
    EXPECT_FALSE(pub.has_value());
    return;
  }
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(pub->find("\"d\""), std::string::npos);
  EXPECT_EQ(pub->find("\"k\""), std::string::npos);
  auto pub_key = Key::from_jwk(*pub);
  ASSERT_TRUE(pub_key);
  EXPECT_FALSE(pub_key->has_private());
  EXPECT_THAT(pub_key->sign("x"), FailsWith(ErrorCode::key_invalid));
  auto sig = key->sign("m");
  EXPECT_TRUE(pub_key->verify("m", as_bytes(*sig)));
}

INSTANTIATE_TEST_SUITE_P(All, KeyPerAlgorithm, ::testing::ValuesIn(kAllAlgorithms),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(Jwk, RefusesMalformedAndMismatchedKeys) {
  const char* bad[] = {
      "",
      "[]",
      "{",
      R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",  // no
                                                                                             // kid
      R"({"kty":"OKP","crv":"X25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
      R"({"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKx"})",  // short
      R"({"kty":"OKP","crv":"Ed25519","kid":"a","x":12})",
      R"({"kty":"OKP","crv":"Ed25519","kid":"a","alg":"HS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
      R"({"kty":"OKP","crv":"Ed25519","kid":"a","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
      R"({"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"})",  // no y
      // a point that is not on P-256 (y changed): invalid-curve attacks start here
      R"({"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1"})",
      R"({"kty":"EC","crv":"P-384","kid":"a","x":"AA","y":"AA"})",
      R"({"kty":"oct","kid":"a","k":"c2hvcnQ"})",  // 5 bytes < 32
      R"({"kty":"oct","kid":"a","alg":"EdDSA","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})",
      R"({"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"})",
      R"({"kty":"RSA","kid":"a","e":"AQAB"})",  // no n
      R"({"kty":"EC","crv":"P-256","kid":"a","alg":"RS256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})",
  };
  for (const char* text : bad) {
    auto key = Key::from_jwk(text);
    ASSERT_THAT(key, FailsWith(ErrorCode::key_invalid)) << text;
  }
}

// An RS256 key's JWK as an object, to change members of.
boost::json::object rsa_jwk(const Key& key, bool with_private) {
  return boost::json::parse(with_private ? key.private_jwk() : *key.public_jwk()).as_object();
}

class RsaJwk : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = new Key(*Key::generate(Algorithm::RS256, "rs", CsprngRandom::instance()));
  }
  static void TearDownTestSuite() {
    delete key_;
    key_ = nullptr;
  }
  static Key* key_;  // one 2048-bit key for the suite: generation is slow
};
Key* RsaJwk::key_ = nullptr;

TEST_F(RsaJwk, GeneratedKeyIs2048BitsWithMinimalMembers) {
  const auto pub = rsa_jwk(*key_, false);
  EXPECT_EQ(pub.at("kty"), "RSA");
  EXPECT_EQ(pub.at("alg"), "RS256");
  EXPECT_EQ(pub.at("use"), "sig");
  EXPECT_EQ(pub.at("kid"), "rs");
  EXPECT_EQ(pub.at("e"), "AQAB");
  EXPECT_EQ(pub.size(), 6u) << boost::json::serialize(pub);
  const auto n = base64url_decode(pub.at("n").as_string());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->size(), 256u);
  EXPECT_NE(n->front(), 0u);
  const auto priv = rsa_jwk(*key_, true);
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi"}) {
    ASSERT_TRUE(priv.contains(member)) << member;
    const auto bytes = base64url_decode(priv.at(member).as_string());
    ASSERT_TRUE(bytes && !bytes->empty()) << member;
    EXPECT_NE(bytes->front(), 0u) << member << " has a leading zero byte";
  }
}

TEST_F(RsaJwk, LeadingZeroBytesAreDroppedWhenPublished) {
  auto pub = rsa_jwk(*key_, false);
  const std::string n(pub.at("n").as_string());
  Bytes padded{0, 0};
  const auto raw = base64url_decode(n);
  padded.insert(padded.end(), raw->begin(), raw->end());
  pub["n"] = base64url_encode(std::span<const std::uint8_t>(padded));
  auto key = Key::from_jwk(boost::json::serialize(pub));
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(std::string_view(rsa_jwk(*key, false).at("n").as_string()), n);
}

TEST_F(RsaJwk, RefusesAModulusShorterThan2048Bits) {
  auto key = Key::from_jwk(
      R"({"kty":"RSA","kid":"short","alg":"RS256","e":"AQAB","n":")"
      "wSIGuZ6G5JI6-UgtE4E6oX8xjfj76jWOgWBbKf5jzPbbF8Wtu75P7jBU3iUFARKIGsqehEVRAGrzYJqhAECENBEXqu0U"
      "H9zTzkNq7oc7yq8q5S_iyMZO4h6LZAf3s36r2E7hXLApkJSQkN3w9CI5LUMJuSmFsfeWP5Evom5OscE\"}");
  EXPECT_THAT(key, FailsWith(ErrorCode::key_invalid));
}

TEST_F(RsaJwk, RefusesAnAlgOtherThanRs256) {
  for (const char* alg : {"RS512", "PS256", "ES256", "HS256", "none", "rs256"}) {
    for (bool with_private : {false, true}) {
      auto jwk = rsa_jwk(*key_, with_private);
      jwk["alg"] = alg;
      EXPECT_THAT(Key::from_jwk(boost::json::serialize(jwk)), FailsWith(ErrorCode::key_invalid))
          << alg;
    }
  }
}

TEST_F(RsaJwk, RefusesIncompleteOrMultiPrimePrivateKeys) {
  for (const char* member : {"p", "q", "dp", "dq", "qi"}) {
    auto jwk = rsa_jwk(*key_, true);
    jwk.erase(member);
    EXPECT_THAT(Key::from_jwk(boost::json::serialize(jwk)), FailsWith(ErrorCode::key_invalid))
        << "without " << member;
  }
  auto no_d = rsa_jwk(*key_, true);
  no_d.erase("d");
  EXPECT_THAT(Key::from_jwk(boost::json::serialize(no_d)), FailsWith(ErrorCode::key_invalid));
  auto oth = rsa_jwk(*key_, true);
  oth["oth"] = boost::json::array{};
  EXPECT_THAT(Key::from_jwk(boost::json::serialize(oth)), FailsWith(ErrorCode::key_invalid));
}

TEST_F(RsaJwk, RefusesASignatureNotOfTheModulusSize) {
  auto sig = key_->sign("message");
  ASSERT_THAT(sig, Succeeds());
  ASSERT_EQ(sig->size(), 256u);
  const Bytes good(sig->begin(), sig->end());
  EXPECT_TRUE(key_->verify("message", good));
  Bytes longer{0};  // the same number, one byte wider
  longer.insert(longer.end(), good.begin(), good.end());
  EXPECT_FALSE(key_->verify("message", longer));
  EXPECT_FALSE(key_->verify("message", std::span(good).first(255)));
  EXPECT_FALSE(key_->verify("message", std::span(good).first(64)));
  EXPECT_FALSE(key_->verify("message", {}));
}

TEST(KeySet, PublicJwksHoldsEveryAsymmetricKeyAndNoPrivateMaterial) {
  KeySet set;
  auto& rnd = CsprngRandom::instance();
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "ed", rnd), KeyState::active));
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::ES256, "ec", rnd), KeyState::next));
  ASSERT_TRUE(
      set.add(*Key::generate(Algorithm::HS256, "hs", rnd), KeyState::retired, UnixSeconds{}));
  ASSERT_TRUE(
      set.add(*Key::generate(Algorithm::RS256, "rs", rnd), KeyState::retired, UnixSeconds{}));
  const std::string jwks = set.public_jwks();
  for (std::string_view secret_member :
       {"\"d\"", "\"k\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""}) {
    EXPECT_EQ(jwks.find(secret_member), std::string::npos) << secret_member << " in " << jwks;
  }
  EXPECT_EQ(jwks.find("\"hs\""), std::string::npos) << "symmetric key published";
  for (const auto& e : set.entries()) {
    // Not even a fragment of a private key may appear.
    const std::string priv = e.key.private_jwk();
    const auto at = priv.find(e.key.is_symmetric() ? "\"k\":\"" : "\"d\":\"");
    ASSERT_NE(at, std::string::npos);
    const std::string fragment = priv.substr(at + 5, 12);
    EXPECT_EQ(jwks.find(fragment), std::string::npos);
  }
  auto parsed = KeySet::from_jwks(jwks);
  ASSERT_THAT(parsed, Succeeds());
  EXPECT_EQ(parsed->entries().size(), 3u);
  EXPECT_NE(parsed->find("ed"), nullptr);
  EXPECT_NE(parsed->find("ec"), nullptr);
  ASSERT_NE(parsed->find("rs"), nullptr);
  EXPECT_EQ(parsed->find("rs")->algorithm(), Algorithm::RS256);
  EXPECT_EQ(parsed->active(), nullptr) << "a public JWKS signs nothing";
}

TEST(KeySet, PrivateJwksRoundTripsStates) {
  KeySet set;
  auto& rnd = CsprngRandom::instance();
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "a", rnd), KeyState::active));
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "b", rnd), KeyState::next));
  ASSERT_TRUE(set.activate("b", UnixSeconds{std::chrono::seconds{1000}}));
  auto again = KeySet::from_jwks(set.private_jwks());
  ASSERT_THAT(again, Succeeds());
  ASSERT_EQ(again->entries().size(), 2u);
  EXPECT_EQ(again->active()->kid(), "b");
  EXPECT_EQ(again->entries()[0].state, KeyState::retired);
  EXPECT_EQ(again->entries()[0].retired_at, UnixSeconds{std::chrono::seconds{1000}});
}

TEST(KeySet, RotationRetiresThePreviousKeyAndPruneWaitsForItsTokens) {
  KeySet set;
  auto& rnd = CsprngRandom::instance();
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "old", rnd), KeyState::active));
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "new", rnd), KeyState::next));
  EXPECT_EQ(set.active()->kid(), "old");
  const UnixSeconds t0{std::chrono::seconds{10'000}};
  ASSERT_TRUE(set.activate("new", t0));
  EXPECT_EQ(set.active()->kid(), "new");
  EXPECT_NE(set.find("old"), nullptr);
  using std::chrono::seconds;
  EXPECT_EQ(set.prune(t0 + seconds{929}, seconds{900}, seconds{30}), 0u);
  EXPECT_NE(set.find("old"), nullptr);
  EXPECT_EQ(set.prune(t0 + seconds{930}, seconds{900}, seconds{30}), 1u);
  EXPECT_EQ(set.find("old"), nullptr);
}

TEST(KeySet, RefusesDuplicateKidsTwoActiveKeysAndBadActivations) {
  KeySet set;
  auto& rnd = CsprngRandom::instance();
  ASSERT_TRUE(set.add(*Key::generate(Algorithm::EdDSA, "a", rnd), KeyState::active));
  EXPECT_FALSE(set.add(*Key::generate(Algorithm::ES256, "a", rnd), KeyState::next));
  EXPECT_FALSE(set.add(*Key::generate(Algorithm::ES256, "b", rnd), KeyState::active));
  EXPECT_THAT(set.activate("zzz", UnixSeconds{}), FailsWith(ErrorCode::key_not_found));
  EXPECT_THAT(set.activate("a", UnixSeconds{}), FailsWith(ErrorCode::invalid_request));
  auto pub = Key::from_jwk(*Key::generate(Algorithm::EdDSA, "p", rnd)->public_jwk());
  EXPECT_FALSE(set.add(*pub, KeyState::active));
}

TEST(KeySet, FromJwksSkipsUnknownKeyTypesButRefusesBrokenOnes) {
  auto set = KeySet::from_jwks(R"({"keys":[{"kty":"EC","crv":"P-384","kid":"r","x":"AA","y":"AA"},
      {"kty":"OKP","crv":"X448","kid":"x","x":"AA"},
      {"kty":"OKP","crv":"Ed25519","kid":"ok","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})");
  ASSERT_THAT(set, Succeeds());
  EXPECT_EQ(set->entries().size(), 1u);
  for (const char* bad : {R"({"keys":{}})", R"({})", R"({"keys":[1]})",
                          R"({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"ok","x":"AA"}]})",
                          R"({"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]})"}) {
    auto r = KeySet::from_jwks(bad);
    ASSERT_THAT(r, FailsWith(ErrorCode::key_invalid)) << bad;
  }
}

// --- client keys (DPoP): public JWKs without a kid, RFC 7638 thumbprints ---

// RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its thumbprint.
constexpr std::string_view kRfc7638Jwk =
    R"({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"})";

TEST(ClientKey, Rfc7638ExampleThumbprint) {
  auto key = Key::from_public_jwk(kRfc7638Jwk);
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::RS256);
  EXPECT_FALSE(key->has_private());
  EXPECT_EQ(key->thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  // The same key through the authority's parser names the same thumbprint.
  auto again = Key::from_jwk(kRfc7638Jwk);
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(again->thumbprint(), key->thumbprint());
}

TEST(ClientKey, Rfc8037Ed25519Thumbprint) {
  // RFC 8037 Appendix A.2 (public key) and A.3 (its RFC 7638 thumbprint).
  auto key = Key::from_public_jwk(
      R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::EdDSA);
  EXPECT_EQ(key->thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

// A generated key's public JWK as a client sends it: no kid, use or alg.
std::string client_jwk(const Key& key) {
  auto o = boost::json::parse(*key.public_jwk()).as_object();
  o.erase("kid");
  o.erase("use");
  o.erase("alg");
  return boost::json::serialize(o);
}

class ClientKeyPerAlgorithm : public ::testing::TestWithParam<Algorithm> {};

TEST_P(ClientKeyPerAlgorithm, ParsesAPublicJwkWithoutKid) {
  auto key = Key::generate(GetParam(), "k1", CsprngRandom::instance());
  ASSERT_TRUE(key);
  auto client = Key::from_public_jwk(client_jwk(*key));
  ASSERT_THAT(client, Succeeds());
  EXPECT_EQ(client->algorithm(), GetParam());
  EXPECT_FALSE(client->has_private());
  EXPECT_EQ(client->thumbprint(), key->thumbprint());
  auto sig = key->sign("m");
  ASSERT_TRUE(sig);
  EXPECT_TRUE(client->verify("m", as_bytes(*sig)));
  // kid, use "sig" and a fitting alg are allowed too.
  EXPECT_THAT(Key::from_public_jwk(*key->public_jwk()), Succeeds());
}

TEST_P(ClientKeyPerAlgorithm, ThumbprintIsRfc7638OverTheRequiredMembers) {
  auto key = Key::generate(GetParam(), "k1", CsprngRandom::instance());
  ASSERT_TRUE(key);
  const auto o = boost::json::parse(*key->public_jwk()).as_object();
  auto m = [&](const char* name) { return std::string(o.at(name).as_string()); };
  std::string text;
  switch (GetParam()) {
    case Algorithm::ES256:
      text = R"({"crv":"P-256","kty":"EC","x":")" + m("x") + R"(","y":")" + m("y") + R"("})";
      break;
    case Algorithm::EdDSA:
      text = R"({"crv":"Ed25519","kty":"OKP","x":")" + m("x") + R"("})";
      break;
    default:
      text = R"({"e":")" + m("e") + R"(","kty":"RSA","n":")" + m("n") + R"("})";
  }
  EXPECT_EQ(key->thumbprint(), base64url_encode(sha256(text)));
}

TEST_P(ClientKeyPerAlgorithm, RefusesPrivateMembers) {
  auto key = Key::generate(GetParam(), "k1", CsprngRandom::instance());
  ASSERT_TRUE(key);
  EXPECT_THAT(Key::from_public_jwk(key->private_jwk()), FailsWith(ErrorCode::key_invalid));
  for (const char* member : {"d", "p", "q", "dp", "dq", "qi", "k"}) {
    auto o = boost::json::parse(client_jwk(*key)).as_object();
    o[member] = "AQAB";
    EXPECT_THAT(Key::from_public_jwk(boost::json::serialize(o)), FailsWith(ErrorCode::key_invalid))
        << member;
  }
}

INSTANTIATE_TEST_SUITE_P(Asymmetric, ClientKeyPerAlgorithm,
                         ::testing::Values(Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(ClientKey, RefusesSymmetricAndMalformedKeys) {
  auto hs = Key::generate(Algorithm::HS256, "k1", CsprngRandom::instance());
  ASSERT_TRUE(hs);
  EXPECT_FALSE(hs->thumbprint().has_value());
  EXPECT_THAT(Key::from_public_jwk(hs->private_jwk()), FailsWith(ErrorCode::key_invalid));
  EXPECT_THAT(Key::from_public_jwk(R"({"kty":"oct"})"), FailsWith(ErrorCode::key_invalid));
  EXPECT_THAT(Key::from_public_jwk("[]"), FailsWith(ErrorCode::key_invalid));
  EXPECT_THAT(Key::from_public_jwk(R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"})"),
              FailsWith(ErrorCode::key_invalid));
  // RSA members must be the canonical base64urlUInt: a leading zero byte is refused.
  auto o = boost::json::parse(kRfc7638Jwk).as_object();
  o["e"] = "AAEAAQ";
  EXPECT_THAT(Key::from_public_jwk(boost::json::serialize(o)), FailsWith(ErrorCode::key_invalid));
  for (const char* e : {"AQ", "Ag", "AQAA"}) {  // e = 1, 2, 65536
    o["e"] = e;
    EXPECT_THAT(Key::from_public_jwk(boost::json::serialize(o)), FailsWith(ErrorCode::key_invalid))
        << e;
  }
  o["e"] = "AQAB";
  o["alg"] = "ES256";
  EXPECT_THAT(Key::from_public_jwk(boost::json::serialize(o)), FailsWith(ErrorCode::key_invalid));
}

}  // namespace
}  // namespace tessera
