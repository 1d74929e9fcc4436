// Durability across kill -9: a child process issues and renews sessions
// against a SQLite file and reports each committed result on a pipe; the
// parent SIGKILLs it mid-stream and reopens the file. Every reported result
// must be there, and the file must pass PRAGMA integrity_check.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "harness.hpp"
#include "result_matchers.hpp"
#include "tessera/sqlite_store.hpp"

namespace tessera::testing {
namespace {

[[noreturn]] void child(const std::filesystem::path& db, SqliteSync sync, int out) {
  auto store = open_sqlite_store(db, {.synchronous = sync});
  if (!store) _exit(2);
  const LookupKeyRing ring = make_ring({{1, 'a'}});
  auto cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  SharedKeySet keys(make_keys());
  auto svc = SessionService::create(
      {**store, ring, cipher, keys, SystemClock::instance(), CsprngRandom::instance()}, {});
  if (!svc) _exit(3);
  for (int i = 0; i < 100000; ++i) {
    auto issued =
        (*svc)->issue({.subject = "user" + std::to_string(i % 50), .mode = SessionMode::token});
    if (!issued) _exit(4);
    std::string token(issued->tokens->refresh_token.reveal());
    std::uint64_t gen = 0;
    for (int k = 0; k < 3; ++k) {
      auto r = (*svc)->renew(token);
      if (!r) _exit(5);
      token = std::string(r->tokens.refresh_token.reveal());
      gen = r->session.generation;
    }
    // Reported only after the store said the write committed.
    const std::string line = issued->session.id + " " + std::to_string(gen) + "\n";
    if (write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(6);
  }
  _exit(0);
}

class SqliteDurability : public ::testing::TestWithParam<SqliteSync> {};

TEST_P(SqliteDurability, EveryReportedCommitSurvivesKill9) {
  const auto dir = make_scratch_dir();
  const auto db = dir / "sessions.db";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    child(db, GetParam(), fds[1]);
  }
  close(fds[1]);
  std::string got;
  char buf[4096];
  int lines = 0;
  while (lines < 150) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
    lines = static_cast<int>(std::count(got.begin(), got.end(), '\n'));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child ended on its own with status " << status;
  ASSERT_GE(lines, 150);

  auto store = open_sqlite_store(db);
  ASSERT_THAT(store, Succeeds());
  std::istringstream in(got.substr(0, got.rfind('\n') + 1));
  std::string id;
  std::uint64_t gen = 0;
  int checked = 0;
  while (in >> id >> gen) {
    auto s = (*store)->find(id);
    ASSERT_TRUE(s && *s) << "committed session " << id << " is missing";
    EXPECT_EQ((*s)->generation, gen);
    ++checked;
  }
  EXPECT_EQ(checked, lines);
  store->reset();

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA integrity_check", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(raw);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Sync, SqliteDurability,
                         ::testing::Values(SqliteSync::normal, SqliteSync::full),
                         [](const auto& info) {
                           return info.param == SqliteSync::full ? "full" : "normal";
                         });

TEST(SqliteStore, RefusesADatabaseFromANewerSchema) {
  const auto dir = make_scratch_dir();
  {
    auto s = open_sqlite_store(dir / "x.db");
    ASSERT_TRUE(s);
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "x.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto s = open_sqlite_store(dir / "x.db");
  ASSERT_THAT(s, FailsWith(ErrorCode::store_unavailable));
  EXPECT_NE(s.error().detail.find("newer"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A database shared with a newer build may hold a reason this one does not
// know: the session still reads back, revoked, with no reason.
TEST(SqliteStore, ARevokeReasonThisBuildDoesNotKnowReadsBackAsRevokedWithoutReason) {
  const auto dir = make_scratch_dir();
  const auto db = dir / "x.db";
  const UnixSeconds now{std::chrono::seconds{1700000000}};
  {
    auto store = open_sqlite_store(db);
    ASSERT_TRUE(store);
    Session s{.id = "01J0000000000000000000000A",
              .subject = "alice",
              .family_id = "01J0000000000000000000000F",
              .created_at = now,
              .last_seen_at = now,
              .expires_at = now + std::chrono::hours{1}};
    const LookupKeyRing ring = make_ring({{1, 'a'}});
    auto created = (*store)->create(s, TokenKind::session,
                                    ring.derive(TokenKind::session, SecretString("tss_x")), 10, now,
                                    std::nullopt);
    ASSERT_TRUE(created) << created.error();
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "UPDATE sessions SET revoked_at = 1700000001, "
                         "revoke_reason = 'some_future_reason'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);

  auto store = open_sqlite_store(db);
  ASSERT_TRUE(store);
  auto found = (*store)->find("01J0000000000000000000000A");
  ASSERT_TRUE(found && *found);
  EXPECT_TRUE((*found)->revoked());
  EXPECT_EQ((*found)->revoke_reason, std::nullopt);
  auto live = (*store)->list_live("alice", now);
  ASSERT_TRUE(live);
  EXPECT_TRUE(live->empty());
  store->reset();
  std::filesystem::remove_all(dir);
}

TEST(SqliteStore, UnopenablePathIsStoreUnavailable) {
  auto s = open_sqlite_store("/nonexistent-dir/for/sure/x.db");
  ASSERT_THAT(s, FailsWith(ErrorCode::store_unavailable));
}

}  // namespace
}  // namespace tessera::testing
