// Registers the PostgreSQL adapter with the conformance suite, against the
// server named by TESSERA_TEST_POSTGRES_URL (scripts/with-servers.sh starts
// one). Each test gets a schema of its own. Without the variable the tests
// skip — unless TESSERA_REQUIRE_SERVERS=1 (make test, CI), where a missing
// server fails every test instead of skipping silently.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "result_matchers.hpp"
#include "store_conformance.hpp"
#include "tessera/outbox.hpp"
#include "tessera/postgres_store.hpp"

namespace tessera::testing {
namespace {

const char* postgres_url() {
  return std::getenv("TESSERA_TEST_POSTGRES_URL");
}

bool servers_required() {
  const char* r = std::getenv("TESSERA_REQUIRE_SERVERS");
  return r != nullptr && std::string_view(r) == "1";
}

// The same scratch directory maps to the same schema, so a reopen finds
// what the first open wrote.
std::string schema_for(const std::filesystem::path& dir) {
  std::string name = "t_";
  for (const char c : dir.filename().string()) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

StoreFactory postgres_factory() {
  return {.name = "postgresql",
          .make = [](const std::filesystem::path& dir) -> std::unique_ptr<SessionStore> {
            const char* url = postgres_url();
            if (url == nullptr) throw std::runtime_error("TESSERA_TEST_POSTGRES_URL is not set");
            auto s = open_postgres_store({.url = url, .schema = schema_for(dir), .pool_size = 40});
            if (!s) throw std::runtime_error(s.error().detail);
            return std::move(*s);
          },
          // Without a server the tests skip — unless servers are required
          // (make test, CI): then make() fails them.
          .unavailable = []() -> std::optional<std::string> {
            if (postgres_url() != nullptr || servers_required()) return std::nullopt;
            return "no PostgreSQL server (run through scripts/with-servers.sh)";
          }};
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance, ::testing::Values(postgres_factory()),
                         factory_name);

TEST(PostgresStore, RefusesABadSchemaNameAndAnEmptyUrl) {
  EXPECT_THAT(open_postgres_store({.url = ""}), FailsWith(ErrorCode::config_invalid));
  EXPECT_THAT(open_postgres_store({.url = "postgresql://x", .schema = "a; DROP TABLE x"}),
              FailsWith(ErrorCode::config_invalid));
}

TEST(PostgresStore, AnUnreachableServerIsStoreUnavailable) {
  // Port 1 on loopback: nothing listens there.
  auto s = open_postgres_store({.url = "postgresql://postgres@127.0.0.1:1/postgres",
                                .connect_timeout = std::chrono::seconds{2}});
  ASSERT_THAT(s, FailsWith(ErrorCode::store_unavailable));
}

TEST(PostgresStore, RefusesADatabaseFromANewerSchema) {
  if (postgres_url() == nullptr) {
    if (servers_required()) FAIL() << "TESSERA_TEST_POSTGRES_URL is not set";
    GTEST_SKIP() << "no PostgreSQL server (run through scripts/with-servers.sh)";
  }
  const auto dir = make_scratch_dir();
  const std::string schema = schema_for(dir);
  ASSERT_TRUE(open_postgres_store({.url = postgres_url(), .schema = schema}));
  {
    // Pretend a newer build migrated this schema.
    auto raw = open_postgres_store({.url = postgres_url(), .schema = schema});
    ASSERT_TRUE(raw);
  }
  const std::string cmd =
      fmt::format("psql -q '{}' -c 'UPDATE {}.tessera_schema SET version = {}' >/dev/null",
                  postgres_url(), schema, kPostgresSchemaVersion + 1);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto s = open_postgres_store({.url = postgres_url(), .schema = schema});
  ASSERT_THAT(s, FailsWith(ErrorCode::store_unavailable));
  EXPECT_NE(s.error().detail.find("newer"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// The round trips behind each engine call, counted by the store itself
// (PostgresOptions::round_trips): renew is two (the lookup with the epochs,
// the swap with the epochs), a retry inside the grace window one, and
// validate one, also while two lookup key versions are held.
TEST(PostgresStore, RenewIsTwoRoundTripsAndValidateOne) {
  if (postgres_url() == nullptr) {
    if (servers_required()) FAIL() << "TESSERA_TEST_POSTGRES_URL is not set";
    GTEST_SKIP() << "no PostgreSQL server (run through scripts/with-servers.sh)";
  }
  const auto dir = make_scratch_dir();
  std::atomic<std::uint64_t> trips{0};
  auto store = open_postgres_store(
      {.url = postgres_url(), .schema = schema_for(dir), .pool_size = 2, .round_trips = &trips});
  ASSERT_THAT(store, Succeeds());
  const LookupKeyRing ring = make_ring({{1, 'a'}});
  const LookupKeyRing two = make_ring({{1, 'a'}, {2, 'b'}});
  auto cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  SharedKeySet keys(make_keys());
  ManualClock clock;
  auto service = *SessionService::create(
      {**store, ring, cipher, keys, clock, CsprngRandom::instance()}, SessionPolicy{});
  auto rotated_ring = *SessionService::create(
      {**store, two, cipher, keys, clock, CsprngRandom::instance()}, SessionPolicy{});
  auto measure = [&](auto&& call) {
    const auto before = trips.load();
    call();
    return trips.load() - before;
  };

  auto t = service->issue({.subject = "alice", .mode = SessionMode::token});
  ASSERT_THAT(t, Succeeds());
  std::string refresh(t->tokens->refresh_token.reveal());
  for (int i = 0; i < 3; ++i) {
    std::optional<RenewedSession> r;
    EXPECT_EQ(measure([&] {
                auto x = service->renew(refresh);
                ASSERT_THAT(x, Succeeds());
                r = std::move(*x);
              }),
              2u)
        << "renew " << i;
    EXPECT_EQ(measure([&] { ASSERT_THAT(service->renew(refresh), Succeeds()); }), 1u)
        << "a retry inside the grace window";
    refresh = std::string(r->tokens.refresh_token.reveal());
  }
  EXPECT_EQ(measure([&] { ASSERT_THAT(rotated_ring->renew(refresh), Succeeds()); }), 2u)
      << "renew with two lookup key versions held";

  auto c = service->issue({.subject = "alice"});
  ASSERT_THAT(c, Succeeds());
  const std::string cookie(c->session_token.reveal());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(measure([&] { ASSERT_THAT(service->validate(cookie), Succeeds()); }), 1u);
  }
  // Found under v1 while v2 is active: the lookup, then the touch with the
  // re-key (one statement); afterwards one again.
  EXPECT_EQ(measure([&] { ASSERT_THAT(rotated_ring->validate(cookie), Succeeds()); }), 2u);
  EXPECT_EQ(measure([&] { ASSERT_THAT(rotated_ring->validate(cookie), Succeeds()); }), 1u);
  store->reset();
  std::filesystem::remove_all(dir);
}

// A server of the test's own (restarting the shared one would break the
// tests running beside it), started and stopped with pg_ctl.
class OwnPostgres {
 public:
  OwnPostgres() : dir_(make_scratch_dir()) {
    const char* bin = std::getenv("TESSERA_TEST_PG_BIN");
    if (bin == nullptr) throw std::runtime_error("TESSERA_TEST_PG_BIN is not set");
    bin_ = bin;
    port_ = free_port();
    if (geteuid() == 0) {
      as_ = "runuser -u postgres -- ";
      std::filesystem::permissions(dir_, std::filesystem::perms::all);
    }
    sh(fmt::format("{}{}/initdb -D {}/data -U postgres --auth=trust --no-sync >/dev/null", as_,
                   bin_, dir_.string()));
    start();
  }
  ~OwnPostgres() {
    (void)std::system(fmt::format("{}{}/pg_ctl -D {}/data -m immediate stop >/dev/null 2>&1", as_,
                                  bin_, dir_.string())
                          .c_str());
    std::filesystem::remove_all(dir_);
  }
  void start() {
    sh(
        fmt::format("{}{}/pg_ctl -D {}/data -l {}/log -w -t 60 -o '-h 127.0.0.1 -p {} -k {}' "
                    "start >/dev/null",
                    as_, bin_, dir_.string(), dir_.string(), port_, dir_.string()));
  }
  void kill() {
    sh(fmt::format("{}{}/pg_ctl -D {}/data -m immediate stop >/dev/null", as_, bin_,
                   dir_.string()));
  }
  [[nodiscard]] std::string url() const {
    return fmt::format("postgresql://postgres@127.0.0.1:{}/postgres", port_);
  }

 private:
  static void sh(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
  }
  static int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      close(fd);
      throw std::runtime_error("no free port");
    }
    close(fd);
    return ntohs(a.sin_port);
  }

  std::filesystem::path dir_;
  std::string bin_;
  std::string as_;
  int port_ = 0;
};

TEST(PostgresStore, AnOutageIsStoreUnavailableAndServiceResumesByItself) {
  if (std::getenv("TESSERA_TEST_PG_BIN") == nullptr) {
    if (servers_required()) FAIL() << "TESSERA_TEST_PG_BIN is not set";
    GTEST_SKIP() << "no PostgreSQL binaries (run through scripts/with-servers.sh)";
  }
  OwnPostgres pg;
  auto store = open_postgres_store({.url = pg.url(), .connect_timeout = std::chrono::seconds{2}});
  ASSERT_THAT(store, Succeeds());
  ASSERT_EQ(*(*store)->bump_epoch("alice"), 1u);

  pg.kill();
  for (int i = 0; i < 3; ++i) {
    auto during = (*store)->epoch("alice");
    ASSERT_THAT(during, FailsWith(ErrorCode::store_unavailable))
        << "answered while the server is down";
    auto write = (*store)->bump_epoch("alice");
    ASSERT_THAT(write, FailsWith(ErrorCode::store_unavailable));
  }

  pg.start();
  // The first read after the restart already succeeds: the dead pooled
  // connection is replaced and the read retried once.
  auto after = (*store)->epoch("alice");
  ASSERT_THAT(after, Succeeds());
  EXPECT_EQ(*after, 1u);
  EXPECT_EQ(*(*store)->bump_epoch("alice"), 2u);
}

}  // namespace
}  // namespace tessera::testing

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;

// Two authorities on one database: each event is claimed by exactly one of
// their dispatchers (FOR UPDATE SKIP LOCKED), never by both.
TEST(PostgresStore, TwoDispatchersOnOneDatabaseDeliverEachEventOnce) {
  if (postgres_url() == nullptr) {
    if (servers_required()) FAIL() << "TESSERA_TEST_POSTGRES_URL is not set";
    GTEST_SKIP() << "no PostgreSQL server (run through scripts/with-servers.sh)";
  }
  const auto dir = make_scratch_dir();
  const std::string schema = schema_for(dir);
  auto a = open_postgres_store({.url = postgres_url(), .schema = schema, .pool_size = 4});
  auto b = open_postgres_store({.url = postgres_url(), .schema = schema, .pool_size = 4});
  ASSERT_TRUE(a && b);
  (*a)->outbox()->record_events();
  constexpr int kBumps = 400;
  for (int i = 0; i < kBumps; ++i) ASSERT_TRUE((*a)->bump_epoch(fmt::format("s{}", i)));

  std::mutex mu;
  std::map<std::uint64_t, int> seen;
  const auto drain = [&](SessionStore& store) {
    for (;;) {
      auto claimed = store.outbox()->claim(16, SystemClock::instance().now_ms(), 60s);
      ASSERT_TRUE(claimed) << claimed.error();
      if (claimed->empty()) return;
      std::vector<std::uint64_t> seqs;
      for (const auto& e : *claimed) seqs.push_back(e.seq);
      {
        std::lock_guard lock(mu);
        for (auto seq : seqs) ++seen[seq];
      }
      ASSERT_TRUE(store.outbox()->delivered(seqs, SystemClock::instance().now_ms()));
    }
  };
  std::thread ta([&] { drain(**a); });
  std::thread tb([&] { drain(**b); });
  ta.join();
  tb.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kBumps));
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](const auto& e) { return e.second == 1; }))
      << "an event was claimed twice";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::testing
