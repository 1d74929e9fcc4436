// Session engine on SQLite against raw SQLite doing the same work.
//   validate (cookie session, inside one touch interval: a read)
//     vs raw: one indexed SELECT by primary key per transaction (autocommit),
//     and the same SELECT inside one long read transaction
//   renew (token mode, durable: synchronous FULL and NORMAL; 1 and 32 callers)
//     vs raw: the same rotate (conditional UPDATE + INSERT of the new
//     credential) in one transaction per rotate, with 1 and 32 callers
//   memory per live session (memory store) and SQLite bytes per session
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <malloc.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tessera/memory_store.hpp"
#include "tessera/postgres_store.hpp"
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
  const bool one_read_tx = state.range(0) == 1;
  if (one_read_tx) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& k = keys[i++ % keys.size()];
    sqlite3_bind_blob(q, 1, k.data(), 32, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) state.SkipWithError("miss");
    benchmark::DoNotOptimize(sqlite3_column_text(q, 0));
    sqlite3_reset(q);
  }
  state.SetItemsProcessed(state.iterations());
  if (one_read_tx) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_finalize(q);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
}
// Arg 0: one transaction per SELECT (autocommit); 1: all inside one read transaction.
BENCHMARK(BM_RawSqlitePointLookup)->ArgName("one_read_tx")->Arg(0)->Arg(1);

// The engine's wiring, shared by the engine benchmarks.
struct Engine {
  explicit Engine(std::unique_ptr<SessionStore> s) : store(std::move(s)) {
    KeySet ks;
    (void)ks.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()),
                 KeyState::active);
    keys = std::make_unique<SharedKeySet>(std::move(ks));
    SessionPolicy policy;
    policy.max_sessions_per_subject = 1000;
    service = *SessionService::create(
        {*store, ring, cipher, *keys, clock, CsprngRandom::instance()}, policy);
  }
  Engine& operator=(std::nullptr_t) {
    service.reset();
    store.reset();
    return *this;
  }

  std::unique_ptr<SessionStore> store;
  LookupKeyRing ring = *LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}});
  TokenCipher cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  std::unique_ptr<SharedKeySet> keys;
  ManualClock clock;
  std::unique_ptr<SessionService> service;
};

void BM_ValidateSqlite(benchmark::State& state) {
  const auto dir = scratch();
  Engine e(*open_sqlite_store(dir / "sessions.db"));
  auto& svc = e.service;
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
  e = nullptr;
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_ValidateSqlite);

SqliteSync sync_of(std::int64_t full) {
  return full != 0 ? SqliteSync::full : SqliteSync::normal;
}

// Concurrent callers are Google Benchmark threads (->Threads(n)): they live
// for the whole run, as a server's workers do. Thread 0 builds the shared
// state before the timed loop and tears it down after it; the framework
// holds every thread at a barrier on both sides, so the others touch the
// state only inside the loop.

// A store, the engine over it, and one token-mode session per caller.
struct RenewRun {
  std::filesystem::path dir;
  std::unique_ptr<Engine> engine;
  std::vector<std::string> refresh;  // each caller's current refresh token
  std::vector<std::string> ids;      // each caller's session id
  std::vector<std::uint64_t> generation;
};

std::unique_ptr<RenewRun> make_run(std::unique_ptr<SessionStore> store, std::filesystem::path dir,
                                   int callers) {
  auto run = std::make_unique<RenewRun>();
  run->dir = std::move(dir);
  run->engine = std::make_unique<Engine>(std::move(store));
  for (int c = 0; c < callers; ++c) {
    auto issued = run->engine->service->issue(
        {.subject = fmt::format("user{}", c), .mode = SessionMode::token});
    run->refresh.emplace_back(issued->tokens->refresh_token.reveal());
    run->ids.push_back(issued->session.id);
    run->generation.push_back(0);
  }
  return run;
}

