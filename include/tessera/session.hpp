// The session domain (docs/design.md §2) and the storage port (§7.1).
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/epoch.hpp"
#include "tessera/error.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/secret.hpp"
#include "tessera/token_cipher.hpp"

namespace tessera {

enum class SessionMode : std::uint8_t { cookie, token };
[[nodiscard]] std::string_view to_string(SessionMode mode) noexcept;
[[nodiscard]] std::optional<SessionMode> session_mode_from_string(std::string_view s) noexcept;

// Why a session ended. The snake_case names are stable: stores keep them as
// text (the revoke_reason column), and audit lines, the HTTP session view and
// `tessera sessions list` show them. Never renumber or rename; add at the end.
enum class RevokeReason : std::uint8_t {
  logout,                // the user logged out (any scope)
  revoked,               // the service revoked it (one session, or all of a subject's)
  evicted,               // the subject went over max_sessions_per_subject
  rotated,               // replaced by rotate_session (cookie privilege change)
  fingerprint_mismatch,  // presented with another client fingerprint
  refresh_token_reused,  // a refresh token was replayed: the family ends
  upstream_revoked,      // the upstream identity provider ended the login (docs/upstream.md)
  dpop_key_mismatch,     // a bound token or refresh came with a DPoP proof by another key
};
inline constexpr RevokeReason kAllRevokeReasons[] = {
    RevokeReason::logout,
    RevokeReason::revoked,
    RevokeReason::evicted,
    RevokeReason::rotated,
    RevokeReason::fingerprint_mismatch,
    RevokeReason::refresh_token_reused,
    RevokeReason::upstream_revoked,
    RevokeReason::dpop_key_mismatch,
};
static_assert(std::size(kAllRevokeReasons) ==
                  static_cast<std::size_t>(RevokeReason::dpop_key_mismatch) + 1,
              "kAllRevokeReasons must list every RevokeReason");
[[nodiscard]] std::string_view to_string(RevokeReason reason) noexcept;
// The inverse of to_string; nullopt for any other text (including "").
[[nodiscard]] std::optional<RevokeReason> revoke_reason_from_string(std::string_view s) noexcept;

// Which sessions a revocation covers, seen from one session: itself, its
// family, the subject's other sessions, or all of the subject's.
enum class RevokeScope : std::uint8_t { session, family, others, all };
inline constexpr RevokeScope kAllRevokeScopes[] = {RevokeScope::session, RevokeScope::family,
                                                   RevokeScope::others, RevokeScope::all};
static_assert(std::size(kAllRevokeScopes) == static_cast<std::size_t>(RevokeScope::all) + 1,
              "kAllRevokeScopes must list every RevokeScope");
[[nodiscard]] std::string_view to_string(RevokeScope scope) noexcept;
[[nodiscard]] std::optional<RevokeScope> revoke_scope_from_string(std::string_view s) noexcept;

struct SessionMetadata {
  std::string ip;
  std::string user_agent;
  std::string device;
  std::string fingerprint_digest;  // base64url SHA-256 of the client's fingerprint, or ""

  friend bool operator==(const SessionMetadata&, const SessionMetadata&) = default;
};

struct Session {
  std::string id;  // ULID
  std::string subject;
  std::string family_id;  // ULID
  SessionMode mode = SessionMode::cookie;
  UnixSeconds created_at{};
  UnixSeconds last_seen_at{};
  std::optional<UnixSeconds> idle_expires_at;
  UnixSeconds expires_at{};
  std::optional<UnixSeconds> revoked_at;
  // Why it was revoked; nullopt while live. revoked_at alone decides whether
  // the session is revoked: a reason text this build does not know (written
  // by a newer version into a shared database) reads back as nullopt on a
  // revoked session, never as an error, and is never written back.
  std::optional<RevokeReason> revoke_reason;
  std::uint64_t generation = 0;
  std::uint64_t epoch_at_issue = 0;
  SessionMetadata metadata;
  std::string data = "{}";  // JSON object text
  std::string claims;       // custom access-token claims (JSON object text, or "")
  // The RFC 7638 thumbprint of the client key the session is bound to, or
  // "" (unbound). Token mode: the DPoP key (docs/bound-sessions.md) that
  // every refresh must prove and every access token names as cnf.jkt.
  std::string bound_jkt;

