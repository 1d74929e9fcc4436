// Epochs over Redis (docs/design.md §5.3, §7.2): the fan-out that makes "log out
// everywhere" reach every resource service in well under a second.
//
//   authority:  epoch bump → EpochPublisher::epoch_moved → SET sv:{subject}
//               <effective epoch> (sv: for the global epoch) → PUBLISH
//               tessera:epochs <subject>
//   verifier:   L1 reads MGET sv:{subject} sv: → max; a missing subject key
//               is fetched from the fallback source (the authority) and
//               written back with SET NX (a bump written meanwhile wins);
//               a subscriber thread turns each PUBLISH into an invalidation
//               of the in-process cache (CachedEpochSource).
//
// Redis is a cache and a bus here, not the system of record: run it with
// a `volatile-*` or `noeviction` policy so that the global key (written
// without expiry) is never evicted before the per-subject keys.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "tessera/epoch.hpp"
#include "tessera/error.hpp"
#include "tessera/verify.hpp"

struct redisContext;

namespace tessera {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::chrono::milliseconds timeout{500};  // connect and each command
  std::size_t pool_size = 4;
  std::chrono::seconds key_ttl{std::chrono::days{1}};  // per-subject keys
  std::string channel = "tessera:epochs";
  // The subscriber PINGs a connection idle this long; no answer within it
  // again and the connection counts as lost (a stalled Redis keeps its TCP
  // connection open and would otherwise look quiet, not gone).
  std::chrono::milliseconds heartbeat{1000};
};

// redis://host[:port] → options (other fields default). config_invalid.
[[nodiscard]] Result<RedisOptions> parse_redis_url(std::string_view url);

class RedisPool;

// L1 epoch source over Redis. Errors: epoch_unavailable (Redis down, or
// the fallback's own error). Thread-safe.
class RedisEpochSource final : public verify::EpochSource {
 public:
  // `fallback` answers for subjects Redis does not hold (may be null: then
  // a missing key reads as 0 — only when Redis is written on every bump and
  // never loses data).
  RedisEpochSource(RedisOptions options, verify::EpochSource* fallback);
  ~RedisEpochSource() override;
  Result<std::uint64_t> current(std::string_view subject) override;

 private:
  RedisOptions options_;
  verify::EpochSource* fallback_;
  std::unique_ptr<RedisPool> pool_;
};

// The authority's side: the SessionService's EpochPublisher. Each move is
// written to Redis and its subject published, synchronously, bounded by
// options.timeout per command. A failed write is counted, never thrown or
// returned to the service; the caller reports failures() (tessera serve logs
// epoch_publish_failed), and verifiers then fall back to their cache TTL.
// Thread-safe.
class RedisEpochPublisher final : public EpochPublisher {
 public:
  explicit RedisEpochPublisher(RedisOptions options);
  ~RedisEpochPublisher() override;
  void epoch_moved(std::string_view subject, std::uint64_t epoch) noexcept override;
  // Publishes one move and says whether it reached Redis (epoch_unavailable);
  // epoch_moved() is this with the failure counted.
  [[nodiscard]] Status publish(std::string_view subject, std::uint64_t epoch);
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_.load(); }

 private:
  RedisOptions options_;
  std::unique_ptr<RedisPool> pool_;
  std::atomic<std::uint64_t> failures_{0};
};

// A thread subscribed to the channel: calls on_bump(subject) for each
// published bump ("" for the global epoch). A connection is lost when it
// breaks or when a PING sent after `heartbeat` of silence gets no answer
// within `heartbeat` (Redis stalled): then on_resync() is called at once
// (bumps may be missed from now on, so the cache must go), the subscriber
// reconnects (backing off up to 1 s) and calls on_resync() again once
// subscribed (bumps may have been missed meanwhile).
class RedisEpochSubscriber {
 public:
  RedisEpochSubscriber(RedisOptions options, std::function<void(std::string_view)> on_bump,
                       std::function<void()> on_resync);
  ~RedisEpochSubscriber();  // stops the thread
  // True once the subscription is confirmed (for tests and /readyz).
  [[nodiscard]] bool subscribed() const noexcept { return subscribed_.load(); }

 private:
  void run();
  void listen(redisContext* c);  // until the connection is lost or stop_
  RedisOptions options_;
  std::function<void(std::string_view)> on_bump_;
  std::function<void()> on_resync_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> subscribed_{false};
  std::atomic<void*> live_context_{nullptr};
  std::thread thread_;
};

}  // namespace tessera