void end_run(std::unique_ptr<RenewRun>& run) {
  run->engine.reset();
  if (!run->dir.empty()) std::filesystem::remove_all(run->dir);
  run.reset();
}

std::unique_ptr<RenewRun> g_run;

// Each caller walks its own refresh chain (each renew presents the token the
// previous one returned), so every call rotates: a credential lookup, an
// epoch read, one write transaction, one EdDSA signature.
void renew_loop(benchmark::State& state) {
  const auto me = static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    auto r = g_run->engine->service->renew(g_run->refresh[me]);
    if (!r) {
      state.SkipWithError("renew failed");
      break;
    }
    g_run->refresh[me] = std::string(r->tokens.refresh_token.reveal());
  }
  state.SetItemsProcessed(state.iterations());
}

// The SQLite renew/rotate runs: synchronous NORMAL and FULL, 1 and 32 callers.
void NormalAndFullWith1And32Callers(benchmark::internal::Benchmark* b) {
  b->ArgName("full")->Arg(0)->Arg(1)->Threads(1)->Threads(32)->UseRealTime();
}

// A fresh SQLite file at the run's sync level (arg 0), a reader per caller.
void start_sqlite_run(const benchmark::State& state) {
  const auto dir = scratch();
  g_run = make_run(*open_sqlite_store(dir / "sessions.db",
                                      {.synchronous = sync_of(state.range(0)),
                                       .readers = static_cast<std::size_t>(state.threads())}),
                   dir, state.threads());
}

// Durable renew through the engine on SQLite.
void BM_RenewSqlite(benchmark::State& state) {
  if (state.thread_index() == 0) {
    start_sqlite_run(state);
  }
  renew_loop(state);
  if (state.thread_index() == 0) end_run(g_run);
}
BENCHMARK(BM_RenewSqlite)->Apply(NormalAndFullWith1And32Callers);

// The store alone: SessionStore::rotate (the compare-and-swap and the new
// credential, as in BM_RawRotateSqlite) with no token crypto around it, so
// group commit is compared with raw SQLite like for like.
void BM_StoreRotateSqlite(benchmark::State& state) {
  if (state.thread_index() == 0) {
    start_sqlite_run(state);
  }
  const auto me = static_cast<std::size_t>(state.thread_index());
  const SealedToken sealed{1, std::string(80, 's')};
  std::uint64_t serial = 0;
  for (auto _ : state) {
    LookupKey next{.version = 1};
    ++serial;
    std::memcpy(next.mac.data(), &serial, sizeof serial);
    next.mac[30] = static_cast<std::uint8_t>(me);
    next.mac[31] = 0x5e;
    auto r = g_run->engine->store->rotate(g_run->ids[me], g_run->generation[me], next, sealed,
                                          g_run->engine->clock.now(), std::nullopt);
    if (!r || *r != RotateResult::rotated) {
      state.SkipWithError("rotate failed");
      break;
    }
    ++g_run->generation[me];
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) end_run(g_run);
}
BENCHMARK(BM_StoreRotateSqlite)->Apply(NormalAndFullWith1And32Callers);

// The baseline: the same rotate by hand on raw SQLite — the store's own
// schema (created by the store, then closed), the same two statements (the
// conditional UPDATE and the credential INSERT) and pragmas, one
// transaction per rotate, each caller on its own connection (SQLite's own
// locking serialises them).
struct RawCaller {
  sqlite3* db = nullptr;
  sqlite3_stmt* update = nullptr;
  sqlite3_stmt* insert = nullptr;
  std::int64_t generation = 0;
  ~RawCaller() {
    sqlite3_finalize(update);
    sqlite3_finalize(insert);
    sqlite3_close(db);
  }
};
std::vector<std::unique_ptr<RawCaller>> g_raw;

