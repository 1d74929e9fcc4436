// The rate limiter's buckets and the client address they are kept for,
// over a manual clock: no sleeping, no network.
#include "server/rate_limits.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>

#include "server/client_view.hpp"
#include "server/http_text.hpp"

namespace tessera::server {
namespace {

using namespace std::chrono_literals;

RateLimitOptions limits(double per_second, double burst) {
  RateLimitOptions o;
  o.auth_failures = {.per_second = per_second, .burst = burst};
  return o;
}

TEST(RateLimiter, ABurstOfFailuresEmptiesTheBucketAndTheRefillReopensIt) {
  ManualClock clock;
  RateLimiter limiter(limits(2, 5), clock);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(limiter.blocked("192.0.2.7", Credential::refresh_token)) << i;
    EXPECT_FALSE(limiter.failed("192.0.2.7", Credential::refresh_token)) << i;
  }
  const auto wait = limiter.blocked("192.0.2.7", Credential::refresh_token);
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, 1s) << "one token comes back in half a second: Retry-After rounds up";
  EXPECT_TRUE(limiter.failed("192.0.2.7", Credential::refresh_token))
      << "a failure with the bucket empty is one too many";
  // Other kinds and other addresses have buckets of their own.
  EXPECT_FALSE(limiter.blocked("192.0.2.7", Credential::api_key));
  EXPECT_FALSE(limiter.blocked("192.0.2.8", Credential::refresh_token));
  clock.advance(500ms);
  EXPECT_FALSE(limiter.blocked("192.0.2.7", Credential::refresh_token));
  EXPECT_FALSE(limiter.failed("192.0.2.7", Credential::refresh_token));
  EXPECT_TRUE(limiter.blocked("192.0.2.7", Credential::refresh_token));
  clock.advance(10s);  // refilled to the burst, no further
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.failed("192.0.2.7", Credential::refresh_token));
  EXPECT_TRUE(limiter.blocked("192.0.2.7", Credential::refresh_token));
}

TEST(RateLimiter, RetryAfterIsTheTimeUntilTheNextToken) {
  ManualClock clock;
  RateLimiter limiter(limits(0.1, 1), clock);  // one failure per 10 s
  EXPECT_FALSE(limiter.failed("198.51.100.1", Credential::session));
  EXPECT_EQ(limiter.blocked("198.51.100.1", Credential::session), 10s);
  clock.advance(4s);
  EXPECT_EQ(limiter.blocked("198.51.100.1", Credential::session), 6s);
}

TEST(RateLimiter, AnIpv6HostCountsPerSlash64AndIpv4MappedAsItsIpv4Address) {
  ManualClock clock;
  RateLimiter limiter(limits(1, 2), clock);
  EXPECT_FALSE(limiter.failed("2001:db8:1:2::1", Credential::api_key));
  EXPECT_FALSE(limiter.failed("2001:db8:1:2:ffff::9", Credential::api_key));
  EXPECT_TRUE(limiter.blocked("2001:db8:1:2::77", Credential::api_key)) << "same /64";
  EXPECT_FALSE(limiter.blocked("2001:db8:1:3::1", Credential::api_key)) << "another /64";
  EXPECT_FALSE(limiter.failed("::ffff:203.0.113.5", Credential::api_key));
  EXPECT_FALSE(limiter.failed("203.0.113.5", Credential::api_key));
  EXPECT_TRUE(limiter.blocked("203.0.113.5", Credential::api_key));
  EXPECT_EQ(shared_key("2001:db8:1:2::1", Credential::api_key), "api_key:2001:db8:1:2::/64");
  EXPECT_EQ(shared_key("::ffff:203.0.113.5", Credential::session), "session:203.0.113.5");
}

TEST(RateLimiter, SuccessTakesNothingUnlessTheRequestLimitIsOn) {
  ManualClock clock;
  RateLimiter off(limits(1, 1), clock);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(off.request("192.0.2.1"));
  EXPECT_EQ(off.tracked(), 0u) << "no failure, nothing remembered";
  RateLimitOptions o = limits(1, 1);
  o.requests = {.per_second = 10, .burst = 3};
  RateLimiter on(o, clock);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(on.request("192.0.2.1"));
  EXPECT_EQ(on.request("192.0.2.1"), 1s);
  EXPECT_FALSE(on.blocked("192.0.2.1", Credential::session)) << "failures have their own bucket";
}

