// The OAuth 2.0 endpoints: introspection (RFC 7662) and revocation
// (RFC 7009), both taking the `token` parameter form encoded or as JSON;
// the token endpoint's refresh grant (RFC 6749 §6), form encoded; and the
// authorization server metadata (RFC 8414).
//
// An access token is introspected exactly as a resource service verifies
// it: the same AccessVerifier and its chain (signature, typ, iss, aud,
// times, then L1 epoch and L2 liveness), here with in-process ports.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json/array.hpp>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"
#include "tessera/jwk.hpp"
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
  o.require_dpop_proof = false;  // §6.2: the answer names cnf.jkt; the resource checks the proof
  return o;
}

json::object inactive() {
  json::object o;
  o["active"] = false;
  return o;
}

// RFC 6749 §5.2: {"error", "error_description"}, and our code beside them.
HttpResponse oauth_error(unsigned status, std::string_view error, std::string_view description,
                         std::optional<ErrorCode> code = std::nullopt) {
  json::object o;
  o["error"] = error;
  o["error_description"] = description;
  if (code) o["code"] = to_string(*code);
  HttpResponse r = json_response(status, o);
  r.code = code ? *code : ErrorCode::invalid_request;
  r.headers.emplace_back("Pragma", "no-cache");
  return r;
}

// What a refusal of the refresh grant is in OAuth's words: a transient
// failure is the server's (503 temporarily_unavailable, retry), anything
// about the token is invalid_grant (§5.2: "invalid, expired, revoked").
HttpResponse grant_error(const Error& e) {
  if (is_transient(e.code)) {
    HttpResponse r = oauth_error(503, "temporarily_unavailable", "try again later", e.code);
    r.headers.emplace_back("Retry-After", "1");
    r.log_detail = e.detail;
    return r;
  }
  if (e.code == ErrorCode::invalid_request)
    return oauth_error(400, "invalid_request", e.detail, e.code);
  // RFC 9449 §5: a refused proof is invalid_dpop_proof, a nonce wanted
  // use_dpop_nonce; a proof by another key revoked the family and is a
  // grant that no longer holds.
  if (e.code == ErrorCode::dpop_proof_invalid)
    return oauth_error(400, "invalid_dpop_proof", e.detail, e.code);
  if (e.code == ErrorCode::use_dpop_nonce)
    return oauth_error(400, "use_dpop_nonce", e.detail, e.code);
  if (e.code == ErrorCode::internal || e.code == ErrorCode::key_invalid)
    return oauth_error(500, "server_error", "internal error", e.code);
  return oauth_error(400, "invalid_grant", to_string(e.code), e.code);
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
  if (c.cnf_jkt) o["cnf"] = json::object{{"jkt", *c.cnf_jkt}};  // RFC 9449 §6.2
  o["token_type"] = "access_token";
  return json_response(200, o);
}

HttpResponse OAuth2Handlers::token(const HttpRequest& req) {
  HttpResponse r = refresh_grant(req);
  add_dpop_nonce(ctx_, r);
  return r;
}

HttpResponse OAuth2Handlers::refresh_grant(const HttpRequest& req) {
  const auto ct = req.header("content-type").value_or("");
  if (!(ct.size() >= 33 && iequals(ct.substr(0, 33), "application/x-www-form-urlencoded")))
    return oauth_error(400, "invalid_request",
                       "the body must be application/x-www-form-urlencoded");
  auto form = parse_form(req.body);
  if (!form) return oauth_error(400, "invalid_request", "bad form encoding");
  const auto grant = form_value(*form, "grant_type");
  if (!grant) return oauth_error(400, "invalid_request", "grant_type is required");
  if (*grant != "refresh_token")
    return oauth_error(400, "unsupported_grant_type", "only refresh_token is supported");
  const auto refresh = form_value(*form, "refresh_token");
  if (!refresh || refresh->empty())
    return oauth_error(400, "invalid_request", "refresh_token is required");
  // The same renewal as POST /v1/tokens/refresh: grace, replay, rotation,
  // and the DPoP proof of a bound session (RFC 9449 §5).
  auto dpop = dpop_input(ctx_, req, "/oauth2/token");
  if (!dpop) return grant_error(dpop.error());
  const DpopPresented presented = dpop->presented(req.method);
  auto r = ctx_.deps.service.renew(*refresh, &presented);
  if (!r) return grant_error(r.error());
  const auto now = ctx_.deps.clock.now();
  json::object o;
  o["access_token"] = r->tokens.access_token.reveal();
  o["token_type"] = r->session.bound_jkt.empty() ? "Bearer" : "DPoP";
  o["expires_in"] = std::max<std::int64_t>(0, (r->tokens.access_expires_at - now).count());
  o["refresh_token"] = r->tokens.refresh_token.reveal();
  HttpResponse out = json_response(200, o);
  out.headers.emplace_back("Pragma", "no-cache");
  return out;
}

std::optional<std::string> public_base(const ServerOptions& opt, const HttpRequest& req) {
  if (!opt.public_base_from_host) {
    if (opt.public_base.empty()) return std::nullopt;
    return opt.public_base;
  }
  // Dev mode on a port chosen at start: the address the client used.
  const auto host = req.header("host").value_or("");
  if (host.empty() || host.find_first_of(" /\\@?#") != std::string_view::npos) return std::nullopt;
  return fmt::format("{}://{}{}", opt.public_scheme, host, opt.public_path);
}

HttpResponse OAuth2Handlers::metadata(const HttpRequest& req) {
  const ServerOptions& opt = ctx_.options;
  const auto known = public_base(opt, req);
  if (!known && opt.public_base_from_host)
    return problem(400, ErrorCode::invalid_request, "no usable Host header");
  if (!known)
    return problem(404, ErrorCode::invalid_request,
                   "no public_url is configured: the metadata cannot name the endpoints");
  const std::string& base = *known;
  json::object o;
  o["issuer"] = base;
  o["token_endpoint"] = base + "/oauth2/token";
  o["introspection_endpoint"] = base + "/oauth2/introspect";
  o["revocation_endpoint"] = base + "/oauth2/revoke";
  o["jwks_uri"] = base + "/.well-known/jwks.json";
  o["grant_types_supported"] = json::array{"refresh_token"};
  o["response_types_supported"] = json::array{};
  o["token_endpoint_auth_methods_supported"] = json::array{"none"};
  o["revocation_endpoint_auth_methods_supported"] = json::array{"none"};
  json::array algs;
  for (const Algorithm alg : kAllAlgorithms) {
    if (alg == Algorithm::HS256) continue;  // never published, never verifiable outside
    algs.push_back(json::value(to_string(alg)));
  }
  o["access_token_signing_alg_values_supported"] = std::move(algs);
  json::array dpop_algs;  // RFC 9449 §5.1
  for (std::string_view rest = kDpopAlgorithms; !rest.empty();) {
    const auto space = rest.find(' ');
    dpop_algs.push_back(json::value(rest.substr(0, space)));
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  o["dpop_signing_alg_values_supported"] = std::move(dpop_algs);
  o["tessera_access_token_issuer"] = ctx_.deps.service.policy().issuer;
  HttpResponse r = json_response(200, o);
  r.headers.emplace_back("Cache-Control", "public, max-age=3600");
  return r;
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
