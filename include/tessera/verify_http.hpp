// The resource side's HTTP ports: keys, epochs and liveness fetched from
// the authority (docs/api.md). HTTP/1.1 over TCP or TLS (https:// URLs: the peer
// is verified against the system's CAs or a given CA file, and against the
// URL's host name), with one deadline over every step of a request.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/secret.hpp"
#include "tessera/verify.hpp"

namespace tessera::verify {

struct HttpOptions {
  std::chrono::milliseconds timeout{2000};  // connect + TLS + request + response
  std::size_t max_response_bytes = 1 << 20;
  std::string ca_file;  // https: PEM file of trusted CAs; empty: the system's store
};

// The authority's JWKS (GET <url>, usually .../.well-known/jwks.json).
// Cached for the response's Cache-Control max-age (clamped to 30 s..1 day,
// 300 s when absent); refetched kRefetchBeforeExpiry before it ends, by the
// caller that notices, while the others keep the current set. A failed
// refetch keeps the current keys (tokens with a known kid keep verifying)
// and is retried after kRetryAfterFailure.
//
// A fetch fails when the authority cannot be reached (resolve, connect,
// TLS, the deadline), answers anything but a 200, or answers a body that is
// not a JWKS with at least one usable key; that is jwks_unavailable
// (transient, 503), never key_not_found. On a token with an unknown kid:
//   - it looks again at most once per `unknown_kid_interval`;
//   - that look failing is jwks_unavailable; the authority answering
//     without the kid is key_not_found (final, 401);
//   - inside the interval it does not look: a kid is then key_not_found if
//     the latest fetch (of any caller) succeeded, and jwks_unavailable if
//     it failed, since the authority may hold that kid by now.
// Thread-safe.
class HttpJwksSource final : public KeySource {
 public:
  static constexpr std::chrono::seconds kRefetchBeforeExpiry{10};
  static constexpr std::chrono::seconds kRetryAfterFailure{5};

  // Fails closed: no key set, no source (the first fetch must succeed and
  // hold at least one key). jwks_unavailable when it does not,
  // config_invalid for a URL that is not http(s) or an unreadable CA file.
  // The clock must outlive the source.
  [[nodiscard]] static Result<std::unique_ptr<HttpJwksSource>> create(
      std::string url, const Clock& clock, HttpOptions http = {},
      std::chrono::seconds unknown_kid_interval = std::chrono::seconds{30});

  std::shared_ptr<const KeySet> keys() override;
  Result<std::shared_ptr<const KeySet>> refresh_for_unknown_kid() override;
  // Successful fetches so far (the first one included).
  [[nodiscard]] std::uint64_t fetches() const;

 private:
  HttpJwksSource(std::string url, const Clock& clock, HttpOptions http,
                 std::chrono::seconds unknown_kid_interval);
  Status fetch(UnixSeconds now);

  std::string url_;
  const Clock& clock_;
  HttpOptions http_;
  std::chrono::seconds unknown_kid_interval_;
  mutable std::mutex mu_;  // guards the fields below
  std::mutex fetch_mu_;    // one fetch at a time
  std::shared_ptr<const KeySet> keys_;
  UnixSeconds refresh_at_{};  // when to refetch
  UnixSeconds last_unknown_kid_fetch_{};
  Status last_fetch_;  // how the latest fetch ended
  std::uint64_t fetches_ = 0;
};

// L1 from the authority: GET <base>/v1/subjects/{subject}/epoch with the API
// key. Anything but a 200 with {"epoch": n} is epoch_unavailable. Put a
// CachedEpochSource (and Redis) in front of it.
class HttpEpochSource final : public EpochSource {
 public:
  HttpEpochSource(std::string base_url, SecretString api_key, HttpOptions http = {});
  Result<std::uint64_t> current(std::string_view subject) override;

 private:
  std::string base_;
  SecretString api_key_;
  HttpOptions http_;
};

// L2 by introspection (RFC 7662) of the access token at the authority, the
// answer per session id cached for `ttl` (short: a revocation shows after at
// most that long). Anything but a 200 with "active" is liveness_unavailable.
class IntrospectionLivenessCheck final : public LivenessCheck {
 public:
  IntrospectionLivenessCheck(std::string base_url, SecretString api_key, const Clock& clock,
                             std::chrono::milliseconds ttl = std::chrono::seconds{1},
                             HttpOptions http = {});
  Result<Liveness> check(const LivenessQuery& query) override;

 private:
  struct Entry {
    Liveness answer;
    UnixMillis at;
  };
  std::string base_;
  SecretString api_key_;
  const Clock& clock_;
  std::chrono::milliseconds ttl_;
  HttpOptions http_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

// One request with the client of the ports above (a fresh connection, one
// deadline over every step, the same TLS checks), for the library's other
// outward calls: webhooks, SSF push, an upstream provider's token endpoint.
// Any answer is returned, whatever its status; failing to get one is
// `unavailable`, whose detail names the host and the step, never the body
// or a header's value.
struct HttpCall {
  std::string method = "POST";  // GET or POST
  std::string url;              // http:// or https://
  // Sent beside Host, User-Agent and Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // POST
};
struct HttpAnswer {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string cache_control;
  std::string retry_after;
};
[[nodiscard]] Result<HttpAnswer> send(HttpCall call, const HttpOptions& http,
                                      ErrorCode unavailable);

}  // namespace tessera::verify
