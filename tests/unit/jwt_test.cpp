#include "tessera/jwt.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "result_matchers.hpp"
#include "tessera/encoding.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

using std::chrono::seconds;

constexpr UnixSeconds kNow{seconds{1'700'000'000}};

JwtClaims base_claims() {
  JwtClaims c;
  c.iss = "https://auth.example";
  c.sub = "alice";
  c.aud = {"api"};
  c.iat = kNow;
  c.exp = kNow + seconds{900};
  c.jti = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
  c.sid = "01HSESSIONSESSIONSESSION00";
  c.sv = 3;
  return c;
}

VerifyOptions options() {
  VerifyOptions o;
  o.issuer = "https://auth.example";
  o.audiences = {"api"};
  return o;
}

// A token with an arbitrary header and payload, signed by `key` over them.
std::string craft(const Key& key, std::string_view header_json, std::string_view payload_json) {
  std::string t = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  auto sig = key.sign(t);
  EXPECT_TRUE(sig);
  return t + "." + base64url_encode(*sig);
}

std::string fmt_header(std::string_view alg) {
  return std::string(R"({"alg":")") + std::string(alg) + R"(","kid":"ed","typ":"at+jwt"})";
}

class JwtPerAlgorithm : public ::testing::TestWithParam<Algorithm> {
 protected:
  void SetUp() override {
    key_ = *Key::generate(GetParam(), "k1", CsprngRandom::instance());
    ASSERT_TRUE(keys_.add(key_, KeyState::active));
  }
  Key key_ = *Key::generate(Algorithm::HS256, "placeholder", CsprngRandom::instance());
  KeySet keys_;
};

TEST_P(JwtPerAlgorithm, SignedTokenVerifiesWithEveryClaimIntact) {
  JwtClaims c = base_claims();
  c.nbf = kNow - seconds{5};
  c.custom = R"({"roles":["admin","dev"],"tenant":"acme"})";
  auto token = sign_jwt(key_, c);
  ASSERT_THAT(token, Succeeds());
  auto v = verify_jwt(*token, keys_, options(), kNow);
  ASSERT_THAT(v, Succeeds());
  EXPECT_EQ(v->alg, GetParam());
  EXPECT_EQ(v->kid, "k1");
  EXPECT_EQ(v->claims.sub, "alice");
  EXPECT_EQ(v->claims.iss, c.iss);
  EXPECT_EQ(v->claims.aud, c.aud);
  EXPECT_EQ(v->claims.exp, c.exp);
  EXPECT_EQ(v->claims.iat, c.iat);
  EXPECT_EQ(v->claims.nbf, c.nbf);
  EXPECT_EQ(v->claims.jti, c.jti);
  EXPECT_EQ(v->claims.sid, c.sid);
  EXPECT_EQ(v->claims.sv, c.sv);
  EXPECT_EQ(v->claims.custom, R"({"roles":["admin","dev"],"tenant":"acme"})");
}

TEST_P(JwtPerAlgorithm, AnyFlippedCharacterIsRejectedWithoutACrash) {
  auto token = sign_jwt(key_, base_claims());
  ASSERT_TRUE(token);
  for (std::size_t i = 0; i < token->size(); ++i) {
    std::string t = *token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    auto v = verify_jwt(t, keys_, options(), kNow);
    if (v) {
      // Only a change in the unused low bits of a final base64 char could
      // decode the same; strict decoding forbids even that.
      ADD_FAILURE() << "altered token verified at " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, JwtPerAlgorithm, ::testing::ValuesIn(kAllAlgorithms),
                         [](const auto& info) { return std::string(to_string(info.param)); });

class JwtChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(keys_.add(ed_, KeyState::active));
    ASSERT_TRUE(keys_.add(ec_, KeyState::next));
  }
  Result<VerifiedJwt> verified(std::string_view token, UnixSeconds now = kNow,
                               VerifyOptions o = options()) {
    return verify_jwt(token, keys_, o, now);
  }
  Key ed_ = *Key::generate(Algorithm::EdDSA, "ed", CsprngRandom::instance());
  Key ec_ = *Key::generate(Algorithm::ES256, "ec", CsprngRandom::instance());
  KeySet keys_;
};

TEST_F(JwtChecks, ExpiryHonoursLeeway) {
  auto token = *sign_jwt(ed_, base_claims());
  EXPECT_TRUE(verify_jwt(token, keys_, options(), kNow + seconds{929}));
  EXPECT_THAT(verified(token, kNow + seconds{930}), FailsWith(ErrorCode::token_expired));
  VerifyOptions strict = options();
  strict.leeway = seconds{0};
  EXPECT_THAT(verified(token, kNow + seconds{900}, strict), FailsWith(ErrorCode::token_expired));
  EXPECT_TRUE(verify_jwt(token, keys_, strict, kNow + seconds{899}));
}

TEST_F(JwtChecks, NotBeforeAndFutureIssuedAtHonourLeeway) {
  JwtClaims c = base_claims();
  c.nbf = kNow + seconds{60};
  auto token = *sign_jwt(ed_, c);
  EXPECT_THAT(verified(token, kNow + seconds{29}), FailsWith(ErrorCode::token_not_yet_valid));
  EXPECT_TRUE(verify_jwt(token, keys_, options(), kNow + seconds{30}));

  JwtClaims f = base_claims();
  f.iat = kNow + seconds{100};
  f.exp = kNow + seconds{1000};
  EXPECT_THAT(verified(*sign_jwt(ed_, f)), FailsWith(ErrorCode::token_not_yet_valid));
}

// A retired key verifies what it signed before its retirement (and within
// kRetiredKeyGrace after), never what it signed later: a key out of signing
// cannot sign anything new. The retirement time reaches resource services
// in the public JWKS.
TEST_F(JwtChecks, ARetiredKeyVerifiesOnlyWhatItSignedBeforeItsRetirement) {
  ASSERT_TRUE(keys_.activate("ec", kNow));  // ed retired at kNow
  JwtClaims before = base_claims();
  before.iat = kNow - seconds{10};
  JwtClaims in_grace = base_claims();
  in_grace.iat = kNow + kRetiredKeyGrace;
  JwtClaims after = base_claims();
  after.iat = kNow + kRetiredKeyGrace + seconds{1};
  after.exp = after.iat + seconds{900};
  const UnixSeconds at = after.iat;
  EXPECT_TRUE(verify_jwt(*sign_jwt(ed_, before), keys_, options(), at));
  EXPECT_TRUE(verify_jwt(*sign_jwt(ed_, in_grace), keys_, options(), at));
  EXPECT_THAT(verified(*sign_jwt(ed_, after), at), FailsWith(ErrorCode::key_retired));

  // The same through the public JWKS a resource service reads.
  auto published = KeySet::from_jwks(keys_.public_jwks());
  ASSERT_TRUE(published.has_value());
  EXPECT_NE(keys_.public_jwks().find("tessera_retired_at"), std::string::npos);
  EXPECT_EQ(keys_.public_jwks().find("\"d\""), std::string::npos) << "never a private member";
  EXPECT_TRUE(verify_jwt(*sign_jwt(ed_, before), *published, options(), at));
  EXPECT_THAT(verify_jwt(*sign_jwt(ed_, after), *published, options(), at),
              FailsWith(ErrorCode::key_retired));
  // The active key is untouched.
  JwtClaims fresh = base_claims();
  fresh.iat = at;
  fresh.exp = at + seconds{900};
  EXPECT_TRUE(verify_jwt(*sign_jwt(ec_, fresh), *published, options(), at));
}

TEST_F(JwtChecks, IssuerAndAudienceMustMatch) {
  JwtClaims c = base_claims();
  c.iss = "https://evil.example";
  EXPECT_THAT(verified(*sign_jwt(ed_, c)), FailsWith(ErrorCode::issuer_mismatch));
  c = base_claims();
  c.aud = {"other", "api2"};
  EXPECT_THAT(verified(*sign_jwt(ed_, c)), FailsWith(ErrorCode::audience_mismatch));
  c.aud = {"other", "api"};  // array containing ours
  EXPECT_TRUE(verify_jwt(*sign_jwt(ed_, c), keys_, options(), kNow));
  c.aud = {};
  EXPECT_THAT(verified(*sign_jwt(ed_, c)), FailsWith(ErrorCode::audience_mismatch));
}

TEST_F(JwtChecks, AudienceMayBeAStringOrAnArray) {
  const std::string h = R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt"})";
  EXPECT_TRUE(verify_jwt(
      craft(
          ed_, h,
          R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})"),
      keys_, options(), kNow));
  EXPECT_TRUE(verify_jwt(
      craft(
          ed_, h,
          R"({"sub":"a","iss":"https://auth.example","aud":["x","api"],"exp":1700000900,"iat":1700000000})"),
      keys_, options(), kNow));
  EXPECT_THAT(
      verified(craft(
          ed_, h,
          R"({"sub":"a","iss":"https://auth.example","aud":7,"exp":1700000900,"iat":1700000000})")),
      FailsWith(ErrorCode::invalid_token));
}

TEST_F(JwtChecks, RequiredClaimsAndClaimTypesAreEnforced) {
  const std::string h = R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt"})";
  const char* bad[] = {
      R"({"iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})",  // no sub
      R"({"sub":"a","iss":"https://auth.example","aud":"api","iat":1700000000})",         // no exp
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900})",         // no iat
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":"1700000900","iat":1700000000})",  // exp a string
      R"({"sub":1,"iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})",
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000,"sv":-1})",
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000,"sid":5})",
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1e400,"iat":1700000000})",
      R"(["not","an","object"])",
      R"({"sub":"a",)",
  };
  for (const char* payload : bad)
    EXPECT_THAT(verified(craft(ed_, h, payload)), FailsWith(ErrorCode::invalid_token)) << payload;
  // A fractional NumericDate is allowed (RFC 7519 §2).
  EXPECT_TRUE(verify_jwt(
      craft(
          ed_, h,
          R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900.5,"iat":1700000000})"),
      keys_, options(), kNow));
}

