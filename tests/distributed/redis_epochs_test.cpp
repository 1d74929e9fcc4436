// Epochs over a real Redis (TESSERA_TEST_REDIS_URL; scripts/with-servers.sh
// starts one): the authority's publisher, the verifier's source with its
// fallback and write-back, and the pub/sub invalidation that carries a
// "log out everywhere" to a resource service.
#include "tessera/redis_epochs.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "result_matchers.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/random.hpp"
#include "tessera/redis_counters.hpp"
#include "tessera/session_service.hpp"
#include "tessera/ulid.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;

using namespace std::chrono_literals;

RedisOptions redis_or_skip() {
  const char* url = std::getenv("TESSERA_TEST_REDIS_URL");
  if (url == nullptr) return {};
  auto o = parse_redis_url(url);
  if (!o) throw std::runtime_error(o.error().detail);
  return *o;
}

#define REQUIRE_REDIS()                                                        \
  do {                                                                         \
    if (std::getenv("TESSERA_TEST_REDIS_URL") == nullptr) {                    \
      const char* r = std::getenv("TESSERA_REQUIRE_SERVERS");                  \
      if (r != nullptr && std::string_view(r) == "1")                          \
        FAIL() << "TESSERA_TEST_REDIS_URL is not set";                         \
      GTEST_SKIP() << "no Redis server (run through scripts/with-servers.sh)"; \
    }                                                                          \
  } while (0)

// Subjects unique per test run, so that tests sharing one Redis never meet.
std::string fresh_subject(std::string_view name) {
  return fmt::format(
      "{}-{}", name,
      UlidGenerator(SystemClock::instance(), CsprngRandom::instance()).next().to_string());
}

class CountingFallback final : public verify::EpochSource {
 public:
  Result<std::uint64_t> current(std::string_view) override {
    ++calls;
    return answer.load();
  }
  std::atomic<std::uint64_t> answer{0};
  std::atomic<int> calls{0};
};

TEST(ParseRedisUrl, AcceptsHostAndPortAndRefusesTheRest) {
  auto o = parse_redis_url("redis://10.0.0.5:6380/0");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->host, "10.0.0.5");
  EXPECT_EQ(o->port, 6380);
  EXPECT_EQ(parse_redis_url("redis://cache")->port, 6379);
  EXPECT_THAT(parse_redis_url("http://x"), FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(parse_redis_url("redis://x:99999"), FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(parse_redis_url("redis://:1"), FailsWith(ErrorCode::config_invalid));
}

TEST(RedisEpochs, APublishedBumpIsWhatTheSourceReads) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  RedisEpochPublisher pub(o);
  RedisEpochSource source(o, nullptr);
  const auto alice = fresh_subject("alice");
  ASSERT_TRUE(pub.publish(alice, 3));
  EXPECT_EQ(*source.current(alice), 3u);
}

TEST(RedisEpochs, AMissingSubjectIsFetchedOnceAndWrittenBack) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  CountingFallback authority;
  authority.answer = 7;
  RedisEpochSource source(o, &authority);
  const auto carol = fresh_subject("carol");
  EXPECT_EQ(*source.current(carol), 7u);
  EXPECT_EQ(*source.current(carol), 7u);
  EXPECT_EQ(authority.calls, 1);
  // A bump written by the authority wins over what was written back.
  RedisEpochPublisher pub(o);
  ASSERT_TRUE(pub.publish(carol, 8));
  EXPECT_EQ(*source.current(carol), 8u);
}

TEST(RedisEpochs, AnEpochMovedThroughThePortIsPublished) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  RedisEpochPublisher pub(o);
  RedisEpochSource source(o, nullptr);
  const auto dave = fresh_subject("dave");
  EpochPublisher& port = pub;
  port.epoch_moved(dave, 4);
  EXPECT_EQ(*source.current(dave), 4u);
  EXPECT_EQ(pub.failures(), 0u);
}

