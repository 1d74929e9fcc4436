#include "tessera/session_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <span>

#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/verify.hpp"

namespace tessera {

using std::chrono::seconds;

std::string_view to_string(SessionMode mode) noexcept {
  switch (mode) {
    case SessionMode::cookie:
      return "cookie";
    case SessionMode::token:
      return "token";
  }
  return "";
}

std::optional<SessionMode> session_mode_from_string(std::string_view s) noexcept {
  for (SessionMode m : {SessionMode::cookie, SessionMode::token}) {
    if (to_string(m) == s) return m;
  }
  return std::nullopt;
}

std::string_view to_string(RevokeScope scope) noexcept {
  switch (scope) {
    case RevokeScope::session:
      return "session";
    case RevokeScope::family:
      return "family";
    case RevokeScope::others:
      return "others";
    case RevokeScope::all:
      return "all";
  }
  return "";
}

std::optional<RevokeScope> revoke_scope_from_string(std::string_view s) noexcept {
  for (RevokeScope r : kAllRevokeScopes) {
    if (to_string(r) == s) return r;
  }
  return std::nullopt;
}

std::string_view to_string(RevokeReason reason) noexcept {
  switch (reason) {
    case RevokeReason::logout:
      return "logout";
    case RevokeReason::revoked:
      return "revoked";
    case RevokeReason::evicted:
      return "evicted";
    case RevokeReason::rotated:
      return "rotated";
    case RevokeReason::fingerprint_mismatch:
      return "fingerprint_mismatch";
    case RevokeReason::refresh_token_reused:
      return "refresh_token_reused";
    case RevokeReason::upstream_revoked:
      return "upstream_revoked";
    case RevokeReason::dpop_key_mismatch:
      return "dpop_key_mismatch";
  }
  return "";
}

std::optional<RevokeReason> revoke_reason_from_string(std::string_view s) noexcept {
  for (RevokeReason r : kAllRevokeReasons) {
    if (to_string(r) == s) return r;
  }
  return std::nullopt;
}

Status SessionPolicy::validate() const {
  auto bad = [](std::string_view setting, std::string_view why) {
    return fail(ErrorCode::config_invalid, fmt::format("{}: {}", setting, why));
  };
  if (session_ttl <= seconds{0}) return bad("session_ttl", "must be positive");
  if (idle_timeout < seconds{0}) return bad("idle_timeout", "must be 0 (off) or positive");
  if (idle_timeout > session_ttl) return bad("idle_timeout", "must not exceed session_ttl");
  if (touch_interval && *touch_interval <= seconds{0})
    return bad("touch_interval", "must be positive");
  if (access_ttl <= seconds{0}) return bad("access_ttl", "must be positive");
  if (refresh_grace < seconds{0} || refresh_grace > seconds{60})
    return bad("refresh_grace", "must be within 0..60 s");
  if (max_sessions_per_subject == 0)
    return bad("max_sessions_per_subject", "0 would refuse every login; must be >= 1");
  if (max_data_bytes == 0) return bad("max_data_bytes", "must be positive");
  if (cleanup_retention < seconds{0}) return bad("cleanup_retention", "must not be negative");
  if (issuer.empty()) return bad("issuer", "must not be empty");
  if (audience.empty()) return bad("audience", "needs at least one value");
  if (dpop.iat_window <= seconds{0} || dpop.iat_window > seconds{600})
    return bad("dpop_iat_window", "must be within 1..600 s");
  if (dpop.replay_capacity == 0) return bad("dpop_replay_capacity", "must be >= 1");
  return {};
}

seconds SessionPolicy::effective_touch_interval() const {
  if (touch_interval) return *touch_interval;
  if (idle_timeout > seconds{0}) return std::max(seconds{30}, idle_timeout / 20);
  return seconds{300};
}

namespace {

// Rule 2's window (docs/design.md §4.3). Times are whole seconds, so a
// rotation stamped t happened somewhere in [t, t+1): counting the window as
// `now - t <= grace` keeps a retry answered for at least `grace` (and less
// than grace + 1 s); `<` would shrink a 1 s window to anything in [0, 1).
bool within_grace(const Session& s, UnixSeconds now, std::chrono::seconds grace) {
  return grace > std::chrono::seconds{0} && s.rotated_at && now - *s.rotated_at <= grace;
}

// An RFC 7638 SHA-256 thumbprint as base64url without padding: 43
// characters, the last of which carries 2 bits (A, E, I, ... : 4 bits zero).
bool is_sha256_thumbprint(std::string_view t) {
  if (t.size() != 43) return false;
  for (const char c : t) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  }
  return std::string_view("AEIMQUYcgkosw048").find(t.back()) != std::string_view::npos;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    const unsigned c = p[i];
    std::size_t n = 0;
    unsigned cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and out-of-range code points.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

bool is_json_object(std::string_view text) {
  boost::json::error_code ec;
  auto v = boost::json::parse(text, ec);
  return !ec && v.is_object();
}

std::string fingerprint_digest(std::string_view fingerprint) {
  return base64url_encode(sha256(fingerprint));
}

// No verified-token cache: logout is rare, and a token that logs out is
// not presented again.
verify::VerifierOptions logout_verifier_options(const SessionPolicy& policy,
                                                std::optional<seconds> leeway) {
  verify::VerifierOptions o{.issuer = policy.issuer, .audiences = policy.audience};
  if (leeway) o.leeway = *leeway;
  o.cache_entries = 0;
  // Logout carries no proof: a bound access token may end its session
  // without one (the worst a thief can do with it is log its owner out).
  o.require_dpop_proof = false;
  return o;
}

}  // namespace

SessionService::SessionService(Deps deps, SessionPolicy policy)
    : deps_(deps),
      policy_(std::move(policy)),
      ids_(deps.clock, deps.random),
      key_source_(std::make_unique<verify::SharedKeySource>(deps_.keys)),
      access_(std::make_unique<verify::AccessVerifier>(
          logout_verifier_options(policy_, std::nullopt), *key_source_, deps_.clock)),
      expired_access_(std::make_unique<verify::AccessVerifier>(
          logout_verifier_options(policy_, policy_.session_ttl), *key_source_, deps_.clock)),
      dpop_(policy_.dpop) {}

SessionService::~SessionService() = default;

Result<std::unique_ptr<SessionService>> SessionService::create(Deps deps, SessionPolicy policy) {
  if (auto st = policy.validate(); !st) return std::unexpected(st.error());
  if (deps.keys.get()->active() == nullptr)
    return fail(ErrorCode::config_invalid, "keys: the key set has no active signing key");
  return std::unique_ptr<SessionService>(new SessionService(deps, std::move(policy)));
}

void SessionService::audit(AuditEvent event) const {
  if (deps_.audit != nullptr) deps_.audit->emit(event);
}

Status SessionService::check_live(const Session& s, UnixSeconds now) const {
  if (s.revoked()) return fail(ErrorCode::session_revoked, "session is revoked");
  if (now >= s.expires_at) return fail(ErrorCode::session_expired, "session has expired");
  if (s.idle_expires_at && now >= *s.idle_expires_at)
    return fail(ErrorCode::session_idle_timeout, "session was idle too long");
  return {};
}

Result<AccessToken> SessionService::sign_access(const Session& s, UnixSeconds now,
                                                std::uint64_t epoch) {
  const auto keys = deps_.keys.get();
  const Key* key = keys->active();
  if (key == nullptr) return fail(ErrorCode::internal, "no active signing key");
  JwtClaims c;
  c.iss = policy_.issuer;
  c.sub = s.subject;
  c.aud = policy_.audience;
  c.iat = now;
  c.exp = std::min(now + policy_.access_ttl, s.expires_at);
  c.jti = ids_.next().to_string();
  c.sid = s.id;
  c.sv = epoch;
  c.custom = s.claims;
  if (!s.bound_jkt.empty() && s.mode == SessionMode::token) c.cnf_jkt = s.bound_jkt;
  auto jwt = sign_jwt(*key, c);
  if (!jwt) return std::unexpected(jwt.error());
  return AccessToken{SecretString(std::move(*jwt)), c.exp};
}

Result<TokenPair> SessionService::mint(const Session& s, const SecretString& refresh,
                                       UnixSeconds now,
                                       std::optional<SessionStore::Epochs> epochs) {
  if (!epochs) {
    auto read = deps_.store.epochs(s.subject);
    if (!read) return std::unexpected(read.error());
    epochs = *read;
  }
  auto access = sign_access(s, now, effective_epoch(*epochs));
  if (!access) return std::unexpected(access.error());
  return TokenPair{std::move(access->token), access->expires_at, refresh, s.expires_at};
}

Result<AccessToken> SessionService::mint_access(const Session& s, std::uint64_t epoch) {
  return sign_access(s, deps_.clock.now(), epoch);
}

Result<IssuedSession> SessionService::issue(const IssueRequest& req) {
  if (req.subject.empty() || req.subject.size() > 255 || !valid_utf8(req.subject)) {
    return fail(ErrorCode::invalid_request, "subject must be 1..255 bytes of UTF-8");
  }
  const std::string data = req.data.empty() ? "{}" : req.data;
  if (data.size() > policy_.max_data_bytes) {
    return fail(ErrorCode::invalid_request,
                fmt::format("data exceeds {} bytes", policy_.max_data_bytes));
  }
  if (!is_json_object(data)) return fail(ErrorCode::invalid_request, "data must be a JSON object");
  if (!req.claims.empty() &&
      (req.claims.size() > kMaxCustomClaimsBytes || !is_json_object(req.claims))) {
    return fail(
        ErrorCode::invalid_request,
        fmt::format("claims must be a JSON object of at most {} bytes", kMaxCustomClaimsBytes));
  }
  for (const auto* field : {&req.metadata.ip, &req.metadata.user_agent, &req.metadata.device}) {
    if (field->size() > 1024 || !valid_utf8(*field))
      return fail(ErrorCode::invalid_request,
                  "metadata fields must be UTF-8 of at most 1024 bytes");
  }
  if (req.upstream) {
    const auto& u = *req.upstream;
    auto bounded = [](const std::string& v) { return v.size() <= 1024 && valid_utf8(v); };
    if (u.issuer.empty() || !bounded(u.issuer) || !bounded(u.sid) || !bounded(u.sub))
      return fail(ErrorCode::invalid_request,
                  "upstream: issuer is required; issuer, sid and sub are UTF-8 of at most 1024 "
                  "bytes");
    if (u.sid.empty() && u.sub.empty())
      return fail(ErrorCode::invalid_request, "upstream: sid or sub is required");
    if (u.refresh_token && (u.refresh_token->empty() || u.refresh_token->reveal().size() > 8192))
      return fail(ErrorCode::invalid_request, "upstream: refresh_token must be 1..8192 bytes");
    if (!deps_.store.keeps_upstream_links())
      return fail(ErrorCode::invalid_request, "this store keeps no upstream links");
  }
  if (req.dpop_jkt) {
    if (req.mode != SessionMode::token)
      return fail(ErrorCode::invalid_request, "dpop_jkt binds token-mode sessions only");
    if (!is_sha256_thumbprint(*req.dpop_jkt))
      return fail(ErrorCode::invalid_request,
                  "dpop_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)");
  }
  const UnixSeconds now = deps_.clock.now();
  // Read once: the session's epoch_at_issue and its first access token's
  // sv are the same value.
  auto epochs = deps_.store.epochs(req.subject);
  if (!epochs) return std::unexpected(epochs.error());
  const std::uint64_t epoch = effective_epoch(*epochs);

  Session s;
  s.id = ids_.next().to_string();
  s.family_id = ids_.next().to_string();
  s.subject = req.subject;
  s.mode = req.mode;
  s.created_at = now;
  s.last_seen_at = now;
  s.expires_at = now + policy_.session_ttl;
  if (policy_.idle_timeout > seconds{0}) s.idle_expires_at = now + policy_.idle_timeout;
  s.epoch_at_issue = epoch;
  s.metadata = req.metadata;
  s.metadata.fingerprint_digest =
      req.fingerprint ? fingerprint_digest(*req.fingerprint) : std::string();
  s.data = data;
  s.claims = req.claims;
  if (req.dpop_jkt) s.bound_jkt = *req.dpop_jkt;

  IssuedSession out;
  const TokenKind kind = req.mode == SessionMode::cookie ? TokenKind::session : TokenKind::refresh;
  SecretString secret = generate_token(kind, deps_.random);
  std::optional<TokenPair> tokens;
  if (req.mode == SessionMode::token) {
    // Mint before writing: a session whose tokens could not be made is never stored.
    auto pair = mint(s, secret, now, *epochs);
    if (!pair) return std::unexpected(pair.error());
    tokens = std::move(*pair);
  }
  Result<RevokeResult> created;
  if (req.upstream) {
    UpstreamLink link{
        .issuer = req.upstream->issuer, .sid = req.upstream->sid, .sub = req.upstream->sub};
    if (req.upstream->refresh_token) {
      auto sealed = deps_.cipher.seal(*req.upstream->refresh_token, upstream_aad(s.family_id));
      if (!sealed) return std::unexpected(sealed.error());
      link.refresh_token = std::move(*sealed);
      link.next_check = now + policy_.upstream_check_interval;
    }
    created = deps_.store.create_linked(s, kind, deps_.lookup.derive(kind, secret),
                                        policy_.max_sessions_per_subject, now, link);
  } else {
    created = deps_.store.create(s, kind, deps_.lookup.derive(kind, secret),
                                 policy_.max_sessions_per_subject, now, std::nullopt);
  }
  if (!created) return std::unexpected(created.error());
  audit({.type = AuditEventType::issued,
         .at = now,
         .subject = s.subject,
         .session_id = s.id,
         .family_id = s.family_id});
  for (const auto& id : created->session_ids) {
    audit({.type = AuditEventType::evicted,
           .at = now,
           .subject = s.subject,
           .session_id = id,
           .reason = RevokeReason::evicted,
           .actor = Actor::system});
  }
  out.session = std::move(s);
  if (req.mode == SessionMode::cookie) out.session_token = std::move(secret);
  out.tokens = std::move(tokens);
  out.evicted = std::move(created->session_ids);
  return out;
}

Result<Session> SessionService::validate(std::string_view session_token,
                                         std::optional<std::string_view> fingerprint) {
  const UnixSeconds now = deps_.clock.now();
  auto fail_audit = [&](Error e, const Session* s) -> Result<Session> {
    audit({.type = AuditEventType::validate_failed,
           .at = now,
           .subject = s ? s->subject : "",
           .session_id = s ? s->id : "",
           .code = e.code});
    return std::unexpected(std::move(e));
  };
  auto token = parse_token(TokenKind::session, session_token);
  if (!token) return fail_audit(token.error(), nullptr);
  // Newest version first: candidates.front() is the active lookup key.
  const std::vector<LookupKey> candidates = deps_.lookup.candidates(TokenKind::session, *token);
  auto hit = deps_.store.find_by_credential(TokenKind::session, candidates);
  if (!hit) return std::unexpected(hit.error());
  if (!*hit) return fail_audit({ErrorCode::invalid_token, "unknown session token"}, nullptr);
  Session s = std::move((*hit)->session);
  if (auto st = check_live(s, now); !st) return fail_audit(st.error(), &s);

  if (!s.metadata.fingerprint_digest.empty() && policy_.bind_fingerprint) {
    const bool match = fingerprint && constant_time_equal(fingerprint_digest(*fingerprint),
                                                          s.metadata.fingerprint_digest);
    if (!match) {
      auto revoked = deps_.store.revoke_session(s.id, RevokeReason::fingerprint_mismatch, now);
      if (revoked && !revoked->session_ids.empty()) {
        audit({.type = AuditEventType::revoked,
               .at = now,
               .subject = s.subject,
               .session_id = s.id,
               .family_id = s.family_id,
               .scope = RevokeScope::session,
               .reason = RevokeReason::fingerprint_mismatch,
               .actor = Actor::system,
               .count = 1});
      }
      return fail_audit(
          {ErrorCode::fingerprint_mismatch, "fingerprint does not match the session's"}, &s);
    }
  }

  // Throttled touch: at most one write per touch interval, and a re-key when
  // the token was found under an old lookup key version.
  std::optional<std::pair<LookupKey, LookupKey>> rekey;
  if ((*hit)->key.version != candidates.front().version)
    rekey.emplace((*hit)->key, candidates.front());
  if (rekey || now - s.last_seen_at >= policy_.effective_touch_interval()) {
    std::optional<UnixSeconds> idle;
    if (s.idle_expires_at) idle = now + policy_.idle_timeout;
    if (deps_.store.touch(s.id, now, idle, rekey)) {  // a failed touch still admits
      s.last_seen_at = now;
      if (idle) s.idle_expires_at = idle;
    }
  }
  return s;
}

Result<RenewedSession> SessionService::renew(std::string_view refresh_token,
                                             const DpopPresented* dpop) {
  const UnixSeconds now = deps_.clock.now();
  auto token = parse_token(TokenKind::refresh, refresh_token);
  if (!token) return std::unexpected(token.error());
  // The lookup brings the subject's epochs where the store reads them in
  // the same statement; otherwise mint reads them when a token is signed.
  auto read = deps_.store.find_by_credential_with_epochs(
      TokenKind::refresh, deps_.lookup.candidates(TokenKind::refresh, *token));
  if (!read) return std::unexpected(read.error());
  if (!read->hit) return fail(ErrorCode::invalid_token, "unknown refresh token");
  const std::uint64_t presented = read->hit->generation;
  Session s = std::move(read->hit->session);
  std::optional<SessionStore::Epochs> epochs = read->epochs;
  // A bound session: possession of the key first, for every rule below (an
  // ended session answers as such without a proof being checked).
  if (!s.bound_jkt.empty()) {
    if (auto st = check_live(s, now); !st) return std::unexpected(st.error());
    if (auto st = check_possession(s, dpop, now); !st) return std::unexpected(st.error());
  }

  // Two passes at most: a lost compare-and-swap means another renewal won
  // just now, and the token is then "previous" for rule 2.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (auto st = check_live(s, now); !st) return std::unexpected(st.error());
    std::optional<UnixSeconds> idle;
    if (s.idle_expires_at) idle = now + policy_.idle_timeout;

    if (presented == s.generation) {  // rule 1: rotate
      SecretString next = generate_token(TokenKind::refresh, deps_.random);
      auto sealed = deps_.cipher.seal(next, s.id);
      if (!sealed) return std::unexpected(sealed.error());
      // The swap answers the epochs it read and, when it lost, the session
      // as it found it: the loser goes on to rule 2 without another read.
      auto r = deps_.store.rotate_with_epochs(s.id, s.subject, presented,
                                              deps_.lookup.derive(TokenKind::refresh, next),
                                              *sealed, now, idle);
      if (!r) return std::unexpected(r.error());
      epochs = r->epochs;  // those of the lookup are older than the swap
      if (r->result == RotateResult::rotated) {
        s.generation = presented + 1;
        s.rotated_at = now;
        s.sealed_current = *sealed;
        s.last_seen_at = std::max(s.last_seen_at, now);
        if (idle) s.idle_expires_at = idle;
        auto pair = mint(s, next, now, epochs);
        if (!pair) return std::unexpected(pair.error());
        audit({.type = AuditEventType::renewed,
               .at = now,
               .subject = s.subject,
               .session_id = s.id,
               .family_id = s.family_id,
               .count = s.generation});
        return RenewedSession{std::move(s), std::move(*pair)};
      }
      if (!r->session) return fail(ErrorCode::invalid_token, "session is gone");
      s = std::move(*r->session);
      continue;
    }

    if (presented + 1 == s.generation && within_grace(s, now, policy_.refresh_grace) &&
        s.sealed_current) {  // rule 2: idempotent retry inside the grace window
      auto successor = deps_.cipher.open(*s.sealed_current, s.id);
      if (!successor)
        return std::unexpected(Error{ErrorCode::internal, "cannot open the sealed successor"});
      auto pair = mint(s, *successor, now, epochs);
      if (!pair) return std::unexpected(pair.error());
      return RenewedSession{std::move(s), std::move(*pair)};
    }

    // Rule 3: replay. Whoever holds the newer token, someone holds a stolen
    // one: end the whole lineage.
    auto revoked = deps_.store.revoke_family(s.family_id, RevokeReason::refresh_token_reused, now);
    audit({.type = AuditEventType::replay_detected,
           .at = now,
           .subject = s.subject,
           .session_id = s.id,
           .family_id = s.family_id,
           .count = presented});
    if (!revoked) return std::unexpected(revoked.error());
    audit_family_revoked(s, RevokeReason::refresh_token_reused, *revoked, now);
    return fail(ErrorCode::refresh_token_reused,
                "refresh token was already used; the session family is revoked");
  }
  return fail(ErrorCode::store_unavailable, "renewal did not settle");
}

