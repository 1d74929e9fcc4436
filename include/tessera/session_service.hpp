// The session lifecycle engine (docs/design.md §4): issue, validate, renew with
// replay detection, revoke, list, rotate, cleanup, epochs. No HTTP, no
// global state: every dependency is passed in. Thread-safe: any number of
// threads may call any method at once; correctness under races comes from
// the store's atomic operations (see session.hpp), not from locks here.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/audit.hpp"
#include "tessera/dpop.hpp"
#include "tessera/epoch.hpp"
#include "tessera/jwt.hpp"
#include "tessera/key_set.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/random.hpp"
#include "tessera/session.hpp"
#include "tessera/token_cipher.hpp"
#include "tessera/ulid.hpp"

namespace tessera {

namespace verify {
class AccessVerifier;
class KeySource;
}  // namespace verify

struct SessionPolicy {
  std::chrono::seconds session_ttl{std::chrono::days{30}};  // absolute; never slides
  std::chrono::seconds idle_timeout{0};                     // 0: no idle timeout
  // How often validation may write last_seen_at. Default: idle/20 (at least
  // 30 s), or 300 s without idle timeout.
  std::optional<std::chrono::seconds> touch_interval;
  std::chrono::seconds access_ttl{std::chrono::minutes{15}};
  std::chrono::seconds refresh_grace{10};     // 0..60
  std::size_t max_sessions_per_subject = 10;  // 0 is refused
  std::size_t max_data_bytes = 4096;
  bool bind_fingerprint = false;
  std::chrono::seconds cleanup_retention{std::chrono::days{7}};
  std::string issuer = "tessera";
  std::vector<std::string> audience = {"tessera"};
  // A session linked upstream with a refresh token is first checked this
  // long after issue (UpstreamRefresher, docs/upstream.md).
  std::chrono::seconds upstream_check_interval{std::chrono::minutes{5}};
  // DPoP proofs at renewal (iat window, replay cache; docs/bound-sessions.md).
  DpopOptions dpop;
  // Renewals of bound sessions also need a server nonce (RFC 9449 §8):
  // current_dpop_nonce(), which changes every dpop.iat_window and counts
  // for two of them. Stateless and the same on every instance that shares
  // the lookup keys.
  bool dpop_nonce = false;

  // config_invalid naming the bad setting.
  [[nodiscard]] Status validate() const;
  [[nodiscard]] std::chrono::seconds effective_touch_interval() const;
};

struct IssueRequest {
  std::string subject;
  SessionMode mode = SessionMode::cookie;
  SessionMetadata metadata;                // fingerprint_digest is computed, not taken
  std::string data = "{}";                 // JSON object, at most max_data_bytes
  std::string claims;                      // custom access-token claims, JSON object or ""
  std::optional<std::string> fingerprint;  // raw client fingerprint; only its digest is kept
  // The login at an upstream identity provider this session comes from
  // (docs/upstream.md): its issuer, its `sid` and `sub` (one at least), and
  // optionally its refresh token, kept sealed for the liveness refresh.
  struct Upstream {
    std::string issuer;
    std::string sid;
    std::string sub;
    std::optional<SecretString> refresh_token;
  };
  std::optional<Upstream> upstream;
  // Token mode: the RFC 7638 thumbprint of the client's DPoP key (RFC 9449
  // §10's dpop_jkt). The session is then bound: every renewal needs a DPoP
  // proof by that key, and every access token carries cnf.jkt.
  std::optional<std::string> dpop_jkt;
};

// The additional data an upstream refresh token is sealed under: its
// session's family (which a rotated cookie session keeps).
[[nodiscard]] inline std::string upstream_aad(std::string_view family_id) {
  return "upstream:" + std::string(family_id);
}

struct AccessToken {
  SecretString token;  // an at+jwt
  UnixSeconds expires_at{};
};

struct TokenPair {
  SecretString access_token;
  UnixSeconds access_expires_at{};
  SecretString refresh_token;
  UnixSeconds refresh_expires_at{};
};

struct IssuedSession {
  Session session;
  SecretString session_token;        // cookie mode
  std::optional<TokenPair> tokens;   // token mode
  std::vector<std::string> evicted;  // sessions revoked to honour the cap
};

struct RenewedSession {
  Session session;
  TokenPair tokens;
};

// What introspection may say about a session or refresh token.
struct TokenInspection {
  Session session;
  TokenKind kind = TokenKind::session;
  std::uint64_t generation = 0;  // the refresh generation the token belongs to
};

class SessionService {
 public:
  struct Deps {
    SessionStore& store;
    const LookupKeyRing& lookup;
    const TokenCipher& cipher;
    const SharedKeySet& keys;
    const Clock& clock;
    Random& random;
    AuditSink* audit = nullptr;        // optional: records events, nothing else
    EpochPublisher* epochs = nullptr;  // optional: told of every epoch move
  };

