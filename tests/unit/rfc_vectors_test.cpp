// Published test vectors: RFC 8037 Appendix A (Ed25519 JWS), RFC 7515
// Appendix A.1 (HS256) and A.3 (ES256, verify only: ECDSA signatures are
// randomised, so only verification of the published one is checkable).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "result_matchers.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwk.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

constexpr std::string_view kRfc7515Payload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q";

Bytes b64(std::string_view s) {
  auto d = base64url_decode(s);
  EXPECT_TRUE(d.has_value()) << s;
  return d.value_or(Bytes{});
}

TEST(Rfc8037AppendixA, Ed25519SignatureMatchesAndVerifies) {
  auto key = Key::from_jwk(R"({"kty":"OKP","crv":"Ed25519","kid":"rfc8037",
      "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
      "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::EdDSA);
  const std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  const std::string expected_sig =
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
  auto sig = key->sign(input);
  ASSERT_TRUE(sig);
  EXPECT_EQ(base64url_encode(*sig), expected_sig);  // Ed25519 is deterministic
  EXPECT_TRUE(key->verify(input, b64(expected_sig)));
  EXPECT_FALSE(key->verify(input + "x", b64(expected_sig)));

  // The public half alone verifies too, and the JWK thumbprint inputs match.
  auto pub = Key::from_jwk(*key->public_jwk());
  ASSERT_TRUE(pub);
  EXPECT_FALSE(pub->has_private());
  EXPECT_TRUE(pub->verify(input, b64(expected_sig)));
}

TEST(Rfc8037AppendixA, PrivateKeyWithMismatchedPublicIsRefused) {
  auto key = Key::from_jwk(R"({"kty":"OKP","crv":"Ed25519","kid":"x",
      "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
      "x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})");
  ASSERT_THAT(key, FailsWith(ErrorCode::key_invalid));
}

TEST(Rfc7515AppendixA1, Hs256SignatureMatchesAndVerifies) {
  auto key = Key::from_jwk(R"({"kty":"oct","kid":"rfc7515",
      "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})");
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::HS256);
  const std::string input =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + std::string(kRfc7515Payload);
  auto sig = key->sign(input);
  ASSERT_TRUE(sig);
  EXPECT_EQ(base64url_encode(*sig), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  EXPECT_TRUE(key->verify(input, b64("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")));
  EXPECT_FALSE(key->public_jwk().has_value()) << "a symmetric key has no public form";
}

TEST(Rfc7515AppendixA3, Es256PublishedSignatureVerifies) {
  auto key = Key::from_jwk(R"({"kty":"EC","crv":"P-256","kid":"rfc7515-a3",
      "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
      "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})");
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::ES256);
  const std::string input = "eyJhbGciOiJFUzI1NiJ9." + std::string(kRfc7515Payload);
  const Bytes sig =
      b64("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
  EXPECT_TRUE(key->verify(input, sig));
  Bytes bad = sig;
  bad[10] ^= 1;
  EXPECT_FALSE(key->verify(input, bad));
  EXPECT_FALSE(key->verify(input, std::span(sig).first(63)));
}

}  // namespace
}  // namespace tessera
