#include "tessera/postgres_store.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "core/try.hpp"
#include "tessera/clock.hpp"
#include "tessera/encoding.hpp"
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
  mode SMALLINT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  idle_expires_at BIGINT,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT,
  revoke_reason TEXT NOT NULL DEFAULT '',
  generation BIGINT NOT NULL,
  epoch_at_issue BIGINT NOT NULL,
  ip TEXT NOT NULL, user_agent TEXT NOT NULL, device TEXT NOT NULL, fingerprint TEXT NOT NULL,
  data TEXT NOT NULL,
  claims TEXT NOT NULL,
  rotated_at BIGINT,
  sealed_version BIGINT,
  sealed_text TEXT
);
CREATE INDEX sessions_by_subject ON sessions(subject, last_seen_at);
CREATE INDEX sessions_by_family ON sessions(family_id);
CREATE INDEX sessions_by_expiry ON sessions(expires_at);
CREATE TABLE credentials (
  lookup TEXT PRIMARY KEY,
  key_version BIGINT NOT NULL,
  kind SMALLINT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  generation BIGINT NOT NULL
);
CREATE INDEX credentials_by_session ON credentials(session_id);
CREATE TABLE epochs (subject TEXT PRIMARY KEY, epoch BIGINT NOT NULL);
)sql",
    // 1 → 2: the transactional outbox (tessera/outbox.hpp).
    R"sql(
CREATE TABLE events (
  seq BIGSERIAL PRIMARY KEY,
  type TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  subject TEXT NOT NULL,
  session_id TEXT NOT NULL,
  family_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  kid TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms BIGINT NOT NULL DEFAULT 0,
  delivered_ms BIGINT
);
CREATE INDEX events_pending ON events(seq) WHERE delivered_ms IS NULL;
CREATE INDEX events_delivered ON events(delivered_ms) WHERE delivered_ms IS NOT NULL;
)sql",
    // 2 → 3: links to an upstream identity provider (docs/upstream.md).
    R"sql(
CREATE TABLE upstream_links (
  session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE ON UPDATE CASCADE,
  issuer TEXT NOT NULL,
  sid TEXT NOT NULL,
  sub TEXT NOT NULL,
  sealed_version BIGINT,
  sealed_text TEXT,
  next_check BIGINT,
  failing_since BIGINT
);
CREATE INDEX upstream_by_sid ON upstream_links(issuer, sid) WHERE sid <> '';
CREATE INDEX upstream_by_sub ON upstream_links(issuer, sub) WHERE sub <> '';
CREATE INDEX upstream_due ON upstream_links(next_check) WHERE next_check IS NOT NULL;
)sql",
    // 3 → 4: the client key a session is bound to (docs/bound-sessions.md).
    R"sql(
ALTER TABLE sessions ADD COLUMN bound_jkt TEXT NOT NULL DEFAULT '';
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

#define SESSION_COLUMNS                                                                       \
  "s.id, s.subject, s.family_id, s.mode, s.created_at, s.last_seen_at, s.idle_expires_at, "   \
  "s.expires_at, s.revoked_at, s.revoke_reason, s.generation, s.epoch_at_issue, s.ip, "       \
  "s.user_agent, s.device, s.fingerprint, s.data, s.claims, s.rotated_at, s.sealed_version, " \
  "s.sealed_text, s.bound_jkt"
// How many columns SESSION_COLUMNS names (read_session reads them in order).
constexpr int kSessionColumnCount = 22;

// The subject's epochs beside a row that names the subject as `subject_expr`.
#define EPOCHS_OF(subject_expr)                                  \
  "COALESCE((SELECT epoch FROM epochs WHERE subject = ''), 0), " \
  "COALESCE((SELECT epoch FROM epochs WHERE subject = " subject_expr "), 0)"

#define REVOKE_SET                                                                           \
  "UPDATE sessions SET revoked_at = $2::bigint, revoke_reason = $3, sealed_version = NULL, " \
  "sealed_text = NULL "

// A revocation also forgets the upstream refresh token of each session of
// the CTE `r` (nothing is refreshed upstream for a session that ended).
#define UPSTREAM_FORGET                                                            \
  ", uf AS (UPDATE upstream_links SET sealed_version = NULL, sealed_text = NULL, " \
  "next_check = NULL WHERE session_id IN (SELECT id FROM r) AND sealed_text IS NOT NULL) "

#define EVENT_COLUMNS "events (type, at_ms, subject, session_id, family_id, reason, epoch, kid)"
// One session_revoked event per row of the CTE `r` (id, subject,
// family_id), in the same statement as the revocation, when recording:
// reason $3, commit time `at`, recording flag `on`.
#define SESSION_EVENTS(at, on)                                         \
  "ev AS (INSERT INTO " EVENT_COLUMNS " SELECT 'session_revoked', " at \
  "::bigint, r.subject, "                                              \
  "r.id, r.family_id, $3, 0, '' FROM r WHERE " on "::boolean) "

// Every statement, prepared once per connection under its index.
enum Sql : int {
  kFind,
  kFindByCredential,
  kRotate,
  kRotateCheck,
  kTouch,
  kRevokeId,
  kRevokeFamily,
  kRevokeSubject,
  kListLive,
  kCleanup,
  kEpoch,
  kEpochs,
  kBumpEpoch,
  kBumpGlobalEpoch,
  kSubjectLock,
  kInsertSession,
  kInsertCredential,
  kEvict,
  kFindByCredentialEpochs,
  kFindByCredentials,
  kRotateEpochs,
  kTouchRekey,
  kAppendEvent,
  kClaimEvents,
  kDeliveredEvents,
  kRetryEvent,
  kReleaseEvents,
  kPurgeDelivered,
  kDropPending,
  kBacklog,
  kInsertUpstream,
  kMoveUpstream,
  kRevokeUpstreamSid,
  kRevokeUpstreamSub,
  kUpstreamDue,
  kUpstreamChecked,
  kSqlCount,
};

