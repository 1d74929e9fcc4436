// The OAuth 2.0 endpoints: introspection (RFC 7662) and revocation
// (RFC 7009). Both take the `token` parameter form encoded, or as JSON.
#include <boost/json/array.hpp>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"
#include "tessera/jwt.hpp"

namespace tessera::server {

namespace json = boost::json;

namespace {

// The `token` parameter of RFC 7662/7009: form encoded, or JSON.
Result<std::string> token_param(const HttpRequest& req) {
  const auto ct = req.header("content-type").value_or("");
  if (ct.size() >= 16 && iequals(ct.substr(0, 16), "application/json")) {
    auto body = read_object(req);
    if (!body) return std::unexpected(body.error());
    return req_string(*body, "token");
  }
  auto form = parse_form(req.body);
  if (!form) return fail(ErrorCode::invalid_request, "bad form encoding");
  auto t = form_value(*form, "token");
  if (!t) return fail(ErrorCode::invalid_request, "token is required");
  return std::move(*t);
}

json::value audience_json(const std::vector<std::string>& aud) {
  if (aud.size() == 1) return json::value(aud.front());
  json::array a;
  for (const auto& x : aud) a.push_back(json::value(x));
  return a;
}

json::object inactive() {
  json::object o;
  o["active"] = false;
  return o;
}

}  // namespace

OAuth2Handlers::OAuth2Handlers(const HandlerContext& ctx) : ctx_(ctx) {}
OAuth2Handlers::~OAuth2Handlers() = default;

HttpResponse OAuth2Handlers::introspect(const HttpRequest& req) {
  auto token = token_param(req);
  if (!token) return from_error(token.error());
  SessionService& service = ctx_.deps.service;
  const SessionPolicy& policy = service.policy();
  if (token->starts_with(token_prefix(TokenKind::session)) ||
      token->starts_with(token_prefix(TokenKind::refresh))) {
    auto found = service.inspect(*token);
    if (!found) return from_error(found.error());
    if (!*found) return json_response(200, inactive());
    const Session& s = (*found)->session;
    json::object o;
    o["active"] = true;
    o["sub"] = s.subject;
    o["sid"] = s.id;
    o["exp"] = unix_seconds(s.expires_at);
    o["iat"] = unix_seconds((*found)->kind == TokenKind::refresh && s.rotated_at ? *s.rotated_at
                                                                                 : s.created_at);
    o["iss"] = policy.issuer;
    o["aud"] = audience_json(policy.audience);
    o["token_type"] = (*found)->kind == TokenKind::refresh ? "refresh_token" : "session_token";
    return json_response(200, o);
  }
  const auto keys = ctx_.deps.keys.get();
  VerifyOptions vo;
  vo.issuer = policy.issuer;
  vo.audiences = policy.audience;
  auto v = verify_jwt(*token, *keys, vo, ctx_.deps.clock.now());
  if (!v) return json_response(200, inactive());
  const JwtClaims& c = v->claims;
  if (c.sv) {
    auto e = service.epoch(c.sub);
    if (!e) return problem(ErrorCode::epoch_unavailable, "the subject's epoch is unavailable");
    if (*c.sv < *e) return json_response(200, inactive());
  }
  if (c.sid) {
    auto live = service.is_live(*c.sid);
    if (!live) return problem(ErrorCode::liveness_unavailable, "session liveness is unavailable");
    if (!*live) return json_response(200, inactive());
  }
  json::object o;
  o["active"] = true;
  o["sub"] = c.sub;
  if (c.sid) o["sid"] = *c.sid;
  o["exp"] = unix_seconds(c.exp);
  o["iat"] = unix_seconds(c.iat);
  o["iss"] = c.iss;
  o["aud"] = audience_json(c.aud);
  if (!c.jti.empty()) o["jti"] = c.jti;
  o["token_type"] = "access_token";
  return json_response(200, o);
}

HttpResponse OAuth2Handlers::revoke(const HttpRequest& req) {
  auto token = token_param(req);
  if (!token) return from_error(token.error());
  // RFC 7009 §2.2: the answer is 200 whether or not the token was valid;
  // only a malformed request is refused. A store that did not answer is
  // 503 (§2.2.1): the client must not believe a revocation that did not
  // happen.
  if (auto n = ctx_.deps.service.logout(*token, RevokeScope::session);
      !n && is_transient(n.error().code)) {
    return from_error(n.error());
  }
  HttpResponse r;
  r.status = 200;
  return r;
}

}  // namespace tessera::server
