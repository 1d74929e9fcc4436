// Prometheus metrics with fixed label sets: every series exists from the
// start, so a scrape never allocates per label value and no label can carry
// a raw path, a subject or a token. Counters are relaxed atomics: a scrape
// may see one request counted in one series before another, never a lost one.
#include "server/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <string>
#include <string_view>

#include "server/route_table.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

namespace {

// The `event` label of each AuditEventType, indexed by the enum (declaration
// order; the names are its to_string names).
constexpr std::array<std::string_view, kAuditEventTypeCount> kEvents = {
    "issued",  "renewed",      "replay_detected", "revoked",
    "evicted", "epoch_bumped", "key_rotated",     "validate_failed"};
static_assert(kEvents.size() == std::size(kAllAuditEventTypes) && !kEvents.back().empty(),
              "kEvents must name every AuditEventType");

constexpr std::array<unsigned, 14> kStatuses = {200, 201, 204, 400, 401, 404, 405,
                                                408, 413, 429, 431, 500, 503, 0 /* other */};

// Delivery lag (commit → consumer), in seconds.
constexpr std::array<double, 10> kLagBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 60};

// Upper bounds in seconds; the last bucket (+Inf) is the count.
constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.5,    2.5};

constexpr std::size_t kCodes = std::size(kAllErrorCodes);

std::size_t status_index(unsigned status) {
  for (std::size_t i = 0; i + 1 < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) return i;
  }
  return kStatuses.size() - 1;
}

struct Histogram {
  std::array<std::atomic<std::uint64_t>, kBuckets.size()> buckets{};
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum_ns{0};
};

}  // namespace

struct Metrics::Impl {
  AuditSink* next = nullptr;
  std::array<std::array<std::atomic<std::uint64_t>, kStatuses.size()>, kRouteCount> requests{};
  std::array<Histogram, kRouteCount> latency{};
  std::array<std::atomic<std::uint64_t>, kEvents.size()> events{};
  std::array<std::atomic<std::uint64_t>, kCodes> errors{};
  // The outbox.
  std::atomic<std::uint64_t> delivered{0}, retried{0}, dropped{0}, dispatch_errors{0};
  std::atomic<std::uint64_t> backlog{0};
  std::atomic<std::int64_t> oldest_pending_ms{0};  // 0: none pending
  std::array<std::atomic<std::uint64_t>, kLagBuckets.size()> lag_buckets{};
  std::atomic<std::uint64_t> lag_count{0}, lag_sum_ms{0};
};

Metrics::Metrics(AuditSink* next) : impl_(std::make_unique<Impl>()) {
  impl_->next = next;
}
Metrics::~Metrics() = default;

void Metrics::emit(const AuditEvent& event) noexcept {
  impl_->events[static_cast<std::size_t>(event.type)].fetch_add(1, std::memory_order_relaxed);
  if (impl_->next != nullptr) impl_->next->emit(event);
}

void Metrics::observe_request(RouteId route, unsigned status, std::optional<ErrorCode> code,
                              std::chrono::nanoseconds latency) noexcept {
  const auto r = static_cast<std::size_t>(route);
  impl_->requests[r][status_index(status)].fetch_add(1, std::memory_order_relaxed);
  if (code) impl_->errors[static_cast<std::size_t>(*code)].fetch_add(1, std::memory_order_relaxed);
  Histogram& h = impl_->latency[r];
  const double seconds = std::chrono::duration<double>(latency).count();
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) h.buckets[i].fetch_add(1, std::memory_order_relaxed);
  }
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, latency.count())),
                     std::memory_order_relaxed);
}

void Metrics::observe_dispatch(const DispatchReport& r) noexcept {
  Impl& m = *impl_;
  m.delivered.fetch_add(r.delivered, std::memory_order_relaxed);
  m.retried.fetch_add(r.retried, std::memory_order_relaxed);
  m.dropped.fetch_add(r.dropped, std::memory_order_relaxed);
  if (r.error) m.dispatch_errors.fetch_add(1, std::memory_order_relaxed);
  for (const auto lag : r.lags) {
    const double seconds = std::chrono::duration<double>(lag).count();
    for (std::size_t i = 0; i < kLagBuckets.size(); ++i) {
      if (seconds <= kLagBuckets[i]) m.lag_buckets[i].fetch_add(1, std::memory_order_relaxed);
    }
    m.lag_count.fetch_add(1, std::memory_order_relaxed);
    m.lag_sum_ms.fetch_add(static_cast<std::uint64_t>(lag.count()), std::memory_order_relaxed);
  }
  if (r.backlog) {
    m.backlog.store(r.backlog->pending, std::memory_order_relaxed);
    m.oldest_pending_ms.store(r.backlog->oldest ? r.backlog->oldest->time_since_epoch().count() : 0,
                              std::memory_order_relaxed);
  }
}