constexpr std::array<const char*, kSqlCount> kSql = {
    /* kFind */ "SELECT " SESSION_COLUMNS " FROM sessions s WHERE s.id = $1",
    /* kFindByCredential */
    "SELECT c.generation, " SESSION_COLUMNS
    " FROM credentials c JOIN sessions s ON s.id = c.session_id "
    "WHERE c.lookup = $1 AND c.kind = $2::smallint AND c.key_version = $3::bigint",
    /* kRotate: the compare-and-swap and the new credential, one statement */
    "WITH u AS (UPDATE sessions SET generation = $2::bigint + 1, rotated_at = $3::bigint, "
    "sealed_version = $4::bigint, sealed_text = $5, last_seen_at = GREATEST(last_seen_at, "
    "$3::bigint), idle_expires_at = CASE WHEN idle_expires_at IS NULL OR $6::bigint IS NULL THEN "
    "idle_expires_at ELSE GREATEST(idle_expires_at, $6::bigint) END "
    "WHERE id = $1 AND generation = $2::bigint AND revoked_at IS NULL RETURNING id) "
    "INSERT INTO credentials (lookup, key_version, kind, session_id, generation) "
    "SELECT $7, $8::bigint, $9::smallint, u.id, $2::bigint + 1 FROM u RETURNING 1",
    /* kRotateCheck */ "SELECT revoked_at IS NOT NULL FROM sessions WHERE id = $1",
    /* kTouch */
    "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2::bigint), "
    "idle_expires_at = CASE WHEN idle_expires_at IS NULL OR $3::bigint IS NULL THEN "
    "idle_expires_at ELSE GREATEST(idle_expires_at, $3::bigint) END "
    "WHERE id = $1 AND revoked_at IS NULL",
    /* kRevokeId ($4 at, $5 recording) */
    "WITH r AS (" REVOKE_SET
    "WHERE id = $1 AND revoked_at IS NULL RETURNING id, subject, family_id), " SESSION_EVENTS(
        "$4", "$5") UPSTREAM_FORGET "SELECT id FROM r",
    /* kRevokeFamily ($4 at, $5 recording, $6 the family's event type) */
    "WITH r AS (" REVOKE_SET
    "WHERE family_id = $1 AND revoked_at IS NULL RETURNING id, subject, family_id), " SESSION_EVENTS(
        "$4", "$5") ", fe AS (INSERT INTO " EVENT_COLUMNS
                    " SELECT $6, $4::bigint, (SELECT subject FROM r LIMIT 1), '', $1, $3, 0, '' "
                    "WHERE $5::boolean AND EXISTS (SELECT 1 FROM r)) " UPSTREAM_FORGET
                    "SELECT id FROM r",
    /* kRevokeSubject ($5 at, $6 recording) */
    "WITH r AS (" REVOKE_SET
    "WHERE subject = $1 AND revoked_at IS NULL AND ($4::text IS NULL OR id <> $4) "
    "RETURNING id, subject, family_id), " SESSION_EVENTS("$5", "$6") UPSTREAM_FORGET
    "SELECT id FROM r",
    /* kListLive */
    "SELECT " SESSION_COLUMNS
    " FROM sessions s WHERE s.subject = $1 AND s.revoked_at IS NULL AND s.expires_at > "
    "$2::bigint AND (s.idle_expires_at IS NULL OR s.idle_expires_at > $2::bigint) "
    "ORDER BY s.last_seen_at DESC, s.id DESC",
    /* kCleanup */ "DELETE FROM sessions WHERE expires_at < $1::bigint OR revoked_at < $1::bigint",
    /* kEpoch */ "SELECT epoch FROM epochs WHERE subject = $1",
    /* kEpochs */
    "SELECT COALESCE(MAX(epoch) FILTER (WHERE subject = ''), 0), "
    "COALESCE(MAX(epoch) FILTER (WHERE subject = $1), 0) FROM epochs WHERE subject IN ('', $1)",
    /* kBumpEpoch ($2 at, $3 recording) */
    "WITH b AS (INSERT INTO epochs (subject, epoch) VALUES ($1, 1) ON CONFLICT (subject) DO "
    "UPDATE SET epoch = epochs.epoch + 1 RETURNING epoch), ev AS (INSERT INTO " EVENT_COLUMNS
    " SELECT 'epoch_bumped', $2::bigint, $1, '', '', '', b.epoch, '' FROM b WHERE $3::boolean) "
    "SELECT epoch FROM b",
    /* kBumpGlobalEpoch ($1 at, $2 recording): GREATEST re-reads the global
       row it locked, so two global bumps at once both move it. */
    "WITH b AS (INSERT INTO epochs (subject, epoch) SELECT '', COALESCE(MAX(epoch), 0) + 1 FROM "
    "epochs ON CONFLICT (subject) DO UPDATE SET epoch = GREATEST(epochs.epoch + 1, "
    "EXCLUDED.epoch) RETURNING epoch), ev AS (INSERT INTO " EVENT_COLUMNS
    " SELECT 'epoch_bumped', $1::bigint, '', '', '', '', b.epoch, '' FROM b WHERE $2::boolean) "
    "SELECT epoch FROM b",
    /* kSubjectLock */ "SELECT pg_advisory_xact_lock(hashtextextended($1, 7468))",
    /* kInsertSession */
    "INSERT INTO sessions (id, subject, family_id, mode, created_at, last_seen_at, "
    "idle_expires_at, expires_at, generation, epoch_at_issue, ip, user_agent, device, "
    "fingerprint, data, claims, bound_jkt) VALUES ($1, $2, $3, $4::smallint, $5::bigint, "
    "$6::bigint, $7::bigint, $8::bigint, $9::bigint, $10::bigint, $11, $12, $13, $14, $15, $16, "
    "$17)",
    /* kInsertCredential */
    "INSERT INTO credentials (lookup, key_version, kind, session_id, generation) VALUES ($1, "
    "$2::bigint, $3::smallint, $4, $5::bigint)",
    /* kEvict: live sessions beyond the cap, least recently seen first ($6
       at, $7 recording) */
    "WITH r AS (UPDATE sessions SET revoked_at = $2::bigint, revoke_reason = $5, sealed_version = "
    "NULL, sealed_text = NULL WHERE id IN (SELECT id FROM sessions WHERE subject = $1 AND "
    "revoked_at IS NULL AND expires_at > $2::bigint AND (idle_expires_at IS NULL OR "
    "idle_expires_at > $2::bigint) AND id <> $3 ORDER BY last_seen_at DESC, id DESC OFFSET "
    "$4::bigint) RETURNING id, subject, family_id), ev AS (INSERT INTO " EVENT_COLUMNS
    " SELECT 'session_revoked', $6::bigint, r.subject, r.id, r.family_id, $5, 0, '' FROM r WHERE "
    "$7::boolean) " UPSTREAM_FORGET "SELECT id FROM r",
    /* kFindByCredentialEpochs: kFindByCredential and the subject's epochs */
    "SELECT c.generation, " SESSION_COLUMNS ", " EPOCHS_OF("s.subject")
    " FROM credentials c JOIN sessions s ON s.id = c.session_id "
    "WHERE c.lookup = $1 AND c.kind = $2::smallint AND c.key_version = $3::bigint",
    /* kFindByCredentials: every candidate at once ($1 lookups, $3 their
       versions, newest first); the first that names a credential wins */
    "SELECT k.ord - 1, c.generation, " SESSION_COLUMNS ", " EPOCHS_OF("s.subject")
    " FROM unnest($1::text[], $3::bigint[]) WITH ORDINALITY AS k(lookup, version, ord) "
    "JOIN credentials c ON c.lookup = k.lookup AND c.key_version = k.version "
    "AND c.kind = $2::smallint JOIN sessions s ON s.id = c.session_id ORDER BY k.ord LIMIT 1",
    /* kRotateEpochs: kRotate, plus what the engine decides on when it lost.
       `cur` locks the session row and reads its newest committed version
       (READ COMMITTED: FOR UPDATE waits for a concurrent writer, then
       re-reads); the swap is decided on that locked row, so a rotation or a
       revocation that commits meanwhile is seen, never lost. The epochs are
       read at the statement's snapshot, before the swap: a token minted
       with them never carries an epoch newer than the one it was minted
       under. The answer is one row even when the session is gone. */
    "WITH cur AS (SELECT " SESSION_COLUMNS " FROM sessions s WHERE s.id = $1 FOR UPDATE), "
    "u AS (UPDATE sessions SET generation = $2::bigint + 1, rotated_at = $3::bigint, "
    "sealed_version = $4::bigint, sealed_text = $5, "
    "last_seen_at = GREATEST(sessions.last_seen_at, $3::bigint), "
    "idle_expires_at = CASE WHEN sessions.idle_expires_at IS NULL OR $6::bigint IS NULL THEN "
    "sessions.idle_expires_at ELSE GREATEST(sessions.idle_expires_at, $6::bigint) END "
    "FROM cur WHERE sessions.id = cur.id AND cur.generation = $2::bigint AND "
    "cur.revoked_at IS NULL RETURNING sessions.id), "
    "ins AS (INSERT INTO credentials (lookup, key_version, kind, session_id, generation) "
    "SELECT $7, $8::bigint, $9::smallint, u.id, $2::bigint + 1 FROM u RETURNING 1) "
    "SELECT EXISTS (SELECT 1 FROM ins), " EPOCHS_OF("$10") ", cur.* "
    "FROM (VALUES (1)) AS one (x) LEFT JOIN cur ON true",
    /* kTouchRekey: kTouch, and the re-key only if the touch found the
       session unrevoked ($1..$3 as kTouch; $4, $5 the old lookup key and
       version, $6, $7 the new) */
    "WITH t AS (UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2::bigint), "
    "idle_expires_at = CASE WHEN idle_expires_at IS NULL OR $3::bigint IS NULL THEN "
    "idle_expires_at ELSE GREATEST(idle_expires_at, $3::bigint) END "
    "WHERE id = $1 AND revoked_at IS NULL RETURNING id) "
    "UPDATE credentials SET lookup = $6, key_version = $7::bigint FROM t WHERE lookup = $4 AND "
    "key_version = $5::bigint AND session_id = t.id",
    /* kAppendEvent */
    "INSERT INTO " EVENT_COLUMNS " VALUES ($1, $2::bigint, $3, $4, $5, $6, $7::bigint, $8)",
    /* kClaimEvents: SKIP LOCKED, so that of several authorities on one
       database exactly one claims each event; the lease is committed with
       the claim ($1 max, $2 now, $3 lease) */
    "UPDATE events SET next_attempt_ms = $2::bigint + $3::bigint WHERE seq IN (SELECT seq FROM "
    "events WHERE delivered_ms IS NULL AND next_attempt_ms <= $2::bigint ORDER BY seq LIMIT "
    "$1::bigint FOR UPDATE SKIP LOCKED) RETURNING seq, type, at_ms, subject, session_id, "
    "family_id, reason, epoch, kid, attempts",
    /* kDeliveredEvents */
    "UPDATE events SET delivered_ms = $2::bigint WHERE seq = ANY($1::bigint[])",
    /* kRetryEvent */
    "UPDATE events SET next_attempt_ms = $2::bigint, attempts = attempts + 1 WHERE seq = "
    "$1::bigint AND delivered_ms IS NULL",
    /* kReleaseEvents */
    "UPDATE events SET next_attempt_ms = $2::bigint WHERE seq = ANY($1::bigint[]) AND "
    "delivered_ms IS NULL",
    /* kPurgeDelivered */
    "DELETE FROM events WHERE delivered_ms IS NOT NULL AND delivered_ms < $1::bigint",
    /* kDropPending: the oldest undelivered beyond $1 */
    "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE delivered_ms IS NULL ORDER BY "
    "seq LIMIT GREATEST(0, (SELECT count(*) FROM events WHERE delivered_ms IS NULL) - "
    "$1::bigint))",
    /* kBacklog */ "SELECT count(*), min(at_ms) FROM events WHERE delivered_ms IS NULL",
    /* kInsertUpstream */
    "INSERT INTO upstream_links (session_id, issuer, sid, sub, sealed_version, sealed_text, "
    "next_check) VALUES ($1, $2, $3, $4, $5::bigint, $6, $7::bigint)",
    /* kMoveUpstream: a replacement keeps the login it came from */
    "UPDATE upstream_links SET session_id = $2 WHERE session_id = $1",
    /* kRevokeUpstreamSid ($1 issuer, $4 at, $5 recording, $6 sid) */
    "WITH r AS (" REVOKE_SET
    "WHERE id IN (SELECT session_id FROM upstream_links WHERE issuer = $1 AND sid = $6 AND "
    "sid <> '') AND revoked_at IS NULL RETURNING id, subject, family_id), " SESSION_EVENTS(
        "$4", "$5") UPSTREAM_FORGET "SELECT id FROM r",
    /* kRevokeUpstreamSub ($1 issuer, $4 at, $5 recording, $6 sub) */
    "WITH r AS (" REVOKE_SET
    "WHERE id IN (SELECT session_id FROM upstream_links WHERE issuer = $1 AND sub = $6 AND "
    "sub <> '') AND revoked_at IS NULL RETURNING id, subject, family_id), " SESSION_EVENTS(
        "$4", "$5") UPSTREAM_FORGET "SELECT id FROM r",
    /* kUpstreamDue ($1 now, $2 max, $3 the lease's end): SKIP LOCKED, so
       that of several authorities each refreshes a session once */
    "WITH due AS (SELECT l.session_id, l.next_check FROM upstream_links l JOIN sessions s ON "
    "s.id = l.session_id WHERE l.next_check <= $1::bigint AND l.sealed_text IS NOT NULL AND "
    "s.revoked_at IS NULL AND s.expires_at > $1::bigint AND (s.idle_expires_at IS NULL OR "
    "s.idle_expires_at > $1::bigint) ORDER BY l.next_check, l.session_id LIMIT $2::bigint "
    "FOR UPDATE OF l SKIP LOCKED) "
    "UPDATE upstream_links u SET next_check = $3::bigint FROM due, sessions s WHERE "
    "u.session_id = due.session_id AND s.id = u.session_id RETURNING u.session_id, s.subject, "
    "s.family_id, u.issuer, u.sid, u.sub, u.sealed_version, u.sealed_text, due.next_check, "
    "u.failing_since",
    /* kUpstreamChecked */
    "UPDATE upstream_links SET sealed_version = COALESCE($2::bigint, sealed_version), "
    "sealed_text = COALESCE($3, sealed_text), next_check = $4::bigint, failing_since = "
    "$5::bigint WHERE session_id = $1 AND sealed_text IS NOT NULL",
};

