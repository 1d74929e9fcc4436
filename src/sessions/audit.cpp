#include "tessera/audit.hpp"

#include <boost/json.hpp>

namespace tessera {

std::string to_json_line(const AuditEvent& e) {
  boost::json::object o;
  o["event"] = e.type;
  o["at"] = e.at.time_since_epoch().count();
  auto put = [&o](std::string_view k, const std::string& v) {
    if (!v.empty()) o[k] = v;
  };
  put("subject", e.subject);
  put("session_id", e.session_id);
  put("family_id", e.family_id);
  put("scope", e.scope);
  put("reason", e.reason);
  put("actor", e.actor);
  put("code", e.code);
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
