// POST /v1/upstream/backchannel-logout: an OpenID Connect Back-Channel
// Logout 1.0 receiver (docs/upstream.md). The one validation path of the
// `logout+jwt` kind: its own typ, the provider's keys only (never ours),
// its own claims.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <mutex>
#include <unordered_map>

#include "server/handler_support.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwt.hpp"

namespace tessera::server {

namespace json = boost::json;

namespace {

constexpr std::string_view kBclEvent = "http://schemas.openid.net/event/backchannel-logout";
// A logout token older than this is refused even before its exp.
constexpr std::chrono::seconds kMaxAge{std::chrono::minutes{10}};

// §2.8: 400, with an OAuth-style error body.
HttpResponse refuse(std::string_view description, ErrorCode code = ErrorCode::invalid_request) {
  json::object o;
  o["error"] = "invalid_request";
  o["error_description"] = description;
  HttpResponse r = json_response(400, o);
  r.code = code;
  return r;
}

// The `iss` of a token, before anything is verified: which provider's keys
// to verify it with. nullopt when the payload cannot be read.
std::optional<std::string> peek_issuer(std::string_view token) {
  const auto first = token.find('.');
  const auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  std::string payload;
  if (!base64url_decode_into(token.substr(first + 1, second - first - 1), payload))
    return std::nullopt;
  boost::system::error_code ec;
  const json::value v = json::parse(payload, ec);
  const auto* o = ec ? nullptr : v.if_object();
  const auto* iss = o ? o->if_contains("iss") : nullptr;
  if (iss == nullptr || !iss->is_string()) return std::nullopt;
  return std::string(iss->as_string());
}

}  // namespace

// jti seen, per issuer, until the token's exp: a replay is refused. Bounded;
// per process (a replay to another instance revokes nothing more: the
// revocation is idempotent).
struct UpstreamHandlers::Seen {
  std::mutex mu;
  std::unordered_map<std::string, UnixSeconds> until;  // issuer + ' ' + jti
};

UpstreamHandlers::UpstreamHandlers(const HandlerContext& ctx)
    : ctx_(ctx), seen_(std::make_unique<Seen>()) {}
UpstreamHandlers::~UpstreamHandlers() = default;

HttpResponse UpstreamHandlers::backchannel_logout(const HttpRequest& req) {
  UpstreamKeys* providers = ctx_.deps.upstream;
  if (providers == nullptr)
    return problem(404, ErrorCode::invalid_request, "no upstream providers are configured");
  const auto ct = req.header("content-type").value_or("");
  if (!(ct.size() >= 33 && iequals(ct.substr(0, 33), "application/x-www-form-urlencoded")))
    return refuse("the body must be application/x-www-form-urlencoded");
  auto form = parse_form(req.body);
  if (!form) return refuse("bad form encoding");
  const auto token = form_value(*form, "logout_token");
  if (!token || token->empty()) return refuse("logout_token is required");
  if (token->size() > kMaxTokenBytes)
    return refuse("logout_token is too large", ErrorCode::token_too_large);

  const auto issuer = peek_issuer(*token);
  if (!issuer) return refuse("logout_token cannot be read", ErrorCode::invalid_token);
  const auto client_id = providers->client_id(*issuer);
  if (!client_id)
    return refuse("iss is not a configured upstream provider", ErrorCode::issuer_mismatch);

  VerifyOptions o;
  o.issuer = *issuer;
  o.audiences = {*client_id};
  o.typ = "logout+jwt";
  o.require_sub = false;
  const UnixSeconds now = ctx_.deps.clock.now();
  auto keys = providers->keys(*issuer, false);
  if (!keys) return from_error(keys.error());
  auto verified = verify_jwt(*token, **keys, o, now);
  if (!verified && verified.error().code == ErrorCode::key_not_found) {
    // A key the provider rotated in since we fetched: look once more.
    keys = providers->keys(*issuer, true);
    if (!keys) return from_error(keys.error());
    verified = verify_jwt(*token, **keys, o, now);
  }
  if (!verified) return refuse(to_string(verified.error().code), verified.error().code);
  const JwtClaims& c = verified->claims;

  // The claims of §2.4 beyond what verify_jwt checked.
  json::value extra;
  if (!c.custom.empty()) {
    boost::system::error_code ec;
    extra = json::parse(c.custom, ec);
    if (ec) return refuse("unreadable claims", ErrorCode::invalid_token);
  }
  const json::object* more = extra.if_object();
  const json::value* events = more ? more->if_contains("events") : nullptr;
  const json::value* event =
      events && events->is_object() ? events->as_object().if_contains(kBclEvent) : nullptr;
  if (event == nullptr || !event->is_object())
    return refuse("events must hold the back-channel logout event", ErrorCode::token_type_invalid);
  if (more->contains("nonce"))
    return refuse("a logout token carries no nonce", ErrorCode::token_type_invalid);
  const std::string sid = c.sid.value_or("");
  if (sid.empty() && c.sub.empty()) return refuse("sid or sub is required");
  if (c.jti.empty()) return refuse("jti is required");
  if (c.iat < now - kMaxAge) return refuse("the logout token is too old", ErrorCode::token_expired);

  {
    std::lock_guard lock(seen_->mu);
    if (seen_->until.size() > 100'000)
      std::erase_if(seen_->until, [&](const auto& kv) { return kv.second < now; });
    const auto [it, fresh] = seen_->until.try_emplace(*issuer + ' ' + c.jti, c.exp);
    if (!fresh) return refuse("jti was seen before: a replay", ErrorCode::invalid_token);
  }
  auto n = ctx_.deps.service.revoke_upstream(*issuer, sid, sid.empty() ? c.sub : "");
  if (!n) {
    // Not done: let the provider retry (and the jti be presented again).
    std::lock_guard lock(seen_->mu);
    seen_->until.erase(*issuer + ' ' + c.jti);
    return from_error(n.error());
  }
  HttpResponse r;
  r.status = 200;
  return r;
}

}  // namespace tessera::server
