// The OAuth 2.0 endpoints: introspection (RFC 7662) and revocation
// (RFC 7009). Both take the `token` parameter form encoded, or as JSON.
//
// An access token is introspected exactly as a resource service verifies
// it: the same AccessVerifier and its chain (signature, typ, iss, aud,
// times, then L1 epoch and L2 liveness), here with in-process ports.
#include <boost/json/array.hpp>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"
#include "tessera/jwt.hpp"
#include "tessera/verify.hpp"

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

// L1 from the service: the effective epoch, max(global, subject).
class ServiceEpochs final : public verify::EpochSource {
 public:
  explicit ServiceEpochs(SessionService& service) : service_(service) {}
  Result<std::uint64_t> current(std::string_view subject) override {
    return service_.epoch(subject);
  }

 private:
  SessionService& service_;
};

verify::VerifierOptions verifier_options(const SessionPolicy& policy) {
  verify::VerifierOptions o;
  o.issuer = policy.issuer;
  o.audiences = policy.audience;
  // No verified-token cache: a hit skips the key lookup, so a key pruned
  // from the set would keep verifying its tokens until they expire. The
  // authority must see a rotation at once, and its key set is in memory.
  o.cache_entries = 0;
  return o;
}

json::object inactive() {
  json::object o;
  o["active"] = false;
  return o;
}

}  // namespace

struct OAuth2Handlers::Verifier {
  explicit Verifier(const HandlerContext& ctx)
      : keys(ctx.deps.keys),
        epochs(ctx.deps.service),
        liveness(ctx.deps.store, ctx.deps.clock),
        access(verifier_options(ctx.deps.service.policy()), keys, ctx.deps.clock, &epochs,
               &liveness) {}
  verify::SharedKeySource keys;
  ServiceEpochs epochs;
  verify::StoreLivenessCheck liveness;  // L2: the session in the authority's store
  verify::AccessVerifier access;
};

OAuth2Handlers::OAuth2Handlers(const HandlerContext& ctx)
    : ctx_(ctx), verifier_(std::make_unique<Verifier>(ctx)) {}
OAuth2Handlers::~OAuth2Handlers() = default;

verify::AccessVerifier& OAuth2Handlers::access_verifier() {
  return verifier_->access;
}

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
  auto v = verifier_->access.verify(*token);
  if (!v) {
    // An outage is not a property of the token: 503, never "inactive".
    // The details are ours, not the store's.
    switch (v.error().code) {
      case ErrorCode::epoch_unavailable:
        return problem(ErrorCode::epoch_unavailable, "the subject's epoch is unavailable");
      case ErrorCode::liveness_unavailable:
        return problem(ErrorCode::liveness_unavailable, "session liveness is unavailable");
      default:
        return json_response(200, inactive());
    }
  }
  const JwtClaims& c = v->claims();
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
