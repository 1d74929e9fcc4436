// The sessions resource: issue, validate, rotate, logout. Cookie mode answers carry
// the session cookie (docs/api.md "Cookies").
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

#include "server/cors.hpp"
#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"

namespace tessera::server {

namespace json = boost::json;
using namespace std::string_view_literals;

namespace {

// The cookie-mode answer of an issue and of a rotation: the session, its
// token and expiry, and the Set-Cookie that hands it to the browser.
HttpResponse cookie_session_answer(const HandlerContext& ctx, unsigned status,
                                   const IssuedSession& issued, JsonScratch& scratch) {
  json::object o(4, scratch.storage());
  o["mode"] = "cookie";
  o["session"] = session_json(issued.session, scratch.storage());
  o["session_token"] = issued.session_token.reveal();
  o["expires_at"] = unix_seconds(issued.session.expires_at);
  HttpResponse r = json_response(status, o);
  const auto max_age = std::max<std::int64_t>(
      0, unix_seconds(issued.session.expires_at) - unix_seconds(ctx.deps.clock.now()));
  r.headers.emplace_back("Set-Cookie",
                         cookie_header(ctx.options.cookie, issued.session_token.reveal(), max_age));
  return r;
}

// The session token of a request: the body's `session_token`, else the
// session cookie (refused when several arrive: docs/api.md "Cookies");
// neither is invalid_request.
Result<std::string> session_token_of(const HandlerContext& ctx, const HttpRequest& req,
                                     const json::object& body) {
  auto token = opt_string(body, "session_token");
  if (!token) return std::unexpected(token.error());
  if (!*token) {
    auto cookie = single_cookie(req.headers, ctx.options.cookie.name);
    if (!cookie) return std::unexpected(cookie.error());
    *token = std::move(*cookie);
  }
  if (!*token)
    return fail(ErrorCode::invalid_request,
                "session_token is required (in the body or the session cookie)");
  return std::move(**token);
}

}  // namespace

HttpResponse issue_session(const HandlerContext& ctx, const HttpRequest& req) {
  JsonScratch scratch;
  auto body = read_object(req, false, scratch.storage());
  if (!body) return from_error(body.error());
  IssueRequest ir;
  auto subject = req_string(*body, "subject");
  if (!subject) return from_error(subject.error());
  ir.subject = std::move(*subject);
  auto mode_text = req_string(*body, "mode");
  if (!mode_text) return from_error(mode_text.error());
  auto mode = session_mode_from_string(*mode_text);
  if (!mode) return problem(ErrorCode::invalid_request, "mode must be \"cookie\" or \"token\"");
  ir.mode = *mode;
  if (const auto* m = body->if_contains("metadata"); m != nullptr && !m->is_null()) {
    if (!m->is_object()) return problem(ErrorCode::invalid_request, "metadata must be an object");
    for (auto [field, target] :
         {std::pair{"ip"sv, &ir.metadata.ip}, std::pair{"user_agent"sv, &ir.metadata.user_agent},
          std::pair{"device"sv, &ir.metadata.device}}) {
      auto v = opt_string(m->as_object(), field);
      if (!v)
        return problem(ErrorCode::invalid_request,
                       fmt::format("metadata.{} must be a string", field));
      if (*v) *target = std::move(**v);
    }
  }
  auto data = opt_object_text(*body, "data");
  if (!data) return from_error(data.error());
  if (*data) ir.data = std::move(**data);
  auto claims = opt_object_text(*body, "claims");
  if (!claims) return from_error(claims.error());
  if (*claims) ir.claims = std::move(**claims);
  auto fp = opt_string(*body, "fingerprint");
  if (!fp) return from_error(fp.error());
  ir.fingerprint = std::move(*fp);
  if (const auto* u = body->if_contains("upstream"); u != nullptr && !u->is_null()) {
    // The login at an upstream provider (docs/upstream.md).
    if (!u->is_object()) return problem(ErrorCode::invalid_request, "upstream must be an object");
    const auto& uo = u->as_object();
    for (const auto& member : uo) {
      const std::string_view k = member.key();
      if (k != "issuer" && k != "sid" && k != "sub" && k != "refresh_token")
        return problem(ErrorCode::invalid_request,
                       fmt::format("upstream: unknown member \"{}\"", k.substr(0, 64)));
    }
    IssueRequest::Upstream up;
    for (auto [field, target] : {std::pair{"issuer"sv, &up.issuer}, std::pair{"sid"sv, &up.sid},
                                 std::pair{"sub"sv, &up.sub}}) {
      auto v = opt_string(uo, field);
      if (!v)
        return problem(ErrorCode::invalid_request,
                       fmt::format("upstream.{} must be a string", field));
      if (*v) *target = std::move(**v);
    }
    auto rt = opt_string(uo, "refresh_token");
    if (!rt) return problem(ErrorCode::invalid_request, "upstream.refresh_token must be a string");
    if (*rt) up.refresh_token = SecretString(std::move(**rt));
    ir.upstream = std::move(up);
  }
  auto jkt = opt_string(*body, "dpop_jkt");
  if (!jkt) return from_error(jkt.error());
  if (*jkt) {
    // The proofs of every renewal must name the refresh endpoint's public
    // URL: without one known, a bound session could never renew.
    if (!ctx.options.public_base_from_host && ctx.options.public_base.empty())
      return problem(ErrorCode::invalid_request,
                     "dpop_jkt needs public_url: DPoP proofs name the endpoint's public URL");
    ir.dpop_jkt = std::move(**jkt);
  }

  auto issued = ctx.deps.service.issue(ir);
  if (!issued) return from_error(issued.error());
  if (issued->tokens) {
    HttpResponse r =
        json_response(201, token_pair_json(issued->session, *issued->tokens, scratch.storage()));
    // The nonce the client's first refresh proof needs, for the login
    // handler to pass on with the tokens.
    if (!issued->session.bound_jkt.empty()) add_dpop_nonce(ctx, r);
    return r;
  }
  return cookie_session_answer(ctx, 201, *issued, scratch);
}

HttpResponse rotate_session(const HandlerContext& ctx, const HttpRequest& req) {
  JsonScratch scratch;
  auto body = read_object(req, true, scratch.storage());
  if (!body) return from_error(body.error());
  auto token = session_token_of(ctx, req, *body);
  if (!token) return from_error(token.error());
  auto rotated = ctx.deps.service.rotate_session(*token);
  if (!rotated) return from_error(rotated.error());
  return cookie_session_answer(ctx, 200, *rotated, scratch);
}

HttpResponse validate_session(const HandlerContext& ctx, const HttpRequest& req) {
  JsonScratch scratch;
  auto body = read_object(req, true, scratch.storage());
  if (!body) return from_error(body.error());
  auto token = session_token_of(ctx, req, *body);
  if (!token) return from_error(token.error());
  auto fp = opt_string(*body, "fingerprint");
  if (!fp) return from_error(fp.error());
  std::optional<std::string_view> fingerprint;
  if (*fp) fingerprint = **fp;
  auto s = ctx.deps.service.validate(*token, fingerprint);
  if (!s) return from_error(s.error());
  json::object o(2, scratch.storage());
  o["active"] = true;
  o["session"] = session_json(*s, scratch.storage());
  return json_response(200, o);
}

HttpResponse logout(const HandlerContext& ctx, const HttpRequest& req) {
  auto body = read_object(req, true);
  if (!body) return from_error(body.error());
  std::optional<std::string> token;
  bool cookie_mode = false;
  for (auto name : {"session_token"sv, "access_token"sv, "refresh_token"sv}) {
    auto v = opt_string(*body, name);
    if (!v) return from_error(v.error());
    if (*v && !token) {
      token = std::move(*v);
      cookie_mode = name == "session_token";
    }
  }
  if (!token) {
    auto cookie = single_cookie(req.headers, ctx.options.cookie.name);
    if (!cookie) return from_error(cookie.error());
    token = std::move(*cookie);
    cookie_mode = token.has_value();
    // The browser attaches the cookie to any site's form post: only a page
    // of a trusted origin may spend it (CSRF, docs/api.md §3.12).
    if (token && !cookie_write_allowed(ctx.options, req))
      return problem(ErrorCode::origin_not_allowed,
                     "a logout by cookie needs an Origin of public_url or cors_allowed_origins "
                     "(or Sec-Fetch-Site: same-origin); a backend passes session_token instead");
  }
  if (!token)
    return problem(ErrorCode::invalid_request,
                   "one of session_token, access_token, refresh_token (or the session cookie) "
                   "is required");
  auto scope_text = opt_string(*body, "scope");
  if (!scope_text) return from_error(scope_text.error());
  RevokeScope scope = RevokeScope::session;
  if (*scope_text) {
    auto s = revoke_scope_from_string(**scope_text);
    if (!s)
      return problem(ErrorCode::invalid_request, "scope must be session, family, others or all");
    scope = *s;
  }
  auto n = ctx.deps.service.logout(*token, scope);
  if (!n) return from_error(n.error());
  json::object o;
  o["revoked"] = *n;
  HttpResponse r = json_response(200, o);
  if (cookie_mode)
    r.headers.emplace_back("Set-Cookie", cookie_header(ctx.options.cookie, "", std::nullopt));
  return r;
}

}  // namespace tessera::server