  // config_invalid if the policy is off, or if the key set has no active key.
  [[nodiscard]] static Result<std::unique_ptr<SessionService>> create(Deps deps,
                                                                      SessionPolicy policy);

  // Creates a session and its family in one write; returns its secret(s).
  // invalid_request for a bad subject (1..255 bytes of UTF-8), data or claims.
  [[nodiscard]] Result<IssuedSession> issue(const IssueRequest& request);

  // Cookie mode: the live session behind `session_token`, or why not:
  // invalid_token (malformed or unknown), session_revoked, session_expired,
  // session_idle_timeout, fingerprint_mismatch (and the session is revoked).
  // Writes at most once per touch interval per session.
  [[nodiscard]] Result<Session> validate(
      std::string_view session_token, std::optional<std::string_view> fingerprint = std::nullopt);

  // Token mode, the renewal algorithm of docs/design.md §4.3:
  //  1. current token → rotate (compare-and-swap on the generation);
  //  2. previous token within the grace window → the SAME successor again,
  //     with a fresh access token, no new generation;
  //  3. any older token, or the previous one after grace → the family is
  //     revoked, refresh_token_reused;
  //  4. invalid_token (malformed/unknown), session_revoked, session_expired,
  //     session_idle_timeout.
  // A session bound to a DPoP key (IssueRequest::dpop_jkt) first needs
  // `dpop` to hold a valid proof by that key (DpopVerifier::verify; with
  // SessionPolicy::dpop_nonce, carrying current_dpop_nonce() or the one
  // before; DpopPresented's own nonce fields are not read here):
  // dpop_proof_invalid without one or with a bad one, use_dpop_nonce for a
  // missing or stale nonce, and dpop_key_mismatch for a valid proof by
  // another key — the token is in the wrong hands: the family is revoked
  // (reason dpop_key_mismatch). An unbound session ignores `dpop`.
  [[nodiscard]] Result<RenewedSession> renew(std::string_view refresh_token,
                                             const DpopPresented* dpop = nullptr);

  // Logout with any of the session's tokens (session, refresh or access).
  // Idempotent: an unknown or already revoked session revokes 0. Scopes
  // family/others/all need the presented session to be live. An access
  // token goes through the resource side's chain (verify::AccessVerifier,
  // over the current signing keys, without epoch or liveness checks); for
  // scope session it may have expired (an authentic token of a live session
  // still ends it), for family/others/all it must verify now
  // (token_expired otherwise, nothing revoked).
  [[nodiscard]] Result<std::size_t> logout(std::string_view token, RevokeScope scope);

  // Service-side revocation of one session of `subject`; another subject's id
  // or an unknown id is session_not_found. Returns 1, or 0 if already revoked.
  [[nodiscard]] Result<std::size_t> revoke(std::string_view subject, std::string_view session_id);
  // The provider `issuer` ended a login: revokes the sessions linked to its
  // `sid` (when non-empty), else to its `sub` (reason upstream_revoked).
  // invalid_request when both are empty.
  [[nodiscard]] Result<std::size_t> revoke_upstream(std::string_view issuer, std::string_view sid,
                                                    std::string_view sub);
  // Every session of `subject`, but `except`.
  [[nodiscard]] Result<std::size_t> revoke_all(
      std::string_view subject, std::optional<std::string_view> except = std::nullopt);

  // Live sessions, most recently seen first.
  [[nodiscard]] Result<std::vector<Session>> list(std::string_view subject);

