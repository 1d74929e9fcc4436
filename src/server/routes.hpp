// The API of docs/api.md as a plain function from a request to a response,
// with no Boost type in sight: the network layer (connection.cpp, Beast)
// reads and writes, this layer (the router in routes.cpp and the handlers
// it calls) decides. Keeping the two apart keeps each compile small and
// lets the routes be reasoned about alone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/options.hpp"
#include "server/route_table.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

// The mapping from error codes to HTTP statuses (docs/api.md "Status
// codes") is tessera::http_status (error.hpp), shared with resource
// services.
using tessera::http_status;

struct HttpRequest {
  std::string method;  // as sent ("GET")
  std::string target;  // path and query, still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string peer;  // the socket's peer address ("127.0.0.1", "::1"); "" when unknown

  // First header of that name, case-insensitively.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type;  // "" with an empty body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  RouteId route = RouteId::unmatched;  // for metrics and the access log
  std::optional<ErrorCode> code;       // set by problem(); none on success
  // A 503's specifics (a store's own words: hosts, ports), for the log line
  // with the request id only; public answers show a generic detail.
  std::string log_detail;
  // What was wrong with the credential when the answer's own code does not
  // say (forward-auth answers every refusal `unauthorized`, or a redirect):
  // the rate limits count guesses by it.
  std::optional<ErrorCode> credential_code;
};

// An RFC 9457 problem response for `code`, with the status http_status(code).
[[nodiscard]] HttpResponse problem(ErrorCode code, std::string_view detail);
// The same with another status, for the few answers that are not about an
// error code's meaning: 404 no route, 405 wrong method, 431 header too large
// (all with code invalid_request).
[[nodiscard]] HttpResponse problem(unsigned status, ErrorCode code, std::string_view detail);

enum class LogLevel : std::uint8_t { debug, info, warn, error };

// One JSON line on the spdlog default logger, in the shape the rest of
// `tessera serve` logs: {"level", "event"[, "detail"]}. Never pass a secret.
void log_event(LogLevel level, std::string_view event, std::string_view detail = {}) noexcept;

// Thread-safe: handle() may run on every io thread at once. `options` and
// `deps` are borrowed and must outlive it.
// The route a request target would reach, for deciding where it runs
// (RouteSpec::work) before it is handled: exact for fixed paths, and
// subject_sessions for anything under /v1/subjects/ (every subject route
// is store work). No decoding, no allocation.
[[nodiscard]] RouteId route_of(std::string_view target) noexcept;

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
