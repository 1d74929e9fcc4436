// Access tokens: JWS compact JWTs (RFC 7519) in the RFC 9068 profile.
//
// Header: {"alg", "kid", "typ": "at+jwt"}. Claims: iss, sub, aud (string or
// array), exp, iat, nbf (optional), jti, sid and sv (tessera's), and bounded
// custom claims. Verification does no I/O and takes `now` as an argument;
// fetching keys is someone else's job.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/jwk.hpp"
#include "tessera/key_set.hpp"

namespace tessera {

inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;
inline constexpr std::size_t kMaxCustomClaimsBytes = 4 * 1024;

struct JwtClaims {
  std::string iss;
  std::string sub;
  std::vector<std::string> aud;  // one → emitted as a string, more → an array
  UnixSeconds iat{};
  UnixSeconds exp{};
  std::optional<UnixSeconds> nbf;
  std::string jti;                  // emitted when non-empty
  std::optional<std::string> sid;   // session id (L2 liveness)
  std::optional<std::uint64_t> sv;  // subject epoch (L1)
  // The key the token is bound to (RFC 9449 §6.1, a DPoP-bound token):
  // emitted as "cnf": {"jkt": <RFC 7638 thumbprint>}. On verifying, a cnf
  // object with a string jkt fills it; a cnf of any other form is an
  // invalid token (a binding this verifier cannot honour is never ignored).
  std::optional<std::string> cnf_jkt;
  // Further claims as the text of a JSON object ("" for none). On signing it
  // may not repeat a registered claim and is at most kMaxCustomClaimsBytes;
  // on verifying it holds every claim the token has beyond the above.
  std::string custom;
};

// Signs `claims` with `key` (which must hold its private half). The header
// is {"alg":<key's>,"kid":<key's>,"typ":"at+jwt"}. invalid_request for
// custom claims that are not an object, too large, or shadow a registered
// claim; key_invalid for a public-only key.
[[nodiscard]] Result<std::string> sign_jwt(const Key& key, const JwtClaims& claims);
// A JWS of another kind (Security Event Tokens: typ secevent+jwt): the
// header {"alg", "kid", "typ"}, `payload` (a JSON object's text) as it is.
[[nodiscard]] Result<std::string> sign_jws(const Key& key, std::string_view typ,
                                           std::string_view payload);

struct VerifyOptions {
  std::string issuer;                  // when non-empty, iss must equal it
  std::vector<std::string> audiences;  // when non-empty, aud must name one
  std::chrono::seconds leeway{30};     // for exp, nbf and iat
  std::size_t max_token_bytes = kMaxTokenBytes;
  bool require_at_jwt_typ = true;  // the header's typ must be `typ` (RFC 9068 §4, RFC 8725 §3.11)
  // The kind of JWT expected, lower case; "application/" before it is
  // accepted too. at+jwt for access tokens, logout+jwt for back-channel
  // logout tokens: one kind is never accepted where another is expected.
  std::string typ = "at+jwt";
  bool require_sub = true;  // a logout token may name only its sid
};

struct VerifiedJwt {
  Algorithm alg;
  std::string kid;
  JwtClaims claims;
};

// Runs, in this order, stopping at the first failure (each its own code):
// size (token_too_large) → structure, base64url, header JSON
// (invalid_token; a "crit" header is refused) → alg allowed
// (algorithm_not_allowed) → key by kid (key_not_found) → alg pinned to the
// key (algorithm_mismatch) → signature (signature_invalid) → typ
// (token_type_invalid) → payload JSON and claim types (invalid_token) → iss
// (issuer_mismatch) → aud (audience_mismatch) → exp (token_expired) →
// nbf, iat (token_not_yet_valid) → a key retired before iat (key_retired).
// exp, iat and sub are required.
// Thread-safe for concurrent calls with the same arguments.
// A retired key verifies only what it signed before its retirement, and
// this long after (other authority instances pick a rotation up within
// key_reload_interval, and clocks differ): a token with a later iat is
// key_retired, so a key taken out of signing cannot sign anything new.
inline constexpr std::chrono::seconds kRetiredKeyGrace{60};

[[nodiscard]] Result<VerifiedJwt> verify_jwt(std::string_view token, const KeySet& keys,
                                             const VerifyOptions& options, UnixSeconds now);

// The `kid` named by a token's header, verifying nothing; nullopt when the
// header cannot be read or names no kid. For a caller deciding whether a
// key_not_found is worth a look for new keys (a token without kid never is).
[[nodiscard]] std::optional<std::string> peek_kid(std::string_view token);

}  // namespace tessera