void SessionService::audit_family_revoked(const Session& s, RevokeReason reason,
                                          const RevokeResult& revoked, UnixSeconds now) const {
  audit({.type = AuditEventType::revoked,
         .at = now,
         .subject = s.subject,
         .session_id = s.id,
         .family_id = s.family_id,
         .scope = RevokeScope::family,
         .reason = reason,
         .actor = Actor::system,
         .count = revoked.session_ids.size()});
}

std::string SessionService::dpop_nonce_at(std::int64_t slot) const {
  // The MAC of a text no token can be (tokens start tss_ or tsr_), so a
  // nonce never equals, or reveals, any credential's lookup key.
  const LookupKey mac =
      deps_.lookup.derive(TokenKind::session, SecretString(fmt::format("dpop-nonce:{}", slot)));
  std::array<std::uint8_t, 24> raw{};
  for (int i = 0; i < 8; ++i)
    raw[static_cast<std::size_t>(i)] =
        static_cast<std::uint8_t>(static_cast<std::uint64_t>(slot) >> (56 - 8 * i));
  std::copy_n(mac.mac.begin(), 16, raw.begin() + 8);
  return base64url_encode(std::span<const std::uint8_t>(raw));
}

std::optional<std::string> SessionService::current_dpop_nonce() const {
  if (!policy_.dpop_nonce) return std::nullopt;
  return dpop_nonce_at(deps_.clock.now().time_since_epoch().count() /
                       policy_.dpop.iat_window.count());
}

