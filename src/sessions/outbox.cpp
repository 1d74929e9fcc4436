#include "tessera/outbox.hpp"

#include <algorithm>
#include <array>

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
      on_report_(std::move(on_report)) {
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
  // A consumer refused lately: nothing is claimed until the pause ends.
  if (now < paused_until_) return report;
  auto events = outbox_.claim(options_.batch, now, options_.lease);
  if (!events) {
    report.error = events.error();
    return report;
  }
  std::vector<std::uint64_t> done;
  for (std::size_t i = 0; i < events->size(); ++i) {
    const Event& e = (*events)[i];
    bool ok = true;
    for (EventConsumer* c : consumers_) {
      if (!c->deliver(e)) {
        ok = false;
        break;
      }
    }
    if (ok) {
      done.push_back(e.seq);
      report.lags.push_back(std::max(std::chrono::milliseconds{0}, clock_.now_ms() - e.at));
      continue;
    }
    // The dispatcher pauses, 250 ms, 500 ms, 1 s, ... up to max_backoff
    // while refusals follow each other; the event and the rest of the claim
    // are due when the pause ends, so once the consumer is back the whole
    // backlog flows at once rather than as each event's own backoff ends.
    auto wait = options_.first_backoff;
    for (std::uint32_t n = 0; n < refusals_ && wait < options_.max_backoff; ++n) wait *= 2;
    wait = std::min(wait, options_.max_backoff);
    ++refusals_;
    const UnixMillis next = clock_.now_ms() + wait;
    paused_until_ = next;
    if (auto s = outbox_.retry(e.seq, next); !s) report.error = s.error();
    ++report.retried;
    std::vector<std::uint64_t> untried;
    for (std::size_t j = i + 1; j < events->size(); ++j) untried.push_back((*events)[j].seq);
    if (!untried.empty()) {
      if (auto s = outbox_.release(untried, next); !s) report.error = s.error();
    }
    break;
  }
  if (report.retried == 0 && !done.empty()) refusals_ = 0;
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
