// The API of docs/api.md as a plain function from a request to a response, with
// no Boost type in sight: the network layer (server.cpp, Beast) reads and
// writes, this layer (routes.cpp, Boost.JSON) decides. Keeping the two apart
// keeps each compile small and lets the routes be reasoned about alone.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/server.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

enum class RouteId : std::uint8_t {
  issue,
  validate,
  refresh,
  logout,
  subject_sessions,
  subject_session,
  subject_epoch,
  introspect,
  revoke,
  jwks,
  healthz,
  readyz,
  metrics,
  unmatched,
};

// Who may call a route: anyone, a holder of an API key, or (metrics) an API
// key holder unless ServerOptions::metrics_public.
enum class Access : std::uint8_t { open, service, metrics };

struct RouteSpec {
  RouteId id;
  // The template: the only value the `route` label of metrics and the
  // access log ever takes (never a raw path, which could hold a subject).
  std::string_view path;
  std::string_view allow;  // the methods, as in an Allow header
  Access access;
};

// Every route, in RouteId order.
inline constexpr std::array<RouteSpec, 14> kRouteTable = {{
    {RouteId::issue, "/v1/sessions", "POST", Access::service},
    {RouteId::validate, "/v1/sessions/validate", "POST", Access::service},
    {RouteId::refresh, "/v1/tokens/refresh", "POST", Access::open},
    {RouteId::logout, "/v1/logout", "POST", Access::open},
    {RouteId::subject_sessions, "/v1/subjects/{subject}/sessions", "GET, DELETE", Access::service},
    {RouteId::subject_session, "/v1/subjects/{subject}/sessions/{id}", "DELETE", Access::service},
    {RouteId::subject_epoch, "/v1/subjects/{subject}/epoch", "GET, POST", Access::service},
    {RouteId::introspect, "/oauth2/introspect", "POST", Access::service},
    {RouteId::revoke, "/oauth2/revoke", "POST", Access::open},
    {RouteId::jwks, "/.well-known/jwks.json", "GET", Access::open},
    {RouteId::healthz, "/healthz", "GET", Access::open},
    {RouteId::readyz, "/readyz", "GET", Access::open},
    {RouteId::metrics, "/metrics", "GET", Access::metrics},
    {RouteId::unmatched, "unmatched", "", Access::open},
}};
inline constexpr std::size_t kRouteCount = kRouteTable.size();

[[nodiscard]] constexpr const RouteSpec& route_spec(RouteId id) noexcept {
  return kRouteTable[static_cast<std::size_t>(id)];
}
inline constexpr std::string_view kUnmatchedRoute = route_spec(RouteId::unmatched).path;

// Index into kRouteTable of a route template; unknown names count as
// "unmatched".
[[nodiscard]] std::size_t route_index(std::string_view route) noexcept;

// The mapping from error codes to HTTP statuses (docs/api.md §5) is
// tessera::http_status (error.hpp), shared with resource services.
using tessera::http_status;

struct HttpRequest {
  std::string method;  // as sent ("GET")
  std::string target;  // path and query, still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // First header of that name, case-insensitively.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type;  // "" with an empty body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view route = kUnmatchedRoute;  // a kRouteTable path
  std::string_view code;                     // error code name, "" on success
};

// An RFC 9457 problem response for `code`, with the status http_status(code).
[[nodiscard]] HttpResponse problem(ErrorCode code, std::string_view detail);
// The same with another status, for the few answers that are not about an
// error code's meaning: 404 no route, 405 wrong method, 431 header too large
// (all with code invalid_request).
[[nodiscard]] HttpResponse problem(unsigned status, ErrorCode code, std::string_view detail);

enum class LogLevel : std::uint8_t { info, warn, error };

// One JSON line on the spdlog default logger, in the shape the rest of
// `tessera serve` logs: {"level", "event"[, "detail"]}. Never pass a secret.
void log_event(LogLevel level, std::string_view event, std::string_view detail = {}) noexcept;

class Api {
 public:
  Api(const ServerOptions& options, ServerDeps& deps);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Never throws: an escaping exception becomes 500 internal.
  [[nodiscard]] HttpResponse handle(const HttpRequest& request) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
