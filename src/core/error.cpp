#include "tessera/error.hpp"

namespace tessera {

std::string_view to_string(ErrorCode code) noexcept {
  // Exhaustive switch without default: a new code that lacks a name fails
  // the build (-Werror=switch), it cannot ship nameless.
  switch (code) {
    case ErrorCode::invalid_request:
      return "invalid_request";
    case ErrorCode::config_invalid:
      return "config_invalid";
    case ErrorCode::invalid_token:
      return "invalid_token";
    case ErrorCode::token_too_large:
      return "token_too_large";
    case ErrorCode::token_type_invalid:
      return "token_type_invalid";
    case ErrorCode::token_expired:
      return "token_expired";
    case ErrorCode::token_not_yet_valid:
      return "token_not_yet_valid";
    case ErrorCode::audience_mismatch:
      return "audience_mismatch";
    case ErrorCode::issuer_mismatch:
      return "issuer_mismatch";
    case ErrorCode::algorithm_not_allowed:
      return "algorithm_not_allowed";
    case ErrorCode::algorithm_mismatch:
      return "algorithm_mismatch";
    case ErrorCode::key_not_found:
      return "key_not_found";
    case ErrorCode::key_retired:
      return "key_retired";
    case ErrorCode::key_invalid:
      return "key_invalid";
    case ErrorCode::signature_invalid:
      return "signature_invalid";
    case ErrorCode::decryption_failed:
      return "decryption_failed";
    case ErrorCode::session_not_found:
      return "session_not_found";
    case ErrorCode::session_expired:
      return "session_expired";
    case ErrorCode::session_idle_timeout:
      return "session_idle_timeout";
    case ErrorCode::session_revoked:
      return "session_revoked";
    case ErrorCode::refresh_token_reused:
      return "refresh_token_reused";
    case ErrorCode::epoch_stale:
      return "epoch_stale";
    case ErrorCode::fingerprint_mismatch:
      return "fingerprint_mismatch";
    case ErrorCode::liveness_unavailable:
      return "liveness_unavailable";
    case ErrorCode::epoch_unavailable:
      return "epoch_unavailable";
    case ErrorCode::store_unavailable:
      return "store_unavailable";
    case ErrorCode::jwks_unavailable:
      return "jwks_unavailable";
    case ErrorCode::unauthorized:
      return "unauthorized";
    case ErrorCode::insufficient_scope:
      return "insufficient_scope";
    case ErrorCode::host_not_allowed:
      return "host_not_allowed";
    case ErrorCode::origin_not_allowed:
      return "origin_not_allowed";
    case ErrorCode::payload_too_large:
      return "payload_too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::overloaded:
      return "overloaded";
    case ErrorCode::upstream_unavailable:
      return "upstream_unavailable";
    case ErrorCode::dpop_proof_invalid:
      return "dpop_proof_invalid";
    case ErrorCode::dpop_key_mismatch:
      return "dpop_key_mismatch";
    case ErrorCode::use_dpop_nonce:
      return "use_dpop_nonce";
    case ErrorCode::internal:
      return "internal";
  }
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view name) noexcept {
  for (ErrorCode code : kAllErrorCodes) {
    if (to_string(code) == name) return code;
  }
  return std::nullopt;
}

bool is_transient(ErrorCode code) noexcept {
  return code == ErrorCode::store_unavailable || code == ErrorCode::epoch_unavailable ||
         code == ErrorCode::liveness_unavailable || code == ErrorCode::jwks_unavailable ||
         code == ErrorCode::overloaded || code == ErrorCode::upstream_unavailable;
}

std::ostream& operator<<(std::ostream& os, ErrorCode code) {
  return os << to_string(code);
}

std::ostream& operator<<(std::ostream& os, const Error& error) {
  os << error.code;
  if (!error.detail.empty()) os << ": " << error.detail;
  return os;
}

unsigned http_status(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_request:
    case ErrorCode::config_invalid:
      return 400;
    case ErrorCode::invalid_token:
    case ErrorCode::token_too_large:
    case ErrorCode::token_type_invalid:
    case ErrorCode::token_expired:
    case ErrorCode::token_not_yet_valid:
    case ErrorCode::audience_mismatch:
    case ErrorCode::issuer_mismatch:
    case ErrorCode::algorithm_not_allowed:
    case ErrorCode::algorithm_mismatch:
    case ErrorCode::key_not_found:
    case ErrorCode::key_retired:
    case ErrorCode::signature_invalid:
    case ErrorCode::decryption_failed:
    case ErrorCode::session_expired:
    case ErrorCode::session_idle_timeout:
    case ErrorCode::session_revoked:
    case ErrorCode::refresh_token_reused:
    case ErrorCode::epoch_stale:
    case ErrorCode::fingerprint_mismatch:
    case ErrorCode::unauthorized:
    case ErrorCode::dpop_proof_invalid:
    case ErrorCode::dpop_key_mismatch:
    case ErrorCode::use_dpop_nonce:
      return 401;
    case ErrorCode::insufficient_scope:
    case ErrorCode::host_not_allowed:
    case ErrorCode::origin_not_allowed:
      return 403;
    case ErrorCode::session_not_found:
      return 404;
    case ErrorCode::payload_too_large:
      return 413;
    case ErrorCode::rate_limited:
      return 429;
    case ErrorCode::liveness_unavailable:
    case ErrorCode::epoch_unavailable:
    case ErrorCode::store_unavailable:
    case ErrorCode::jwks_unavailable:
    case ErrorCode::overloaded:
    case ErrorCode::upstream_unavailable:
      return 503;
    case ErrorCode::key_invalid:  // our own signing key is unusable: our fault
    case ErrorCode::internal:
      return 500;
  }
  return 500;
}

}  // namespace tessera