const char* statement_name(Sql sql) {
  static const auto names = [] {
    std::array<std::string, kSqlCount> n;
    for (int i = 0; i < kSqlCount; ++i) n[static_cast<std::size_t>(i)] = fmt::format("t{}", i);
    return n;
  }();
  return names[static_cast<std::size_t>(sql)].c_str();
}

struct PgResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// Parameters are passed as text; std::nullopt is SQL NULL.
class Params {
 public:
  Params& add(std::string_view v) {
    values_.emplace_back(v);
    return *this;
  }
  Params& add(std::int64_t v) { return add(std::string_view(fmt::format("{}", v))); }
  Params& add(std::uint64_t v) { return add(std::string_view(fmt::format("{}", v))); }
  Params& add(UnixSeconds t) { return add(std::int64_t{t.time_since_epoch().count()}); }
  Params& add(UnixMillis t) { return add(std::int64_t{t.time_since_epoch().count()}); }
  Params& add(std::optional<UnixSeconds> t) {
    if (t) return add(*t);
    values_.emplace_back(std::nullopt);
    return *this;
  }
  Params& add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  [[nodiscard]] std::vector<const char*> pointers() const {
    std::vector<const char*> out;
    out.reserve(values_.size());
    for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
    return out;
  }
  [[nodiscard]] int size() const { return static_cast<int>(values_.size()); }

