// The API of API.md as a plain function from a request to a response, with
// no Boost type in sight: the network layer (server.cpp, Beast) reads and
// writes, this layer (routes.cpp, Boost.JSON) decides. Keeping the two apart
// keeps each compile small and lets the routes be reasoned about alone.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/server.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

// Route templates: the only values the `route` label of metrics and the
// access log ever take (never a raw path, which could hold a subject).
inline constexpr std::array<std::string_view, 14> kRoutes = {
    "/v1/sessions",
    "/v1/sessions/validate",
    "/v1/tokens/refresh",
    "/v1/logout",
    "/v1/subjects/{subject}/sessions",
    "/v1/subjects/{subject}/sessions/{id}",
    "/v1/subjects/{subject}/epoch",
    "/oauth2/introspect",
    "/oauth2/revoke",
    "/.well-known/jwks.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "unmatched",
};
inline constexpr std::size_t kRouteCount = kRoutes.size();
inline constexpr std::string_view kUnmatchedRoute = "unmatched";

// Index into kRoutes; unknown names count as "unmatched".
[[nodiscard]] std::size_t route_index(std::string_view route) noexcept;

// The one mapping from error codes to HTTP statuses (API.md "Status codes").
[[nodiscard]] unsigned http_status(ErrorCode code) noexcept;

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
  std::string_view route = kUnmatchedRoute;  // a kRoutes entry
  std::string_view code;                     // error code name, "" on success
};

// An RFC 9457 problem response for `code`, with the status http_status(code).
[[nodiscard]] HttpResponse problem(ErrorCode code, std::string_view detail);
// The same with another status, for the few answers that are not about an
// error code's meaning: 404 no route, 405 wrong method, 431 header too large
// (all with code invalid_request).
[[nodiscard]] HttpResponse problem(unsigned status, ErrorCode code, std::string_view detail);

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
