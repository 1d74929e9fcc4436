#include "server/rate_limits.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "server/client_view.hpp"

namespace tessera::server {

namespace {

// An address as the limits count it: IPv6 cut to its /64; an unreadable
// address (none known) is one key of its own.
struct Key {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = true;
  Credential kind = Credential::request;
  friend bool operator==(const Key&, const Key&) = default;
};

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, k.bytes.data(), 8);
    std::memcpy(&b, k.bytes.data() + 8, 8);
    std::uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6));
    h ^= (static_cast<std::uint64_t>(k.kind) << 1 | static_cast<std::uint64_t>(k.v4)) *
         0xBF58476D1CE4E5B9ULL;
    return static_cast<std::size_t>(h ^ (h >> 31));
  }
};

Key key_of(std::string_view address, Credential kind) noexcept {
  Key k;
  k.kind = kind;
  if (const auto ip = IpAddress::parse(address)) {
    k.bytes = ip->bytes;
    k.v4 = ip->v4;
    if (!k.v4) std::fill(k.bytes.begin() + 8, k.bytes.end(), std::uint8_t{0});
  }
  return k;
}

struct Bucket {
  double tokens = 0;
  std::int64_t at_ms = 0;  // when `tokens` was last brought up to date
};

std::chrono::seconds whole_seconds(double seconds) noexcept {
  return std::chrono::seconds(
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(seconds))));
}

}  // namespace

std::string_view to_string(Credential kind) noexcept {
  switch (kind) {
    case Credential::api_key:
      return "api_key";
    case Credential::refresh_token:
      return "refresh_token";
    case Credential::session:
      return "session";
    case Credential::request:
      return "request";
  }
  return "request";
}

std::string shared_key(std::string_view address, Credential kind) {
  const Key k = key_of(address, kind);
  if (k.v4) {
    return fmt::format("{}:{}.{}.{}.{}", to_string(kind), k.bytes[0], k.bytes[1], k.bytes[2],
                       k.bytes[3]);
  }
  return fmt::format("{}:{:x}:{:x}:{:x}:{:x}::/64", to_string(kind), k.bytes[0] << 8 | k.bytes[1],
                     k.bytes[2] << 8 | k.bytes[3], k.bytes[4] << 8 | k.bytes[5],
                     k.bytes[6] << 8 | k.bytes[7]);
}

struct RateLimiter::Shard {
  mutable std::mutex mu;
  std::unordered_map<Key, Bucket, KeyHash> buckets;
};

RateLimiter::RateLimiter(RateLimitOptions options, const Clock& clock, SharedCounts* shared)
    : options_(options),
      clock_(clock),
      shared_(shared),
      shards_(std::make_unique<std::array<Shard, 16>>()) {
  for (RateLimit* l : {&options_.auth_failures, &options_.requests}) {
    if (l->enabled()) l->burst = std::max(1.0, l->burst);
  }
  options_.max_tracked_per_shard = std::max<std::size_t>(1, options_.max_tracked_per_shard);
}

RateLimiter::~RateLimiter() = default;

RateLimiter::Wait RateLimiter::take(std::string_view address, Credential kind,
                                    const RateLimit& limit, bool consume) {
  if (!limit.enabled()) return std::nullopt;
  const Key key = key_of(address, kind);
  Shard& shard = (*shards_)[KeyHash{}(key) % shards_->size()];
  const std::int64_t now = clock_.now_ms().time_since_epoch().count();
  const auto refill = [&](Bucket& b) {
    const double elapsed = static_cast<double>(std::max<std::int64_t>(0, now - b.at_ms)) / 1000.0;
    b.tokens = std::min(limit.burst, b.tokens + elapsed * limit.per_second);
    b.at_ms = now;
  };
  Wait wait;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.buckets.find(key);
    if (it == shard.buckets.end()) {
      // Nothing failed here lately: nothing to refuse, and no shared total
      // was asked for (one is heard of only for keys this instance adds).
      if (!consume) return std::nullopt;
      if (shard.buckets.size() >= options_.max_tracked_per_shard) {
        for (auto e = shard.buckets.begin(); e != shard.buckets.end();) {
          refill(e->second);
          e = e->second.tokens >= limit.burst ? shard.buckets.erase(e) : std::next(e);
        }
        if (shard.buckets.size() >= options_.max_tracked_per_shard)
          shard.buckets.erase(shard.buckets.begin());
      }
      it = shard.buckets.emplace(key, Bucket{limit.burst, now}).first;
    }
    Bucket& b = it->second;
    refill(b);
    if (b.tokens >= 1.0) {
      if (consume) b.tokens -= 1.0;
    } else {
      wait = whole_seconds((1.0 - b.tokens) / limit.per_second);
    }
  }
  if (shared_ == nullptr || kind == Credential::request) return wait;
  const std::string skey = shared_key(address, kind);
  if (consume) shared_->add(skey);
  if (wait) return wait;
  // Over every instance: the window's allowance is what one bucket lets
  // through in it (a full burst and the refill).
  const auto total = shared_->total(skey);
  const double allowance =
      limit.burst + limit.per_second * static_cast<double>(shared_->window().count());
  const std::int64_t end = total ? total->window_end.time_since_epoch().count() : 0;
  if (total && static_cast<double>(total->count) > allowance && end > now)
    return whole_seconds(static_cast<double>(end - now) / 1000.0);
  return std::nullopt;
}

RateLimiter::Wait RateLimiter::blocked(std::string_view address, Credential kind) {
  return take(address, kind, options_.auth_failures, false);
}

RateLimiter::Wait RateLimiter::failed(std::string_view address, Credential kind) {
  return take(address, kind, options_.auth_failures, true);
}

RateLimiter::Wait RateLimiter::request(std::string_view address) {
  return take(address, Credential::request, options_.requests, true);
}

std::size_t RateLimiter::tracked() const {
  std::size_t n = 0;
  for (const Shard& s : *shards_) {
    std::lock_guard lock(s.mu);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace tessera::server