Status SessionService::check_possession(const Session& s, const DpopPresented* dpop,
                                        UnixSeconds now) {
  if (dpop == nullptr || !dpop->proof)
    return fail(ErrorCode::dpop_proof_invalid,
                "this refresh token is bound to a DPoP key: a DPoP proof is required");
  DpopCheck check{.method = dpop->method, .url = dpop->url, .expected_jkt = s.bound_jkt};
  std::string current, previous;
  if (policy_.dpop_nonce) {
    const std::int64_t slot = now.time_since_epoch().count() / policy_.dpop.iat_window.count();
    current = dpop_nonce_at(slot);
    previous = dpop_nonce_at(slot - 1);
    check.nonce = current;
    check.previous_nonce = previous;
  }
  auto proof = dpop_.verify(*dpop->proof, check, now);
  if (proof) return {};
  if (proof.error().code != ErrorCode::dpop_key_mismatch) return std::unexpected(proof.error());
  // A genuine proof by another key with this refresh token: whoever sent it
  // holds the token but not its key. End the whole lineage, as for a replay.
  auto revoked = deps_.store.revoke_family(s.family_id, RevokeReason::dpop_key_mismatch, now);
  if (!revoked) return std::unexpected(revoked.error());
  audit_family_revoked(s, RevokeReason::dpop_key_mismatch, *revoked, now);
  return fail(ErrorCode::dpop_key_mismatch,
              "the DPoP proof is by another key than the refresh token's: the session family is "
              "revoked");
}

