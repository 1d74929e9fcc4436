// Prometheus counters and histograms for the HTTP authority. Thread-safe:
// the io threads count while a scrape renders.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "tessera/audit.hpp"

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
  void observe_request(std::string_view route, unsigned status, std::string_view error_code,
                       std::chrono::nanoseconds latency) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
