// Forward-auth (docs/api.md "Forward-auth"): one check behind three mounts,
// because nginx, Traefik/Caddy and Envoy each ask in their own way and read
// the answer in their own way.
//
// The check reads the session cookie or an access token (verified by the
// resource side's own chain, epoch and liveness included; a DPoP-bound one
// with `Authorization: DPoP` and the client's proof for the original
// request), never a body. Allow is exactly 200 with an empty body and the identity in
// headers; deny is 401 (nginx: with Location, for `error_page 401`), or for
// a browser navigation through Traefik, Caddy or Envoy a 302/303 to the
// login page; a valid session on a host that is not allowed is 403; a store
// that cannot answer is 503 (fail closed).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "server/client_view.hpp"
#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/upstream_tokens.hpp"
#include "tessera/verify.hpp"

namespace tessera::server {

namespace {

// A browser navigation, not a script's call: Accept prefers HTML and
// nothing marks it as XHR/fetch.
bool is_navigation(const Headers& headers) {
  if (const auto mode = find_header(headers, "sec-fetch-mode"); mode && trim(*mode) != "navigate")
    return false;
  if (const auto xrw = find_header(headers, "x-requested-with");
      xrw && iequals(trim(*xrw), "XMLHttpRequest"))
    return false;
  const auto accept = find_header(headers, "accept");
  return accept && lower(*accept).find("text/html") != std::string::npos;
}

}  // namespace

AuthzHandlers::AuthzHandlers(const HandlerContext& ctx, verify::AccessVerifier& access)
    : ctx_(ctx),
      access_(access),
      dpop_(std::make_unique<DpopVerifier>(ctx.deps.service.policy().dpop)) {
  if (ctx.options.authz.upstream_token)
    upstream_ = std::make_unique<UpstreamTokens>(ctx.deps.service, ctx.deps.clock,
                                                 ctx.options.authz.upstream_token_renew_before);
}

AuthzHandlers::~AuthzHandlers() = default;

bool AuthzHandlers::host_allowed(std::string_view host) const {
  if (host.empty()) return false;
  const auto& o = ctx_.options;
  if (!o.public_host.empty() && host_matches(host, o.public_host)) return true;
  return std::any_of(o.authz.allowed_hosts.begin(), o.authz.allowed_hosts.end(),
                     [&](const std::string& e) { return host_matches(host, e); });
}

HttpResponse AuthzHandlers::handle(ForwardStyle style, const HttpRequest& req,
                                   std::string_view envoy_uri) {
  const OriginalRequest original =
      original_request(style, req.headers, req.method, req.peer, ctx_.options.trusted_proxies,
                       style == ForwardStyle::envoy ? envoy_uri : std::string_view{},
                       ctx_.options.tls.enabled() ? "https" : "http");
  const bool allowed_host = host_allowed(original.host);

  // The credential: one session cookie, or an access token (Bearer, or
  // DPoP with its proof).
  const auto cookie = single_cookie(req.headers, ctx_.options.cookie.name);
  if (!cookie)
    return deny(style, req, original, allowed_host, cookie.error().code, cookie.error().detail);
  std::optional<std::string> bearer;
  bool dpop_scheme = false;
  if (const auto h = req.header("authorization")) {
    if (const auto presented = verify::parse_authorization(trim(*h))) {
      bearer = std::string(presented->token);
      dpop_scheme = presented->dpop_scheme;
    }
  }

  std::string subject, session_id;
  std::optional<Session> session;  // the cookie's
  if (*cookie) {
    auto s = ctx_.deps.service.validate(**cookie, std::nullopt);
    if (!s) return deny(style, req, original, allowed_host, s.error().code, s.error().detail);
    subject = s->subject;
    session_id = s->id;
    session = std::move(*s);
  } else if (bearer) {
    auto v = access_.verify(*bearer);
    if (!v) return deny(style, req, original, allowed_host, v.error().code, v.error().detail);
    if (const auto& jkt = v->claims().cnf_jkt) {
      // A bound token: the proof the client made for the request the proxy
      // forwards, its htu the original URL (from a trusted proxy's headers).
      auto proof = dpop_scheme ? dpop_header(req) : Result<std::optional<std::string>>();
      if (!proof)
        return deny(style, req, original, allowed_host, proof.error().code, proof.error().detail);
      if (!*proof)
        return deny(style, req, original, allowed_host, ErrorCode::dpop_proof_invalid,
                    "a DPoP-bound token needs Authorization: DPoP and its DPoP proof");
      const std::string url = original.url();
      const DpopCheck check{
          .method = original.method, .url = url, .access_token = *bearer, .expected_jkt = *jkt};
      if (auto ok = dpop_->verify(**proof, check, ctx_.deps.clock.now()); !ok)
        return deny(style, req, original, allowed_host,
                    ok.error().code == ErrorCode::invalid_request ? ErrorCode::dpop_proof_invalid
                                                                  : ok.error().code,
                    ok.error().detail);
    }
    subject = v->claims().sub;
    session_id = v->claims().sid.value_or("");
  } else {
    return deny(style, req, original, allowed_host, ErrorCode::unauthorized,
                "no session cookie and no access token");
  }

  if (!allowed_host) {
    return problem(ErrorCode::host_not_allowed,
                   "the session is valid, but not for the host this request is for");
  }
  HttpResponse r;
  r.status = 200;
  if (upstream_) {
    // The services behind the proxy get an access token, never the cookie:
    // the cookie's session's (kept per session), or the Bearer just verified.
    if (session) {
      auto token = upstream_->token_for(*session);
      // Fail closed: an epoch that cannot be read is a 503, as for the check.
      if (!token) return problem(token.error().code, "the upstream token cannot be minted now");
      r.headers.emplace_back("Authorization", fmt::format("Bearer {}", token->reveal()));
    } else {
      // A bound token stays one: the services behind get it with the DPoP
      // scheme, beside the client's own DPoP header the proxy passes on.
      r.headers.emplace_back("Authorization",
                             fmt::format("{} {}", dpop_scheme ? "DPoP" : "Bearer", *bearer));
    }
  }
  r.headers.emplace_back("X-Tessera-Subject", subject);
  if (!session_id.empty()) r.headers.emplace_back("X-Tessera-Session-Id", session_id);
  for (const auto& name : ctx_.options.authz.subject_headers) r.headers.emplace_back(name, subject);
  return r;
}

HttpResponse AuthzHandlers::deny(ForwardStyle style, const HttpRequest& req,
                                 const OriginalRequest& original, bool allowed_host, ErrorCode code,
                                 std::string_view detail) const {
  if (http_status(code) == 503) {  // fail closed, with Retry-After; the proxy may retry
    return problem(code, "the session cannot be checked now; retry later");
  }
  const std::string& login = ctx_.options.authz.login_url;
  std::string location;
  if (!login.empty()) {
    location = login;
    const std::string url = original.url();
    if (allowed_host && !url.empty()) {
      location += login.find('?') == std::string::npos ? '?' : '&';
      location += "rd=" + query_escape(url);
    }
  }
  const bool redirect =
      style != ForwardStyle::nginx && !location.empty() && is_navigation(req.headers);
  if (redirect) {
    HttpResponse r;
    const bool safe =
        original.method == "GET" || original.method == "HEAD" || original.method == "OPTIONS";
    r.status = safe ? 302 : 303;
    r.code = ErrorCode::unauthorized;
    r.credential_code = code;
    r.headers.emplace_back("Location", location);
    return r;
  }
  // The detail says what was wrong with the credential, never the credential.
  HttpResponse r = problem(ErrorCode::unauthorized,
                           code == ErrorCode::unauthorized || code == ErrorCode::invalid_request
                               ? std::string(detail)
                               : "no valid session: " + std::string(to_string(code)));
  r.credential_code = code;
  if (!location.empty()) r.headers.emplace_back("Location", location);
  return r;
}

}  // namespace tessera::server