 private:
  std::vector<std::optional<std::string>> values_;
};

std::int64_t to_i64(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  std::int64_t out = 0;
  std::from_chars(v, v + PQgetlength(r, row, col), out);
  return out;
}
bool is_null(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) != 0;
}
std::string text(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}
UnixSeconds time_at(const PGresult* r, int row, int col) {
  return UnixSeconds{std::chrono::seconds{to_i64(r, row, col)}};
}
std::optional<UnixSeconds> opt_time(const PGresult* r, int row, int col) {
  if (is_null(r, row, col)) return std::nullopt;
  return time_at(r, row, col);
}

Session read_session(const PGresult* r, int row, int b = 0) {
  Session x;
  x.id = text(r, row, b + 0);
  x.subject = text(r, row, b + 1);
  x.family_id = text(r, row, b + 2);
  x.mode = to_i64(r, row, b + 3) == 1 ? SessionMode::token : SessionMode::cookie;
  x.created_at = time_at(r, row, b + 4);
  x.last_seen_at = time_at(r, row, b + 5);
  x.idle_expires_at = opt_time(r, row, b + 6);
  x.expires_at = time_at(r, row, b + 7);
  x.revoked_at = opt_time(r, row, b + 8);
  x.revoke_reason = revoke_reason_from_string(text(r, row, b + 9));  // unknown text: nullopt
  x.generation = static_cast<std::uint64_t>(to_i64(r, row, b + 10));
  x.epoch_at_issue = static_cast<std::uint64_t>(to_i64(r, row, b + 11));
  x.metadata.ip = text(r, row, b + 12);
  x.metadata.user_agent = text(r, row, b + 13);
  x.metadata.device = text(r, row, b + 14);
  x.metadata.fingerprint_digest = text(r, row, b + 15);
  x.data = text(r, row, b + 16);
  x.claims = text(r, row, b + 17);
  x.rotated_at = opt_time(r, row, b + 18);
  if (!is_null(r, row, b + 19)) {
    x.sealed_current =
        SealedToken{static_cast<std::uint32_t>(to_i64(r, row, b + 19)), text(r, row, b + 20)};
  }
  x.bound_jkt = text(r, row, b + 21);
  return x;
}

std::vector<std::string> ids_of(const PGresult* r) {
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r); ++i) out.push_back(text(r, i, 0));
  return out;
}

// A failed command: a constraint or bad data is the caller's
// (invalid_request); a lost or refused connection, a timeout, a
// serialisation failure is transient (store_unavailable); anything else is
// a bug here (internal). The server's message names no secret: parameters
// are never echoed into it by PostgreSQL's standard errors except for
// unique violations, whose detail we drop.
Error classify(const PGresult* r, PGconn* conn) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state ? state : "";
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string msg = primary ? primary : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (sqlstate.starts_with("23") || sqlstate.starts_with("22")) {
    return {ErrorCode::invalid_request, fmt::format("postgresql {}: {}", sqlstate, msg)};
  }
  if (sqlstate.starts_with("42")) {
    return {ErrorCode::internal, fmt::format("postgresql {}: {}", sqlstate, msg)};
  }
  return {ErrorCode::store_unavailable,
          fmt::format("postgresql{}{}: {}", sqlstate.empty() ? "" : " ", sqlstate, msg)};
}

struct Conn {
  PGconn* pg = nullptr;
  std::atomic<std::uint64_t>* round_trips = nullptr;  // PostgresOptions::round_trips, once pooled
  ~Conn() {
    if (pg) PQfinish(pg);
  }
  [[nodiscard]] bool ok() const { return pg && PQstatus(pg) == CONNECTION_OK; }

  void count() const {
    if (round_trips != nullptr) round_trips->fetch_add(1, std::memory_order_relaxed);
  }

  Result<PgResult> exec(Sql sql, const Params& p) {
    count();
    const auto values = p.pointers();
    PgResult r(
        PQexecPrepared(pg, statement_name(sql), p.size(), values.data(), nullptr, nullptr, 0));
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return std::unexpected(classify(r.get(), pg));
    }
    return r;
  }
  Status simple(const char* sql) {
    count();
    PgResult r(PQexec(pg, sql));
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      return std::unexpected(classify(r.get(), pg));
    }
    return {};
  }
};

