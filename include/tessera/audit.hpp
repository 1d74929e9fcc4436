// Audit events (docs/design.md §8.1) as JSON lines to a pluggable sink. An event
// carries ids, subjects, reasons and codes — never a secret: the types that
// build events have no access to tokens.
#pragma once

#include <cstdint>
#include <iterator>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/session.hpp"

namespace tessera {

// What happened. The snake_case names are the `event` of the JSON line and
// the `event` label of tessera_lifecycle_events_total: stable, add at the end.
enum class AuditEventType : std::uint8_t {
  issued,
  renewed,
  replay_detected,
  revoked,
  evicted,
  epoch_bumped,
  key_rotated,
  validate_failed,
};
inline constexpr std::size_t kAuditEventTypeCount =
    static_cast<std::size_t>(AuditEventType::validate_failed) + 1;
// Every type in declaration order (a type's value is its index here).
inline constexpr AuditEventType kAllAuditEventTypes[] = {
    AuditEventType::issued,      AuditEventType::renewed,         AuditEventType::replay_detected,
    AuditEventType::revoked,     AuditEventType::evicted,         AuditEventType::epoch_bumped,
    AuditEventType::key_rotated, AuditEventType::validate_failed,
};
static_assert(std::size(kAllAuditEventTypes) == kAuditEventTypeCount,
              "kAllAuditEventTypes must list every AuditEventType");
[[nodiscard]] std::string_view to_string(AuditEventType type) noexcept;
[[nodiscard]] std::optional<AuditEventType> audit_event_type_from_string(
    std::string_view s) noexcept;

// Who made it happen: the session's user (logout), the calling service (an
// API key: revocation), or tessera itself (eviction, replay, rotation).
enum class Actor : std::uint8_t { user, service, system };
inline constexpr Actor kAllActors[] = {Actor::user, Actor::service, Actor::system};
static_assert(std::size(kAllActors) == static_cast<std::size_t>(Actor::system) + 1,
              "kAllActors must list every Actor");
[[nodiscard]] std::string_view to_string(Actor actor) noexcept;
[[nodiscard]] std::optional<Actor> actor_from_string(std::string_view s) noexcept;

struct AuditEvent {
  AuditEventType type = AuditEventType::issued;
  UnixSeconds at{};
  std::string subject;
  std::string session_id;
  std::string family_id;
  std::optional<RevokeScope> scope;    // revoked
  std::optional<RevokeReason> reason;  // revoked/evicted: why
  std::optional<Actor> actor;          // revoked/evicted/key_rotated
  std::optional<ErrorCode> code;       // validate_failed
  // key_rotated: the new active kid. The line has carried it under "reason"
  // since before this field existed, and still does.
  std::string kid;
  std::uint64_t count = 0;  // revoked: how many sessions; epoch_bumped: the new epoch;
                            // key_rotated: keys pruned
};

// One JSON object per event: {"event", "at", then subject, session_id,
// family_id, scope, reason, actor, code, count} by their to_string names,
// fields that are empty, unset or zero left out. The spellings are pinned by
// a test: consumers parse these lines.
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
