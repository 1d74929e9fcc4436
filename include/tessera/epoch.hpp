// Epochs (docs/design.md): a per-subject counter and a global one, stamped
// into every access token as `sv`. A token whose sv is below its subject's
// effective epoch is stale. This header holds the one definition of the
// effective epoch and the port through which the engine announces a move.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>

namespace tessera {

// The global epoch and one subject's own, as a store or a cache holds them.
struct Epochs {
  std::uint64_t global = 0;
  std::uint64_t subject = 0;
};

// The subject's effective epoch: max(global, own). Bumping the global epoch
// raises every subject's at once; bumping a subject past it raises one.
// Every place that compares or publishes an epoch uses this function.
[[nodiscard]] constexpr std::uint64_t effective_epoch(const Epochs& e) noexcept {
  return std::max(e.global, e.subject);
}

// The engine's outbound port for epoch moves (the Redis fan-out implements
// it; see redis_epochs.hpp). SessionService calls epoch_moved() after the
// store has committed a bump — bump_epoch, bump_global_epoch, and logout
// with scope all — on the calling thread, before that call returns.
//
// `subject` is "" for the global epoch; `epoch` is the new value (for a
// subject: its new effective epoch).
//
// Contract for implementations: thread-safe (called from any request
// thread), never throws, and bounded in time by its own deadlines. A failure
// to publish is the publisher's to count and report (the authority logs it
// as epoch_publish_failed); it never fails or undoes the bump, because the
// store is the system of record and every verifier still converges within
// its cache TTL.
class EpochPublisher {
 public:
  virtual ~EpochPublisher() = default;
  virtual void epoch_moved(std::string_view subject, std::uint64_t epoch) noexcept = 0;
};

}  // namespace tessera
