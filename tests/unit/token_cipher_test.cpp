#include "tessera/token_cipher.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "result_matchers.hpp"
#include "tessera/encoding.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;

LookupKeyMaterial key(std::uint32_t version, char fill) {
  return {version, SecretString(std::string(32, fill))};
}

TEST(TokenCipher, SealsAndOpensWithAFreshNonceEachTime) {
  auto cipher = TokenCipher::create({key(1, 'c')}, CsprngRandom::instance());
  ASSERT_TRUE(cipher);
  const SecretString plain("tsr_successor-token");
  std::set<std::string> texts;
  for (int i = 0; i < 50; ++i) {
    auto sealed = cipher->seal(plain, "session-id");
    ASSERT_TRUE(sealed);
    EXPECT_EQ(sealed->key_version, 1u);
    EXPECT_EQ(sealed->text.find("successor"), std::string::npos);
    EXPECT_TRUE(texts.insert(sealed->text).second) << "nonce reused";
    auto opened = cipher->open(*sealed, "session-id");
    ASSERT_TRUE(opened);
    EXPECT_EQ(*opened, plain);
  }
  // Layout: base64url(nonce12 || ciphertext || tag16).
  EXPECT_EQ(base64url_decode(*texts.begin())->size(), 12 + plain.reveal().size() + 16);
}

TEST(TokenCipher, TamperingWithAnyByteFailsToDecrypt) {
  auto cipher = TokenCipher::create({key(1, 'c')}, CsprngRandom::instance());
  ASSERT_TRUE(cipher);
  auto sealed = cipher->seal(SecretString("hello, refresh token"));
  ASSERT_TRUE(sealed);
  const Bytes raw = *base64url_decode(sealed->text);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    for (std::uint8_t flip : {0x01, 0x80}) {
      Bytes t = raw;
      t[i] ^= flip;
      auto opened = cipher->open({sealed->key_version, base64url_encode(t)});
      ASSERT_THAT(opened, FailsWith(ErrorCode::decryption_failed)) << "byte " << i;
    }
  }
  Bytes truncated(raw.begin(), raw.end() - 1);
  EXPECT_THAT(cipher->open({1, base64url_encode(truncated)}),
              FailsWith(ErrorCode::decryption_failed));
  EXPECT_THAT(cipher->open({1, "not base64!"}), FailsWith(ErrorCode::decryption_failed));
  EXPECT_THAT(cipher->open({1, ""}), FailsWith(ErrorCode::decryption_failed));
}

TEST(TokenCipher, AssociatedDataBindsTheCiphertext) {
  auto cipher = TokenCipher::create({key(1, 'c')}, CsprngRandom::instance());
  ASSERT_TRUE(cipher);
  auto sealed = cipher->seal(SecretString("x"), "session-A");
  ASSERT_TRUE(sealed);
  EXPECT_THAT(cipher->open(*sealed, "session-B"), FailsWith(ErrorCode::decryption_failed));
  EXPECT_THAT(cipher->open(*sealed), FailsWith(ErrorCode::decryption_failed));
}

TEST(TokenCipher, OldVersionsStillOpenAfterRotation) {
  auto v1 = TokenCipher::create({key(1, 'a')}, CsprngRandom::instance());
  ASSERT_TRUE(v1);
  auto sealed = v1->seal(SecretString("old"));
  ASSERT_TRUE(sealed);
  auto v2 = TokenCipher::create({key(1, 'a'), key(2, 'b')}, CsprngRandom::instance());
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->open(*sealed)->reveal(), "old");
  EXPECT_EQ(v2->seal(SecretString("new"))->key_version, 2u);
  auto wrong_key = TokenCipher::create({key(1, 'z')}, CsprngRandom::instance());
  EXPECT_THAT(wrong_key->open(*sealed), FailsWith(ErrorCode::decryption_failed));
  EXPECT_THAT(v2->open({9, sealed->text}), FailsWith(ErrorCode::key_not_found));
}

TEST(TokenCipher, RefusesBadKeys) {
  EXPECT_THAT(TokenCipher::create({}, CsprngRandom::instance()),
              FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(
      TokenCipher::create({{1, SecretString(std::string(16, 'a'))}}, CsprngRandom::instance()),
      FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(TokenCipher::create({key(1, 'a'), key(1, 'b')}, CsprngRandom::instance()),
              FailsWith(ErrorCode::config_invalid));
}

}  // namespace
}  // namespace tessera
