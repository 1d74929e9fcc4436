// Published test vectors: RFC 8037 Appendix A (Ed25519 JWS), RFC 7515
// Appendix A.1 (HS256), A.2 (RS256: PKCS#1 v1.5 is deterministic, so the
// signature must match byte for byte) and A.3 (ES256, verify only: ECDSA
// signatures are randomised, so only verification of the published one is
// checkable).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

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

// RFC 7515 Appendix A.2: the RSA key of RFC 7517 Appendix A.2, members apart
// so that tests can drop or change one.
constexpr std::string_view kA2n =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0B"
    "m4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5"
    "z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7"
    "aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
constexpr std::string_view kA2d =
    "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2N"
    "XOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M"
    "_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x"
    "_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";
constexpr std::string_view kA2p =
    "4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py"
    "5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc";
constexpr std::string_view kA2q =
    "uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQ"
    "eZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc";
constexpr std::string_view kA2dp =
    "BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu"
    "1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0";
constexpr std::string_view kA2dq =
    "h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0a"
    "jaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU";
constexpr std::string_view kA2qi =
    "IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY"
    "7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U";
constexpr std::string_view kA2Signature =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2F"
    "p5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQB"
    "MHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeY"
    "I2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

std::string a2_public_jwk(std::string_view extra = "") {
  return std::string(R"({"kty":"RSA","kid":"rfc7515-a2","e":"AQAB","n":")") + std::string(kA2n) +
         "\"" + std::string(extra) + "}";
}

std::string a2_private_jwk() {
  std::string extra;
  for (auto [name, value] :
       {std::pair{"d", kA2d}, std::pair{"p", kA2p}, std::pair{"q", kA2q}, std::pair{"dp", kA2dp},
        std::pair{"dq", kA2dq}, std::pair{"qi", kA2qi}}) {
    extra += std::string(",\"") + name + "\":\"" + std::string(value) + "\"";
  }
  return a2_public_jwk(extra);
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

TEST(Rfc7515AppendixA2, Rs256SignatureMatchesAndVerifies) {
  auto key = Key::from_jwk(a2_private_jwk());
  ASSERT_THAT(key, Succeeds());
  EXPECT_EQ(key->algorithm(), Algorithm::RS256);
  EXPECT_TRUE(key->has_private());
  const std::string input = "eyJhbGciOiJSUzI1NiJ9." + std::string(kRfc7515Payload);
  auto sig = key->sign(input);
  ASSERT_THAT(sig, Succeeds());
  EXPECT_EQ(base64url_encode(*sig), kA2Signature);
  EXPECT_TRUE(key->verify(input, b64(kA2Signature)));
  EXPECT_FALSE(key->verify(input + "x", b64(kA2Signature)));

  // The public half alone verifies, and its JWK is the RFC's public members.
  auto pub = Key::from_jwk(*key->public_jwk());
  ASSERT_THAT(pub, Succeeds());
  EXPECT_FALSE(pub->has_private());
  EXPECT_TRUE(pub->verify(input, b64(kA2Signature)));
  EXPECT_NE(key->public_jwk()->find(R"("n":")" + std::string(kA2n) + "\""), std::string::npos);
  EXPECT_NE(key->public_jwk()->find(R"("e":"AQAB")"), std::string::npos);
  Bytes bad = b64(kA2Signature);
  bad[100] ^= 1;
  EXPECT_FALSE(pub->verify(input, bad));
}

TEST(Rfc7515AppendixA2, PrivateKeyWhoseMembersDoNotFitIsRefused) {
  // q swapped for p: n is no longer p·q.
  std::string text = a2_private_jwk();
  const std::string q = R"("q":")" + std::string(kA2q) + "\"";
  text.replace(text.find(q), q.size(), R"("q":")" + std::string(kA2p) + "\"");
  EXPECT_THAT(Key::from_jwk(text), FailsWith(ErrorCode::key_invalid));
}

TEST(Rfc7515AppendixA2, PublicKeyWithAnEvenModulusIsRefused) {
  // The last character carries n's two lowest bits: "Q" (…01) → "A" (…00).
  std::string n(kA2n);
  ASSERT_EQ(n.back(), 'Q');
  n.back() = 'A';
  EXPECT_THAT(Key::from_jwk(R"({"kty":"RSA","kid":"even","e":"AQAB","n":")" + n + "\"}"),
              FailsWith(ErrorCode::key_invalid));
  EXPECT_THAT(Key::from_jwk(a2_public_jwk()), Succeeds());
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