  // Refresh rotation state (token mode): when generation last moved, and the
  // current refresh token sealed with the TokenCipher, kept so that a retry
  // of the previous token inside the grace window gets the same successor.
  std::optional<UnixSeconds> rotated_at;
  std::optional<SealedToken> sealed_current;

  [[nodiscard]] bool revoked() const noexcept { return revoked_at.has_value(); }
  // Live iff not revoked, now < expires_at and (idle on) now < idle_expires_at.
  [[nodiscard]] bool live_at(UnixSeconds now) const noexcept {
    return !revoked() && now < expires_at && (!idle_expires_at || now < *idle_expires_at);
  }
};

// A presented token found in the store: its session, the refresh
// generation the token belongs to (0 for session tokens), and the candidate
// lookup key that matched — exactly one of those passed in, so a hit under
// an older version than the active one can be re-keyed (touch) without
// deriving the candidates again.
struct CredentialHit {
  Session session;
  std::uint64_t generation = 0;
  LookupKey key;
};

enum class RotateResult : std::uint8_t {
  rotated,       // the compare-and-swap won: generation is now expected + 1
  lost_race,     // the generation had already moved (another renewal won)
  session_gone,  // no such session, or it is revoked
};

struct RevokeResult {
  std::vector<std::string> session_ids;  // the sessions this call revoked
};

class EventOutbox;  // tessera/outbox.hpp

// A session's link to the login it came from at an upstream identity
// provider (docs/upstream.md): the provider's issuer and its ids of the
// login, and optionally its refresh token (sealed with the TokenCipher,
// never returned) for the liveness refresh.
struct UpstreamLink {
  std::string issuer;  // the provider's `iss`
  std::string sid;     // its session id ("" when it gave none)
  std::string sub;     // its subject ("" when it gave none)
  std::optional<SealedToken> refresh_token;
  // The liveness refresh: due at next_check (with a refresh token); the
  // first of the transient failures in a row since the last answer.
  std::optional<UnixSeconds> next_check;
  std::optional<UnixSeconds> failing_since;
};

// A linked session whose liveness refresh is due.
struct UpstreamDue {
  std::string session_id;
  std::string subject;
  std::string family_id;  // the refresh token's sealing context (upstream_aad)
  UpstreamLink link;
};

// The storage port. Every method is atomic on its own; those marked (atomic)
// bundle several changes that must all happen or none. Implementations are
// thread-safe. Transient failures are store_unavailable; nothing else fails
// except invalid_request for a broken argument.
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // (atomic) Inserts `session` and its first credential (`credential` under
  // `kind`, generation session.generation); then, if the subject holds more
  // than `max_live` live sessions at `now`, revokes the least recently seen
  // ones with RevokeReason::evicted. If `replaces` names a session, it is
  // revoked with RevokeReason::rotated in the same write, and it must be
  // unrevoked until then: otherwise nothing is written and the error is
  // session_revoked (of two concurrent rotations of one session, one wins).
  // Returns the sessions revoked.
  [[nodiscard]] virtual Result<RevokeResult> create(const Session& session, TokenKind kind,
                                                    const LookupKey& credential,
                                                    std::size_t max_live, UnixSeconds now,
                                                    std::optional<std::string_view> replaces) = 0;

  [[nodiscard]] virtual Result<std::optional<Session>> find(std::string_view session_id) = 0;

  // The first candidate that names a credential of `kind`, with its session;
  // CredentialHit::key is that candidate.
  [[nodiscard]] virtual Result<std::optional<CredentialHit>> find_by_credential(
      TokenKind kind, std::span<const LookupKey> candidates) = 0;