TEST_F(JwtChecks, TypMustBeAtJwt) {
  const std::string p =
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})";
  EXPECT_THAT(verified(craft(ed_, R"({"alg":"EdDSA","kid":"ed"})", p)),
              FailsWith(ErrorCode::token_type_invalid));
  EXPECT_THAT(verified(craft(ed_, R"({"alg":"EdDSA","kid":"ed","typ":"JWT"})", p)),
              FailsWith(ErrorCode::token_type_invalid));
  EXPECT_TRUE(verify_jwt(craft(ed_, R"({"alg":"EdDSA","kid":"ed","typ":"application/AT+JWT"})", p),
                         keys_, options(), kNow));
  VerifyOptions lax = options();
  lax.require_at_jwt_typ = false;
  EXPECT_TRUE(
      verify_jwt(craft(ed_, R"({"alg":"EdDSA","kid":"ed","typ":"JWT"})", p), keys_, lax, kNow));
}

TEST_F(JwtChecks, AlgNoneIsNotAllowed) {
  const std::string p =
      base64url_encode(std::string_view(R"({"sub":"a","exp":1700000900,"iat":1700000000})"));
  for (std::string_view alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string h = base64url_encode(fmt_header(alg));
    EXPECT_THAT(verified(h + "." + p + "."), FailsWith(ErrorCode::algorithm_not_allowed)) << alg;
  }
  EXPECT_THAT(verified(base64url_encode(std::string_view(R"({"alg":"RS512","kid":"ed"})")) + "." +
                       p + ".AAAA"),
              FailsWith(ErrorCode::algorithm_not_allowed));
  EXPECT_THAT(verified(base64url_encode(std::string_view(R"({"kid":"ed"})")) + "." + p + ".AAAA"),
              FailsWith(ErrorCode::invalid_token));
}

