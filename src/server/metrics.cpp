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
  add("# HELP tessera_errors_total Error responses, by error code.");
  add("# TYPE tessera_errors_total counter");
  for (std::size_t i = 0; i < kCodes; ++i) {
    add(fmt::format("tessera_errors_total{{code=\"{}\"}} {}", to_string(kAllErrorCodes[i]),
                    impl_->errors[i].load(std::memory_order_relaxed)));
  }
  return out;
}

}  // namespace tessera::server