// The engine's bumps reach Redis through Deps::epochs alone: its audit sink
// sees the events and publishes nothing.
TEST(RedisEpochs, TheServiceBumpsPublishThroughItsEpochPublisher) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  RedisEpochPublisher pub(o);
  RedisEpochSource source(o, nullptr);
  auto store = make_memory_store();
  const LookupKeyRing ring = *LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}});
  auto cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  KeySet key_set;
  ASSERT_TRUE(key_set.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()),
                          KeyState::active));
  SharedKeySet keys(std::move(key_set));
  MemoryAuditSink audit;
  auto svc = SessionService::create({.store = *store,
                                     .lookup = ring,
                                     .cipher = cipher,
                                     .keys = keys,
                                     .clock = SystemClock::instance(),
                                     .random = CsprngRandom::instance(),
                                     .audit = &audit,
                                     .epochs = &pub},
                                    {});
  ASSERT_TRUE(svc);
  const auto frank = fresh_subject("frank");
  auto bumped = (*svc)->bump_epoch(frank);
  ASSERT_TRUE(bumped);
  EXPECT_EQ(*source.current(frank), *bumped);
  auto issued = (*svc)->issue({.subject = frank, .mode = SessionMode::token});
  ASSERT_TRUE(issued);
  ASSERT_TRUE((*svc)->logout(issued->tokens->refresh_token.reveal(), RevokeScope::all));
  EXPECT_EQ(*source.current(frank), *bumped + 1);
  EXPECT_EQ(pub.failures(), 0u);
}

TEST(RedisEpochs, RedisDownIsEpochUnavailable) {
  RedisOptions o;
  o.port = 1;  // nothing listens on loopback port 1
  o.timeout = 200ms;
  RedisEpochSource source(o, nullptr);
  auto r = source.current("alice");
  ASSERT_THAT(r, FailsWith(ErrorCode::epoch_unavailable));
  RedisEpochPublisher pub(o);
  pub.epoch_moved("alice", 1);
  EXPECT_EQ(pub.failures(), 1u);
}

