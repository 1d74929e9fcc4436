// docs/api.md §3.12. The Fetch standard's CORS protocol, server side: a
// preflight answered for the listed origins only, credentials allowed (the
// session cookie), never `*`.
#include "server/cors.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "server/http_text.hpp"

namespace tessera::server {

namespace {

// The request headers a page may send to these routes.
constexpr std::string_view kAllowHeaders = "Content-Type, Authorization, DPoP, X-Request-Id";
// What a page may read of an answer besides the CORS-safelisted headers.
constexpr std::string_view kExposeHeaders =
    "X-Request-Id, WWW-Authenticate, Retry-After, DPoP-Nonce, X-Tessera-Subject, "
    "X-Tessera-Session-Id";

bool listed(const ServerOptions& o, std::string_view origin) {
  const std::string l = lower(origin);
  return std::find(o.cors_allowed_origins.begin(), o.cors_allowed_origins.end(), l) !=
         o.cors_allowed_origins.end();
}

// public_url's own origin (scheme and host; the port as host_allowed
// compares it: only when public_url names one).
bool own_origin(const ServerOptions& o, std::string_view origin) {
  if (o.public_host.empty()) return false;
  const auto sep = origin.find("://");
  if (sep == std::string_view::npos || !iequals(origin.substr(0, sep), o.public_scheme))
    return false;
  const std::string_view host = origin.substr(sep + 3);
  if (host.empty() || host.find_first_of("/?#@") != std::string_view::npos) return false;
  return host_matches(host, o.public_host);
}

// Every header name of a comma-separated Access-Control-Request-Headers is
// one of kAllowHeaders.
bool headers_allowed(std::string_view requested) {
  std::string_view name;
  while (next_list_item(requested, name)) {
    bool found = false;
    for (std::string_view allowed : {"content-type", "authorization", "x-request-id"})
      found |= iequals(name, allowed);
    if (!found) return false;
  }
  return true;
}

// The route's methods for Access-Control-Allow-Methods (OPTIONS left out).
std::string methods_of(std::string_view allow) {
  std::string out;
  std::string_view m;
  while (next_list_item(allow, m)) {
    if (m == "OPTIONS") continue;
    if (!out.empty()) out += ", ";
    out += m;
  }
  return out;
}

}  // namespace

HttpResponse cors_preflight(const ServerOptions& o, const RouteSpec& route,
                            const HttpRequest& req) {
  const auto origin = req.header("origin");
  const auto method = req.header("access-control-request-method");
  HttpResponse r;
  r.route = route.id;
  if (!origin || !method) {  // not a preflight: what OPTIONS means in RFC 9110
    r.status = 204;
    r.headers.emplace_back("Allow", std::string(route.allow));
    return r;
  }
  const std::string methods = methods_of(route.allow);
  const auto requested_headers = req.header("access-control-request-headers");
  if (!listed(o, *origin)) {
    r = problem(ErrorCode::origin_not_allowed,
                "this origin is not in cors_allowed_origins (exact origins only)");
  } else if (*method == "OPTIONS" || !method_allowed(methods, *method)) {
    r = problem(
        ErrorCode::origin_not_allowed,
        fmt::format("a preflight for a method this route does not take; it takes: {}", methods));
  } else if (requested_headers && !headers_allowed(*requested_headers)) {
    r = problem(ErrorCode::origin_not_allowed,
                fmt::format("a preflight for request headers beyond {}", kAllowHeaders));
  } else {
    r.status = 204;
    r.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
    r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
    r.headers.emplace_back("Access-Control-Allow-Methods", methods);
    r.headers.emplace_back("Access-Control-Allow-Headers", std::string(kAllowHeaders));
    r.headers.emplace_back("Access-Control-Max-Age", "600");
  }
  r.route = route.id;
  r.headers.emplace_back("Vary",
                         "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  return r;
}

void add_cors_headers(const ServerOptions& o, RouteId route, const HttpRequest& req,
                      HttpResponse& r) {
  if (!cors_route(route)) return;
  r.headers.emplace_back("Vary", "Origin");
  const auto origin = req.header("origin");
  if (!origin || !listed(o, *origin)) return;
  r.headers.emplace_back("Access-Control-Allow-Origin", std::string(*origin));
  r.headers.emplace_back("Access-Control-Allow-Credentials", "true");
  r.headers.emplace_back("Access-Control-Expose-Headers", std::string(kExposeHeaders));
}

bool cookie_write_allowed(const ServerOptions& o, const HttpRequest& req) {
  if (const auto site = req.header("sec-fetch-site"); site && iequals(trim(*site), "same-origin"))
    return true;
  const auto origin = req.header("origin");
  if (!origin) return false;
  const std::string_view v = trim(*origin);
  return own_origin(o, v) || listed(o, v);
}

}  // namespace tessera::server