TEST_F(JwtChecks, Hs256SignedWithAPublicKeyAsSecretIsAnAlgorithmMismatch) {
  // Algorithm confusion: the attacker HMACs with the published EC/OKP key
  // material and names the asymmetric key's kid. The key is pinned to its
  // own algorithm, so no HMAC is ever computed with it.
  for (const Key* victim : {&ec_, &ed_}) {
    const std::string pub = *victim->public_jwk();
    auto forged_key = Key::from_jwk(R"({"kty":"oct","kid":")" + victim->kid() + R"(","k":")" +
                                    base64url_encode(std::string_view(pub)) + R"("})");
    ASSERT_TRUE(forged_key);
    const std::string token = craft(
        *forged_key, R"({"alg":"HS256","kid":")" + victim->kid() + R"(","typ":"at+jwt"})",
        R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})");
    EXPECT_THAT(verified(token), FailsWith(ErrorCode::algorithm_mismatch));
  }
}

TEST_F(JwtChecks, KidPointingAtAKeyOfAnotherAlgorithmIsAnAlgorithmMismatch) {
  // Honestly EdDSA-signed, but naming the ES256 key's kid.
  const std::string token = craft(
      ed_, R"({"alg":"EdDSA","kid":"ec","typ":"at+jwt"})",
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})");
  EXPECT_THAT(verified(token), FailsWith(ErrorCode::algorithm_mismatch));
}