Result<Session> SessionService::resolve(std::string_view token, bool expired_access_ok) {
  std::optional<CredentialHit> found;
  for (TokenKind kind : {TokenKind::session, TokenKind::refresh}) {
    if (!token.starts_with(token_prefix(kind))) continue;
    auto parsed = parse_token(kind, token);
    if (!parsed) return std::unexpected(parsed.error());
    auto hit = deps_.store.find_by_credential(kind, deps_.lookup.candidates(kind, *parsed));
    if (!hit) return std::unexpected(hit.error());
    if (!*hit) return fail(ErrorCode::session_not_found, "no session for that token");
    return std::move((*hit)->session);
  }
  // An access token: the resource side's checks (size, key by kid,
  // algorithm, signature, typ, issuer, audience, time) find its session.
  // Authentic is enough: no epoch or liveness here, the session's own state
  // decides below. An expired one may still log its own session out
  // (`expired_access_ok`), so token_expired is then retried with the whole
  // session lifetime as leeway.
  auto v = access_->verify(token);
  if (!v && expired_access_ok && v.error().code == ErrorCode::token_expired)
    v = expired_access_->verify(token);
  if (!v) return std::unexpected(v.error());
  if (!v->claims().sid) return fail(ErrorCode::invalid_token, "access token has no session");
  auto s = deps_.store.find(*v->claims().sid);
  if (!s) return std::unexpected(s.error());
  if (!*s) return fail(ErrorCode::session_not_found, "no session for that token");
  return std::move(**s);
}

