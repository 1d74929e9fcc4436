// The route table: every route of the API (docs/api.md), its template, its
// methods and who may call it. Shared by the router, the metrics and the
// access log, so a route has one name everywhere. No Boost type, no I/O.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::server {

enum class RouteId : std::uint8_t {
  issue,
  validate,
  refresh,
  logout,
  subject_sessions,
  subject_session,
  subject_epoch,
  global_epoch,
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
inline constexpr std::array<RouteSpec, 15> kRouteTable = {{
    {RouteId::issue, "/v1/sessions", "POST", Access::service},
    {RouteId::validate, "/v1/sessions/validate", "POST", Access::service},
    {RouteId::refresh, "/v1/tokens/refresh", "POST", Access::open},
    {RouteId::logout, "/v1/logout", "POST", Access::open},
    {RouteId::subject_sessions, "/v1/subjects/{subject}/sessions", "GET, DELETE", Access::service},
    {RouteId::subject_session, "/v1/subjects/{subject}/sessions/{id}", "DELETE", Access::service},
    {RouteId::subject_epoch, "/v1/subjects/{subject}/epoch", "GET, POST", Access::service},
    {RouteId::global_epoch, "/v1/epoch", "GET, POST", Access::service},
    {RouteId::introspect, "/oauth2/introspect", "POST", Access::service},
    {RouteId::revoke, "/oauth2/revoke", "POST", Access::open},
    {RouteId::jwks, "/.well-known/jwks.json", "GET", Access::open},
    {RouteId::healthz, "/healthz", "GET", Access::open},
    {RouteId::readyz, "/readyz", "GET", Access::open},
    {RouteId::metrics, "/metrics", "GET", Access::metrics},
    {RouteId::unmatched, "unmatched", "", Access::open},
}};
inline constexpr std::size_t kRouteCount = kRouteTable.size();

static_assert(
    [] {
      for (std::size_t i = 0; i < kRouteTable.size(); ++i) {
        if (static_cast<std::size_t>(kRouteTable[i].id) != i) return false;
      }
      return true;
    }(),
    "kRouteTable must be in RouteId order");

[[nodiscard]] constexpr const RouteSpec& route_spec(RouteId id) noexcept {
  return kRouteTable[static_cast<std::size_t>(id)];
}

}  // namespace tessera::server
