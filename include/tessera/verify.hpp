// The resource side (docs/design.md §5): verify access tokens locally with public
// keys, then optionally the subject's epoch (L1) and the session's liveness
// (L2). No private key, no rotation, no writes. The ports (keys, epochs,
// liveness) are where I/O happens; the verifier itself takes time from a
// Clock and does none.
//
// Transient answers fail closed: an epoch that cannot be read is
// epoch_unavailable, a liveness that cannot be checked is
// liveness_unavailable, a key source that cannot be reached while a token
// needs a key it lacks is jwks_unavailable — all HTTP 503, never "admit".
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tessera/clock.hpp"
#include "tessera/dpop.hpp"
#include "tessera/error.hpp"
#include "tessera/jwt.hpp"
#include "tessera/key_set.hpp"
#include "tessera/session.hpp"

namespace tessera::verify {

// Where the verification keys come from. Thread-safe.
class KeySource {
 public:
  virtual ~KeySource() = default;
  // The current key set; never null once the source was created.
  [[nodiscard]] virtual std::shared_ptr<const KeySet> keys() = 0;
  // A token named a kid that keys() lacks: the source may look again (at
  // most once per its interval). Answers the set to retry with, or nullptr
  // when it has nothing to offer beyond keys() (the token is then
  // key_not_found); jwks_unavailable when the key source could not be
  // reached, so that whether the kid exists is unknown (transient, 503:
  // never reported as key_not_found, which would log the user out).
  [[nodiscard]] virtual Result<std::shared_ptr<const KeySet>> refresh_for_unknown_kid() = 0;
};

// A fixed key set (a JWKS file, or the authority's own keys in one process).
class StaticKeySource final : public KeySource {
 public:
  explicit StaticKeySource(KeySet keys) : keys_(std::make_shared<const KeySet>(std::move(keys))) {}
  std::shared_ptr<const KeySet> keys() override { return keys_; }
  Result<std::shared_ptr<const KeySet>> refresh_for_unknown_kid() override { return nullptr; }

 private:
  std::shared_ptr<const KeySet> keys_;
};

// The authority's own rotating key set as a key source (in-process
// verification: the authority itself, or a single node): every call reads
// the current set, so a rotation or reload is seen at the next
// verification; there is nothing to fetch again for an unknown kid. The
// SharedKeySet must outlive it.
class SharedKeySource final : public KeySource {
 public:
  explicit SharedKeySource(const SharedKeySet& keys) : keys_(keys) {}
  std::shared_ptr<const KeySet> keys() override { return keys_.get(); }
  Result<std::shared_ptr<const KeySet>> refresh_for_unknown_kid() override { return nullptr; }

 private:
  const SharedKeySet& keys_;
};

// L1: the subject's current epoch. Errors: epoch_unavailable (transient).
class EpochSource {
 public:
  virtual ~EpochSource() = default;
  [[nodiscard]] virtual Result<std::uint64_t> current(std::string_view subject) = 0;
};

// An in-process cache in front of another source (Redis, the authority over
// HTTP): answers from memory for `ttl`, asks `inner` on a miss and writes
// the answer back. invalidate() drops a subject at once (pub/sub on bump).
// Bounded: at most `max_entries` subjects, the oldest dropped first.
class CachedEpochSource final : public EpochSource {
 public:
  CachedEpochSource(EpochSource& inner, const Clock& clock, std::chrono::milliseconds ttl,
                    std::size_t max_entries = 100'000);
  Result<std::uint64_t> current(std::string_view subject) override;
  void invalidate(std::string_view subject);
  void invalidate_all();

 private:
  struct Entry {
    std::uint64_t epoch;
    UnixMillis fetched;
  };
  EpochSource& inner_;
  const Clock& clock_;
  std::chrono::milliseconds ttl_;
  std::size_t max_entries_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::uint64_t generation_ = 0;  // bumped by invalidate_all: late fetches don't write back
};

// L2: is the session live? Errors: liveness_unavailable (transient).
enum class Liveness : std::uint8_t { live, revoked };
struct LivenessQuery {
  std::string_view session_id;
  std::string_view token;  // the access token itself, for checks that introspect it
};
class LivenessCheck {
 public:
  virtual ~LivenessCheck() = default;
  [[nodiscard]] virtual Result<Liveness> check(const LivenessQuery& query) = 0;
};

// Asks the session store directly (a resource service that shares the
// authority's database, or the authority itself).
class StoreLivenessCheck final : public LivenessCheck {
 public:
  StoreLivenessCheck(SessionStore& store, const Clock& clock) : store_(store), clock_(clock) {}
  Result<Liveness> check(const LivenessQuery& query) override;