Result<RevokeResult> SessionService::revoke_scope(const Session& s, RevokeScope scope,
                                                  RevokeReason reason, Actor actor,
                                                  UnixSeconds now) {
  Result<RevokeResult> r;
  switch (scope) {
    case RevokeScope::session:
      r = deps_.store.revoke_session(s.id, reason, now);
      break;
    case RevokeScope::family:
      r = deps_.store.revoke_family(s.family_id, reason, now);
      break;
    case RevokeScope::others:
      r = deps_.store.revoke_subject(s.subject, s.id, reason, now);
      break;
    case RevokeScope::all: {
      auto bumped = bump_epoch(s.subject);
      if (!bumped) return std::unexpected(bumped.error());
      r = deps_.store.revoke_subject(s.subject, std::nullopt, reason, now);
      break;
    }
  }
  if (r) {
    audit({.type = AuditEventType::revoked,
           .at = now,
           .subject = s.subject,
           .session_id = s.id,
           .family_id = s.family_id,
           .scope = scope,
           .reason = reason,
           .actor = actor,
           .count = r->session_ids.size()});
  }
  return r;
}

Result<std::size_t> SessionService::logout(std::string_view token, RevokeScope scope) {
  const UnixSeconds now = deps_.clock.now();
  // An expired access token may end its own session (logging out after
  // expiry is normal), never its siblings: a leaked old token must not be
  // a "log this user out everywhere" capability.
  auto s = resolve(token, /*expired_access_ok=*/scope == RevokeScope::session);
  if (!s) {
    if (s.error().code == ErrorCode::session_not_found) return std::size_t{0};  // idempotent
    return std::unexpected(s.error());
  }
  if (scope != RevokeScope::session) {
    // A dead session's token may end itself, never its siblings.
    if (auto st = check_live(*s, now); !st) return std::size_t{0};
  }
  auto r = revoke_scope(*s, scope, RevokeReason::logout, Actor::user, now);
  if (!r) return std::unexpected(r.error());
  return r->session_ids.size();
}

