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
  rotate,
  refresh,
  logout,
  subject_sessions,
  subject_session,
  subject_epoch,
  global_epoch,
  introspect,
  revoke,
  token,
  backchannel_logout,
  ssf_streams,
  authz_auth_request,
  authz_forward_auth,
  authz_ext_authz,
  account,
  jwks,
  oauth_metadata,
  ssf_configuration,
  healthz,
  readyz,
  metrics,
  unmatched,
};

// Who may call a route: anyone, a holder of an API key, or (metrics) an API
// key holder unless ServerOptions::metrics_public.
enum class Access : std::uint8_t { open, service, metrics };

// Where a route's handler runs (docs/http.md "Store workers"): on the io
// thread (`loop`: no store call), or on a store worker. `store_read` routes
// read the store and stay on the io thread when ServerOptions::inline_reads
// (an in-process store, where the read costs less than the hop);
// `store_write` routes always go to the workers.
enum class Work : std::uint8_t { loop, store_read, store_write };

struct RouteSpec {
  RouteId id;
  // The template: the only value the `route` label of metrics and the
  // access log ever takes (never a raw path, which could hold a subject).
  std::string_view path;
  std::string_view allow;  // the methods, as in an Allow header
  Access access;
  Work work;
};

// Every route, in RouteId order.
inline constexpr std::array<RouteSpec, 25> kRouteTable = {{
    {RouteId::issue, "/v1/sessions", "POST", Access::service, Work::store_write},
    {RouteId::validate, "/v1/sessions/validate", "POST", Access::service, Work::store_read},
    {RouteId::rotate, "/v1/sessions/rotate", "POST", Access::service, Work::store_write},
    {RouteId::refresh, "/v1/tokens/refresh", "POST, OPTIONS", Access::open, Work::store_write},
    {RouteId::logout, "/v1/logout", "POST, OPTIONS", Access::open, Work::store_write},
    {RouteId::subject_sessions, "/v1/subjects/{subject}/sessions", "GET, HEAD, DELETE",
     Access::service, Work::store_write},
    {RouteId::subject_session, "/v1/subjects/{subject}/sessions/{id}", "DELETE", Access::service,
     Work::store_write},
    {RouteId::subject_epoch, "/v1/subjects/{subject}/epoch", "GET, HEAD, POST", Access::service,
     Work::store_write},
    {RouteId::global_epoch, "/v1/epoch", "GET, HEAD, POST", Access::service, Work::store_write},
    {RouteId::introspect, "/oauth2/introspect", "POST", Access::service, Work::store_read},
    {RouteId::revoke, "/oauth2/revoke", "POST", Access::open, Work::store_write},
    {RouteId::token, "/oauth2/token", "POST, OPTIONS", Access::open, Work::store_write},
    // Called by the upstream provider, authenticated by its signed token.
    {RouteId::backchannel_logout, "/v1/upstream/backchannel-logout", "POST", Access::open,
     Work::store_write},
    // SSF stream configuration (its file is written off the io threads).
    {RouteId::ssf_streams, "/ssf/streams", "GET, HEAD, POST, DELETE", Access::service,
     Work::store_write},
    // Forward-auth: no API key (the cookie holder learns only their own
    // identity); never a body. ext-authz takes the original method, any.
    {RouteId::authz_auth_request, "/v1/authz/auth-request", "GET, HEAD, OPTIONS", Access::open,
     Work::store_read},
    {RouteId::authz_forward_auth, "/v1/authz/forward-auth", "GET, HEAD, OPTIONS", Access::open,
     Work::store_read},
    {RouteId::authz_ext_authz, "/v1/authz/ext-authz/{path}", "*", Access::open, Work::store_read},
    // The account page: the cookie's subject's devices; its forms revoke.
    {RouteId::account, "/account", "GET, HEAD, POST", Access::open, Work::store_write},
    {RouteId::jwks, "/.well-known/jwks.json", "GET, HEAD, OPTIONS", Access::open, Work::loop},
    {RouteId::oauth_metadata, "/.well-known/oauth-authorization-server", "GET, HEAD, OPTIONS",
     Access::open, Work::loop},
    {RouteId::ssf_configuration, "/.well-known/ssf-configuration", "GET, HEAD", Access::open,
     Work::loop},
    {RouteId::healthz, "/healthz", "GET, HEAD", Access::open, Work::loop},
    {RouteId::readyz, "/readyz", "GET, HEAD", Access::open, Work::store_read},
    {RouteId::metrics, "/metrics", "GET, HEAD", Access::metrics, Work::loop},
    {RouteId::unmatched, "unmatched", "", Access::open, Work::loop},
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

// The three forward-auth mounts: no body read, their own API key header.
[[nodiscard]] constexpr bool is_forward_auth(RouteId id) noexcept {
  return id == RouteId::authz_auth_request || id == RouteId::authz_forward_auth ||
         id == RouteId::authz_ext_authz;
}

[[nodiscard]] constexpr const RouteSpec& route_spec(RouteId id) noexcept {
  return kRouteTable[static_cast<std::size_t>(id)];
}

}  // namespace tessera::server
