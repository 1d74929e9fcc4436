// Time as an injected port: production reads the system clock, tests move a
// ManualClock instead of sleeping. All times are Unix time, UTC.
#pragma once

#include <atomic>
#include <chrono>

namespace tessera {

using UnixSeconds = std::chrono::sys_seconds;
using UnixMillis = std::chrono::sys_time<std::chrono::milliseconds>;

// Thread-safe: every implementation may be read from any thread at once.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual UnixMillis now_ms() const noexcept = 0;
  [[nodiscard]] UnixSeconds now() const noexcept {
    return std::chrono::floor<std::chrono::seconds>(now_ms());
  }
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] UnixMillis now_ms() const noexcept override;
  // A process-wide instance, for callers that want the default.
  static SystemClock& instance() noexcept;
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixSeconds start = UnixSeconds{std::chrono::seconds{1'700'000'000}})
      : ms_(std::chrono::duration_cast<std::chrono::milliseconds>(start.time_since_epoch())
                .count()) {}

  [[nodiscard]] UnixMillis now_ms() const noexcept override {
    return UnixMillis{std::chrono::milliseconds{ms_.load(std::memory_order_acquire)}};
  }
  void advance(std::chrono::milliseconds by) noexcept {
    ms_.fetch_add(by.count(), std::memory_order_acq_rel);
  }
  void set(UnixMillis to) noexcept {
    ms_.store(to.time_since_epoch().count(), std::memory_order_release);
  }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace tessera
