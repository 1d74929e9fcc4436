// The handlers, grouped by resource, one file per group. The router
// (routes.cpp) has matched the route, checked the method and the API key,
// and decoded the path parameters; a handler reads its input strictly (a
// missing or ill-typed required field is invalid_request; unknown fields
// are ignored), calls the session service and maps its Result to a
// response. No Boost type here, so the router compiles without Boost.JSON.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "server/client_view.hpp"
#include "server/options.hpp"
#include "server/routes.hpp"
#include "tessera/key_set.hpp"

namespace tessera::verify {
class AccessVerifier;
}

namespace tessera::server {

class UpstreamTokens;

// Borrowed by every handler; the referents are the Api's.
struct HandlerContext {
  const ServerOptions& options;
  ServerDeps& deps;
};

// ---- sessions (handle_sessions.cpp) -----------------------------------------
// POST /v1/sessions, POST /v1/sessions/validate, POST /v1/logout.
[[nodiscard]] HttpResponse issue_session(const HandlerContext& ctx, const HttpRequest& req);
[[nodiscard]] HttpResponse validate_session(const HandlerContext& ctx, const HttpRequest& req);
// GET and POST /account (docs/api.md §3.13): the cookie's subject's devices,
// signed out one by one or all but this one (handle_account.cpp).
[[nodiscard]] HttpResponse account_page(const HandlerContext& ctx, const HttpRequest& req);
// POST /v1/sessions/rotate (docs/api.md §3.11): a new session for the same
// login, the old one revoked (anti-fixation after a privilege change).
[[nodiscard]] HttpResponse rotate_session(const HandlerContext& ctx, const HttpRequest& req);
[[nodiscard]] HttpResponse logout(const HandlerContext& ctx, const HttpRequest& req);

// ---- tokens (handle_tokens.cpp) ---------------------------------------------
// POST /v1/tokens/refresh.
[[nodiscard]] HttpResponse refresh_tokens(const HandlerContext& ctx, const HttpRequest& req);

// ---- subjects and epochs (handle_subjects.cpp) ------------------------------
// GET|DELETE /v1/subjects/{subject}/sessions (`query` still encoded).
[[nodiscard]] HttpResponse subject_sessions(const HandlerContext& ctx, const HttpRequest& req,
                                            std::string_view subject, std::string_view query);
// DELETE /v1/subjects/{subject}/sessions/{id}.
[[nodiscard]] HttpResponse subject_session(const HandlerContext& ctx, std::string_view subject,
                                           std::string_view id);
// GET|POST /v1/subjects/{subject}/epoch.
[[nodiscard]] HttpResponse subject_epoch(const HandlerContext& ctx, const HttpRequest& req,
                                         std::string_view subject);
// GET|POST /v1/epoch: the global epoch (break glass; revokes nothing itself).
[[nodiscard]] HttpResponse global_epoch(const HandlerContext& ctx, const HttpRequest& req);

// ---- oauth2 (handle_oauth2.cpp) ---------------------------------------------
// POST /oauth2/introspect (RFC 7662), POST /oauth2/revoke (RFC 7009).
// Access tokens are introspected by the resource side's own verifier
// (tessera::verify::AccessVerifier), built once, over the live key set and
// the service's epochs and liveness. Thread-safe.
class OAuth2Handlers {
 public:
  explicit OAuth2Handlers(const HandlerContext& ctx);
  ~OAuth2Handlers();
  OAuth2Handlers(const OAuth2Handlers&) = delete;
  OAuth2Handlers& operator=(const OAuth2Handlers&) = delete;

  [[nodiscard]] HttpResponse introspect(const HttpRequest& req);
  [[nodiscard]] HttpResponse revoke(const HttpRequest& req);
  // POST /oauth2/token: grant_type=refresh_token (RFC 6749 §6).
  [[nodiscard]] HttpResponse token(const HttpRequest& req);
  // GET /.well-known/oauth-authorization-server (RFC 8414).
  [[nodiscard]] HttpResponse metadata(const HttpRequest& req);
  // The verifier, for the other checks of access tokens (forward-auth).
  [[nodiscard]] verify::AccessVerifier& access_verifier();

