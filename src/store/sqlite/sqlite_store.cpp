#include "tessera/sqlite_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "core/try.hpp"
#include "tessera/clock.hpp"
#include "tessera/outbox.hpp"

namespace tessera {
namespace {

// Versioned migrations: entry i takes the schema from version i to i + 1.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  family_id TEXT NOT NULL,
  mode INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  idle_expires_at INTEGER,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revoke_reason TEXT NOT NULL DEFAULT '',
  generation INTEGER NOT NULL,
  epoch_at_issue INTEGER NOT NULL,
  ip TEXT NOT NULL, user_agent TEXT NOT NULL, device TEXT NOT NULL, fingerprint TEXT NOT NULL,
  data TEXT NOT NULL,
  claims TEXT NOT NULL,
  rotated_at INTEGER,
  sealed_version INTEGER,
  sealed_text TEXT
) WITHOUT ROWID;
CREATE INDEX sessions_by_subject ON sessions(subject, last_seen_at);
CREATE INDEX sessions_by_family ON sessions(family_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE TABLE credentials (
  lookup BLOB PRIMARY KEY,
  key_version INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  generation INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX credentials_by_session ON credentials(session_id);
CREATE TABLE epochs (subject TEXT PRIMARY KEY, epoch INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 1 → 2: the transactional outbox (tessera/outbox.hpp).
    R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  subject TEXT NOT NULL,
  session_id TEXT NOT NULL,
  family_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  kid TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  delivered_ms INTEGER
);
CREATE INDEX events_pending ON events(next_attempt_ms) WHERE delivered_ms IS NULL;
CREATE INDEX events_delivered ON events(delivered_ms) WHERE delivered_ms IS NOT NULL;
)sql",
    // 2 → 3: links to an upstream identity provider (docs/upstream.md).
    R"sql(
CREATE TABLE upstream_links (
  session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
  issuer TEXT NOT NULL,
  sid TEXT NOT NULL,
  sub TEXT NOT NULL,
  sealed_version INTEGER,
  sealed_text TEXT,
  next_check INTEGER,
  failing_since INTEGER
) WITHOUT ROWID;
CREATE INDEX upstream_by_sid ON upstream_links(issuer, sid) WHERE sid <> '';
CREATE INDEX upstream_by_sub ON upstream_links(issuer, sub) WHERE sub <> '';
CREATE INDEX upstream_due ON upstream_links(next_check) WHERE next_check IS NOT NULL;
)sql",
    // 3 → 4: the client key a session is bound to (docs/bound-sessions.md).
    R"sql(
ALTER TABLE sessions ADD COLUMN bound_jkt TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion);

constexpr const char* kSessionColumns =
    "id, subject, family_id, mode, created_at, last_seen_at, idle_expires_at, expires_at, "
    "revoked_at, "
    "revoke_reason, generation, epoch_at_issue, ip, user_agent, device, fingerprint, data, claims, "
    "rotated_at, sealed_version, sealed_text, bound_jkt";

class Conn;

// A cached prepared statement, reset and unbound when the handle goes.
class Stmt {
 public:
  Stmt(sqlite3_stmt* s, sqlite3* db) : s_(s), db_(db) {}
  Stmt(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : s_(std::exchange(o.s_, nullptr)), db_(o.db_) {}
  ~Stmt() {
    if (s_ == nullptr) return;
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& bind(int i, UnixSeconds v) {
    return bind(i, static_cast<std::int64_t>(v.time_since_epoch().count()));
  }
  Stmt& bind(int i, UnixMillis v) {
    return bind(i, static_cast<std::int64_t>(v.time_since_epoch().count()));
  }
  Stmt& bind(int i, std::optional<UnixSeconds> v) {
    if (v) return bind(i, *v);
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& bind_blob(int i, std::span<const std::uint8_t> v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW → true, SQLITE_DONE → false, else an error.
  Result<bool> step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return fail(rc == SQLITE_CONSTRAINT ? ErrorCode::invalid_request : ErrorCode::store_unavailable,
                fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  }
  Status run() {
    auto r = step();
    if (!r) return std::unexpected(r.error());
    return {};
  }
  void reset() { sqlite3_reset(s_); }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p),
                           static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
             : std::string();
  }
  UnixSeconds time(int col) const { return UnixSeconds{std::chrono::seconds{i64(col)}}; }
  std::optional<UnixSeconds> opt_time(int col) const {
    if (null(col)) return std::nullopt;
    return time(col);
  }

 private:
  sqlite3_stmt* s_;
  sqlite3* db_;
};

class Conn {
 public:
  Conn() = default;
  Conn(const Conn&) = delete;
  ~Conn() {
    for (auto& [_, s] : cache_) sqlite3_finalize(s);
    if (db_) sqlite3_close_v2(db_);
  }

  Status open(const std::filesystem::path& path, const SqliteOptions& o) {
    const int rc =
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      return fail(ErrorCode::store_unavailable,
                  fmt::format("cannot open {}: {}", path.string(),
                              db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)));
    }
    sqlite3_busy_timeout(db_, static_cast<int>(o.busy_timeout.count()));
    const char* sync = o.synchronous == SqliteSync::full     ? "FULL"
                       : o.synchronous == SqliteSync::normal ? "NORMAL"
                                                             : "OFF";
    return exec(fmt::format(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={}; PRAGMA foreign_keys=ON;", sync));
  }

  Status exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return fail(ErrorCode::store_unavailable, "sqlite: " + msg);
    }
    return {};
  }