Result<std::size_t> SessionService::revoke(std::string_view subject, std::string_view session_id) {
  auto s = deps_.store.find(session_id);
  if (!s) return std::unexpected(s.error());
  // Another subject's session is indistinguishable from a missing one.
  if (!*s || (*s)->subject != subject)
    return fail(ErrorCode::session_not_found, "no such session for this subject");
  auto r = revoke_scope(**s, RevokeScope::session, RevokeReason::revoked, Actor::service,
                        deps_.clock.now());
  if (!r) return std::unexpected(r.error());
  return r->session_ids.size();
}

Result<std::size_t> SessionService::revoke_upstream(std::string_view issuer, std::string_view sid,
                                                    std::string_view sub) {
  if (issuer.empty() || (sid.empty() && sub.empty()))
    return fail(ErrorCode::invalid_request, "an upstream issuer and its sid or sub are required");
  const UnixSeconds now = deps_.clock.now();
  auto r = deps_.store.revoke_upstream(issuer, sid, sub, RevokeReason::upstream_revoked, now);
  if (!r) return std::unexpected(r.error());
  for (const auto& id : r->session_ids) {
    audit({.type = AuditEventType::revoked,
           .at = now,
           .session_id = id,
           .scope = RevokeScope::session,
           .reason = RevokeReason::upstream_revoked,
           .actor = Actor::system,
           .count = 1});
  }
  return r->session_ids.size();
}