 private:
  struct Verifier;
  [[nodiscard]] HttpResponse refresh_grant(const HttpRequest& req);
  HandlerContext ctx_;
  std::unique_ptr<Verifier> verifier_;
};

// ---- SSF (handle_ssf.cpp) ----------------------------------------------------
// GET /.well-known/ssf-configuration; GET, POST, DELETE /ssf/streams.
[[nodiscard]] HttpResponse ssf_configuration(const HandlerContext& ctx, const HttpRequest& req);
[[nodiscard]] HttpResponse ssf_streams(const HandlerContext& ctx, const HttpRequest& req,
                                       std::string_view query);
// public_url as the base of the addresses the authority publishes, or (dev
// mode on port 0) http://<Host>; nullopt: none known (production without
// public_url) or a Host that is no host (handle_oauth2.cpp).
[[nodiscard]] std::optional<std::string> public_base(const ServerOptions& options,
                                                     const HttpRequest& req);

// ---- upstream providers (handle_upstream.cpp) --------------------------------
// POST /v1/upstream/backchannel-logout (OpenID Connect Back-Channel Logout).
class UpstreamHandlers {
 public:
  explicit UpstreamHandlers(const HandlerContext& ctx);
  ~UpstreamHandlers();
  UpstreamHandlers(const UpstreamHandlers&) = delete;
  UpstreamHandlers& operator=(const UpstreamHandlers&) = delete;

  [[nodiscard]] HttpResponse backchannel_logout(const HttpRequest& req);

 private:
  struct Seen;
  HandlerContext ctx_;
  std::unique_ptr<Seen> seen_;
};

// ---- forward-auth (handle_authz.cpp) ----------------------------------------
// GET /v1/authz/auth-request (nginx), GET /v1/authz/forward-auth (Traefik,
// Caddy), any /v1/authz/ext-authz/{path} (Envoy; `envoy_uri` is the path
// below the mount with the query). Thread-safe; `access` is borrowed.
class AuthzHandlers {
 public:
  AuthzHandlers(const HandlerContext& ctx, verify::AccessVerifier& access);
  ~AuthzHandlers();
  AuthzHandlers(const AuthzHandlers&) = delete;
  AuthzHandlers& operator=(const AuthzHandlers&) = delete;
  [[nodiscard]] HttpResponse handle(ForwardStyle style, const HttpRequest& req,
                                    std::string_view envoy_uri);

 private:
  [[nodiscard]] bool host_allowed(std::string_view host) const;
  [[nodiscard]] HttpResponse deny(ForwardStyle style, const HttpRequest& req,
                                  const OriginalRequest& original, bool allowed_host,
                                  ErrorCode code, std::string_view detail) const;
  HandlerContext ctx_;
  verify::AccessVerifier& access_;
  std::unique_ptr<UpstreamTokens> upstream_;  // with authz.upstream_token
  // The proofs of DPoP-bound access tokens (`access_` leaves them to the
  // caller: it is introspection's too); one replay cache for every mount.
  std::unique_ptr<DpopVerifier> dpop_;
};

// ---- well-known and operations (handle_ops.cpp) -----------------------------
// GET /.well-known/jwks.json: rendered once per key-set pointer, so a
// rotation shows at the next request. Thread-safe.
class JwksHandler {
 public:
  [[nodiscard]] HttpResponse handle(const HandlerContext& ctx);

 private:
  std::mutex mu_;
  std::shared_ptr<const KeySet> keys_;  // the set body_ was rendered from
  std::string body_;
};
// What the last store write said, for /readyz: a store that answers reads
// but fails every write (disk full) is not ready. The failure counts for
// kWriteFailureWindow after it happened, or until a write succeeds: a
// load balancer that stops sending traffic must not keep the authority
// out for ever, and readiness comes back by itself once the window passes
// (the next failed write takes it away again). Thread-safe.
class WriteHealth {
 public:
  static constexpr std::chrono::seconds kWriteFailureWindow{10};
  void record(bool failed, UnixMillis now) noexcept {
    failed_at_ms_.store(failed ? now.time_since_epoch().count() : 0, std::memory_order_relaxed);
  }
  [[nodiscard]] bool failing(UnixMillis now) const noexcept {
    const auto at = failed_at_ms_.load(std::memory_order_relaxed);
    return at != 0 && now.time_since_epoch().count() - at <
                          std::chrono::milliseconds(kWriteFailureWindow).count();
  }

 private:
  std::atomic<std::int64_t> failed_at_ms_{0};  // 0: the last write went through
};

// GET /healthz, GET /readyz, GET /metrics.
[[nodiscard]] HttpResponse healthz();
[[nodiscard]] HttpResponse readyz(const HandlerContext& ctx, const WriteHealth& writes);
[[nodiscard]] HttpResponse metrics_text(const HandlerContext& ctx);

}  // namespace tessera::server