TEST(JwtRs256, PinnedToItsKeyBothWays) {
  auto& rnd = CsprngRandom::instance();
  const Key ed = *Key::generate(Algorithm::EdDSA, "ed", rnd);
  const Key rs = *Key::generate(Algorithm::RS256, "rs", rnd);
  KeySet keys;
  ASSERT_TRUE(keys.add(ed, KeyState::active));
  ASSERT_TRUE(keys.add(rs, KeyState::next));
  const std::string claims =
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})";
  auto check = [&](const std::string& token) { return verify_jwt(token, keys, options(), kNow); };
  // Honest RS256 on the RS256 key verifies.
  EXPECT_THAT(check(craft(rs, R"({"alg":"RS256","kid":"rs","typ":"at+jwt"})", claims)), Succeeds());
  // An RS256 header never reaches a key of another type, however it is signed.
  EXPECT_THAT(check(craft(rs, R"({"alg":"RS256","kid":"ed","typ":"at+jwt"})", claims)),
              FailsWith(ErrorCode::algorithm_mismatch));
  // Nor does another algorithm reach the RS256 key.
  EXPECT_THAT(check(craft(ed, R"({"alg":"EdDSA","kid":"rs","typ":"at+jwt"})", claims)),
              FailsWith(ErrorCode::algorithm_mismatch));
  // Algorithm confusion: HMAC keyed with the published RSA JWK.
  auto forged = Key::from_jwk(R"({"kty":"oct","kid":"rs","k":")" +
                              base64url_encode(std::string_view(*rs.public_jwk())) + R"("})");
  ASSERT_TRUE(forged);
  EXPECT_THAT(check(craft(*forged, R"({"alg":"HS256","kid":"rs","typ":"at+jwt"})", claims)),
              FailsWith(ErrorCode::algorithm_mismatch));
  // Signed by another RSA key under the same kid.
  const Key impostor = *Key::generate(Algorithm::RS256, "rs", rnd);
  EXPECT_THAT(check(craft(impostor, R"({"alg":"RS256","kid":"rs","typ":"at+jwt"})", claims)),
              FailsWith(ErrorCode::signature_invalid));
}