void BM_RawRotateSqlite(benchmark::State& state) {
  if (state.thread_index() == 0) {
    const auto dir = scratch();
    g_run = make_run(*open_sqlite_store(dir / "sessions.db", {.synchronous = SqliteSync::normal}),
                     dir, state.threads());
    g_run->engine->store.reset();  // closed: the raw connections alone write
    const std::string pragmas =
        fmt::format("PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON;",
                    state.range(0) != 0 ? "FULL" : "NORMAL");
    for (int c = 0; c < state.threads(); ++c) {
      auto x = std::make_unique<RawCaller>();
      sqlite3_open((dir / "sessions.db").c_str(), &x->db);
      sqlite3_busy_timeout(x->db, 10'000);
      sqlite3_exec(x->db, pragmas.c_str(), nullptr, nullptr, nullptr);
      sqlite3_prepare_v2(
          x->db,
          "UPDATE sessions SET generation = ?2 + 1, rotated_at = ?3, sealed_version = ?4, "
          "sealed_text = ?5, last_seen_at = max(last_seen_at, ?3), "
          "idle_expires_at = CASE WHEN idle_expires_at IS NULL OR ?6 IS NULL THEN idle_expires_at "
          "ELSE max(idle_expires_at, ?6) END "
          "WHERE id = ?1 AND generation = ?2 AND revoked_at IS NULL",
          -1, &x->update, nullptr);
      sqlite3_prepare_v2(x->db,
                         "INSERT INTO credentials (lookup, key_version, kind, session_id, "
                         "generation) VALUES (?1, 1, 1, ?2, ?3)",
                         -1, &x->insert, nullptr);
      g_raw.push_back(std::move(x));
    }
  }
  const auto me = static_cast<std::size_t>(state.thread_index());
  const std::string sealed(80, 's');
  std::uint64_t serial = 0;
  for (auto _ : state) {
    RawCaller& x = *g_raw[me];
    const std::string& id = g_run->ids[me];
    std::array<std::uint64_t, 4> lookup{++serial, me, 0x7e55e7a, 0};
    bool ok = sqlite3_exec(x.db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
    sqlite3_bind_text(x.update, 1, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(x.update, 2, x.generation);
    sqlite3_bind_int64(x.update, 3, 1'700'000'000);
    sqlite3_bind_int64(x.update, 4, 1);
    sqlite3_bind_text(x.update, 5, sealed.data(), static_cast<int>(sealed.size()), SQLITE_STATIC);
    sqlite3_bind_null(x.update, 6);
    ok = ok && sqlite3_step(x.update) == SQLITE_DONE && sqlite3_changes(x.db) == 1;
    sqlite3_reset(x.update);
    sqlite3_bind_blob(x.insert, 1, lookup.data(), 32, SQLITE_STATIC);
    sqlite3_bind_text(x.insert, 2, id.data(), static_cast<int>(id.size()), SQLITE_STATIC);
    sqlite3_bind_int64(x.insert, 3, x.generation + 1);
    ok = ok && sqlite3_step(x.insert) == SQLITE_DONE;
    sqlite3_reset(x.insert);
    ok = ok && sqlite3_exec(x.db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
    if (!ok) {
      sqlite3_exec(x.db, "ROLLBACK", nullptr, nullptr, nullptr);
      state.SkipWithError("raw rotate failed");
      break;
    }
    ++x.generation;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    g_raw.clear();
    end_run(g_run);
  }
}
BENCHMARK(BM_RawRotateSqlite)->Apply(NormalAndFullWith1And32Callers);

// Renew on PostgreSQL (TESSERA_BENCH_POSTGRES_URL; scripts/run-benchmarks.sh
// starts a server with fsync on and measures pgbench's simple-update rate
// against it in the same run). Reports the round trips per renew the store
// counted (PostgresOptions::round_trips), a figure a busy machine does not
// disturb.
std::atomic<std::uint64_t> g_round_trips{0};

// User + system CPU of this whole process (every caller thread), in seconds.
double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}
double g_cpu_start = 0;

void BM_RenewPostgres(benchmark::State& state) {
  const char* url = std::getenv("TESSERA_BENCH_POSTGRES_URL");
  if (url == nullptr) {
    state.SkipWithError("TESSERA_BENCH_POSTGRES_URL is not set");
    return;
  }
  if (state.thread_index() == 0) {
    static int runs = 0;
    auto store = open_postgres_store({.url = url,
                                      .schema = fmt::format("bench_{}_{}", getpid(), ++runs),
                                      .pool_size = static_cast<std::size_t>(state.threads()),
                                      .round_trips = &g_round_trips});
    if (!store) {
      state.SkipWithError(store.error().detail.c_str());
      return;
    }
    g_run = make_run(std::move(*store), {}, state.threads());
    g_round_trips = 0;
    g_cpu_start = process_cpu_seconds();
  }
  renew_loop(state);
  if (state.thread_index() == 0) {
    // Every thread's loop has ended (the framework's barrier): the count
    // covers exactly the timed renewals.
    state.counters["round_trips_per_renew"] = benchmark::Counter(
        static_cast<double>(g_round_trips.load()), benchmark::Counter::kAvgIterations);
    // The client's CPU per renew (engine, libpq, the callers' threads; not
    // the server's): on a shared machine a steadier figure than the rate.
    state.counters["client_cpu_us_per_renew"] = benchmark::Counter(
        (process_cpu_seconds() - g_cpu_start) * 1e6, benchmark::Counter::kAvgIterations);
    end_run(g_run);
  }
}
BENCHMARK(BM_RenewPostgres)->Threads(1)->Threads(32)->UseRealTime();

// Sessions as a browser login leaves them: metadata like a real client's.
constexpr int kSizedSessions = 20'000;
IssueRequest realistic(int i, SessionMode mode) {
  return {.subject = fmt::format("user-{:06}@example.com", i),
          .mode = mode,
          .metadata = {.ip = "203.0.113.7",
                       .user_agent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                                     "Firefox/128.0",
                       .device = "laptop"}};
}

// Issues kSizedSessions (token mode: then renews each twice, so three
// generations of refresh credentials are held) and reports the growth.
void issue_sized(Engine& e, SessionMode mode) {
  for (int i = 0; i < kSizedSessions; ++i) {
    auto issued = e.service->issue(realistic(i, mode));
    if (mode == SessionMode::token) {
      auto r1 = e.service->renew(issued->tokens->refresh_token.reveal());
      (void)e.service->renew(r1->tokens.refresh_token.reveal());
    }
  }
}

// Heap bytes per live session in the memory store (glibc's in-use count).
void BM_MemoryStoreBytesPerSession(benchmark::State& state) {
  const auto mode = state.range(0) == 1 ? SessionMode::token : SessionMode::cookie;
  for (auto _ : state) {
    Engine e(make_memory_store());
    const auto before = mallinfo2().uordblks;
    issue_sized(e, mode);
    const auto after = mallinfo2().uordblks;
    state.counters["bytes_per_session"] =
        static_cast<double>(after - before) / static_cast<double>(kSizedSessions);
  }
}
BENCHMARK(BM_MemoryStoreBytesPerSession)
    ->ArgName("token")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Database file bytes per session in SQLite, after the last connection
// closed (WAL checkpointed into the file).
void BM_SqliteBytesPerSession(benchmark::State& state) {
  const auto mode = state.range(0) == 1 ? SessionMode::token : SessionMode::cookie;
  for (auto _ : state) {
    const auto dir = scratch();
    {
      Engine e(*open_sqlite_store(dir / "sessions.db", {.synchronous = SqliteSync::normal}));
      issue_sized(e, mode);
    }
    state.counters["bytes_per_session"] =
        static_cast<double>(std::filesystem::file_size(dir / "sessions.db")) /
        static_cast<double>(kSizedSessions);
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_SqliteBytesPerSession)
    ->ArgName("token")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
