// Prometheus counters and histograms for the HTTP authority. Thread-safe:
// the io threads count while a scrape renders.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "server/route_table.hpp"
#include "tessera/audit.hpp"
#include "tessera/error.hpp"
#include "tessera/outbox.hpp"

namespace tessera::server {

// Shared by the server and the service: it is also an AuditSink that counts
// lifecycle events and forwards them to `next` (which must outlive it).
class Metrics final : public AuditSink {
 public:
  explicit Metrics(AuditSink* next = nullptr);
  ~Metrics() override;
  void emit(const AuditEvent& event) noexcept override;
  // Prometheus text exposition format 0.0.4.
  [[nodiscard]] std::string render() const;
  // Called by the server for every answered request.
  // Indexes fixed arrays: no parsing, no allocation, no lock.
  void observe_request(RouteId route, unsigned status, std::optional<ErrorCode> code,
                       std::chrono::nanoseconds latency) noexcept;
  // Called by the outbox dispatcher after each round (docs/events.md).
  void observe_dispatch(const DispatchReport& report) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