std::string Metrics::render() const {
  std::string out;
  out.reserve(16 * 1024);
  auto add = [&out](std::string_view line) {
    out.append(line);
    out.push_back('\n');
  };
  add("# HELP tessera_http_requests_total HTTP requests answered, by route template and status.");
  add("# TYPE tessera_http_requests_total counter");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    for (std::size_t s = 0; s < kStatuses.size(); ++s) {
      const auto n = impl_->requests[r][s].load(std::memory_order_relaxed);
      if (n == 0 && kStatuses[s] != 200) continue;
      const std::string status = kStatuses[s] == 0 ? "other" : fmt::format("{}", kStatuses[s]);
      add(fmt::format("tessera_http_requests_total{{route=\"{}\",status=\"{}\"}} {}",
                      kRouteTable[r].path, status, n));
    }
  }
  add("# HELP tessera_http_request_duration_seconds Time from a whole request read to its "
      "response written.");
  add("# TYPE tessera_http_request_duration_seconds histogram");
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    const Histogram& h = impl_->latency[r];
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      add(fmt::format("tessera_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}",
                      kRouteTable[r].path, kBuckets[i],
                      h.buckets[i].load(std::memory_order_relaxed)));
    }
    const auto count = h.count.load(std::memory_order_relaxed);
    add(fmt::format("tessera_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}",
                    kRouteTable[r].path, count));
    add(fmt::format("tessera_http_request_duration_seconds_sum{{route=\"{}\"}} {}",
                    kRouteTable[r].path,
                    static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9));
    add(fmt::format("tessera_http_request_duration_seconds_count{{route=\"{}\"}} {}",
                    kRouteTable[r].path, count));
  }
  add("# HELP tessera_lifecycle_events_total Session lifecycle events (audit event types).");
  add("# TYPE tessera_lifecycle_events_total counter");
  for (std::size_t i = 0; i < kEvents.size(); ++i) {
    add(fmt::format("tessera_lifecycle_events_total{{event=\"{}\"}} {}", kEvents[i],
                    impl_->events[i].load(std::memory_order_relaxed)));
  }
  const Impl& m = *impl_;
  add("# HELP tessera_events_delivered_total Outbox events delivered to every consumer.");
  add("# TYPE tessera_events_delivered_total counter");
  add(fmt::format("tessera_events_delivered_total {}", m.delivered.load()));
  add("# HELP tessera_events_retried_total Outbox deliveries that failed and wait to be retried.");
  add("# TYPE tessera_events_retried_total counter");
  add(fmt::format("tessera_events_retried_total {}", m.retried.load()));
  add("# HELP tessera_events_dropped_total Undelivered outbox events dropped beyond the bound.");
  add("# TYPE tessera_events_dropped_total counter");
  add(fmt::format("tessera_events_dropped_total {}", m.dropped.load()));
  add("# HELP tessera_events_backlog Undelivered outbox events (read once a minute).");
  add("# TYPE tessera_events_backlog gauge");
  add(fmt::format("tessera_events_backlog {}", m.backlog.load()));
  add("# HELP tessera_events_oldest_pending_timestamp_seconds Commit time of the oldest "
      "undelivered event (0: none).");
  add("# TYPE tessera_events_oldest_pending_timestamp_seconds gauge");
  add(fmt::format("tessera_events_oldest_pending_timestamp_seconds {}",
                  static_cast<double>(m.oldest_pending_ms.load()) / 1000.0));
  add("# HELP tessera_event_delivery_lag_seconds From the change's commit to its delivery.");
  add("# TYPE tessera_event_delivery_lag_seconds histogram");
  for (std::size_t i = 0; i < kLagBuckets.size(); ++i) {
    add(fmt::format("tessera_event_delivery_lag_seconds_bucket{{le=\"{}\"}} {}", kLagBuckets[i],
                    m.lag_buckets[i].load()));
  }
  add(fmt::format("tessera_event_delivery_lag_seconds_bucket{{le=\"+Inf\"}} {}",
                  m.lag_count.load()));
  add(fmt::format("tessera_event_delivery_lag_seconds_sum {}",
                  static_cast<double>(m.lag_sum_ms.load()) / 1000.0));
  add(fmt::format("tessera_event_delivery_lag_seconds_count {}", m.lag_count.load()));
  add("# HELP tessera_errors_total Error responses, by error code.");
  add("# TYPE tessera_errors_total counter");
  for (std::size_t i = 0; i < kCodes; ++i) {
    add(fmt::format("tessera_errors_total{{code=\"{}\"}} {}", to_string(kAllErrorCodes[i]),
                    impl_->errors[i].load(std::memory_order_relaxed)));
  }
  return out;
}

}  // namespace tessera::server