  // (atomic) Compare-and-swap on the generation: if the session is not
  // revoked and its generation is `expected`, set it to expected + 1, record
  // `next` as the refresh credential of that generation, set rotated_at and
  // sealed_current, last_seen_at = now and, when the session has an idle
  // deadline, idle_expires_at. Older credentials stay (replay detection)
  // until the session is deleted.
  [[nodiscard]] virtual Result<RotateResult> rotate(std::string_view session_id,
                                                    std::uint64_t expected, const LookupKey& next,
                                                    const SealedToken& sealed, UnixSeconds now,
                                                    std::optional<UnixSeconds> idle_expires_at) = 0;

  // Records activity. Optionally re-keys a credential found under an old
  // lookup key version (old → fresh). A revoked session is not touched.
  [[nodiscard]] virtual Status touch(std::string_view session_id, UnixSeconds last_seen,
                                     std::optional<UnixSeconds> idle_expires_at,
                                     std::optional<std::pair<LookupKey, LookupKey>> rekey) = 0;

  // Revocations set revoked_at/revoke_reason on sessions that are not yet
  // revoked (monotonic: a revoked session is never revived) and return them.
  [[nodiscard]] virtual Result<RevokeResult> revoke_session(std::string_view session_id,
                                                            RevokeReason reason,
                                                            UnixSeconds now) = 0;
  // (atomic) Every session of the family.
  [[nodiscard]] virtual Result<RevokeResult> revoke_family(std::string_view family_id,
                                                           RevokeReason reason,
                                                           UnixSeconds now) = 0;
  // (atomic) Every session of the subject, but `except` if given.
  [[nodiscard]] virtual Result<RevokeResult> revoke_subject(std::string_view subject,
                                                            std::optional<std::string_view> except,
                                                            RevokeReason reason,
                                                            UnixSeconds now) = 0;

  // Live sessions of the subject at `now`, most recently seen first.
  [[nodiscard]] virtual Result<std::vector<Session>> list_live(std::string_view subject,
                                                               UnixSeconds now) = 0;

  // Deletes sessions (and their credentials) whose expires_at, or
  // revoked_at, is before `before`. Returns how many sessions went.
  [[nodiscard]] virtual Result<std::size_t> cleanup(UnixSeconds before) = 0;

  // Epochs: a per-subject counter, 0 until first bumped. The subject ""
  // holds the global epoch.
  [[nodiscard]] virtual Result<std::uint64_t> epoch(std::string_view subject) = 0;
  [[nodiscard]] virtual Result<std::uint64_t> bump_epoch(std::string_view subject) = 0;
  // (atomic) Sets the global epoch to one more than the largest epoch held
  // (global or any subject's) and returns it, so that every subject's
  // effective epoch moves past every value a token was minted under. A
  // plain bump_epoch("") would not: a subject already above the global
  // epoch would keep its tokens. Concurrent global bumps each move it; a
  // subject bump racing with it is ordered either way.
  [[nodiscard]] virtual Result<std::uint64_t> bump_global_epoch() = 0;

  // --- Links to an upstream identity provider (docs/upstream.md) ---------
  // Optional: a store without them answers invalid_request ("this store
  // keeps no upstream links"), and issuing a linked session fails.
  [[nodiscard]] virtual bool keeps_upstream_links() const noexcept { return false; }
  // (atomic) create() and the session's link, in one write.
  [[nodiscard]] virtual Result<RevokeResult> create_linked(const Session& session, TokenKind kind,
                                                           const LookupKey& credential,
                                                           std::size_t max_live, UnixSeconds now,
                                                           const UpstreamLink& link) {
    (void)session, (void)kind, (void)credential, (void)max_live, (void)now, (void)link;
    return fail(ErrorCode::invalid_request, "this store keeps no upstream links");
  }
  // (atomic) Revokes the live sessions linked to `issuer` and `sid` (when
  // `sid` is non-empty), or else to `issuer` and `sub`. A session created by
  // create(..., replaces) keeps the link of the session it replaces.
  [[nodiscard]] virtual Result<RevokeResult> revoke_upstream(std::string_view issuer,
                                                             std::string_view sid,
                                                             std::string_view sub,
                                                             RevokeReason reason, UnixSeconds now) {
    (void)issuer, (void)sid, (void)sub, (void)reason, (void)now;
    return fail(ErrorCode::invalid_request, "this store keeps no upstream links");
  }
  // (atomic) Claims up to `max` live linked sessions with a refresh token
  // whose next_check is at or before `now`, the most overdue first, and
  // moves their next_check to now + lease: another refresher (another
  // authority on the same database) skips them meanwhile, and they are due
  // again if this one dies. UpstreamDue::link holds next_check as it was.
  [[nodiscard]] virtual Result<std::vector<UpstreamDue>> upstream_due(UnixSeconds now,
                                                                      std::size_t max,
                                                                      std::chrono::seconds lease) {
    (void)now, (void)max, (void)lease;
    return fail(ErrorCode::invalid_request, "this store keeps no upstream links");
  }
  // After a liveness refresh: the rotated refresh token (when the provider
  // gave one), the next check, and the failure streak (nullopt: none).
  [[nodiscard]] virtual Status upstream_checked(std::string_view session_id,
                                                const std::optional<SealedToken>& rotated,
                                                UnixSeconds next_check,
                                                std::optional<UnixSeconds> failing_since) {
    (void)session_id, (void)rotated, (void)next_check, (void)failing_since;
    return fail(ErrorCode::invalid_request, "this store keeps no upstream links");
  }