  Result<Stmt> prepare(const char* sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
        return fail(ErrorCode::store_unavailable,
                    fmt::format("sqlite prepare: {}", sqlite3_errmsg(db_)));
      }
      it = cache_.emplace(sql, s).first;
    }
    return Stmt(it->second, db_);
  }

  // One statement without parameters, from the statement cache (no parse
  // per call: transaction control runs once per write).
  Status run(const char* sql) {
    auto st = prepare(sql);
    if (!st) return std::unexpected(st.error());
    return st->run();
  }

  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;  // keyed by the literal's address
};

#define PREPARE(var, conn, sql)                          \
  auto var##_r = (conn).prepare(sql);                    \
  if (!var##_r) return std::unexpected(var##_r.error()); \
  Stmt& var = *var##_r

Session read_session(const Stmt& s, int base = 0) {
  Session x;
  x.id = s.text(base + 0);
  x.subject = s.text(base + 1);
  x.family_id = s.text(base + 2);
  x.mode = s.i64(base + 3) == 1 ? SessionMode::token : SessionMode::cookie;
  x.created_at = s.time(base + 4);
  x.last_seen_at = s.time(base + 5);
  x.idle_expires_at = s.opt_time(base + 6);
  x.expires_at = s.time(base + 7);
  x.revoked_at = s.opt_time(base + 8);
  x.revoke_reason = revoke_reason_from_string(s.text(base + 9));  // unknown text: nullopt
  x.generation = static_cast<std::uint64_t>(s.i64(base + 10));
  x.epoch_at_issue = static_cast<std::uint64_t>(s.i64(base + 11));
  x.metadata.ip = s.text(base + 12);
  x.metadata.user_agent = s.text(base + 13);
  x.metadata.device = s.text(base + 14);
  x.metadata.fingerprint_digest = s.text(base + 15);
  x.data = s.text(base + 16);
  x.claims = s.text(base + 17);
  x.rotated_at = s.opt_time(base + 18);
  if (!s.null(base + 19))
    x.sealed_current = SealedToken{static_cast<std::uint32_t>(s.i64(base + 19)), s.text(base + 20)};
  x.bound_jkt = s.text(base + 21);
  return x;
}

// Creates the database file 0600 unless it exists: SQLite would create it
// 0644 (less the umask), and it holds every session. The -wal and -shm files
// SQLite creates later take the database file's mode. An error here is left
// to sqlite3_open to report.
void create_private(const std::filesystem::path& path) {
  if (path.empty() || path == ":memory:") return;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

class SqliteStore final : public SessionStore, public EventOutbox {
 public:
  EventOutbox* outbox() noexcept override { return this; }

  // --- EventOutbox ---------------------------------------------------------------
  void record_events() noexcept override { recording_ = true; }

  Status append(const Event& e) override {
    return write([&] { return insert_event(e); });
  }

  Result<std::vector<Event>> claim(std::size_t max, UnixMillis now,
                                   std::chrono::milliseconds lease) override {
    std::vector<Event> out;
    TESSERA_TRY(write([&]() -> Status {
      out.clear();
      PREPARE(q, writer_,
              "UPDATE events SET next_attempt_ms = ?2 + ?3 WHERE seq IN (SELECT seq FROM events "
              "WHERE delivered_ms IS NULL AND next_attempt_ms <= ?2 ORDER BY seq LIMIT ?1) "
              "RETURNING seq, type, at_ms, subject, session_id, family_id, reason, epoch, kid, "
              "attempts");
      q.bind(1, static_cast<std::int64_t>(max))
          .bind(2, now)
          .bind(3, static_cast<std::int64_t>(lease.count()));
      for (;;) {
        auto row = q.step();
        if (!row) return std::unexpected(row.error());
        if (!*row) break;
        Event e;
        e.seq = static_cast<std::uint64_t>(q.i64(0));
        e.type = event_type_from_string(q.text(1)).value_or(EventType::session_revoked);
        e.at = UnixMillis(std::chrono::milliseconds(q.i64(2)));
        e.subject = q.text(3);
        e.session_id = q.text(4);
        e.family_id = q.text(5);
        e.reason = revoke_reason_from_string(q.text(6));
        e.epoch = static_cast<std::uint64_t>(q.i64(7));
        e.kid = q.text(8);
        e.attempts = static_cast<std::uint32_t>(q.i64(9));
        out.push_back(std::move(e));
      }
      return {};
    }));
    std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
    return out;
  }

  Status delivered(std::span<const std::uint64_t> seqs, UnixMillis now) override {
    return write([&]() -> Status {
      PREPARE(u, writer_, "UPDATE events SET delivered_ms = ?2 WHERE seq = ?1");
      for (auto seq : seqs) {
        u.bind(1, static_cast<std::int64_t>(seq)).bind(2, now);
        TESSERA_TRY(u.run());
        u.reset();
      }
      return {};
    });
  }

  Status retry(std::uint64_t seq, UnixMillis next_attempt) override {
    return write([&]() -> Status {
      PREPARE(u, writer_,
              "UPDATE events SET next_attempt_ms = ?2, attempts = attempts + 1 "
              "WHERE seq = ?1 AND delivered_ms IS NULL");
      u.bind(1, static_cast<std::int64_t>(seq)).bind(2, next_attempt);
      return u.run();
    });
  }

  Status release(std::span<const std::uint64_t> seqs, UnixMillis next_attempt) override {
    return write([&]() -> Status {
      PREPARE(u, writer_,
              "UPDATE events SET next_attempt_ms = ?2 WHERE seq = ?1 AND delivered_ms IS NULL");
      for (auto seq : seqs) {
        u.bind(1, static_cast<std::int64_t>(seq)).bind(2, next_attempt);
        TESSERA_TRY(u.run());
        u.reset();
      }
      return {};
    });
  }

  Result<Purged> purge(UnixMillis delivered_before, std::size_t max_pending) override {
    Purged p;
    TESSERA_TRY(write([&]() -> Status {
      {
        PREPARE(d, writer_,
                "DELETE FROM events WHERE delivered_ms IS NOT NULL AND delivered_ms < ?1");
        d.bind(1, delivered_before);
        TESSERA_TRY(d.run());
        p.deleted = static_cast<std::size_t>(sqlite3_changes(writer_.db()));
      }
      PREPARE(d, writer_,
              "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE delivered_ms IS NULL "
              "ORDER BY seq LIMIT max(0, (SELECT count(*) FROM events WHERE delivered_ms IS NULL) "
              "- ?1))");
      d.bind(1, static_cast<std::int64_t>(max_pending));
      TESSERA_TRY(d.run());
      p.dropped = static_cast<std::size_t>(sqlite3_changes(writer_.db()));
      return {};
    }));
    return p;
  }

  Result<Backlog> backlog() override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    PREPARE(q, *lease.conn, "SELECT count(*), min(at_ms) FROM events WHERE delivered_ms IS NULL");
    auto row = q.step();
    if (!row) return std::unexpected(row.error());
    Backlog b;
    b.pending = static_cast<std::size_t>(q.i64(0));
    if (!q.null(1)) b.oldest = UnixMillis(std::chrono::milliseconds(q.i64(1)));
    return b;
  }

  // --- SessionStore ------------------------------------------------------------
  Status open(const std::filesystem::path& path, const SqliteOptions& o) {
    path_ = path;
    options_ = o;
    create_private(path);
    TESSERA_TRY(writer_.open(path, o));
    TESSERA_TRY(migrate());
    // The whole reader pool now: a connection opened under load costs a
    // schema parse on the request path, and a pool that grows with the
    // highest concurrency seen reads as an fd leak for minutes.
    std::lock_guard lock(pool_mu_);
    while (readers_.size() < options_.readers) {
      auto c = std::make_unique<Conn>();
      TESSERA_TRY(c->open(path_, options_));
      readers_.push_back(std::move(c));
    }
    return {};
  }

  Result<RevokeResult> create(const Session& s, TokenKind kind, const LookupKey& credential,
                              std::size_t max_live, UnixSeconds now,
                              std::optional<std::string_view> replaces) override {
    RevokeResult out;
    TESSERA_TRY(write([&]() -> Status {
      TESSERA_TRY(create_tx(s, kind, credential, max_live, now, replaces, out));
      if (!replaces) return {};
      // The replacement keeps the login it came from.
      PREPARE(u, writer_, "UPDATE upstream_links SET session_id = ?2 WHERE session_id = ?1");
      u.bind(1, *replaces).bind(2, s.id);
      return u.run();
    }));
    return out;
  }

  bool keeps_upstream_links() const noexcept override { return true; }

  Result<RevokeResult> create_linked(const Session& s, TokenKind kind, const LookupKey& credential,
                                     std::size_t max_live, UnixSeconds now,
                                     const UpstreamLink& link) override {
    RevokeResult out;
    TESSERA_TRY(write([&]() -> Status {
      TESSERA_TRY(create_tx(s, kind, credential, max_live, now, std::nullopt, out));
      PREPARE(i, writer_,
              "INSERT INTO upstream_links (session_id, issuer, sid, sub, sealed_version, "
              "sealed_text, next_check, failing_since) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)");
      i.bind(1, s.id).bind(2, link.issuer).bind(3, link.sid).bind(4, link.sub);
      if (link.refresh_token) {
        i.bind(5, static_cast<std::int64_t>(link.refresh_token->key_version))
            .bind(6, link.refresh_token->text);
      }
      i.bind(7, link.next_check);
      return i.run();
    }));
    return out;
  }

  Result<RevokeResult> revoke_upstream(std::string_view issuer, std::string_view sid,
                                       std::string_view sub, RevokeReason reason,
                                       UnixSeconds now) override {
    RevokeResult out;
    TESSERA_TRY(write([&]() -> Status {
      std::vector<std::string> ids;
      {
        // One statement per key, so that each uses its index.
        PREPARE(q, writer_,
                !sid.empty() ? "SELECT l.session_id FROM upstream_links l JOIN sessions s ON "
                               "s.id = l.session_id WHERE l.issuer = ?1 AND l.sid = ?2 AND "
                               "l.sid <> '' AND s.revoked_at IS NULL"
                             : "SELECT l.session_id FROM upstream_links l JOIN sessions s ON "
                               "s.id = l.session_id WHERE l.issuer = ?1 AND l.sub = ?2 AND "
                               "l.sub <> '' AND s.revoked_at IS NULL");
        q.bind(1, issuer).bind(2, !sid.empty() ? sid : sub);
        for (;;) {
          auto row = q.step();
          if (!row) return std::unexpected(row.error());
          if (!*row) break;
          ids.push_back(q.text(0));
        }
      }
      for (const auto& id : ids) TESSERA_TRY(revoke_where_id(id, reason, now, out));
      return {};
    }));
    return out;
  }

  Result<std::vector<UpstreamDue>> upstream_due(UnixSeconds now, std::size_t max,
                                                std::chrono::seconds lease) override {
    std::vector<UpstreamDue> out;
    TESSERA_TRY(write([&]() -> Status {
      out.clear();  // a job may run again after its batch failed
      TESSERA_TRY(select_due(now, max, out));
      PREPARE(u, writer_, "UPDATE upstream_links SET next_check = ?2 WHERE session_id = ?1");
      for (const auto& d : out) {
        u.reset();
        u.bind(1, d.session_id).bind(2, now + lease);
        TESSERA_TRY(u.run());
      }
      return {};
    }));
    return out;
  }

  // Inside a write transaction.
  Status select_due(UnixSeconds now, std::size_t max, std::vector<UpstreamDue>& out) {
    PREPARE(q, writer_,
            "SELECT l.session_id, s.subject, s.family_id, l.issuer, l.sid, l.sub, "
            "l.sealed_version, l.sealed_text, l.next_check, l.failing_since "
            "FROM upstream_links l JOIN sessions s ON s.id = l.session_id "
            "WHERE l.next_check <= ?1 AND l.sealed_text IS NOT NULL AND s.revoked_at IS NULL "
            "AND s.expires_at > ?1 AND (s.idle_expires_at IS NULL OR s.idle_expires_at > ?1) "
            "ORDER BY l.next_check, l.session_id LIMIT ?2");
    q.bind(1, now).bind(2, static_cast<std::int64_t>(max));
    for (;;) {
      auto row = q.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      UpstreamDue d{.session_id = q.text(0), .subject = q.text(1), .family_id = q.text(2)};
      d.link.issuer = q.text(3);
      d.link.sid = q.text(4);
      d.link.sub = q.text(5);
      d.link.refresh_token =
          SealedToken{.key_version = static_cast<std::uint32_t>(q.i64(6)), .text = q.text(7)};
      d.link.next_check = q.opt_time(8);
      d.link.failing_since = q.opt_time(9);
      out.push_back(std::move(d));
    }
    return {};
  }

  Status upstream_checked(std::string_view session_id, const std::optional<SealedToken>& rotated,
                          UnixSeconds next_check,
                          std::optional<UnixSeconds> failing_since) override {
    return write([&]() -> Status {
      PREPARE(u, writer_,
              "UPDATE upstream_links SET sealed_version = coalesce(?2, sealed_version), "
              "sealed_text = coalesce(?3, sealed_text), next_check = ?4, failing_since = ?5 "
              "WHERE session_id = ?1 AND sealed_text IS NOT NULL");
      u.bind(1, session_id);
      if (rotated) {
        u.bind(2, static_cast<std::int64_t>(rotated->key_version)).bind(3, rotated->text);
      }
      u.bind(4, next_check).bind(5, failing_since);
      return u.run();
    });
  }

  Status create_tx(const Session& s, TokenKind kind, const LookupKey& credential,
                   std::size_t max_live, UnixSeconds now, std::optional<std::string_view> replaces,
                   RevokeResult& out) {
    if (replaces) {
      TESSERA_TRY(revoke_where_id(*replaces, RevokeReason::rotated, now, out));
      if (out.session_ids.empty())
        return fail(ErrorCode::session_revoked, "the session to replace is no longer live");
    }
    {
      PREPARE(ins, writer_,
              "INSERT INTO sessions (id, subject, family_id, mode, created_at, last_seen_at, "
              "idle_expires_at, "
              "expires_at, revoked_at, revoke_reason, generation, epoch_at_issue, ip, user_agent, "
              "device, "
              "fingerprint, data, claims, rotated_at, sealed_version, sealed_text, bound_jkt) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, '', ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
              "?16, NULL, NULL, NULL, ?17)");
      ins.bind(1, s.id)
          .bind(2, s.subject)
          .bind(3, s.family_id)
          .bind(4, std::int64_t{s.mode == SessionMode::token});
      ins.bind(5, s.created_at)
          .bind(6, s.last_seen_at)
          .bind(7, s.idle_expires_at)
          .bind(8, s.expires_at);
      ins.bind(9, static_cast<std::int64_t>(s.generation))
          .bind(10, static_cast<std::int64_t>(s.epoch_at_issue));
      ins.bind(11, s.metadata.ip).bind(12, s.metadata.user_agent).bind(13, s.metadata.device);
      ins.bind(14, s.metadata.fingerprint_digest).bind(15, s.data).bind(16, s.claims);
      ins.bind(17, s.bound_jkt);
      TESSERA_TRY(ins.run());
    }
    TESSERA_TRY(insert_credential(credential, kind, s.id, s.generation));
    // Eviction: live sessions beyond the cap, least recently seen first.
    std::vector<std::string> victims;
    {
      PREPARE(
          q, writer_,
          "SELECT id FROM sessions WHERE subject = ?1 AND revoked_at IS NULL AND expires_at > ?2 "
          "AND (idle_expires_at IS NULL OR idle_expires_at > ?2) AND id <> ?3 "
          "ORDER BY last_seen_at DESC, id DESC LIMIT -1 OFFSET ?4");
      q.bind(1, s.subject)
          .bind(2, now)
          .bind(3, s.id)
          .bind(4, static_cast<std::int64_t>(max_live > 0 ? max_live - 1 : 0));
      for (;;) {
        auto row = q.step();
        if (!row) return std::unexpected(row.error());
        if (!*row) break;
        victims.push_back(q.text(0));
      }
    }
    for (const auto& id : victims)
      TESSERA_TRY(revoke_where_id(id, RevokeReason::evicted, now, out));
    return {};
  }

  Result<std::optional<Session>> find(std::string_view id) override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    static const std::string sql =
        fmt::format("SELECT {} FROM sessions WHERE id = ?1", kSessionColumns);
    PREPARE(q, *lease.conn, sql.c_str());
    q.bind(1, id);
    auto row = q.step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::optional<Session>{};
    return std::optional<Session>{read_session(q)};
  }

  Result<std::optional<CredentialHit>> find_by_credential(
      TokenKind kind, std::span<const LookupKey> candidates) override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    static const std::string sql = fmt::format(
        "SELECT c.generation, {} FROM credentials c JOIN sessions s ON s.id = c.session_id "
        "WHERE c.lookup = ?1 AND c.kind = ?2 AND c.key_version = ?3",
        [] {
          std::string cols;
          for (std::string_view rest = kSessionColumns;;) {
            const auto comma = rest.find(", ");
            cols += "s.";
            cols += rest.substr(0, comma);
            if (comma == std::string_view::npos) break;
            cols += ", ";
            rest = rest.substr(comma + 2);
          }
          return cols;
        }());
    for (const auto& c : candidates) {
      PREPARE(q, *lease.conn, sql.c_str());
      q.bind_blob(1, c.mac)
          .bind(2, static_cast<std::int64_t>(kind))
          .bind(3, static_cast<std::int64_t>(c.version));
      auto row = q.step();
      if (!row) return std::unexpected(row.error());
      if (*row)
        return std::optional<CredentialHit>{
            CredentialHit{read_session(q, 1), static_cast<std::uint64_t>(q.i64(0)), c}};
    }
    return std::optional<CredentialHit>{};
  }

  Result<RotateResult> rotate(std::string_view id, std::uint64_t expected, const LookupKey& next,
                              const SealedToken& sealed, UnixSeconds now,
                              std::optional<UnixSeconds> idle_expires_at) override {
    RotateResult result = RotateResult::session_gone;
    TESSERA_TRY(write([&]() -> Status {
      auto r = rotate_tx(id, expected, next, sealed, now, idle_expires_at);
      if (!r) return std::unexpected(r.error());
      result = *r;
      return {};
    }));
    return result;
  }

  Result<RotateResult> rotate_tx(std::string_view id, std::uint64_t expected, const LookupKey& next,
                                 const SealedToken& sealed, UnixSeconds now,
                                 std::optional<UnixSeconds> idle_expires_at) {
    {
      // The compare-and-swap: one conditional UPDATE.
      PREPARE(
          u, writer_,
          "UPDATE sessions SET generation = ?2 + 1, rotated_at = ?3, sealed_version = ?4, "
          "sealed_text = ?5, "
          "last_seen_at = max(last_seen_at, ?3), "
          "idle_expires_at = CASE WHEN idle_expires_at IS NULL OR ?6 IS NULL THEN idle_expires_at "
          "ELSE max(idle_expires_at, ?6) END "
          "WHERE id = ?1 AND generation = ?2 AND revoked_at IS NULL");
      u.bind(1, id)
          .bind(2, static_cast<std::int64_t>(expected))
          .bind(3, now)
          .bind(6, idle_expires_at);
      u.bind(4, static_cast<std::int64_t>(sealed.key_version)).bind(5, sealed.text);
      TESSERA_TRY(u.run());
    }
    if (sqlite3_changes(writer_.db()) == 0) {
      PREPARE(q, writer_, "SELECT revoked_at IS NOT NULL FROM sessions WHERE id = ?1");
      q.bind(1, id);
      auto row = q.step();
      if (!row) return std::unexpected(row.error());
      return (!*row || q.i64(0) != 0) ? RotateResult::session_gone : RotateResult::lost_race;
    }
    TESSERA_TRY(insert_credential(next, TokenKind::refresh, id, expected + 1));
    return RotateResult::rotated;
  }

  Status touch(std::string_view id, UnixSeconds last_seen,
               std::optional<UnixSeconds> idle_expires_at,
               std::optional<std::pair<LookupKey, LookupKey>> rekey) override {
    return write([&] { return touch_tx(id, last_seen, idle_expires_at, rekey); });
  }

  Status touch_tx(std::string_view id, UnixSeconds last_seen,
                  std::optional<UnixSeconds> idle_expires_at,
                  const std::optional<std::pair<LookupKey, LookupKey>>& rekey) {
    {
      PREPARE(
          u, writer_,
          "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2), "
          "idle_expires_at = CASE WHEN idle_expires_at IS NULL OR ?3 IS NULL THEN idle_expires_at "
          "ELSE max(idle_expires_at, ?3) END WHERE id = ?1 AND revoked_at IS NULL");
      u.bind(1, id).bind(2, last_seen).bind(3, idle_expires_at);
      TESSERA_TRY(u.run());
    }
    if (rekey && sqlite3_changes(writer_.db()) > 0) {
      PREPARE(r, writer_,
              "UPDATE credentials SET lookup = ?3, key_version = ?4 WHERE lookup = ?1 AND "
              "key_version = ?2 "
              "AND session_id = ?5");
      r.bind_blob(1, rekey->first.mac).bind(2, static_cast<std::int64_t>(rekey->first.version));
      r.bind_blob(3, rekey->second.mac)
          .bind(4, static_cast<std::int64_t>(rekey->second.version))
          .bind(5, id);
      TESSERA_TRY(r.run());
    }
    return {};
  }

  Result<RevokeResult> revoke_session(std::string_view id, RevokeReason reason,
                                      UnixSeconds now) override {
    RevokeResult out;
    TESSERA_TRY(write([&] { return revoke_where_id(id, reason, now, out); }));
    return out;
  }

  Result<RevokeResult> revoke_family(std::string_view family_id, RevokeReason reason,
                                     UnixSeconds now) override {
    RevokeResult out;
    TESSERA_TRY(write([&]() -> Status {
      TESSERA_TRY(
          revoke_many_tx("SELECT id FROM sessions WHERE family_id = ?1 AND revoked_at IS NULL",
                         family_id, {}, reason, now, out));
      if (!recording_ || out.session_ids.empty()) return {};
      std::string subject;
      {
        PREPARE(q, writer_, "SELECT subject FROM sessions WHERE id = ?1");
        q.bind(1, out.session_ids.front());
        auto row = q.step();
        if (!row) return std::unexpected(row.error());
        if (*row) subject = q.text(0);
      }
      return insert_event({.type = reason == RevokeReason::refresh_token_reused
                                       ? EventType::replay_detected
                                       : EventType::family_revoked,
                           .subject = std::move(subject),
                           .family_id = std::string(family_id),
                           .reason = reason});
    }));
    return out;
  }

  Result<RevokeResult> revoke_subject(std::string_view subject,
                                      std::optional<std::string_view> except, RevokeReason reason,
                                      UnixSeconds now) override {
    return revoke_many("SELECT id FROM sessions WHERE subject = ?1 AND revoked_at IS NULL", subject,
                       except, reason, now);
  }

  Result<std::vector<Session>> list_live(std::string_view subject, UnixSeconds now) override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    static const std::string sql = fmt::format(
        "SELECT {} FROM sessions WHERE subject = ?1 AND revoked_at IS NULL AND expires_at > ?2 "
        "AND (idle_expires_at IS NULL OR idle_expires_at > ?2) ORDER BY last_seen_at DESC, id DESC",
        kSessionColumns);
    PREPARE(q, *lease.conn, sql.c_str());
    q.bind(1, subject).bind(2, now);
    std::vector<Session> out;
    for (;;) {
      auto row = q.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      out.push_back(read_session(q));
    }
    return out;
  }

  Result<std::size_t> cleanup(UnixSeconds before) override {
    std::size_t n = 0;
    TESSERA_TRY(write([&]() -> Status {
      PREPARE(d, writer_, "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1");
      d.bind(1, before);
      TESSERA_TRY(d.run());
      n = static_cast<std::size_t>(sqlite3_changes(writer_.db()));
      return {};
    }));
    return n;
  }

  Result<std::uint64_t> epoch(std::string_view subject) override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    PREPARE(q, *lease.conn, "SELECT epoch FROM epochs WHERE subject = ?1");
    q.bind(1, subject);
    auto row = q.step();
    if (!row) return std::unexpected(row.error());
    return *row ? static_cast<std::uint64_t>(q.i64(0)) : 0;
  }

  Result<Epochs> epochs(std::string_view subject) override {
    auto conn = reader();
    if (!conn) return std::unexpected(conn.error());
    ReaderLease lease(*this, std::move(*conn));
    PREPARE(q, *lease.conn,
            "SELECT coalesce(max(CASE WHEN subject = '' THEN epoch END), 0), "
            "coalesce(max(CASE WHEN subject = ?1 THEN epoch END), 0) "
            "FROM epochs WHERE subject IN ('', ?1)");
    q.bind(1, subject);
    auto row = q.step();
    if (!row) return std::unexpected(row.error());
    return Epochs{static_cast<std::uint64_t>(q.i64(0)), static_cast<std::uint64_t>(q.i64(1))};
  }

  Result<std::uint64_t> bump_epoch(std::string_view subject) override {
    std::uint64_t epoch = 0;
    TESSERA_TRY(write([&]() -> Status {
      PREPARE(u, writer_,
              "INSERT INTO epochs (subject, epoch) VALUES (?1, 1) "
              "ON CONFLICT(subject) DO UPDATE SET epoch = epoch + 1 RETURNING epoch");
      u.bind(1, subject);
      auto row = u.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return fail(ErrorCode::internal, "epoch upsert returned nothing");
      epoch = static_cast<std::uint64_t>(u.i64(0));
      TESSERA_TRY(u.run());  // finish the statement
      if (!recording_) return {};
      return insert_event(
          {.type = EventType::epoch_bumped, .subject = std::string(subject), .epoch = epoch});
    }));
    return epoch;
  }

  Result<std::uint64_t> bump_global_epoch() override {
    std::uint64_t epoch = 0;
    TESSERA_TRY(write([&]() -> Status {
      // One writer: nothing moves between the max and the upsert.
      PREPARE(u, writer_,
              "INSERT INTO epochs (subject, epoch) "
              "VALUES ('', (SELECT coalesce(max(epoch), 0) + 1 FROM epochs)) "
              "ON CONFLICT(subject) DO UPDATE SET epoch = excluded.epoch RETURNING epoch");
      auto row = u.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return fail(ErrorCode::internal, "epoch upsert returned nothing");
      epoch = static_cast<std::uint64_t>(u.i64(0));
      TESSERA_TRY(u.run());
      if (!recording_) return {};
      return insert_event({.type = EventType::epoch_bumped, .epoch = epoch});
    }));
    return epoch;
  }

 private:
  struct ReaderLease {
    ReaderLease(SqliteStore& store, std::unique_ptr<Conn> c) : store(store), conn(std::move(c)) {}
    ~ReaderLease() { store.release(std::move(conn)); }
    SqliteStore& store;
    std::unique_ptr<Conn> conn;
  };

  Result<std::unique_ptr<Conn>> reader() {
    {
      std::lock_guard lock(pool_mu_);
      if (!readers_.empty()) {
        auto c = std::move(readers_.back());
        readers_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<Conn>();
    TESSERA_TRY(c->open(path_, options_));
    return c;
  }

  void release(std::unique_ptr<Conn> c) {
    std::lock_guard lock(pool_mu_);
    if (readers_.size() < options_.readers) readers_.push_back(std::move(c));
  }

  Status migrate() {
    PREPARE(v, writer_, "PRAGMA user_version");
    auto row = v.step();
    if (!row) return std::unexpected(row.error());
    const int version = static_cast<int>(v.i64(0));
    if (version > kSqliteSchemaVersion) {
      return fail(ErrorCode::store_unavailable,
                  fmt::format("database schema version {} is newer than this build ({})", version,
                              kSqliteSchemaVersion));
    }
    for (int i = version; i < kSqliteSchemaVersion; ++i) {
      TESSERA_TRY(writer_.exec(fmt::format("BEGIN IMMEDIATE; {} PRAGMA user_version = {}; COMMIT;",
                                           kMigrations[i], i + 1)));
    }
    return {};
  }

  Status insert_credential(const LookupKey& k, TokenKind kind, std::string_view session_id,
                           std::uint64_t generation) {
    PREPARE(c, writer_,
            "INSERT INTO credentials (lookup, key_version, kind, session_id, generation) VALUES "
            "(?1, ?2, ?3, ?4, ?5)");
    c.bind_blob(1, k.mac)
        .bind(2, static_cast<std::int64_t>(k.version))
        .bind(3, static_cast<std::int64_t>(kind));
    c.bind(4, session_id).bind(5, static_cast<std::int64_t>(generation));
    return c.run();
  }

  // Inside a write transaction: the event row commits (or not) with the
  // change it announces.
  Status insert_event(const Event& e) {
    PREPARE(i, writer_,
            "INSERT INTO events (type, at_ms, subject, session_id, family_id, reason, epoch, kid) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    i.bind(1, to_string(e.type))
        .bind(2, SystemClock::instance().now_ms())
        .bind(3, e.subject)
        .bind(4, e.session_id)
        .bind(5, e.family_id);
    i.bind(6, e.reason ? to_string(*e.reason) : std::string_view(""))
        .bind(7, static_cast<std::int64_t>(e.epoch))
        .bind(8, e.kid);
    return i.run();
  }

  // Inside a write transaction.
  Status revoke_where_id(std::string_view id, RevokeReason reason, UnixSeconds now,
                         RevokeResult& out) {
    std::string subject, family;
    {
      PREPARE(u, writer_,
              "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3, sealed_version = NULL, "
              "sealed_text = NULL "
              "WHERE id = ?1 AND revoked_at IS NULL RETURNING subject, family_id");
      u.bind(1, id).bind(2, now).bind(3, to_string(reason));
      auto row = u.step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return {};
      subject = u.text(0);
      family = u.text(1);
      TESSERA_TRY(u.run());  // finish the statement
    }
    out.session_ids.emplace_back(id);
    {
      // Nothing left to refresh upstream for a session that ended.
      PREPARE(c, writer_,
              "UPDATE upstream_links SET sealed_version = NULL, sealed_text = NULL, "
              "next_check = NULL WHERE session_id = ?1 AND sealed_text IS NOT NULL");
      c.bind(1, id);
      TESSERA_TRY(c.run());
    }
    if (!recording_) return {};
    return insert_event({.type = EventType::session_revoked,
                         .subject = std::move(subject),
                         .session_id = std::string(id),
                         .family_id = std::move(family),
                         .reason = reason});
  }

  Result<RevokeResult> revoke_many(const char* select, std::string_view key,
                                   std::optional<std::string_view> except, RevokeReason reason,
                                   UnixSeconds now) {
    RevokeResult out;
    TESSERA_TRY(write([&] { return revoke_many_tx(select, key, except, reason, now, out); }));
    return out;
  }

  Status revoke_many_tx(const char* select, std::string_view key,
                        std::optional<std::string_view> except, RevokeReason reason,
                        UnixSeconds now, RevokeResult& out) {
    std::vector<std::string> ids;
    {
      PREPARE(q, writer_, select);
      q.bind(1, key);
      for (;;) {
        auto row = q.step();
        if (!row) return std::unexpected(row.error());
        if (!*row) break;
        ids.push_back(q.text(0));
      }
    }
    for (const auto& id : ids) {
      if (except && id == *except) continue;
      TESSERA_TRY(revoke_where_id(id, reason, now, out));
    }
    return {};
  }

  // Group commit. Every write is a job: a function that runs its statements
  // on the writer connection. Callers queue their job; the first caller to
  // find no batch running leads: it takes every queued job (up to
  // kMaxBatch), runs them in ONE transaction, each inside its own savepoint
  // (a failing job rolls back to its savepoint and fails alone), commits
  // once — one fsync for the whole batch — and only then reports every
  // result; then it hands the lead to the first job still queued. While a
  // batch commits, new callers queue, so batches grow with concurrency and
  // a lone caller pays exactly one transaction, as before. If the
  // transaction cannot commit, no job of the batch took effect and every
  // one of them fails.
  struct Job {
    std::function<Status()> run;
    Status result;
    bool done = false;
    bool lead = false;
    std::condition_variable cv;  // woken once: when done, or when handed the lead
  };
  static constexpr std::size_t kMaxBatch = 256;

  Status write(std::function<Status()> fn) {
    Job job{.run = std::move(fn)};
    std::unique_lock lock(queue_mu_);
    queue_.push_back(&job);
    if (!leading_) {
      leading_ = true;
      job.lead = true;
    } else {
      job.cv.wait(lock, [&] { return job.done || job.lead; });
      if (job.done) return job.result;
    }
    std::vector<Job*> batch;
    while (!queue_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    run_batch(batch);
    lock.lock();
    // Wake exactly the callers that have something to do: no herd.
    for (Job* j : batch) {
      j->done = true;
      if (j != &job) j->cv.notify_one();
    }
    if (queue_.empty()) {
      leading_ = false;
    } else {
      queue_.front()->lead = true;
      queue_.front()->cv.notify_one();
    }
    return job.result;  // the leader's own job was queued first, so it ran in this batch
  }

  void run_batch(const std::vector<Job*>& batch) {
    const auto fail_all = [&](const Error& e) {
      for (Job* j : batch) j->result = std::unexpected(e);
    };
    if (auto st = writer_.run("BEGIN IMMEDIATE"); !st) return fail_all(st.error());
    const bool savepoints = batch.size() > 1;
    for (Job* j : batch) {
      if (savepoints) {
        if (auto st = writer_.run("SAVEPOINT job"); !st) {
          (void)writer_.run("ROLLBACK");
          return fail_all(st.error());
        }
      }
      j->result = j->run();
      if (sqlite3_get_autocommit(writer_.db()) != 0) {
        // SQLite rolled the whole transaction back (I/O error, disk full):
        // nothing of this batch is written.
        return fail_all(j->result
                            ? Error{ErrorCode::store_unavailable, "sqlite: transaction aborted"}
                            : j->result.error());
      }
      if (!savepoints) {
        if (!j->result) {
          (void)writer_.run("ROLLBACK");
          return;
        }
        continue;
      }
      auto end = j->result ? Status{} : writer_.run("ROLLBACK TO job");
      if (end) end = writer_.run("RELEASE job");
      if (!end) {
        (void)writer_.run("ROLLBACK");
        return fail_all(end.error());
      }
    }
    if (auto st = writer_.run("COMMIT"); !st) {
      (void)writer_.run("ROLLBACK");
      for (Job* j : batch) {
        if (j->result) j->result = std::unexpected(st.error());
      }
    }
  }

  std::filesystem::path path_;
  SqliteOptions options_;
  Conn writer_;  // used by the batch leader only (and by open() before any job)
  std::mutex queue_mu_;
  std::deque<Job*> queue_;
  bool leading_ = false;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<Conn>> readers_;
  std::atomic<bool> recording_{false};
};

}  // namespace

Result<std::unique_ptr<SessionStore>> open_sqlite_store(const std::filesystem::path& path,
                                                        SqliteOptions options) {
  auto store = std::make_unique<SqliteStore>();
  if (auto st = store->open(path, options); !st) return std::unexpected(st.error());
  return std::unique_ptr<SessionStore>(std::move(store));
}

}  // namespace tessera
