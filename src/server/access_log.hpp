// Request ids and the access log line: text only, no network type.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "server/routes.hpp"

namespace tessera::server {

// X-Request-Id: the client's is kept if it is 1..64 of [A-Za-z0-9-_].
[[nodiscard]] bool sane_request_id(std::string_view id) noexcept;
// 16 hex digits, for a request that brought no sane id.
[[nodiscard]] std::string new_request_id();

// One JSON line per answered request on the spdlog default logger: method,
// route template, status, code, latency, request id, remote address. Never
// a token, a body, a subject or a credential header.
void log_access(std::string_view method, const HttpResponse& res, std::chrono::nanoseconds latency,
                std::string_view request_id, std::string_view remote);

// A 503's specifics (HttpResponse::log_detail), one warn line with the
// request id, whether or not the access log is on.
void log_unavailable(const HttpResponse& res, std::string_view request_id);

}  // namespace tessera::server
