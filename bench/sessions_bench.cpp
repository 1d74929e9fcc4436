// Session engine on SQLite against raw SQLite doing the same point lookup.
//   validate (cookie session, inside one touch interval: a read)
//     vs raw: one indexed SELECT by primary key per transaction (autocommit)
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "tessera/session_service.hpp"
#include "tessera/sqlite_store.hpp"

namespace {

using namespace tessera;

std::filesystem::path scratch() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tessera-bench-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

constexpr int kSessions = 10'000;

void BM_RawSqlitePointLookup(benchmark::State& state) {
  const auto dir = scratch();
  sqlite3* db = nullptr;
  sqlite3_open((dir / "raw.db").c_str(), &db);
  sqlite3_exec(
      db,
      "PRAGMA journal_mode=WAL; CREATE TABLE t (k BLOB PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;"
      "BEGIN;",
      nullptr, nullptr, nullptr);
  sqlite3_stmt* ins = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES (randomblob(32), printf('%0300d', ?1))", -1, &ins,
                     nullptr);
  for (int i = 0; i < kSessions; ++i) {
    sqlite3_bind_int(ins, 1, i);
    sqlite3_step(ins);
    sqlite3_reset(ins);
  }
  sqlite3_finalize(ins);
  sqlite3_exec(db, "COMMIT;", nullptr, nullptr, nullptr);
  std::vector<std::string> keys;
  sqlite3_stmt* all = nullptr;
  sqlite3_prepare_v2(db, "SELECT k FROM t LIMIT 1000", -1, &all, nullptr);
  while (sqlite3_step(all) == SQLITE_ROW) {
    keys.emplace_back(static_cast<const char*>(sqlite3_column_blob(all, 0)), 32);
  }
  sqlite3_finalize(all);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT v FROM t WHERE k = ?1", -1, &q, nullptr);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& k = keys[i++ % keys.size()];
    sqlite3_bind_blob(q, 1, k.data(), 32, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) state.SkipWithError("miss");
    benchmark::DoNotOptimize(sqlite3_column_text(q, 0));
    sqlite3_reset(q);
  }
  state.SetItemsProcessed(state.iterations());
  sqlite3_finalize(q);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RawSqlitePointLookup);

void BM_ValidateSqlite(benchmark::State& state) {
  const auto dir = scratch();
  auto store = *open_sqlite_store(dir / "sessions.db");
  auto ring = *LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}});
  auto cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  KeySet ks;
  (void)ks.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()), KeyState::active);
  SharedKeySet keys(std::move(ks));
  ManualClock clock;
  SessionPolicy policy;
  policy.max_sessions_per_subject = 1000;
  auto svc = *SessionService::create({*store, ring, cipher, keys, clock, CsprngRandom::instance()},
                                     policy);
  std::vector<std::string> tokens;
  for (int i = 0; i < kSessions; ++i) {
    auto issued = svc->issue({.subject = "user" + std::to_string(i % 100)});
    if (i < 1000) tokens.emplace_back(issued->session_token.reveal());
  }
  std::size_t i = 0;
  for (auto _ : state) {
    auto s = svc->validate(tokens[i++ % tokens.size()]);
    if (!s) state.SkipWithError("validate failed");
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
  svc.reset();
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ValidateSqlite);

}  // namespace

BENCHMARK_MAIN();
