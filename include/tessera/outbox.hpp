// The transactional outbox (docs/events.md): what ended a session, or moved
// an epoch, is written as an event row in the same transaction as the
// change, and delivered afterwards, at least once, by an OutboxDispatcher
// to its consumers (Redis epochs today). A change that committed is never
// left unannounced; an event is never announced for a change that did not
// commit.
//
// Which changes write events (while a dispatcher is attached, see
// EventOutbox::record_events):
//   a session revoked (any reason: by id, logout, others, all, eviction,
//   rotation, fingerprint mismatch)       → session_revoked, one per session
//   a family revoked                      → family_revoked, or
//                                           replay_detected (reason
//                                           refresh_token_reused)
//   an epoch bumped (a subject's, global) → epoch_bumped ("" is global)
//   the signing key changed (serve)       → signing_key_rotated (append())
// Cleanup of rows that already ended writes nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"

namespace tessera {

enum class RevokeReason : std::uint8_t;

enum class EventType : std::uint8_t {
  session_revoked,
  family_revoked,
  replay_detected,
  epoch_bumped,
  signing_key_rotated,
};
[[nodiscard]] std::string_view to_string(EventType type) noexcept;
[[nodiscard]] std::optional<EventType> event_type_from_string(std::string_view text) noexcept;

struct Event {
  std::uint64_t seq = 0;  // the store's, increasing, unique in it
  EventType type = EventType::session_revoked;
  UnixMillis at{};                     // when the change committed (the store's clock)
  std::string subject;                 // "" for the global epoch and signing keys
  std::string session_id;              // session_revoked
  std::string family_id;               // session_revoked, family_revoked, replay_detected
  std::optional<RevokeReason> reason;  // the revocations
  std::uint64_t epoch = 0;             // epoch_bumped: the new epoch
  std::string kid;                     // signing_key_rotated: the new active key
  std::uint32_t attempts = 0;          // deliveries tried so far

  // The stable id consumers de-duplicate by: "evt_" and a ULID made of `at`
  // and `seq` (unique per store, sortable by time).
  [[nodiscard]] std::string id() const;
};

// The store side of the outbox. Thread-safe; every call is atomic.
class EventOutbox {
 public:
  virtual ~EventOutbox() = default;

  // From now on, the store writes events with its changes. Off until a
  // dispatcher attaches, so that a program that never delivers events
  // never accumulates them.
  virtual void record_events() noexcept = 0;

  // An event that is not part of a store change (signing_key_rotated).
  [[nodiscard]] virtual Status append(const Event& event) = 0;

  // Up to `max` undelivered events whose next attempt is due at `now`,
  // oldest first, each leased until now + lease: another dispatcher (on the
  // same database) skips them meanwhile, and a dispatcher that died leaves
  // them to be claimed again once the lease ends.
  [[nodiscard]] virtual Result<std::vector<Event>> claim(std::size_t max, UnixMillis now,
                                                         std::chrono::milliseconds lease) = 0;
  // Delivered: kept (for the retention period) but never claimed again.
  [[nodiscard]] virtual Status delivered(std::span<const std::uint64_t> seqs, UnixMillis now) = 0;
  // Not delivered: tried again at `next_attempt`, attempts + 1.
  [[nodiscard]] virtual Status retry(std::uint64_t seq, UnixMillis next_attempt) = 0;
  // Claimed but not tried (the round stopped at a failing consumer): due
  // again at `next_attempt`, attempts unchanged.
  [[nodiscard]] virtual Status release(std::span<const std::uint64_t> seqs,
                                       UnixMillis next_attempt) = 0;

  // Deletes delivered events older than `delivered_before`, and, beyond
  // `max_pending` undelivered ones, the oldest undelivered (dropped: a
  // bounded backlog never blocks a revocation). Returns {deleted, dropped}.
  struct Purged {
    std::size_t deleted = 0;
    std::size_t dropped = 0;
  };
  [[nodiscard]] virtual Result<Purged> purge(UnixMillis delivered_before,
                                             std::size_t max_pending) = 0;