Result<std::size_t> SessionService::revoke_all(std::string_view subject,
                                               std::optional<std::string_view> except) {
  const UnixSeconds now = deps_.clock.now();
  auto r = deps_.store.revoke_subject(subject, except, RevokeReason::revoked, now);
  if (!r) return std::unexpected(r.error());
  audit({.type = AuditEventType::revoked,
         .at = now,
         .subject = std::string(subject),
         .scope = except ? RevokeScope::others : RevokeScope::all,
         .reason = RevokeReason::revoked,
         .actor = Actor::service,
         .count = r->session_ids.size()});
  return r->session_ids.size();
}

Result<std::vector<Session>> SessionService::list(std::string_view subject) {
  return deps_.store.list_live(subject, deps_.clock.now());
}

Result<IssuedSession> SessionService::rotate_session(std::string_view session_token) {
  auto old = validate(session_token);
  if (!old) return std::unexpected(old.error());
  if (old->mode != SessionMode::cookie)
    return fail(ErrorCode::invalid_request, "only cookie sessions rotate this way");
  const UnixSeconds now = deps_.clock.now();
  Session s = *old;
  s.id = ids_.next().to_string();
  s.created_at = now;
  s.last_seen_at = now;
  if (s.idle_expires_at) s.idle_expires_at = now + policy_.idle_timeout;
  s.revoked_at.reset();
  s.revoke_reason.reset();
  SecretString secret = generate_token(TokenKind::session, deps_.random);
  auto created =
      deps_.store.create(s, TokenKind::session, deps_.lookup.derive(TokenKind::session, secret),
                         policy_.max_sessions_per_subject, now, old->id);
  if (!created) return std::unexpected(created.error());
  audit({.type = AuditEventType::issued,
         .at = now,
         .subject = s.subject,
         .session_id = s.id,
         .family_id = s.family_id});
  audit({.type = AuditEventType::revoked,
         .at = now,
         .subject = s.subject,
         .session_id = old->id,
         .family_id = s.family_id,
         .scope = RevokeScope::session,
         .reason = RevokeReason::rotated,
         .actor = Actor::system,
         .count = 1});
  IssuedSession out;
  out.session = std::move(s);
  out.session_token = std::move(secret);
  for (auto& id : created->session_ids) {
    if (id != old->id) out.evicted.push_back(std::move(id));
  }
  return out;
}