  // Cookie mode privilege change / anti-fixation: a new session in the same
  // family with the same absolute expiry; the old one is revoked ("rotated").
  [[nodiscard]] Result<IssuedSession> rotate_session(std::string_view session_token);

  // Read-only (RFC 7662 introspection of opaque tokens): the live session
  // whose current session token, or current or in-grace previous refresh
  // token, `token` is. nullopt for anything else (malformed, unknown, an
  // older generation, an ended session). Never writes, never audits, never
  // counts as a use of the token. Fails only with store_unavailable.
  [[nodiscard]] Result<std::optional<TokenInspection>> inspect(std::string_view token);

  // An access token for `s` carrying the effective epoch `epoch` (read with
  // epoch(s.subject)), as renew mints them: forward-auth's upstream token.
  // Checks nothing about the session: the caller has just validated it.
  [[nodiscard]] Result<AccessToken> mint_access(const Session& s, std::uint64_t epoch);

  // L2 liveness of a session id (for introspection and verifiers).
  [[nodiscard]] Result<bool> is_live(std::string_view session_id);

  // Effective epoch: max(global, subject). Bumping returns the new value;
  // every bump (also logout scope all) is told to Deps::epochs once the
  // store has it.
  [[nodiscard]] Result<std::uint64_t> epoch(std::string_view subject);
  [[nodiscard]] Result<std::uint64_t> bump_epoch(std::string_view subject);
  // The global epoch alone (0 until first bumped), and bumping it (break
  // glass): it becomes one more than the largest epoch held, global or any
  // subject's (SessionStore::bump_global_epoch), so every subject's
  // effective epoch moves and every access token minted before stops
  // verifying where epochs are checked. Revokes no session by itself.
  [[nodiscard]] Result<std::uint64_t> global_epoch();
  [[nodiscard]] Result<std::uint64_t> bump_global_epoch();

  // Deletes sessions ended more than cleanup_retention ago.
  [[nodiscard]] Result<std::size_t> cleanup();

  [[nodiscard]] const SessionPolicy& policy() const noexcept { return policy_; }

  // The server nonce a DPoP proof must carry now (SessionPolicy::dpop_nonce;
  // nullopt when off): base64url of the time slot and an HMAC of it under
  // the active lookup key. A client learns it from the DPoP-Nonce header.
  [[nodiscard]] std::optional<std::string> current_dpop_nonce() const;

  ~SessionService();
  SessionService(const SessionService&) = delete;
  SessionService& operator=(const SessionService&) = delete;

 private:
  SessionService(Deps deps, SessionPolicy policy);
  // Signs an access token carrying the effective epoch of `epochs`, or of
  // the subject's epochs read now when the caller has none.
  Result<TokenPair> mint(const Session& s, const SecretString& refresh, UnixSeconds now,
                         std::optional<SessionStore::Epochs> epochs);
  Result<AccessToken> sign_access(const Session& s, UnixSeconds now, std::uint64_t epoch);
  Result<Session> resolve(std::string_view token, bool expired_access_ok);
  Status check_live(const Session& s, UnixSeconds now) const;
  Status check_possession(const Session& s, const DpopPresented* dpop, UnixSeconds now);
  [[nodiscard]] std::string dpop_nonce_at(std::int64_t slot) const;
  void audit(AuditEvent event) const;
  // The system ended `s`'s family (a replay, a proof by another key).
  void audit_family_revoked(const Session& s, RevokeReason reason, const RevokeResult& revoked,
                            UnixSeconds now) const;
  Result<RevokeResult> revoke_scope(const Session& s, RevokeScope scope, RevokeReason reason,
                                    Actor actor, UnixSeconds now);

  Deps deps_;
  SessionPolicy policy_;
  UlidGenerator ids_;
  // Logout by access token: deps_.keys as a key source, and the verifier
  // twice — with the usual leeway, and with the session lifetime as leeway
  // for an expired token.
  std::unique_ptr<verify::KeySource> key_source_;
  std::unique_ptr<verify::AccessVerifier> access_;
  std::unique_ptr<verify::AccessVerifier> expired_access_;
  DpopVerifier dpop_;  // one replay cache for every renewal of this process
};

}  // namespace tessera
