// Audit events (docs/design.md §8.1) as JSON lines to a pluggable sink. An event
// carries ids, subjects, reasons and codes — never a secret: the types that
// build events have no access to tokens.
#pragma once

#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"

namespace tessera {

struct AuditEvent {
  std::string_view type;  // issued, renewed, replay_detected, revoked, evicted,
                          // epoch_bumped, key_rotated, validate_failed
  UnixSeconds at{};
  std::string subject;
  std::string session_id;
  std::string family_id;
  std::string scope;        // revoked: session | family | others | all
  std::string reason;       // revoked/evicted: why
  std::string actor;        // revoked: user | service | system
  std::string code;         // validate_failed: the error code
  std::uint64_t count = 0;  // revoked: how many sessions; epoch_bumped: the new epoch
};

// One JSON object per event, fields that are empty or zero left out.
[[nodiscard]] std::string to_json_line(const AuditEvent& event);

// Thread-safe: emit() may be called from any thread.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual void emit(const AuditEvent& event) noexcept = 0;
};

// Writes JSON lines to a stream (a file, std::clog), flushing each line.
class JsonLinesAuditSink final : public AuditSink {
 public:
  explicit JsonLinesAuditSink(std::ostream& out) : out_(out) {}
  void emit(const AuditEvent& event) noexcept override;

 private:
  std::mutex mu_;
  std::ostream& out_;
};

// Keeps the lines in memory; for tests.
class MemoryAuditSink final : public AuditSink {
 public:
  void emit(const AuditEvent& event) noexcept override;
  [[nodiscard]] std::vector<std::string> lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace tessera
