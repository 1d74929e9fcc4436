// Rate limits (docs/http.md "Rate limits"): token buckets per client
// address, one set per kind of credential, that failed authentication
// attempts drain: a guessed API key, refresh token or session credential
// costs a token; with the bucket empty the next attempt of that kind from
// that address is answered 429 `rate_limited` with Retry-After before any
// work is done. Successful traffic takes nothing, unless the general
// per-address request limit is configured. IPv6 addresses count per /64
// (one host usually holds a whole /64). An optional SharedCounts adds a
// limit over every instance (the Redis one: a fixed window, kept by
// tessera::RedisWindowCounters). Thread-safe; no Boost, no I/O.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"

namespace tessera::server {

enum class Credential : std::uint8_t {
  api_key,        // the API key of a service route (or forward-auth's X-Tessera-Api-Key)
  refresh_token,  // POST /v1/tokens/refresh
  session,        // a session token, cookie or access token on an open route
  request,        // any request at all (the general limit)
};
inline constexpr std::size_t kCredentialKinds = 4;
[[nodiscard]] std::string_view to_string(Credential kind) noexcept;

struct RateLimit {
  double per_second = 0;  // refill rate; 0 → no limit
  double burst = 0;       // bucket size (at least 1 when enabled)
  [[nodiscard]] bool enabled() const noexcept { return per_second > 0; }
};

struct RateLimitOptions {
  RateLimit auth_failures{.per_second = 5, .burst = 50};  // per address and kind
  RateLimit requests;                                     // per address; off by default
  // Addresses remembered per shard of 16; beyond it full buckets are
  // forgotten first, then any (a flood of addresses cannot grow memory).
  std::size_t max_tracked_per_shard = 8192;
};

// Failure counts every instance shares, per fixed window (Redis). add() must
// not block; total() answers from what was last heard.
class SharedCounts {
 public:
  virtual ~SharedCounts() = default;
  virtual void add(std::string_view key) noexcept = 0;
  // The count of `key` over every instance in the current window, and when
  // that window ends; nullopt when nothing is known.
  struct Total {
    std::uint64_t count = 0;
    UnixMillis window_end{};
  };
  [[nodiscard]] virtual std::optional<Total> total(std::string_view key) const noexcept = 0;
  [[nodiscard]] virtual std::chrono::seconds window() const noexcept = 0;
};

class RateLimiter {
 public:
  using Wait = std::optional<std::chrono::seconds>;  // nullopt: go on; else Retry-After

  // `shared` is borrowed and may be null.
  RateLimiter(RateLimitOptions options, const Clock& clock, SharedCounts* shared = nullptr);
  ~RateLimiter();
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  [[nodiscard]] bool limits_failures() const noexcept { return options_.auth_failures.enabled(); }
  [[nodiscard]] bool limits_requests() const noexcept { return options_.requests.enabled(); }

  // Whether attempts of `kind` from `address` are refused now (the bucket is
  // empty, or the shared window is over its limit). Takes nothing.
  [[nodiscard]] Wait blocked(std::string_view address, Credential kind);
  // A failed attempt: takes a token. Non-null when there was none left (the
  // attempt is one too many and is to be answered 429).
  Wait failed(std::string_view address, Credential kind);
  // The general limit: every request takes a token from its address's bucket.
  Wait request(std::string_view address);

  // Addresses remembered, over every kind (for tests and metrics).
  [[nodiscard]] std::size_t tracked() const;

 private:
  struct Shard;
  Wait take(std::string_view address, Credential kind, const RateLimit& limit, bool consume);
  RateLimitOptions options_;
  const Clock& clock_;
  SharedCounts* shared_;
  std::unique_ptr<std::array<Shard, 16>> shards_;
};

// The key a SharedCounts sees for an address and kind ("session:10.0.0.7",
// "api_key:2001:db8:1:2::/64"): no secret, only what the address says.
[[nodiscard]] std::string shared_key(std::string_view address, Credential kind);

}  // namespace tessera::server