  struct Backlog {
    std::size_t pending = 0;
    std::optional<UnixMillis> oldest;  // of the pending ones
  };
  [[nodiscard]] virtual Result<Backlog> backlog() = 0;
};

// Where events go. deliver() is called from the dispatcher's thread, one
// event at a time, oldest first; an error means "not now": the event is
// tried again later, for every consumer (so consumers de-duplicate by
// Event::id(), or are idempotent, as an epoch write is).
class EventConsumer {
 public:
  virtual ~EventConsumer() = default;
  [[nodiscard]] virtual Status deliver(const Event& event) = 0;
};

struct OutboxOptions {
  std::chrono::milliseconds poll_interval{50};   // between looks when nothing wakes it
  std::size_t batch = 256;                       // events claimed at once
  std::chrono::milliseconds lease{10'000};       // a claim another dispatcher waits out
  std::chrono::milliseconds first_backoff{250};  // after a failed delivery; doubles
  std::chrono::milliseconds max_backoff{60'000};
  std::chrono::seconds retention{std::chrono::hours{24}};  // delivered events kept
  std::size_t max_pending = 1'000'000;  // beyond it the oldest undelivered are dropped
  std::chrono::seconds purge_interval{60};
};

// What one round of the dispatcher did, for metrics.
struct DispatchReport {
  std::size_t delivered = 0;
  std::size_t retried = 0;
  std::size_t dropped = 0;
  std::vector<std::chrono::milliseconds> lags;  // commit → delivered, per event
  std::optional<EventOutbox::Backlog> backlog;  // when read this round
  std::optional<Error> error;                   // the outbox itself failed
};

// A thread that claims due events and hands them to the consumers: at
// least once, oldest first per claim. Each consumer is paced on its own: the
// first event a consumer refuses (it is likely down) pauses that consumer,
// with exponential backoff while its refusals follow each other, and the
// round goes on with the others. An event is marked delivered once every
// consumer took it; until then it is due again when the earliest pause of a
// consumer still owing it ends, and the consumers that took it already are
// not given it again by this dispatcher (they are after a restart: at least
// once). A consumer that is down thus costs one delivery timeout per pause,
// holds back none of the others (a webhook endpoint that is down never
// delays the Redis epochs), and once it is back its whole backlog flows at
// once.
// Attaching turns event recording on (EventOutbox::record_events). At most
// 64 consumers (std::length_error beyond).
class OutboxDispatcher {
 public:
  OutboxDispatcher(EventOutbox& outbox, std::vector<EventConsumer*> consumers,
                   OutboxOptions options, const Clock& clock,
                   std::function<void(const DispatchReport&)> on_report = {});
  ~OutboxDispatcher();  // stops the thread; events in flight are claimed again later
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  // Something was written: look now rather than at the next poll.
  void wake() noexcept;
  // One round on the caller's thread (tests): claim, deliver, report.
  DispatchReport run_once();

 private:
  void run();
  EventOutbox& outbox_;
  std::vector<EventConsumer*> consumers_;
  OutboxOptions options_;
  const Clock& clock_;
  std::function<void(const DispatchReport&)> on_report_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::mutex round_mu_;  // one round at a time; guards what follows
  UnixMillis last_purge_{};
  struct Pace {
    UnixMillis paused_until{};   // after a refusal
    std::uint32_t refusals = 0;  // in a row
  };
  std::vector<Pace> pace_;  // per consumer
  // Events some consumers took and others still owe: seq → one bit per
  // consumer that took it (at most 64 consumers). Bounded: beyond
  // kMaxPartial the oldest entries are forgotten, which only means their
  // consumers get those events again (at least once).
  static constexpr std::size_t kMaxPartial = 100'000;
  std::map<std::uint64_t, std::uint64_t> taken_;
  std::thread thread_;
};

}  // namespace tessera