TEST_F(JwtChecks, UnknownOrMissingKidIsKeyNotFoundNotABadSignature) {
  auto other = *Key::generate(Algorithm::EdDSA, "stranger", CsprngRandom::instance());
  EXPECT_THAT(verified(*sign_jwt(other, base_claims())), FailsWith(ErrorCode::key_not_found));
  EXPECT_THAT(verified(craft(ed_, R"({"alg":"EdDSA","typ":"at+jwt"})", R"({"sub":"a"})")),
              FailsWith(ErrorCode::key_not_found));
}

TEST_F(JwtChecks, WrongKeyWithTheRightKidIsABadSignature) {
  auto impostor = *Key::generate(Algorithm::EdDSA, "ed", CsprngRandom::instance());
  EXPECT_THAT(verified(*sign_jwt(impostor, base_claims())),
              FailsWith(ErrorCode::signature_invalid));
}

TEST_F(JwtChecks, CritHeadersAreRefused) {
  EXPECT_THAT(
      verified(craft(ed_, R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt","crit":["b64"],"b64":false})",
                     R"({"sub":"a","exp":1700000900,"iat":1700000000})")),
      FailsWith(ErrorCode::invalid_token));
  EXPECT_THAT(verified(craft(ed_, R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt","crit":[]})",
                             R"({"sub":"a","exp":1700000900,"iat":1700000000})")),
              FailsWith(ErrorCode::invalid_token));
}

TEST_F(JwtChecks, EmbeddedKeysInTheHeaderAreNeverTrusted) {
  auto attacker = *Key::generate(Algorithm::EdDSA, "ed", CsprngRandom::instance());
  const std::string token = craft(
      attacker,
      R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt","jwk":)" + *attacker.public_jwk() +
          R"(,"jku":"https://evil.example/jwks"})",
      R"({"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000})");
  EXPECT_THAT(verified(token), FailsWith(ErrorCode::signature_invalid));
}

TEST_F(JwtChecks, StructuralGarbageIsInvalidToken) {
  const std::string good = *sign_jwt(ed_, base_claims());
  const auto dot = good.find('.');
  for (const std::string& bad : {
           std::string(""),
           std::string("."),
           std::string(".."),
           std::string("..."),
           std::string("abc"),
           good + ".",
           good + ".x",
           good + " ",
           std::string(" ") + good,
           good.substr(0, dot) + ".." + good.substr(dot + 1),
           good.substr(0, dot) + "=." + good.substr(dot + 1),
           "!!!." + good.substr(dot + 1),
           base64url_encode(std::string_view("{not json")) + good.substr(dot),
           base64url_encode(std::string_view("[]")) + good.substr(dot),
           base64url_encode(std::string_view(R"({"alg":5})")) + good.substr(dot),
           base64url_encode(std::string_view(R"({"alg":"EdDSA","kid":["ed"]})")) + good.substr(dot),
           std::string(1, '\0') + good,
       }) {
    EXPECT_THAT(verified(bad), FailsWith(ErrorCode::invalid_token)) << bad;
  }
  EXPECT_THAT(verified(good + "A"),
              FailsWith(ErrorCode::signature_invalid));  // still base64, wrong length
}

TEST_F(JwtChecks, OversizedTokensAreRefusedBeforeParsing) {
  const std::string huge(kMaxTokenBytes + 1, 'a');
  EXPECT_THAT(verified(huge), FailsWith(ErrorCode::token_too_large));
  JwtClaims c = base_claims();
  c.custom = R"({"blob":")" + std::string(4000, 'x') + R"("})";
  auto big = sign_jwt(ed_, c);
  ASSERT_TRUE(big);
  VerifyOptions small = options();
  small.max_token_bytes = 1024;
  EXPECT_THAT(verified(*big, kNow, small), FailsWith(ErrorCode::token_too_large));
}