  // The transactional outbox of this store (tessera/outbox.hpp), or null
  // when it has none: then nothing is recorded with its changes.
  [[nodiscard]] virtual EventOutbox* outbox() noexcept { return nullptr; }

  using Epochs = tessera::Epochs;
  // The global epoch and the subject's, read together (one round trip where
  // the adapter can; the default asks twice).
  [[nodiscard]] virtual Result<Epochs> epochs(std::string_view subject) {
    auto global = epoch("");
    if (!global) return std::unexpected(global.error());
    auto own = epoch(subject);
    if (!own) return std::unexpected(own.error());
    return Epochs{*global, *own};
  }

  // --- Calls bundled with what the engine decides on next ----------------
  // A renewal needs the credential's session and the subject's epochs (the
  // access token carries the effective epoch), then the compare-and-swap
  // and, when it lost, the session as the swap found it. Where a round trip
  // is dear (PostgreSQL) each pair is one statement. The defaults compose
  // the calls above and leave `epochs` empty, so that an adapter that does
  // not override them makes exactly the calls it made before; the engine
  // then reads the epochs itself when it needs them (docs/design.md §7.1).

  // find_by_credential, and with a hit, optionally, the epochs of its
  // session's subject read by the same statement.
  struct CredentialRead {
    std::optional<CredentialHit> hit;
    std::optional<Epochs> epochs;  // nullopt: not read here
  };
  [[nodiscard]] virtual Result<CredentialRead> find_by_credential_with_epochs(
      TokenKind kind, std::span<const LookupKey> candidates) {
    auto hit = find_by_credential(kind, candidates);
    if (!hit) return std::unexpected(hit.error());
    return CredentialRead{std::move(*hit), std::nullopt};
  }

  // rotate (its swap as atomic as there); when the swap did not happen, also the session as the
  // swap found it (nullopt: it is gone), as find(session_id) would answer
  // right after; and optionally the epochs of `subject` (the session's)
  // read by the same statement as the swap. With rotated, `session` is
  // nullopt: the caller knows what it wrote.
  struct RotateOutcome {
    RotateResult result = RotateResult::session_gone;
    std::optional<Session> session;
    std::optional<Epochs> epochs;  // nullopt: not read here
  };
  [[nodiscard]] virtual Result<RotateOutcome> rotate_with_epochs(
      std::string_view session_id, std::string_view subject, std::uint64_t expected,
      const LookupKey& next, const SealedToken& sealed, UnixSeconds now,
      std::optional<UnixSeconds> idle_expires_at) {
    (void)subject;
    auto r = rotate(session_id, expected, next, sealed, now, idle_expires_at);
    if (!r) return std::unexpected(r.error());
    RotateOutcome out{*r, std::nullopt, std::nullopt};
    if (*r == RotateResult::rotated) return out;
    auto fresh = find(session_id);
    if (!fresh) return std::unexpected(fresh.error());
    out.session = std::move(*fresh);
    return out;
  }
};

}  // namespace tessera