// The whole path of "log out everywhere" on the resource side: a verifier
// with an in-process epoch cache (long TTL) in front of Redis, invalidated by
// the subscriber. A bump published by the authority must make the
// subject's older token fail within a second.
TEST(RedisEpochs, ABumpReachesAVerifierWellUnderASecond) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  const auto erin = fresh_subject("erin");
  RedisEpochSource redis(o, nullptr);
  verify::CachedEpochSource cache(redis, SystemClock::instance(), 60s);
  RedisEpochSubscriber sub(
      o, [&](std::string_view s) { cache.invalidate(s); }, [&] { cache.invalidate_all(); });
  for (int i = 0; i < 500 && !sub.subscribed(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(sub.subscribed());

  Key key = *Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance());
  KeySet keys;
  ASSERT_TRUE(keys.add(key, KeyState::active));
  verify::StaticKeySource source(std::move(keys));
  verify::AccessVerifier verifier({.issuer = "iss", .audiences = {"api"}}, source,
                                  SystemClock::instance(), &cache);
  JwtClaims c{.iss = "iss", .sub = erin, .aud = {"api"}};
  c.iat = SystemClock::instance().now();
  c.exp = c.iat + 900s;
  c.sv = 0;
  const auto token = *sign_jwt(key, c);
  ASSERT_TRUE(verifier.verify(token));  // epoch 0, now cached for 60 s

  RedisEpochPublisher authority(o);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(authority.publish(erin, 1));
  std::chrono::steady_clock::duration took{};
  for (;;) {
    auto r = verifier.verify(token);
    took = std::chrono::steady_clock::now() - start;
    if (!r && r.error().code == ErrorCode::epoch_stale) break;
    ASSERT_LT(took, 2s) << "the bump never reached the verifier";
    std::this_thread::sleep_for(1ms);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::microseconds>(took).count() / 1000.0;
  RecordProperty("propagation_ms", fmt::format("{:.2f}", ms));
  std::printf("epoch bump propagation: %.2f ms\n", ms);
  EXPECT_LT(took, 1s);
}

TEST(RedisEpochs, ASubscriberThatLostItsConnectionResyncs) {
  REQUIRE_REDIS();
  const auto o = redis_or_skip();
  std::atomic<int> resyncs{0};
  RedisEpochSubscriber sub(
      o, [](std::string_view) {}, [&] { ++resyncs; });
  for (int i = 0; i < 500 && !sub.subscribed(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(sub.subscribed());
  // Cut every pub/sub client off, as a Redis restart or a network blip would.
  redisContext* admin = redisConnect(o.host.c_str(), o.port);
  ASSERT_TRUE(admin != nullptr && admin->err == 0);
  freeReplyObject(redisCommand(admin, "CLIENT KILL TYPE pubsub"));
  redisFree(admin);
  // One resync as the loss is seen (the cache goes at once), one once
  // subscribed again.
  for (int i = 0; i < 500 && (resyncs < 2 || !sub.subscribed()); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(resyncs, 2);
  EXPECT_TRUE(sub.subscribed());
}

// A Redis that stalls (SIGSTOP: the TCP connection stays open, nothing is
// answered) must not look like a quiet channel: the subscriber's PING goes
// unanswered, it drops the cache at once, and resubscribes when Redis is
// back. A private redis-server, since stopping the shared one would stall
// every other test.
TEST(RedisEpochs, ASubscriberNoticesAStalledRedisAndDropsTheCache) {
  REQUIRE_REDIS();  // the servers group is installed
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  const pid_t redis = ::fork();
  ASSERT_GE(redis, 0);
  if (redis == 0) {
    const std::string p = std::to_string(port);
    ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save",
             "", "--appendonly", "no", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      ::kill(pid, SIGCONT);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reap{redis};

  RedisOptions o;
  o.port = port;
  o.heartbeat = 200ms;
  std::atomic<int> resyncs{0};
  RedisEpochSubscriber sub(
      o, [](std::string_view) {}, [&] { ++resyncs; });
  for (int i = 0; i < 500 && !sub.subscribed(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(sub.subscribed()) << "the private redis-server did not start";
  std::this_thread::sleep_for(600ms);  // idle, but answering PINGs: not lost
  EXPECT_EQ(resyncs, 0);

  ASSERT_EQ(::kill(redis, SIGSTOP), 0);
  const auto stalled = std::chrono::steady_clock::now();
  for (int i = 0; i < 300 && resyncs == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(resyncs, 1) << "a stalled Redis went unnoticed";
  const auto noticed = std::chrono::steady_clock::now() - stalled;
  std::printf("stall noticed after %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(noticed).count()));
  EXPECT_LT(noticed, 2s);  // at most two heartbeats (and a poll) after the last word

  ASSERT_EQ(::kill(redis, SIGCONT), 0);
  for (int i = 0; i < 500 && (!sub.subscribed() || resyncs < 2); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(sub.subscribed());
  EXPECT_GE(resyncs, 2) << "a resync once subscribed again";
}

// The rate limits' shared counts: two instances add to one key, each hears
// the total over both once it has flushed.
TEST(RedisWindowCounters, TwoInstancesHearTheTotalOverBothPerWindow) {
  REQUIRE_REDIS();
  ManualClock clock(UnixSeconds(std::chrono::seconds(1'700'000'003)));
  RedisWindowCounters::Options o{
      .window = 10s, .flush_interval = 1h, .prefix = fresh_subject("rl") + ":"};
  RedisWindowCounters a(redis_or_skip(), o, clock), b(redis_or_skip(), o, clock);
  EXPECT_FALSE(a.total("session:192.0.2.1"));
  for (int i = 0; i < 3; ++i) a.add("session:192.0.2.1");
  for (int i = 0; i < 2; ++i) b.add("session:192.0.2.1");
  b.add("session:192.0.2.2");
  a.flush();
  b.flush();
  ASSERT_TRUE(a.total("session:192.0.2.1"));
  EXPECT_EQ(a.total("session:192.0.2.1")->count, 3u) << "what a heard when it flushed";
  ASSERT_TRUE(b.total("session:192.0.2.1"));
  EXPECT_EQ(b.total("session:192.0.2.1")->count, 5u);
  EXPECT_EQ(b.total("session:192.0.2.1")->window_end,
            UnixMillis(std::chrono::milliseconds(1'700'000'010'000)));
  EXPECT_EQ(b.total("session:192.0.2.2")->count, 1u);
  a.add("session:192.0.2.1");
  a.flush();
  EXPECT_EQ(a.total("session:192.0.2.1")->count, 6u);
  EXPECT_EQ(a.failures(), 0u);
  clock.advance(7s);  // the next window starts from nothing
  EXPECT_FALSE(a.total("session:192.0.2.1"));
  a.add("session:192.0.2.1");
  a.flush();
  EXPECT_EQ(a.total("session:192.0.2.1")->count, 1u);
}

TEST(RedisWindowCounters, RedisDownNeverBlocksAddAndCountsTheFailedFlush) {
  RedisOptions nowhere;
  nowhere.port = 1;  // nothing listens there
  nowhere.timeout = 200ms;
  ManualClock clock;
  RedisWindowCounters c(nowhere, {.flush_interval = 1h}, clock);
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) c.add("api_key:192.0.2.1");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms);
  c.flush();
  EXPECT_EQ(c.failures(), 1u);
  EXPECT_FALSE(c.total("api_key:192.0.2.1"));
}

}  // namespace
}  // namespace tessera
