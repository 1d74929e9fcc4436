// Errors: one closed set of codes with stable snake_case names (docs/design.md §6).
//
// Every fallible library call returns Result<T> = std::expected<T, Error>; no
// exception crosses the public API. The mapping to HTTP status and RFC 9457
// problem details happens only at the HTTP edge.
//
// Which code to use — a decision procedure, in order:
//   1. The caller's input is structurally wrong (missing field, bad type,
//      out-of-range setting): invalid_request, or config_invalid at start-up.
//   2. A token cannot be read at all (bad base64, bad JSON, wrong shape,
//      wrong prefix): invalid_token; larger than the limit: token_too_large.
//   3. A token reads but no key applies: key_not_found; the key exists but
//      is pinned to another algorithm: algorithm_mismatch; the algorithm is
//      not on the allow-list (`none` among them): algorithm_not_allowed; the
//      signature does not verify: signature_invalid; the key was retired
//      before the token was issued: key_retired. "No key applies" is never
//      reported as a bad signature.
//   4. The token is authentic but its claims refuse it: token_type_invalid,
//      issuer_mismatch, audience_mismatch, token_expired, token_not_yet_valid,
//      epoch_stale.
//   5. The session behind it refuses it: session_* codes,
//      refresh_token_reused, fingerprint_mismatch.
//   A DPoP proof (RFC 9449, tessera/dpop.hpp) that refuses the request:
//      dpop_proof_invalid; a valid proof by another key than the bound one:
//      dpop_key_mismatch; a nonce required and missing or stale:
//      use_dpop_nonce.
//   6. A dependency did not answer: store_unavailable, epoch_unavailable,
//      liveness_unavailable, jwks_unavailable (the key source could not be
//      reached while looking for a key), upstream_unavailable (a party the
//      authority calls out to: an event receiver, an upstream identity
//      provider). These are transient: the caller may retry, and
//      verification fails closed (never admits on them).
//   7. Anything that is our bug: internal.
// Codes 2–5 are final for that token: retrying the same token cannot help.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace tessera {

enum class ErrorCode : std::uint8_t {
  invalid_request,
  config_invalid,
  invalid_token,
  token_too_large,
  token_type_invalid,
  token_expired,
  token_not_yet_valid,
  audience_mismatch,
  issuer_mismatch,
  algorithm_not_allowed,
  algorithm_mismatch,
  key_not_found,
  key_retired,
  key_invalid,
  signature_invalid,
  decryption_failed,
  session_not_found,
  session_expired,
  session_idle_timeout,
  session_revoked,
  refresh_token_reused,
  epoch_stale,
  fingerprint_mismatch,
  liveness_unavailable,
  epoch_unavailable,
  store_unavailable,
  jwks_unavailable,
  unauthorized,
  insufficient_scope,
  host_not_allowed,
  origin_not_allowed,
  payload_too_large,
  rate_limited,
  overloaded,
  upstream_unavailable,
  dpop_proof_invalid,
  dpop_key_mismatch,
  use_dpop_nonce,
  internal,
};

// How many codes there are: `internal` stays the last enumerator.
inline constexpr std::size_t kErrorCodeCount = static_cast<std::size_t>(ErrorCode::internal) + 1;

// Every code, in declaration order; for tests and tables (a code's value is
// its index here, checked below, so tables may be indexed by it).
inline constexpr ErrorCode kAllErrorCodes[] = {
    ErrorCode::invalid_request,
    ErrorCode::config_invalid,
    ErrorCode::invalid_token,
    ErrorCode::token_too_large,
    ErrorCode::token_type_invalid,
    ErrorCode::token_expired,
    ErrorCode::token_not_yet_valid,
    ErrorCode::audience_mismatch,
    ErrorCode::issuer_mismatch,
    ErrorCode::algorithm_not_allowed,
    ErrorCode::algorithm_mismatch,
    ErrorCode::key_not_found,
    ErrorCode::key_retired,
    ErrorCode::key_invalid,
    ErrorCode::signature_invalid,
    ErrorCode::decryption_failed,
    ErrorCode::session_not_found,
    ErrorCode::session_expired,
    ErrorCode::session_idle_timeout,
    ErrorCode::session_revoked,
    ErrorCode::refresh_token_reused,
    ErrorCode::epoch_stale,
    ErrorCode::fingerprint_mismatch,
    ErrorCode::liveness_unavailable,
    ErrorCode::epoch_unavailable,
    ErrorCode::store_unavailable,
    ErrorCode::jwks_unavailable,
    ErrorCode::unauthorized,
    ErrorCode::insufficient_scope,
    ErrorCode::host_not_allowed,
    ErrorCode::origin_not_allowed,
    ErrorCode::payload_too_large,
    ErrorCode::rate_limited,
    ErrorCode::overloaded,
    ErrorCode::upstream_unavailable,
    ErrorCode::dpop_proof_invalid,
    ErrorCode::dpop_key_mismatch,
    ErrorCode::use_dpop_nonce,
    ErrorCode::internal,
};
static_assert(std::size(kAllErrorCodes) == kErrorCodeCount,
              "kAllErrorCodes must list every ErrorCode");
static_assert(
    [] {
      for (std::size_t i = 0; i < kErrorCodeCount; ++i) {
        if (static_cast<std::size_t>(kAllErrorCodes[i]) != i) return false;
      }
      return true;
    }(),
    "kAllErrorCodes must list the codes in declaration order");

// The stable snake_case name ("session_revoked"). Never changes once shipped.
[[nodiscard]] std::string_view to_string(ErrorCode code) noexcept;
// The inverse of to_string; nullopt for an unknown name.
[[nodiscard]] std::optional<ErrorCode> error_code_from_string(std::string_view name) noexcept;
// True for the transient codes (a dependency did not answer): retryable, and
// fail-closed in verification.
[[nodiscard]] bool is_transient(ErrorCode code) noexcept;
// The HTTP status of a code: the one table used by the authority's HTTP edge
// and by resource services (verify::to_http). 400 invalid_request; 401 every
// token, session and credential code; 404 session_not_found; 413; 429; 503
// for the transient *_unavailable codes (fail closed); 500 internal and
// key_invalid (our own key is unusable). Like to_string, an exhaustive switch:
// a code without a status does not compile.
[[nodiscard]] unsigned http_status(ErrorCode code) noexcept;

// A code and a human-readable detail. The detail never holds a secret.
struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string detail;

  friend bool operator==(const Error&, const Error&) = default;
};

std::ostream& operator<<(std::ostream& os, ErrorCode code);
std::ostream& operator<<(std::ostream& os, const Error& error);

template <class T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

// `return fail(ErrorCode::invalid_token, "bad base64");`
[[nodiscard]] inline std::unexpected<Error> fail(ErrorCode code, std::string detail = {}) {
  return std::unexpected<Error>(Error{code, std::move(detail)});
}

}  // namespace tessera
