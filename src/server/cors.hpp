// Browser-facing rules of the public endpoints (docs/api.md §3.12): CORS
// for the origins in `cors_allowed_origins`, and the Origin check that
// keeps a cookie from being spent by another site (CSRF). No Boost, no I/O.
//
// Why by hand and not a library: the rules are a handful of header
// comparisons, and none of the project's dependencies carries them (Beast
// parses headers; CORS policy is the application's).
#pragma once

#include <string_view>

#include "server/options.hpp"
#include "server/route_table.hpp"
#include "server/routes.hpp"

namespace tessera::server {

// The routes a browser on another origin may call: refresh (both forms),
// logout, the JWKS and the OAuth metadata, and the nginx and Traefik/Caddy forward-auth mounts (a
// "who am I" for the page). Not ext-authz: every method there is the original request's, OPTIONS
// included, and Envoy calls it, not a browser.
[[nodiscard]] constexpr bool cors_route(RouteId id) noexcept {
  return id == RouteId::refresh || id == RouteId::token || id == RouteId::logout ||
         id == RouteId::jwks || id == RouteId::oauth_metadata ||
         id == RouteId::authz_auth_request || id == RouteId::authz_forward_auth;
}

// The answer to `OPTIONS` on a CORS route. A preflight (Origin and
// Access-Control-Request-Method) from a listed origin for one of the
// route's methods: 204 with the Access-Control-Allow-* headers; from any
// other origin, or for another method: 403 origin_not_allowed. A plain
// OPTIONS (no preflight): 204 with Allow.
[[nodiscard]] HttpResponse cors_preflight(const ServerOptions& options, const RouteSpec& route,
                                          const HttpRequest& request);

// On every answer of a CORS route: `Vary: Origin`, and for a listed
// origin the Access-Control-Allow-Origin/-Credentials and -Expose-Headers
// that let the page read the answer.
void add_cors_headers(const ServerOptions& options, RouteId route, const HttpRequest& request,
                      HttpResponse& response);

// CSRF: may this request change state with the session cookie? Yes when
// `Sec-Fetch-Site: same-origin`, or its `Origin` is public_url's origin or
// a listed one; no when Origin is absent, `null` or another site's (every
// browser sends Origin on a POST; a backend passes the token in the body).
[[nodiscard]] bool cookie_write_allowed(const ServerOptions& options, const HttpRequest& request);

}  // namespace tessera::server
