#include "server/access_log.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>

namespace tessera::server {

namespace {

// JSON string escaping for the access log (method and remote come from the
// network; route and code are ours, from fixed tables, and need none).
std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

void log_access(std::string_view method, const HttpResponse& res, std::chrono::nanoseconds latency,
                std::string_view request_id, std::string_view remote) {
  spdlog::info(
      R"({{"level":"info","event":"http_request","method":"{}","route":"{}","status":{},"code":"{}","latency_us":{},"request_id":"{}","remote":"{}"}})",
      json_escape(method), route_spec(res.route).path, res.status,
      res.code ? to_string(*res.code) : std::string_view{},
      std::chrono::duration_cast<std::chrono::microseconds>(latency).count(),
      json_escape(request_id), json_escape(remote));
}

void log_unavailable(const HttpResponse& res, std::string_view request_id) {
  spdlog::warn(
      R"({{"level":"warn","event":"unavailable","route":"{}","status":{},"code":"{}","detail":"{}","request_id":"{}"}})",
      route_spec(res.route).path, res.status, res.code ? to_string(*res.code) : std::string_view{},
      json_escape(res.log_detail), json_escape(request_id));
}

}  // namespace tessera::server
