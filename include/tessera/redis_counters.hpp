// Counters every instance shares through Redis, per fixed time window: the
// shared half of the authority's rate limits (docs/http.md "Rate limits").
//
//   add(key)   queues one count, never blocks
//   a thread   every flush_interval: INCRBY <prefix><key>:<window> n and
//              PEXPIRE it (two windows), pipelined, and keeps the totals
//              Redis answered
//   total(key) the last total heard for key in the current window
//
// Redis down: the totals stop moving (each instance's own buckets still
// limit it) and failures() counts the flushes that did not reach Redis.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "tessera/clock.hpp"
#include "tessera/redis_epochs.hpp"

namespace tessera {

class RedisWindowCounters {
 public:
  struct Options {
    std::chrono::seconds window{10};
    std::chrono::milliseconds flush_interval{100};
    std::string prefix = "tessera:rl:";
    std::size_t max_pending = 10'000;  // keys queued between flushes; more are dropped
  };
  // `clock` is borrowed; windows are its time divided by the window.
  RedisWindowCounters(RedisOptions redis, Options options, const Clock& clock);
  ~RedisWindowCounters();  // stops the thread (a last flush is not waited for)
  RedisWindowCounters(const RedisWindowCounters&) = delete;
  RedisWindowCounters& operator=(const RedisWindowCounters&) = delete;

  void add(std::string_view key) noexcept;
  struct Total {
    std::uint64_t count = 0;
    UnixMillis window_end{};
  };
  [[nodiscard]] std::optional<Total> total(std::string_view key) const noexcept;
  [[nodiscard]] std::chrono::seconds window() const noexcept { return options_.window; }
  // Flushes that did not reach Redis.
  [[nodiscard]] std::uint64_t failures() const noexcept { return failures_.load(); }
  // Flushes what is queued now, on the caller's thread (tests).
  void flush();

 private:
  void run();
  [[nodiscard]] std::int64_t window_of(UnixMillis t) const noexcept;
  RedisOptions redis_;
  Options options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::unordered_map<std::string, std::uint64_t> pending_;  // key → counts to add
  std::int64_t pending_window_ = 0;
  // key → (window, total): what Redis answered last.
  std::unordered_map<std::string, std::pair<std::int64_t, std::uint64_t>> totals_;
  std::mutex flush_mu_;      // one flush at a time (the thread's, a test's)
  void* context_ = nullptr;  // redisContext*, used under flush_mu_
  bool stop_ = false;
  std::atomic<std::uint64_t> failures_{0};
  std::thread thread_;
};

}  // namespace tessera
