#include "tessera/lookup_key.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "result_matchers.hpp"
#include "tessera/encoding.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;

LookupKeyMaterial material(std::uint32_t version, char fill) {
  return {version, SecretString(std::string(32, fill))};
}

TEST(LookupKeyRing, MatchesAnIndependentHmacComputation) {
  // Known-answer test: HMAC-SHA256(key = 32 × 'k',
  //   "tessera/v1/lookup" 0x00 "session" 0x00 "tss_abc"), computed with
  //   python3 -c "import hmac,hashlib;print(hmac.new(b'k'*32,
  //   b'tessera/v1/lookup\0session\0tss_abc',hashlib.sha256).hexdigest())"
  auto ring = LookupKeyRing::create({material(1, 'k')});
  ASSERT_TRUE(ring);
  const LookupKey lk = ring->derive(TokenKind::session, SecretString("tss_abc"));
  EXPECT_EQ(lk.version, 1u);
  EXPECT_EQ(hex_encode(lk.mac), "cb95a6621c0b786476c200efad5261931f63fc615c83a1e0ba77dd07c6d61bba");
}

TEST(LookupKeyRing, DomainsSeparateSecretKinds) {
  auto ring = LookupKeyRing::create({material(1, 'k')});
  ASSERT_TRUE(ring);
  const SecretString s("same-text");
  EXPECT_FALSE(ring->derive(TokenKind::session, s) == ring->derive(TokenKind::refresh, s));
}

TEST(LookupKeyRing, SecretHashedUnderV1IsStillFoundAfterV2BecomesActive) {
  const SecretString token("tsr_some-token");
  auto v1 = LookupKeyRing::create({material(1, 'a')});
  ASSERT_TRUE(v1);
  const LookupKey stored = v1->derive(TokenKind::refresh, token);

  auto v2 = LookupKeyRing::create({material(1, 'a'), material(2, 'b')});
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->active_version(), 2u);
  const auto candidates = v2->candidates(TokenKind::refresh, token);
  ASSERT_EQ(candidates.size(), 2u);
  EXPECT_EQ(candidates[0].version, 2u);  // newest first
  EXPECT_EQ(candidates[1], stored);      // the old row is still found
  EXPECT_FALSE(candidates[0] == stored);
  EXPECT_EQ(v2->derive(TokenKind::refresh, token), candidates[0]);
}

TEST(LookupKeyRing, RefusesEmptyDuplicateAndShortKeys) {
  EXPECT_THAT(LookupKeyRing::create({}), FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(LookupKeyRing::create({material(1, 'a'), material(1, 'b')}),
              FailsWith(ErrorCode::config_invalid));
  auto short_key = LookupKeyRing::create({{1, SecretString(std::string(31, 'a'))}});
  ASSERT_THAT(short_key, FailsWith(ErrorCode::config_invalid));
}

TEST(LookupKeyRing, IsSafeToUseFromManyThreads) {
  auto ring = LookupKeyRing::create({material(1, 'a')});
  ASSERT_TRUE(ring);
  const SecretString token("tss_x");
  const LookupKey expect = ring->derive(TokenKind::session, token);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!(ring->derive(TokenKind::session, token) == expect)) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace tessera
