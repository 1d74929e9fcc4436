#include "tessera/audit.hpp"

#include <boost/json.hpp>

namespace tessera {

std::string_view to_string(AuditEventType type) noexcept {
  switch (type) {
    case AuditEventType::issued:
      return "issued";
    case AuditEventType::renewed:
      return "renewed";
    case AuditEventType::replay_detected:
      return "replay_detected";
    case AuditEventType::revoked:
      return "revoked";
    case AuditEventType::evicted:
      return "evicted";
    case AuditEventType::epoch_bumped:
      return "epoch_bumped";
    case AuditEventType::key_rotated:
      return "key_rotated";
    case AuditEventType::validate_failed:
      return "validate_failed";
  }
  return "";
}

std::optional<AuditEventType> audit_event_type_from_string(std::string_view s) noexcept {
  for (AuditEventType t : kAllAuditEventTypes) {
    if (to_string(t) == s) return t;
  }
  return std::nullopt;
}

std::string_view to_string(Actor actor) noexcept {
  switch (actor) {
    case Actor::user:
      return "user";
    case Actor::service:
      return "service";
    case Actor::system:
      return "system";
  }
  return "";
}

std::optional<Actor> actor_from_string(std::string_view s) noexcept {
  for (Actor a : kAllActors) {
    if (to_string(a) == s) return a;
  }
  return std::nullopt;
}

std::string to_json_line(const AuditEvent& e) {
  boost::json::object o;
  o["event"] = to_string(e.type);
  o["at"] = e.at.time_since_epoch().count();
  auto put = [&o](std::string_view k, std::string_view v) {
    if (!v.empty()) o[k] = v;
  };
  auto put_opt = [&put](std::string_view k, const auto& v) {
    if (v) put(k, to_string(*v));
  };
  put("subject", e.subject);
  put("session_id", e.session_id);
  put("family_id", e.family_id);
  put_opt("scope", e.scope);
  put_opt("reason", e.reason);
  put("reason", e.kid);  // key_rotated has a kid and no reason (see audit.hpp)
  put_opt("actor", e.actor);
  put_opt("code", e.code);
  if (e.count != 0) o["count"] = e.count;
  return boost::json::serialize(o);
}

void JsonLinesAuditSink::emit(const AuditEvent& event) noexcept {
  try {
    const std::string line = to_json_line(event);
    std::lock_guard lock(mu_);
    out_ << line << '\n';
    out_.flush();
  } catch (...) {
    // Auditing must never take a request down with it.
  }
}

void MemoryAuditSink::emit(const AuditEvent& event) noexcept {
  try {
    std::string line = to_json_line(event);
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
  } catch (...) {
  }
}

std::vector<std::string> MemoryAuditSink::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

}  // namespace tessera