Result<std::optional<TokenInspection>> SessionService::inspect(std::string_view token) {
  using Out = std::optional<TokenInspection>;
  auto kind = token_kind_of(token);
  if (!kind) return Out{};
  auto parsed = parse_token(*kind, token);
  if (!parsed) return Out{};
  auto hit = deps_.store.find_by_credential(*kind, deps_.lookup.candidates(*kind, *parsed));
  if (!hit) return std::unexpected(hit.error());
  if (!*hit) return Out{};
  const UnixSeconds now = deps_.clock.now();
  const Session& s = (*hit)->session;
  if (!s.live_at(now)) return Out{};
  const std::uint64_t g = (*hit)->generation;
  if (*kind == TokenKind::refresh) {
    const bool current = g == s.generation;
    const bool in_grace = g + 1 == s.generation && within_grace(s, now, policy_.refresh_grace);
    if (!current && !in_grace) return Out{};
  }
  return Out{TokenInspection{std::move((*hit)->session), *kind, g}};
}

Result<bool> SessionService::is_live(std::string_view session_id) {
  auto s = deps_.store.find(session_id);
  if (!s) return std::unexpected(s.error());
  return *s && (*s)->live_at(deps_.clock.now());
}

Result<std::uint64_t> SessionService::epoch(std::string_view subject) {
  auto e = deps_.store.epochs(subject);
  if (!e) return std::unexpected(e.error());
  return effective_epoch(*e);
}

Result<std::uint64_t> SessionService::bump_epoch(std::string_view subject) {
  if (subject.empty() || subject.size() > 255)
    return fail(ErrorCode::invalid_request, "subject must be 1..255 bytes");
  auto current = epoch(subject);
  if (!current) return std::unexpected(current.error());
  // Bump the subject's own counter past the global one if needed, so that
  // the effective epoch always moves.
  Result<std::uint64_t> bumped = deps_.store.bump_epoch(subject);
  while (bumped && *bumped <= *current) bumped = deps_.store.bump_epoch(subject);
  if (!bumped) return std::unexpected(bumped.error());
  audit({.type = AuditEventType::epoch_bumped,
         .at = deps_.clock.now(),
         .subject = std::string(subject),
         .count = *bumped});
  if (deps_.epochs != nullptr) deps_.epochs->epoch_moved(subject, *bumped);
  return *bumped;
}

Result<std::uint64_t> SessionService::global_epoch() {
  return deps_.store.epoch("");
}

Result<std::uint64_t> SessionService::bump_global_epoch() {
  auto bumped = deps_.store.bump_global_epoch();
  if (!bumped) return std::unexpected(bumped.error());
  audit({.type = AuditEventType::epoch_bumped, .at = deps_.clock.now(), .count = *bumped});
  if (deps_.epochs != nullptr) deps_.epochs->epoch_moved("", *bumped);
  return *bumped;
}

Result<std::size_t> SessionService::cleanup() {
  return deps_.store.cleanup(deps_.clock.now() - policy_.cleanup_retention);
}

}  // namespace tessera
