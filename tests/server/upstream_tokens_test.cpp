// Forward-auth's upstream tokens under concurrency: the sub-requests of one
// page, checked at once on several threads, get one token, minted once.
#include "server/upstream_tokens.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <barrier>
#include <set>
#include <thread>
#include <vector>

#include "tessera/key_set.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/random.hpp"
#include "tessera/token_cipher.hpp"

namespace tessera::server {
namespace {

using namespace std::chrono_literals;

class UpstreamTokensTest : public ::testing::Test {
 protected:
  UpstreamTokensTest()
      : lookup(*LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}})),
        cipher(*TokenCipher::create({{1, SecretString(std::string(32, 'c'))}},
                                    CsprngRandom::instance())),
        keys(make_keys()),
        store(make_memory_store()) {
    service = *SessionService::create(
        {*store, lookup, cipher, keys, clock, CsprngRandom::instance(), nullptr}, SessionPolicy{});
  }
  static KeySet make_keys() {
    KeySet k;
    (void)k.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()), KeyState::active);
    return k;
  }
  Session login(std::string subject) {
    IssueRequest req;
    req.subject = std::move(subject);
    req.mode = SessionMode::cookie;
    return service->issue(req)->session;
  }

  ManualClock clock;
  LookupKeyRing lookup;
  TokenCipher cipher;
  SharedKeySet keys;
  std::unique_ptr<SessionStore> store;
  std::unique_ptr<SessionService> service;
};

TEST_F(UpstreamTokensTest, ConcurrentChecksOfOneSessionShareOneMint) {
  UpstreamTokens tokens(*service, clock, 2min);
  const Session alice = login("alice");
  const Session bob = login("bob");
  constexpr int kThreads = 8;
  std::barrier start(kThreads);
  std::vector<std::string> got(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      const Session& s = i % 2 == 0 ? alice : bob;
      for (int n = 0; n < 50; ++n) {
        auto t = tokens.token_for(s);
        ASSERT_TRUE(t.has_value());
        if (n == 0) got[i] = std::string(t->reveal());
        EXPECT_EQ(t->reveal(), got[i]);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(tokens.mints(), 2u) << "one mint per session, whatever the concurrency";
  const std::set<std::string> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 2u);
}

TEST_F(UpstreamTokensTest, PastItsBoundItStillAnswersAndKeepsTheNewestToken) {
  UpstreamTokens tokens(*service, clock, 2min, /*max_entries=*/4);
  std::vector<Session> sessions;
  for (int i = 0; i < 10; ++i) sessions.push_back(login(fmt::format("s{}", i)));
  for (const auto& s : sessions) ASSERT_TRUE(tokens.token_for(s).has_value());
  EXPECT_EQ(tokens.mints(), 10u);
  // Still one token per session while it is kept.
  auto last = tokens.token_for(sessions.back());
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(tokens.mints(), 10u);
}

}  // namespace
}  // namespace tessera::server