TEST_F(JwtChecks, CustomClaimsAreBoundedAndCannotShadowRegisteredOnes) {
  JwtClaims c = base_claims();
  c.custom = R"({"sub":"mallory"})";
  EXPECT_THAT(sign_jwt(ed_, c), FailsWith(ErrorCode::invalid_request));
  c.custom = R"({"sv":0})";
  EXPECT_THAT(sign_jwt(ed_, c), FailsWith(ErrorCode::invalid_request));
  c.custom = R"({"cnf":{"jkt":"x"}})";  // a key binding is the engine's alone
  EXPECT_THAT(sign_jwt(ed_, c), FailsWith(ErrorCode::invalid_request));
  c.custom = R"(["x"])";
  EXPECT_THAT(sign_jwt(ed_, c), FailsWith(ErrorCode::invalid_request));
  c.custom = R"({"x":")" + std::string(kMaxCustomClaimsBytes, 'x') + R"("})";
  EXPECT_THAT(sign_jwt(ed_, c), FailsWith(ErrorCode::invalid_request));
}

TEST_F(JwtChecks, ACnfJktRoundTripsAndAnyOtherConfirmationIsRefused) {
  JwtClaims c = base_claims();
  c.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
  auto token = sign_jwt(ed_, c);
  ASSERT_THAT(token, Succeeds());
  auto v = verified(*token);
  ASSERT_THAT(v, Succeeds());
  EXPECT_EQ(v->claims.cnf_jkt, c.cnf_jkt);
  EXPECT_EQ(v->claims.custom, "");
  EXPECT_EQ(verified(*sign_jwt(ed_, base_claims()))->claims.cnf_jkt, std::nullopt);

  // A binding this verifier cannot check is never ignored.
  const std::string h = R"({"alg":"EdDSA","kid":"ed","typ":"at+jwt"})";
  for (std::string_view cnf : {R"({"x5t#S256":"abc"})", R"({"jkt":5})", R"({"jkt":""})", R"("jkt")",
                               R"({"jkt":"abc","jwk":{}})"}) {
    const std::string payload = fmt::format(
        R"({{"sub":"a","iss":"https://auth.example","aud":"api","exp":1700000900,"iat":1700000000,"cnf":{}}})",
        cnf);
    EXPECT_THAT(verified(craft(ed_, h, payload)), FailsWith(ErrorCode::invalid_token)) << cnf;
  }
}

TEST_F(JwtChecks, PublicOnlyKeyCannotSign) {
  auto pub = *Key::from_jwk(*ed_.public_jwk());
  EXPECT_THAT(sign_jwt(pub, base_claims()), FailsWith(ErrorCode::key_invalid));
}

TEST_F(JwtChecks, RetiredKeyStillVerifiesAfterRotation) {
  const std::string before = *sign_jwt(ed_, base_claims());
  auto next = *Key::generate(Algorithm::EdDSA, "ed2", CsprngRandom::instance());
  ASSERT_TRUE(keys_.add(next, KeyState::next));
  ASSERT_TRUE(keys_.activate("ed2", kNow));
  EXPECT_TRUE(verify_jwt(before, keys_, options(), kNow));
  const std::string after = *sign_jwt(*keys_.active(), base_claims());
  auto v = verify_jwt(after, keys_, options(), kNow);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kid, "ed2");
}

TEST_F(JwtChecks, PeekKidReadsTheHeaderOnlyAndNothingWithoutAKid) {
  const std::string token = *sign_jwt(ed_, base_claims());
  EXPECT_EQ(peek_kid(token), std::optional<std::string>("ed"));
  const std::string no_kid = base64url_encode(std::string_view(R"({"alg":"EdDSA"})")) + ".e30.c2ln";
  EXPECT_EQ(peek_kid(no_kid), std::nullopt);
  EXPECT_THAT(verified(no_kid), FailsWith(ErrorCode::key_not_found));
  EXPECT_EQ(peek_kid("not a token"), std::nullopt);
  EXPECT_EQ(peek_kid("!!!.e30.c2ln"), std::nullopt);
}

}  // namespace
}  // namespace tessera