 private:
  SessionStore& store_;
  const Clock& clock_;
};

struct VerifierOptions {
  std::string issuer;                  // required
  std::vector<std::string> audiences;  // required: the token's aud must name one
  std::chrono::seconds leeway{30};
  std::size_t max_token_bytes = kMaxTokenBytes;
  // Verified-token cache: entries (0 turns it off). Keyed by SHA-256 of the
  // token; an entry ends at the token's exp. L1 and L2 still run on a hit.
  std::size_t cache_entries = 10'000;
  // The proofs of DPoP-bound tokens: iat window and replay cache (one per
  // verifier: share the verifier across a process's threads).
  DpopOptions dpop;
  // false: a bound token verifies without its proof — for callers that are
  // not the token's audience at a request: introspection (RFC 9449 §6.2,
  // which answers cnf.jkt and leaves the proof to the resource) and logout
  // by access token. A resource never turns it off.
  bool require_dpop_proof = true;
};

// A verified token's claims and the kid of the key that verified it.
struct VerifiedToken {
  JwtClaims claims;
  std::string kid;
};

struct VerifiedAccess {
  // Shared with the verified-token cache, read-only: a hit copies nothing.
  std::shared_ptr<const VerifiedToken> token;
  bool from_cache = false;

  [[nodiscard]] const JwtClaims& claims() const { return token->claims; }
  [[nodiscard]] const std::string& kid() const { return token->kid; }
};

// Thread-safe. The key, epoch and liveness sources must outlive it.
class AccessVerifier {
 public:
  AccessVerifier(VerifierOptions options, KeySource& keys, const Clock& clock,
                 EpochSource* epochs = nullptr, LivenessCheck* liveness = nullptr);
  ~AccessVerifier();

  // The checks of docs/design.md §5.1 in order, stopping at the first failure with
  // its own code: size → parse → key by kid (one refresh of the key source
  // on an unknown kid) → algorithm pinned to the key → signature → typ →
  // iss → aud → exp/nbf/iat with leeway → L1 epoch (epoch_stale; only when
  // wired and the token has sv) → L2 liveness (session_revoked; only when
  // wired and the token has sid). An unknown kid is key_not_found when the
  // key source answered without it, jwks_unavailable when it could not be
  // reached.
  [[nodiscard]] Result<VerifiedAccess> verify(std::string_view token);
  // The same for a request that may carry a DPoP proof. A token bound to a
  // key (cnf.jkt, RFC 9449 §6) needs `dpop` to hold a proof by that key for
  // this request (§7.1): htm and htu the request's, ath the token's hash,
  // iat within the window, a jti this verifier has not seen. The check runs
  // after the signature and claims (also on a verified-token cache hit: the
  // cache skips the token's signature, never its proof) and before L1 and
  // L2. dpop_proof_invalid without a proof (a caller that saw the Bearer
  // scheme passes none: a bound token is never a bearer token) or with a
  // bad one; dpop_key_mismatch for a valid proof by another key. An
  // unbound token ignores `dpop`.
  [[nodiscard]] Result<VerifiedAccess> verify(std::string_view token, const DpopPresented* dpop);

 private:
  struct Cache;
  VerifierOptions options_;
  VerifyOptions jwt_options_;
  KeySource& keys_;
  const Clock& clock_;
  EpochSource* epochs_;
  LivenessCheck* liveness_;
  std::unique_ptr<Cache> cache_;
  DpopVerifier dpop_;
};

// An Authorization header's access token (RFC 6750 §2.1, RFC 9449 §7.1):
// "Bearer <token>" or "DPoP <token>", the scheme in any case. nullopt for
// anything else.
struct PresentedToken {
  std::string_view token;
  bool dpop_scheme = false;
};
[[nodiscard]] std::optional<PresentedToken> parse_authorization(std::string_view header);

// What an HTTP resource server answers for a failed verification: 401 with
// a Bearer challenge for a token problem (a DPoP challenge for a proof
// problem), 503 for a transient one (fail closed: the client may retry; it
// is not told to log in again).
struct HttpRejection {
  unsigned status;
  std::string www_authenticate;  // empty for 503
};
[[nodiscard]] HttpRejection to_http(const Error& error);

}  // namespace tessera::verify