TEST(RateLimiter, AFloodOfAddressesCannotGrowMemoryWithoutBound) {
  ManualClock clock;
  RateLimitOptions o = limits(1, 3);
  o.max_tracked_per_shard = 4;
  RateLimiter limiter(o, clock);
  for (int i = 0; i < 5000; ++i) {
    (void)limiter.failed(fmt::format("10.{}.{}.1", i / 256, i % 256), Credential::session);
  }
  EXPECT_LE(limiter.tracked(), 16u * 4u);
}

// Two instances over one shared count: each sees half the failures of an
// address, neither bucket empties, and the shared window refuses them.
class FakeShared final : public SharedCounts {
 public:
  explicit FakeShared(const Clock& clock) : clock_(clock) {}
  void add(std::string_view key) noexcept override { ++counts_[std::string(key)]; }
  std::optional<Total> total(std::string_view key) const noexcept override {
    const auto it = counts_.find(std::string(key));
    if (it == counts_.end()) return std::nullopt;
    return Total{it->second, clock_.now_ms() + 7s};
  }
  std::chrono::seconds window() const noexcept override { return 10s; }

 private:
  const Clock& clock_;
  std::map<std::string, std::uint64_t> counts_;
};

TEST(RateLimiter, ASharedCountLimitsAnAddressSpreadOverInstances) {
  ManualClock clock;
  FakeShared shared(clock);
  // 1 per second, burst 5: a window of 10 s allows 15 over every instance.
  RateLimiter a(limits(1, 5), clock, &shared), b(limits(1, 5), clock, &shared);
  int refused = 0, i = 0;
  for (; i < 40 && refused == 0; ++i) {
    RateLimiter& one = i % 2 == 0 ? a : b;
    if (one.blocked("192.0.2.9", Credential::refresh_token)) {
      ++refused;
      break;
    }
    (void)one.failed("192.0.2.9", Credential::refresh_token);
    clock.advance(400ms);  // each instance alone refills faster than it drains
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(i, 16) << "the 17th attempt, over both, is refused";
  EXPECT_EQ(a.blocked("192.0.2.9", Credential::refresh_token), 7s) << "until the window ends";
}

TEST(ClientAddress, XForwardedForCountsOnlyFromATrustedPeer) {
  TrustedProxies proxies{{*Cidr::parse("10.0.0.0/8")}};
  const Headers xff = {{"X-Forwarded-For", "198.51.100.4, 10.0.0.2"}};
  EXPECT_EQ(client_address(xff, "192.0.2.1", proxies), "192.0.2.1") << "an untrusted peer";
  EXPECT_EQ(client_address(xff, "10.0.0.1", proxies), "198.51.100.4")
      << "past every trusted hop, from the right";
  EXPECT_EQ(client_address({{"X-Forwarded-For", "203.0.113.9, 198.51.100.4"}}, "10.0.0.1", proxies),
            "198.51.100.4")
      << "what the client wrote itself, left of the first untrusted hop, is not believed";
  EXPECT_EQ(client_address({{"X-Forwarded-For", "garbage, 10.0.0.3"}}, "10.0.0.1", proxies),
            "10.0.0.3")
      << "an item that is no address ends the walk at the hop that added it";
  EXPECT_EQ(client_address({}, "10.0.0.1", proxies), "10.0.0.1");
  EXPECT_EQ(client_address({{"X-Forwarded-For", "198.51.100.1"}, {"x-forwarded-for", "10.0.0.5"}},
                           "10.0.0.1", proxies),
            "198.51.100.1")
      << "two headers read as one list";
  EXPECT_EQ(client_address(xff, "10.0.0.1", TrustedProxies{}), "10.0.0.1");
}

}  // namespace
}  // namespace tessera::server

namespace tessera::server {
namespace {

TEST(NextListItem, WalksACommaListTrimmedAndSkipsEmptyItems) {
  std::string_view list = " GET,HEAD ,, \tPOST\t,";
  std::string_view item;
  std::vector<std::string_view> items;
  while (next_list_item(list, item)) items.push_back(item);
  EXPECT_EQ(items, (std::vector<std::string_view>{"GET", "HEAD", "POST"}));
  EXPECT_TRUE(list.empty());
  std::string_view none = " , ,";
  EXPECT_FALSE(next_list_item(none, item));
  EXPECT_TRUE(method_allowed("GET, HEAD, POST", "HEAD"));
  EXPECT_FALSE(method_allowed("GET, HEAD", "HEA"));
}

}  // namespace
}  // namespace tessera::server