bool valid_schema_name(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// {1,2,3}: a bigint[] literal.
std::string seq_array(std::span<const std::uint64_t> seqs) {
  std::string out = "{";
  for (auto seq : seqs) {
    if (out.size() > 1) out += ',';
    out += fmt::format("{}", seq);
  }
  return out + "}";
}

class PostgresStore final : public SessionStore, public EventOutbox {
 public:
  explicit PostgresStore(PostgresOptions o) : o_(std::move(o)) {}

  EventOutbox* outbox() noexcept override { return this; }

  // --- EventOutbox: table `events`; the change's statement writes its rows --------
  void record_events() noexcept override { recording_ = true; }

  Status append(const Event& e) override {
    Params p;
    p.add(to_string(e.type)).add(wall_now()).add(e.subject).add(e.session_id).add(e.family_id);
    p.add(e.reason ? to_string(*e.reason) : std::string_view{""}).add(e.epoch).add(e.kid);
    auto r = run(kAppendEvent, p);
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::vector<Event>> claim(std::size_t max, UnixMillis now,
                                   std::chrono::milliseconds lease) override {
    auto r = run(
        kClaimEvents,
        Params().add(static_cast<std::uint64_t>(max)).add(now).add(std::int64_t{lease.count()}));
    if (!r) return std::unexpected(r.error());
    std::vector<Event> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      Event e;
      e.seq = static_cast<std::uint64_t>(to_i64(r->get(), i, 0));
      e.type = event_type_from_string(text(r->get(), i, 1)).value_or(EventType::session_revoked);
      e.at = UnixMillis(std::chrono::milliseconds(to_i64(r->get(), i, 2)));
      e.subject = text(r->get(), i, 3);
      e.session_id = text(r->get(), i, 4);
      e.family_id = text(r->get(), i, 5);
      e.reason = revoke_reason_from_string(text(r->get(), i, 6));
      e.epoch = static_cast<std::uint64_t>(to_i64(r->get(), i, 7));
      e.kid = text(r->get(), i, 8);
      e.attempts = static_cast<std::uint32_t>(to_i64(r->get(), i, 9));
      out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) { return a.seq < b.seq; });
    return out;
  }

  Status delivered(std::span<const std::uint64_t> seqs, UnixMillis now) override {
    if (seqs.empty()) return {};
    auto r = run(kDeliveredEvents, Params().add(seq_array(seqs)).add(now));
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Status retry(std::uint64_t seq, UnixMillis next_attempt) override {
    auto r = run(kRetryEvent, Params().add(seq).add(next_attempt));
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Status release(std::span<const std::uint64_t> seqs, UnixMillis next_attempt) override {
    if (seqs.empty()) return {};
    auto r = run(kReleaseEvents, Params().add(seq_array(seqs)).add(next_attempt));
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<Purged> purge(UnixMillis delivered_before, std::size_t max_pending) override {
    Purged p;
    auto d = run(kPurgeDelivered, Params().add(delivered_before));
    if (!d) return std::unexpected(d.error());
    p.deleted = affected(d->get());
    auto x = run(kDropPending, Params().add(static_cast<std::uint64_t>(max_pending)));
    if (!x) return std::unexpected(x.error());
    p.dropped = affected(x->get());
    return p;
  }

  Result<Backlog> backlog() override {
    auto r = run(kBacklog, Params());
    if (!r) return std::unexpected(r.error());
    Backlog b;
    b.pending = static_cast<std::size_t>(to_i64(r->get(), 0, 0));
    if (!is_null(r->get(), 0, 1))
      b.oldest = UnixMillis(std::chrono::milliseconds(to_i64(r->get(), 0, 1)));
    return b;
  }

  // --- SessionStore ------------------------------------------------------------

  Status open() {
    auto c = connect(/*prepare=*/false);
    if (!c) return std::unexpected(c.error());
    TESSERA_TRY(migrate(**c));
    // Statements are prepared after the tables exist.
    for (int i = 0; i < kSqlCount; ++i) {
      TESSERA_TRY(prepare_one(**c, static_cast<Sql>(i)));
    }
    {
      std::lock_guard lock(mu_);
      ++open_;
    }
    release(std::move(*c));
    return {};
  }

  Result<RevokeResult> create(const Session& s, TokenKind kind, const LookupKey& credential,
                              std::size_t max_live, UnixSeconds now,
                              std::optional<std::string_view> replaces) override {
    return create_with(s, kind, credential, max_live, now, replaces, nullptr);
  }

  // create() and, with `link`, the session's upstream link, in one transaction.
  Result<RevokeResult> create_with(const Session& s, TokenKind kind, const LookupKey& credential,
                                   std::size_t max_live, UnixSeconds now,
                                   std::optional<std::string_view> replaces,
                                   const UpstreamLink* link) {
    RevokeResult out;
    auto st = transaction([&](Conn& c) -> Status {
      TESSERA_TRY(c.exec(kSubjectLock, Params().add(s.subject)));
      if (replaces) {
        auto r = c.exec(kRevokeId, Params()
                                       .add(*replaces)
                                       .add(now)
                                       .add(to_string(RevokeReason::rotated))
                                       .add(wall_now())
                                       .add(recording()));
        if (!r) return std::unexpected(r.error());
        for (auto& id : ids_of(r->get())) out.session_ids.push_back(std::move(id));
        if (out.session_ids.empty())
          return fail(ErrorCode::session_revoked, "the session to replace is no longer live");
      }
      Params p;
      p.add(s.id).add(s.subject).add(s.family_id).add(std::int64_t{s.mode == SessionMode::token});
      p.add(s.created_at).add(s.last_seen_at).add(s.idle_expires_at).add(s.expires_at);
      p.add(s.generation).add(s.epoch_at_issue);
      p.add(s.metadata.ip).add(s.metadata.user_agent).add(s.metadata.device);
      p.add(s.metadata.fingerprint_digest).add(s.data).add(s.claims).add(s.bound_jkt);
      TESSERA_TRY(c.exec(kInsertSession, p));
      TESSERA_TRY(c.exec(kInsertCredential, Params()
                                                .add(credential.text())
                                                .add(std::uint64_t{credential.version})
                                                .add(static_cast<std::int64_t>(kind))
                                                .add(s.id)
                                                .add(s.generation)));
      auto evicted =
          c.exec(kEvict, Params()
                             .add(s.subject)
                             .add(now)
                             .add(s.id)
                             .add(static_cast<std::int64_t>(max_live > 0 ? max_live - 1 : 0))
                             .add(to_string(RevokeReason::evicted))
                             .add(wall_now())
                             .add(recording()));
      if (!evicted) return std::unexpected(evicted.error());
      for (auto& id : ids_of(evicted->get())) out.session_ids.push_back(std::move(id));
      if (replaces) TESSERA_TRY(c.exec(kMoveUpstream, Params().add(*replaces).add(s.id)));
      if (link != nullptr) {
        Params l;
        l.add(s.id).add(link->issuer).add(link->sid).add(link->sub);
        if (link->refresh_token) {
          l.add(std::uint64_t{link->refresh_token->key_version}).add(link->refresh_token->text);
        } else {
          l.add_null().add_null();
        }
        l.add(link->next_check);
        TESSERA_TRY(c.exec(kInsertUpstream, l));
      }
      return {};
    });
    if (!st) return std::unexpected(st.error());
    return out;
  }

  bool keeps_upstream_links() const noexcept override { return true; }

  Result<RevokeResult> create_linked(const Session& s, TokenKind kind, const LookupKey& credential,
                                     std::size_t max_live, UnixSeconds now,
                                     const UpstreamLink& link) override {
    return create_with(s, kind, credential, max_live, now, std::nullopt, &link);
  }

  Result<RevokeResult> revoke_upstream(std::string_view issuer, std::string_view sid,
                                       std::string_view sub, RevokeReason reason,
                                       UnixSeconds now) override {
    return revoked(run(!sid.empty() ? kRevokeUpstreamSid : kRevokeUpstreamSub,
                       Params()
                           .add(issuer)
                           .add(now)
                           .add(to_string(reason))
                           .add(wall_now())
                           .add(recording())
                           .add(!sid.empty() ? sid : sub)));
  }

  Result<std::vector<UpstreamDue>> upstream_due(UnixSeconds now, std::size_t max,
                                                std::chrono::seconds lease) override {
    auto r =
        run(kUpstreamDue, Params().add(now).add(static_cast<std::uint64_t>(max)).add(now + lease));
    if (!r) return std::unexpected(r.error());
    const PGresult* res = r->get();
    std::vector<UpstreamDue> out;
    for (int i = 0; i < PQntuples(res); ++i) {
      UpstreamDue d{
          .session_id = text(res, i, 0), .subject = text(res, i, 1), .family_id = text(res, i, 2)};
      d.link.issuer = text(res, i, 3);
      d.link.sid = text(res, i, 4);
      d.link.sub = text(res, i, 5);
      d.link.refresh_token = SealedToken{
          .key_version = static_cast<std::uint32_t>(to_i64(res, i, 6)), .text = text(res, i, 7)};
      d.link.next_check = opt_time(res, i, 8);
      d.link.failing_since = opt_time(res, i, 9);
      out.push_back(std::move(d));
    }
    // RETURNING keeps no order: the most overdue first, as the claim chose.
    std::sort(out.begin(), out.end(), [](const UpstreamDue& a, const UpstreamDue& b) {
      return std::tie(*a.link.next_check, a.session_id) <
             std::tie(*b.link.next_check, b.session_id);
    });
    return out;
  }

  Status upstream_checked(std::string_view session_id, const std::optional<SealedToken>& rotated,
                          UnixSeconds next_check,
                          std::optional<UnixSeconds> failing_since) override {
    Params p;
    p.add(session_id);
    if (rotated) {
      p.add(std::uint64_t{rotated->key_version}).add(rotated->text);
    } else {
      p.add_null().add_null();
    }
    p.add(next_check).add(failing_since);
    auto r = run(kUpstreamChecked, p);
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<std::optional<Session>> find(std::string_view id) override {
    auto r = run(kFind, Params().add(id));
    if (!r) return std::unexpected(r.error());
    if (PQntuples(r->get()) == 0) return std::optional<Session>{};
    return std::optional<Session>{read_session(r->get(), 0)};
  }

  Result<std::optional<CredentialHit>> find_by_credential(
      TokenKind kind, std::span<const LookupKey> candidates) override {
    auto read = lookup(kind, candidates, /*with_epochs=*/false);
    if (!read) return std::unexpected(read.error());
    return std::move(read->hit);
  }

  Result<CredentialRead> find_by_credential_with_epochs(
      TokenKind kind, std::span<const LookupKey> candidates) override {
    return lookup(kind, candidates, /*with_epochs=*/true);
  }

  Result<RotateResult> rotate(std::string_view id, std::uint64_t expected, const LookupKey& next,
                              const SealedToken& sealed, UnixSeconds now,
                              std::optional<UnixSeconds> idle_expires_at) override {
    auto lease = acquire();
    if (!lease) return std::unexpected(lease.error());
    auto r = (*lease)->exec(kRotate, Params()
                                         .add(id)
                                         .add(expected)
                                         .add(now)
                                         .add(std::uint64_t{sealed.key_version})
                                         .add(sealed.text)
                                         .add(idle_expires_at)
                                         .add(next.text())
                                         .add(std::uint64_t{next.version})
                                         .add(static_cast<std::int64_t>(TokenKind::refresh)));
    if (!r) return fail_with(std::move(*lease), r.error());
    if (PQntuples(r->get()) == 1) {
      release(std::move(*lease));
      return RotateResult::rotated;
    }
    auto check = (*lease)->exec(kRotateCheck, Params().add(id));
    if (!check) return fail_with(std::move(*lease), check.error());
    const bool gone = PQntuples(check->get()) == 0 || text(check->get(), 0, 0) == "t";
    release(std::move(*lease));
    return gone ? RotateResult::session_gone : RotateResult::lost_race;
  }

  Result<RotateOutcome> rotate_with_epochs(std::string_view id, std::string_view subject,
                                           std::uint64_t expected, const LookupKey& next,
                                           const SealedToken& sealed, UnixSeconds now,
                                           std::optional<UnixSeconds> idle_expires_at) override {
    auto r = run(kRotateEpochs, Params()
                                    .add(id)
                                    .add(expected)
                                    .add(now)
                                    .add(std::uint64_t{sealed.key_version})
                                    .add(sealed.text)
                                    .add(idle_expires_at)
                                    .add(next.text())
                                    .add(std::uint64_t{next.version})
                                    .add(static_cast<std::int64_t>(TokenKind::refresh))
                                    .add(subject));
    if (!r) return std::unexpected(r.error());
    const PGresult* res = r->get();
    RotateOutcome out;
    out.epochs = Epochs{static_cast<std::uint64_t>(to_i64(res, 0, 1)),
                        static_cast<std::uint64_t>(to_i64(res, 0, 2))};
    if (text(res, 0, 0) == "t") {
      out.result = RotateResult::rotated;
      return out;
    }
    if (is_null(res, 0, 3)) {  // no session row
      out.result = RotateResult::session_gone;
      return out;
    }
    out.session = read_session(res, 0, 3);
    out.result = out.session->revoked() ? RotateResult::session_gone : RotateResult::lost_race;
    return out;
  }

  Status touch(std::string_view id, UnixSeconds last_seen,
               std::optional<UnixSeconds> idle_expires_at,
               std::optional<std::pair<LookupKey, LookupKey>> rekey) override {
    Params touch_params;
    touch_params.add(id).add(last_seen).add(idle_expires_at);
    if (!rekey) {
      auto r = run(kTouch, touch_params);
      if (!r) return std::unexpected(r.error());
      return {};
    }
    // One statement: the re-key happens only with the touch (a revoked
    // session is neither touched nor re-keyed).
    touch_params.add(rekey->first.text())
        .add(std::uint64_t{rekey->first.version})
        .add(rekey->second.text())
        .add(std::uint64_t{rekey->second.version});
    auto r = run(kTouchRekey, touch_params);
    if (!r) return std::unexpected(r.error());
    return {};
  }

  Result<RevokeResult> revoke_session(std::string_view id, RevokeReason reason,
                                      UnixSeconds now) override {
    return revoked(
        run(kRevokeId,
            Params().add(id).add(now).add(to_string(reason)).add(wall_now()).add(recording())));
  }
  Result<RevokeResult> revoke_family(std::string_view family_id, RevokeReason reason,
                                     UnixSeconds now) override {
    const EventType type = reason == RevokeReason::refresh_token_reused ? EventType::replay_detected
                                                                        : EventType::family_revoked;
    return revoked(run(kRevokeFamily, Params()
                                          .add(family_id)
                                          .add(now)
                                          .add(to_string(reason))
                                          .add(wall_now())
                                          .add(recording())
                                          .add(to_string(type))));
  }
  Result<RevokeResult> revoke_subject(std::string_view subject,
                                      std::optional<std::string_view> except, RevokeReason reason,
                                      UnixSeconds now) override {
    Params p;
    p.add(subject).add(now).add(to_string(reason));
    if (except) {
      p.add(*except);
    } else {
      p.add_null();
    }
    p.add(wall_now()).add(recording());
    return revoked(run(kRevokeSubject, p));
  }

  Result<std::vector<Session>> list_live(std::string_view subject, UnixSeconds now) override {
    auto r = run(kListLive, Params().add(subject).add(now));
    if (!r) return std::unexpected(r.error());
    std::vector<Session> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(read_session(r->get(), i));
    return out;
  }

  Result<std::size_t> cleanup(UnixSeconds before) override {
    auto r = run(kCleanup, Params().add(before));
    if (!r) return std::unexpected(r.error());
    std::size_t n = 0;
    const std::string_view count = PQcmdTuples(r->get());
    std::from_chars(count.data(), count.data() + count.size(), n);
    return n;
  }

  Result<std::uint64_t> epoch(std::string_view subject) override {
    auto r = run(kEpoch, Params().add(subject));
    if (!r) return std::unexpected(r.error());
    if (PQntuples(r->get()) == 0) return std::uint64_t{0};
    return static_cast<std::uint64_t>(to_i64(r->get(), 0, 0));
  }

  Result<Epochs> epochs(std::string_view subject) override {
    auto r = run(kEpochs, Params().add(subject));
    if (!r) return std::unexpected(r.error());
    return Epochs{static_cast<std::uint64_t>(to_i64(r->get(), 0, 0)),
                  static_cast<std::uint64_t>(to_i64(r->get(), 0, 1))};
  }

  Result<std::uint64_t> bump_epoch(std::string_view subject) override {
    auto r = run(kBumpEpoch, Params().add(subject).add(wall_now()).add(recording()));
    if (!r) return std::unexpected(r.error());
    return static_cast<std::uint64_t>(to_i64(r->get(), 0, 0));
  }

  Result<std::uint64_t> bump_global_epoch() override {
    auto r = run(kBumpGlobalEpoch, Params().add(wall_now()).add(recording()));
    if (!r) return std::unexpected(r.error());
    return static_cast<std::uint64_t>(to_i64(r->get(), 0, 0));
  }

 private:
  // One statement whatever the number of candidates: the common single
  // version by equality, several (during a lookup key rotation) as arrays.
  Result<CredentialRead> lookup(TokenKind kind, std::span<const LookupKey> candidates,
                                bool with_epochs) {
    if (candidates.empty()) return CredentialRead{};
    const auto kind_param = static_cast<std::int64_t>(kind);
    if (candidates.size() == 1) {
      const LookupKey& k = candidates.front();
      auto r = run(with_epochs ? kFindByCredentialEpochs : kFindByCredential,
                   Params().add(k.text()).add(kind_param).add(std::uint64_t{k.version}));
      if (!r) return std::unexpected(r.error());
      return read_hit(r->get(), 0, k, with_epochs);
    }
    // base64url and digits need no quoting inside an array literal.
    std::string lookups = "{";
    std::string versions = "{";
    for (const auto& k : candidates) {
      if (lookups.size() > 1) {
        lookups += ',';
        versions += ',';
      }
      lookups += k.text();
      versions += fmt::format("{}", k.version);
    }
    lookups += '}';
    versions += '}';
    auto r = run(kFindByCredentials, Params().add(lookups).add(kind_param).add(versions));
    if (!r) return std::unexpected(r.error());
    if (PQntuples(r->get()) == 0) return CredentialRead{};
    const auto index = static_cast<std::size_t>(to_i64(r->get(), 0, 0));
    if (index >= candidates.size()) return fail(ErrorCode::internal, "postgresql: bad candidate");
    return read_hit(r->get(), 1, candidates[index], with_epochs);
  }

  // A credential row from column `b` on: generation, the session, epochs.
  static CredentialRead read_hit(const PGresult* r, int b, const LookupKey& key, bool with_epochs) {
    CredentialRead out;
    if (PQntuples(r) == 0) return out;
    out.hit =
        CredentialHit{read_session(r, 0, b + 1), static_cast<std::uint64_t>(to_i64(r, 0, b)), key};
    if (with_epochs) {
      out.epochs = Epochs{static_cast<std::uint64_t>(to_i64(r, 0, b + 1 + kSessionColumnCount)),
                          static_cast<std::uint64_t>(to_i64(r, 0, b + 2 + kSessionColumnCount))};
    }
    return out;
  }

  // The commit time events carry (the authority's clock, as in every store).
  static UnixMillis wall_now() noexcept { return SystemClock::instance().now_ms(); }
  [[nodiscard]] std::string_view recording() const noexcept {
    return recording_ ? "true" : "false";
  }
  static std::size_t affected(const PGresult* r) {
    std::size_t n = 0;
    const std::string_view count = PQcmdTuples(const_cast<PGresult*>(r));
    std::from_chars(count.data(), count.data() + count.size(), n);
    return n;
  }

  static Result<RevokeResult> revoked(Result<PgResult> r) {
    if (!r) return std::unexpected(r.error());
    return RevokeResult{ids_of(r->get())};
  }

  Result<std::unique_ptr<Conn>> connect(bool prepare) {
    auto c = std::make_unique<Conn>();
    const std::string timeout = fmt::format("{}", o_.connect_timeout.count());
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {o_.url.c_str(), timeout.c_str(), "tessera", nullptr};
    c->pg = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    if (!c->ok()) {
      std::string msg = c->pg ? PQerrorMessage(c->pg) : "out of memory";
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      return fail(ErrorCode::store_unavailable, "postgresql: cannot connect: " + msg);
    }
    PQsetNoticeProcessor(
        c->pg, [](void*, const char*) {}, nullptr);
    TESSERA_TRY(c->simple(fmt::format("CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}; "
                                      "SET statement_timeout = {1}",
                                      o_.schema, o_.statement_timeout.count())
                              .c_str()));
    if (prepare) {
      for (int i = 0; i < kSqlCount; ++i) TESSERA_TRY(prepare_one(*c, static_cast<Sql>(i)));
    }
    return c;
  }

  static Status prepare_one(Conn& c, Sql sql) {
    PgResult r(PQprepare(c.pg, statement_name(sql), kSql[sql], 0, nullptr));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
      return std::unexpected(classify(r.get(), c.pg));
    }
    return {};
  }

  // Applies missing migrations in one transaction under an advisory lock,
  // so that instances starting together migrate once.
  Status migrate(Conn& c) {
    TESSERA_TRY(c.simple("BEGIN"));
    auto body = [&]() -> Status {
      TESSERA_TRY(c.simple("SELECT pg_advisory_xact_lock(7468001)"));
      TESSERA_TRY(c.simple("CREATE TABLE IF NOT EXISTS tessera_schema (version INTEGER NOT NULL)"));
      PgResult r(PQexec(c.pg, "SELECT max(version) FROM tessera_schema"));
      if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
        return std::unexpected(classify(r.get(), c.pg));
      }
      const int version = is_null(r.get(), 0, 0) ? 0 : static_cast<int>(to_i64(r.get(), 0, 0));
      if (version > kPostgresSchemaVersion) {
        return fail(ErrorCode::store_unavailable,
                    fmt::format("database schema version {} is newer than this build ({})", version,
                                kPostgresSchemaVersion));
      }
      for (int i = version; i < kPostgresSchemaVersion; ++i) {
        TESSERA_TRY(c.simple(kMigrations[i]));
      }
      if (version < kPostgresSchemaVersion) {
        TESSERA_TRY(c.simple("DELETE FROM tessera_schema"));
        TESSERA_TRY(c.simple(
            fmt::format("INSERT INTO tessera_schema VALUES ({})", kPostgresSchemaVersion).c_str()));
      }
      return {};
    };
    if (auto st = body(); !st) {
      (void)c.simple("ROLLBACK");
      return st;
    }
    return c.simple("COMMIT");
  }

  // The pool: idle connections are reused; a broken one is dropped and a
  // fresh one made on the next acquire, so service resumes by itself once
  // the server is back.
  Result<std::unique_ptr<Conn>> acquire() {
    {
      std::unique_lock lock(mu_);
      const bool got = cv_.wait_for(lock, o_.acquire_timeout,
                                    [&] { return !idle_.empty() || open_ < o_.pool_size; });
      if (!got) return fail(ErrorCode::store_unavailable, "postgresql: no free connection");
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        c->round_trips = o_.round_trips;
        if (c->ok()) return c;
        --open_;  // dropped below, replaced by a fresh one
      }
      ++open_;
    }
    auto c = connect(/*prepare=*/true);
    if (!c) {
      std::lock_guard lock(mu_);
      --open_;
      cv_.notify_one();
      return c;
    }
    (*c)->round_trips = o_.round_trips;
    return c;
  }

  void release(std::unique_ptr<Conn> c) {
    std::lock_guard lock(mu_);
    if (c && c->ok() && PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
    cv_.notify_one();
  }

  // Returns the connection (dropped if it broke) and the error.
  std::unexpected<Error> fail_with(std::unique_ptr<Conn> c, const Error& e) {
    release(std::move(c));
    return std::unexpected(e);
  }

  // One statement on a pooled connection. A connection that turns out dead
  // (the server restarted since it was last used) is dropped; a read is
  // then tried once more on a fresh connection, a write is not (whether it
  // reached the server is unknown: the caller decides).
  Result<PgResult> run(Sql sql, const Params& p) {
    for (int attempt = 0;; ++attempt) {
      auto lease = acquire();
      if (!lease) return std::unexpected(lease.error());
      auto r = (*lease)->exec(sql, p);
      const bool broke = !r && !(*lease)->ok();
      release(std::move(*lease));
      if (r || !broke || attempt > 0 || !is_read(sql)) return r;
    }
  }

  static bool is_read(Sql sql) {
    switch (sql) {
      case kFind:
      case kFindByCredential:
      case kRotateCheck:
      case kListLive:
      case kEpoch:
      case kEpochs:
      case kFindByCredentialEpochs:
      case kFindByCredentials:
      case kBacklog:
        return true;
      // Retrying a claim that may have reached the server would only lease
      // the same events again; the others are writes.
      case kAppendEvent:
      case kClaimEvents:
      case kDeliveredEvents:
      case kRetryEvent:
      case kReleaseEvents:
      case kPurgeDelivered:
      case kDropPending:
      case kRotate:
      case kTouch:
      case kRevokeId:
      case kRevokeFamily:
      case kRevokeSubject:
      case kCleanup:
      case kBumpEpoch:
      case kBumpGlobalEpoch:
      case kSubjectLock:
      case kInsertSession:
      case kInsertCredential:
      case kEvict:
      case kRotateEpochs:
      case kTouchRekey:
      case kUpstreamDue:
      case kInsertUpstream:
      case kMoveUpstream:
      case kRevokeUpstreamSid:
      case kRevokeUpstreamSub:
      case kUpstreamChecked:
      case kSqlCount:
        return false;
    }
    return false;
  }

  Status transaction(const std::function<Status(Conn&)>& body) {
    auto lease = acquire();
    if (!lease) return std::unexpected(lease.error());
    Conn& c = **lease;
    if (auto st = c.simple("BEGIN"); !st) return fail_with(std::move(*lease), st.error());
    auto st = body(c);
    if (st) st = c.simple("COMMIT");
    if (!st) (void)c.simple("ROLLBACK");
    release(std::move(*lease));
    return st;
  }

  PostgresOptions o_;
  std::atomic<bool> recording_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::size_t open_ = 0;  // connections handed out or idle
};

}  // namespace

Result<std::unique_ptr<SessionStore>> open_postgres_store(PostgresOptions options) {
  if (options.url.empty()) return fail(ErrorCode::config_invalid, "store: empty PostgreSQL URL");
  if (!valid_schema_name(options.schema)) {
    return fail(ErrorCode::config_invalid,
                "store: PostgreSQL schema must match [a-z_][a-z0-9_]{0,62}");
  }
  if (options.pool_size == 0) options.pool_size = 1;
  auto store = std::make_unique<PostgresStore>(std::move(options));
  if (auto st = store->open(); !st) return std::unexpected(st.error());
  return std::unique_ptr<SessionStore>(std::move(store));
}

}  // namespace tessera
