#include "tessera/outbox.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>

#include "tessera/ulid.hpp"

namespace tessera {

namespace {

constexpr std::array<std::string_view, 5> kEventNames = {
    "session_revoked", "family_revoked", "replay_detected", "epoch_bumped", "signing_key_rotated"};

}  // namespace

std::string_view to_string(EventType type) noexcept {
  return kEventNames[static_cast<std::size_t>(type)];
}

std::optional<EventType> event_type_from_string(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kEventNames.size(); ++i) {
    if (kEventNames[i] == text) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::string Event::id() const {
  // 48 bits of milliseconds, then the sequence number in the low 64 bits.
  std::array<std::uint8_t, 16> b{};
  const auto ms = static_cast<std::uint64_t>(at.time_since_epoch().count());
  for (int i = 0; i < 6; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  for (int i = 0; i < 8; ++i)
    b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(seq >> (56 - 8 * i));
  return "evt_" + Ulid(b).to_string();
}

OutboxDispatcher::OutboxDispatcher(EventOutbox& outbox, std::vector<EventConsumer*> consumers,
                                   OutboxOptions options, const Clock& clock,
                                   std::function<void(const DispatchReport&)> on_report)
    : outbox_(outbox),
      consumers_(std::move(consumers)),
      options_(options),
      clock_(clock),
      on_report_(std::move(on_report)),
      pace_(consumers_.size()) {
  if (consumers_.size() > 64) throw std::length_error("OutboxDispatcher: at most 64 consumers");
  outbox_.record_events();
  thread_ = std::thread([this] { run(); });
}

OutboxDispatcher::~OutboxDispatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OutboxDispatcher::wake() noexcept {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void OutboxDispatcher::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.poll_interval, [&] { return stop_ || woken_; });
    if (stop_) break;
    woken_ = false;
    lock.unlock();
    // A full batch may mean more is waiting: go on at once.
    for (;;) {
      const DispatchReport r = run_once();
      if (on_report_) on_report_(r);
      if (r.error || r.delivered + r.retried < options_.batch) break;
      std::lock_guard stopping(mu_);
      if (stop_) break;
    }
    lock.lock();
  }
}

DispatchReport OutboxDispatcher::run_once() {
  std::lock_guard round(round_mu_);
  DispatchReport report;
  const UnixMillis now = clock_.now_ms();
  const std::size_t n = std::min<std::size_t>(consumers_.size(), 64);
  const std::uint64_t all = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  auto paused = [&](std::size_t i) { return clock_.now_ms() < pace_[i].paused_until; };
  // Every consumer paused: nothing can be delivered until a pause ends.
  bool any_ready = n == 0;
  for (std::size_t i = 0; i < n; ++i) any_ready = any_ready || !paused(i);
  if (!any_ready) return report;
  auto events = outbox_.claim(options_.batch, now, options_.lease);
  if (!events) {
    report.error = events.error();
    return report;
  }
  std::vector<std::uint64_t> done;
  std::map<UnixMillis, std::vector<std::uint64_t>> untried;  // by when they are due again
  for (const Event& e : *events) {
    const auto known = taken_.find(e.seq);
    std::uint64_t took = known != taken_.end() ? known->second : 0;
    bool refused = false;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t bit = std::uint64_t{1} << i;
      if ((took & bit) != 0 || paused(i)) continue;
      if (consumers_[i]->deliver(e)) {
        took |= bit;
        pace_[i].refusals = 0;
        continue;
      }
      // This consumer pauses, 250 ms, 500 ms, 1 s, ... up to max_backoff
      // while its refusals follow each other; the others go on.
      auto wait = options_.first_backoff;
      for (std::uint32_t k = 0; k < pace_[i].refusals && wait < options_.max_backoff; ++k)
        wait *= 2;
      pace_[i].paused_until = clock_.now_ms() + std::min(wait, options_.max_backoff);
      ++pace_[i].refusals;
      refused = true;
    }
    if (took == all) {
      if (known != taken_.end()) taken_.erase(known);
      done.push_back(e.seq);
      report.lags.push_back(std::max(std::chrono::milliseconds{0}, clock_.now_ms() - e.at));
      continue;
    }
    // Owed by paused consumers: due when the first of their pauses ends.
    UnixMillis next = UnixMillis::max();
    for (std::size_t i = 0; i < n; ++i) {
      if ((took & (std::uint64_t{1} << i)) == 0) next = std::min(next, pace_[i].paused_until);
    }
    if (took != 0) {
      taken_[e.seq] = took;
    } else if (known != taken_.end()) {
      taken_.erase(known);
    }
    if (refused) {
      if (auto s = outbox_.retry(e.seq, next); !s) report.error = s.error();
      ++report.retried;
    } else {
      untried[next].push_back(e.seq);
    }
  }
  for (const auto& [next, seqs] : untried) {
    if (auto s = outbox_.release(seqs, next); !s) report.error = s.error();
  }
  while (taken_.size() > kMaxPartial) taken_.erase(taken_.begin());
  if (!done.empty()) {
    if (auto s = outbox_.delivered(done, clock_.now_ms()); !s) {
      report.error = s.error();  // claimed again once the lease ends: at least once
      report.lags.clear();
    } else {
      report.delivered = done.size();
    }
  }
  if (now - last_purge_ >= options_.purge_interval) {
    last_purge_ = now;
    if (auto p = outbox_.purge(now - options_.retention, options_.max_pending)) {
      report.dropped = p->dropped;
    } else {
      report.error = p.error();
    }
    if (auto b = outbox_.backlog()) report.backlog = *b;
  }
  return report;
}

}  // namespace tessera
