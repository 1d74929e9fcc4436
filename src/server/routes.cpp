// The endpoints of docs/api.md. Every handler reads its input strictly (a missing
// or ill-typed required field is invalid_request; unknown fields are
// ignored), calls the session service, and maps its Result to a response.
// Errors leave only through problem(): one place decides status and shape.
#include "server/routes.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <mutex>

#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwt.hpp"

namespace tessera::server {

namespace json = boost::json;
using namespace std::string_view_literals;

static_assert(
    [] {
      for (std::size_t i = 0; i < kRouteTable.size(); ++i) {
        if (static_cast<std::size_t>(kRouteTable[i].id) != i) return false;
      }
      return true;
    }(),
    "kRouteTable must be in RouteId order");

std::size_t route_index(std::string_view route) noexcept {
  for (std::size_t i = 0; i < kRouteTable.size(); ++i) {
    if (kRouteTable[i].path == route) return i;
  }
  return static_cast<std::size_t>(RouteId::unmatched);
}

namespace {

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding; `plus_is_space` for form encoding. nullopt on a
// broken escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// application/x-www-form-urlencoded (also a query string): the first value
// of each name. nullopt on a broken escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_form(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!s.empty()) {
    const auto amp = s.find('&');
    const std::string_view part = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view{} : s.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    auto name = percent_decode(part.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::optional<std::string> form_value(const std::vector<std::pair<std::string, std::string>>& f,
                                      std::string_view name) {
  for (const auto& [k, v] : f) {
    if (k == name) return v;
  }
  return std::nullopt;
}

HttpResponse json_response(unsigned status, const json::value& v) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(v);
  return r;
}

std::int64_t unix(UnixSeconds t) {
  return t.time_since_epoch().count();
}

json::value optional_time(const std::optional<UnixSeconds>& t) {
  return t ? json::value(unix(*t)) : json::value(nullptr);
}

json::value session_json(const Session& s) {
  json::object o;
  o["id"] = s.id;
  o["subject"] = s.subject;
  o["family_id"] = s.family_id;
  o["mode"] = to_string(s.mode);
  o["created_at"] = unix(s.created_at);
  o["last_seen_at"] = unix(s.last_seen_at);
  o["expires_at"] = unix(s.expires_at);
  o["idle_expires_at"] = optional_time(s.idle_expires_at);
  o["revoked_at"] = optional_time(s.revoked_at);
  o["revoke_reason"] =
      s.revoke_reason ? json::value(to_string(*s.revoke_reason)) : json::value(nullptr);
  o["generation"] = s.generation;
  json::object m;
  m["ip"] = s.metadata.ip;
  m["user_agent"] = s.metadata.user_agent;
  m["device"] = s.metadata.device;
  o["metadata"] = std::move(m);
  json::error_code ec;
  json::value data = json::parse(s.data, ec);
  o["data"] = ec || !data.is_object() ? json::value(json::object{}) : std::move(data);
  return o;
}

json::value token_pair_json(const Session& s, const TokenPair& t) {
  json::object o;
  o["session"] = session_json(s);
  o["access_token"] = t.access_token.reveal();
  o["token_type"] = "Bearer";
  o["access_expires_at"] = unix(t.access_expires_at);
  o["refresh_token"] = t.refresh_token.reveal();
  o["refresh_expires_at"] = unix(t.refresh_expires_at);
  return o;
}

HttpResponse from_error(const Error& e) {
  return problem(e.code, e.detail);
}

// A JSON request body: an object, or invalid_request. An empty body reads as
// {} when `empty_ok`.
Result<json::object> read_object(const HttpRequest& req, bool empty_ok = false) {
  if (req.body.empty() && empty_ok) return json::object{};
  json::error_code ec;
  json::parse_options opt;
  opt.max_depth = 32;
  json::value v = json::parse(req.body, ec, {}, opt);
  if (ec) return fail(ErrorCode::invalid_request, "body is not valid JSON (UTF-8)");
  if (!v.is_object()) return fail(ErrorCode::invalid_request, "body must be a JSON object");
  return std::move(v.as_object());
}

// An optional string member: nullopt when absent (or null), invalid_request
// when present with another type.
Result<std::optional<std::string>> opt_string(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>{};
  if (!v->is_string())
    return fail(ErrorCode::invalid_request, fmt::format("{} must be a string", name));
  return std::optional<std::string>{std::string(v->as_string())};
}

Result<std::string> req_string(const json::object& o, std::string_view name) {
  auto v = opt_string(o, name);
  if (!v) return std::unexpected(v.error());
  if (!*v) return fail(ErrorCode::invalid_request, fmt::format("{} is required", name));
  return std::move(**v);
}

Result<std::optional<std::string>> opt_object_text(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return std::optional<std::string>{};
  if (!v->is_object())
    return fail(ErrorCode::invalid_request, fmt::format("{} must be a JSON object", name));
  return std::optional<std::string>{json::serialize(*v)};
}

std::optional<std::string> cookie_value(const HttpRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (!iequals(k, "cookie")) continue;
    std::string_view rest = v;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
        value = value.substr(1, value.size() - 2);
      return std::string(value);
    }
  }
  return std::nullopt;
}

struct Route {
  RouteId id = RouteId::unmatched;
  std::vector<std::string> params;  // percent-decoded: {subject}[, {id}]
};

// Splits the (still encoded) path into segments, matches a template and
// percent-decodes its parameters. nullopt: no route; an error: a broken
// escape in a parameter.
Result<std::optional<Route>> match(std::string_view path) {
  using Out = std::optional<Route>;
  for (const RouteSpec& spec : kRouteTable) {
    if (spec.path.find('{') == std::string_view::npos && path == spec.path)
      return Out{Route{spec.id, {}}};
  }
  constexpr std::string_view kSubjects = "/v1/subjects/";
  if (!path.starts_with(kSubjects)) return Out{};
  std::vector<std::string_view> seg;
  std::string_view rest = path.substr(kSubjects.size());
  while (true) {
    const auto slash = rest.find('/');
    seg.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  RouteId id = RouteId::unmatched;
  if (seg.size() == 2 && seg[1] == "sessions") {
    id = RouteId::subject_sessions;
  } else if (seg.size() == 3 && seg[1] == "sessions") {
    id = RouteId::subject_session;
  } else if (seg.size() == 2 && seg[1] == "epoch") {
    id = RouteId::subject_epoch;
  } else {
    return Out{};
  }
  Route r{id, {}};
  for (std::size_t i = 0; i < seg.size(); i += 2) {
    auto decoded = percent_decode(seg[i], false);
    if (!decoded) return fail(ErrorCode::invalid_request, "bad percent-encoding in the path");
    if (decoded->empty()) return fail(ErrorCode::invalid_request, "empty path parameter");
    r.params.push_back(std::move(*decoded));
  }
  return Out{std::move(r)};
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void log_event(LogLevel level, std::string_view event, std::string_view detail) noexcept {
  try {
    json::object o;
    switch (level) {
      case LogLevel::info:
        o["level"] = "info";
        break;
      case LogLevel::warn:
        o["level"] = "warn";
        break;
      case LogLevel::error:
        o["level"] = "error";
        break;
    }
    o["event"] = event;
    if (!detail.empty()) o["detail"] = detail;
    const std::string line = json::serialize(o);
    switch (level) {
      case LogLevel::info:
        spdlog::info("{}", line);
        break;
      case LogLevel::warn:
        spdlog::warn("{}", line);
        break;
      case LogLevel::error:
        spdlog::error("{}", line);
        break;
    }
  } catch (...) {  // logging must never take a request down
  }
}

HttpResponse problem(ErrorCode code, std::string_view detail) {
  return problem(http_status(code), code, detail);
}

HttpResponse problem(unsigned status, ErrorCode code, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.code = to_string(code);
  json::object o;
  o["type"] = fmt::format("urn:tessera:problem:{}", r.code);
  o["title"] = reason_phrase(r.status);
  o["status"] = r.status;
  o["code"] = r.code;
  o["detail"] = detail;
  r.content_type = "application/problem+json";
  r.body = json::serialize(o);
  if (code == ErrorCode::unauthorized) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (r.status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

struct Api::Impl {
  const ServerOptions& options;
  ServerDeps& deps;

  std::mutex jwks_mu;
  std::shared_ptr<const KeySet> jwks_keys;  // the set jwks_body was rendered from
  std::string jwks_body;

  bool authorized(const HttpRequest& req) const {
    auto h = req.header("authorization");
    if (!h) return false;
    std::string_view v = trim(*h);
    if (v.size() < 7 || !iequals(v.substr(0, 7), "bearer ")) return false;
    const std::string_view key = trim(v.substr(7));
    if (key.empty()) return false;
    const auto digest = sha256(key);
    bool ok = false;
    for (const auto& h2 : options.api_key_hashes) ok |= constant_time_equal(digest, h2);
    return ok;
  }

  std::string cookie_header(std::string_view value, std::optional<std::int64_t> max_age) const {
    const CookieOptions& c = options.cookie;
    std::string out = fmt::format("{}={}; Path={}", c.name, value, c.path.empty() ? "/" : c.path);
    if (!c.domain.empty()) out += fmt::format("; Domain={}", c.domain);
    out += fmt::format("; Max-Age={}", max_age.value_or(0));
    if (!max_age) out += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
    if (c.secure) out += "; Secure";
    out += "; HttpOnly";
    if (!c.same_site.empty()) out += fmt::format("; SameSite={}", c.same_site);
    return out;
  }

  HttpResponse issue(const HttpRequest& req) {
    auto body = read_object(req);
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

    auto issued = deps.service.issue(ir);
    if (!issued) return from_error(issued.error());
    if (issued->tokens) {
      return json_response(201, token_pair_json(issued->session, *issued->tokens));
    }
    json::object o;
    o["session"] = session_json(issued->session);
    o["session_token"] = issued->session_token.reveal();
    o["expires_at"] = unix(issued->session.expires_at);
    HttpResponse r = json_response(201, o);
    const auto max_age =
        std::max<std::int64_t>(0, unix(issued->session.expires_at) - unix(deps.clock.now()));
    r.headers.emplace_back("Set-Cookie", cookie_header(issued->session_token.reveal(), max_age));
    return r;
  }

  HttpResponse validate(const HttpRequest& req) {
    auto body = read_object(req, true);
    if (!body) return from_error(body.error());
    auto token = opt_string(*body, "session_token");
    if (!token) return from_error(token.error());
    if (!*token) *token = cookie_value(req, options.cookie.name);
    if (!*token)
      return problem(ErrorCode::invalid_request,
                     "session_token is required (in the body or the session cookie)");
    auto fp = opt_string(*body, "fingerprint");
    if (!fp) return from_error(fp.error());
    std::optional<std::string_view> fingerprint;
    if (*fp) fingerprint = **fp;
    auto s = deps.service.validate(**token, fingerprint);
    if (!s) return from_error(s.error());
    json::object o;
    o["active"] = true;
    o["session"] = session_json(*s);
    return json_response(200, o);
  }

  HttpResponse refresh(const HttpRequest& req) {
    auto body = read_object(req);
    if (!body) return from_error(body.error());
    auto token = req_string(*body, "refresh_token");
    if (!token) return from_error(token.error());
    auto r = deps.service.renew(*token);
    if (!r) return from_error(r.error());
    return json_response(200, token_pair_json(r->session, r->tokens));
  }

  HttpResponse logout(const HttpRequest& req) {
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
      token = cookie_value(req, options.cookie.name);
      cookie_mode = token.has_value();
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
    auto n = deps.service.logout(*token, scope);
    if (!n) return from_error(n.error());
    json::object o;
    o["revoked"] = *n;
    HttpResponse r = json_response(200, o);
    if (cookie_mode) r.headers.emplace_back("Set-Cookie", cookie_header("", std::nullopt));
    return r;
  }

  HttpResponse subject_sessions(const HttpRequest& req, const Route& route,
                                std::string_view query) {
    const std::string& subject = route.params[0];
    if (req.method == "GET") {
      auto list = deps.service.list(subject);
      if (!list) return from_error(list.error());
      json::array a;
      for (const auto& s : *list) a.push_back(session_json(s));
      json::object o;
      o["sessions"] = std::move(a);
      return json_response(200, o);
    }
    auto form = parse_form(query);
    if (!form) return problem(ErrorCode::invalid_request, "bad percent-encoding in the query");
    auto except = form_value(*form, "except");
    std::optional<std::string_view> ex;
    if (except) ex = *except;
    auto n = deps.service.revoke_all(subject, ex);
    if (!n) return from_error(n.error());
    json::object o;
    o["revoked"] = *n;
    return json_response(200, o);
  }

  HttpResponse subject_session(const Route& route) {
    auto n = deps.service.revoke(route.params[0], route.params[1]);
    if (!n) return from_error(n.error());
    HttpResponse r;
    r.status = 204;
    return r;
  }

  HttpResponse epoch(const HttpRequest& req, const Route& route) {
    auto e = req.method == "GET" ? deps.service.epoch(route.params[0])
                                 : deps.service.bump_epoch(route.params[0]);
    if (!e) return from_error(e.error());
    json::object o;
    o["epoch"] = *e;
    return json_response(200, o);
  }

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

  HttpResponse introspect(const HttpRequest& req) {
    auto token = token_param(req);
    if (!token) return from_error(token.error());
    json::object inactive;
    inactive["active"] = false;
    const SessionPolicy& policy = deps.service.policy();
    auto aud_json = [&]() -> json::value {
      if (policy.audience.size() == 1) return json::value(policy.audience.front());
      json::array a;
      for (const auto& x : policy.audience) a.push_back(json::value(x));
      return a;
    };
    if (token->starts_with(token_prefix(TokenKind::session)) ||
        token->starts_with(token_prefix(TokenKind::refresh))) {
      auto found = deps.service.inspect(*token);
      if (!found) return from_error(found.error());
      if (!*found) return json_response(200, inactive);
      const Session& s = (*found)->session;
      json::object o;
      o["active"] = true;
      o["sub"] = s.subject;
      o["sid"] = s.id;
      o["exp"] = unix(s.expires_at);
      o["iat"] =
          unix((*found)->kind == TokenKind::refresh && s.rotated_at ? *s.rotated_at : s.created_at);
      o["iss"] = policy.issuer;
      o["aud"] = aud_json();
      o["token_type"] = (*found)->kind == TokenKind::refresh ? "refresh_token" : "session_token";
      return json_response(200, o);
    }
    const auto keys = deps.keys.get();
    VerifyOptions vo;
    vo.issuer = policy.issuer;
    vo.audiences = policy.audience;
    auto v = verify_jwt(*token, *keys, vo, deps.clock.now());
    if (!v) return json_response(200, inactive);
    const JwtClaims& c = v->claims;
    if (c.sv) {
      auto e = deps.service.epoch(c.sub);
      if (!e) return problem(ErrorCode::epoch_unavailable, "the subject's epoch is unavailable");
      if (*c.sv < *e) return json_response(200, inactive);
    }
    if (c.sid) {
      auto live = deps.service.is_live(*c.sid);
      if (!live) return problem(ErrorCode::liveness_unavailable, "session liveness is unavailable");
      if (!*live) return json_response(200, inactive);
    }
    json::object o;
    o["active"] = true;
    o["sub"] = c.sub;
    if (c.sid) o["sid"] = *c.sid;
    o["exp"] = unix(c.exp);
    o["iat"] = unix(c.iat);
    o["iss"] = c.iss;
    if (c.aud.size() == 1) {
      o["aud"] = c.aud.front();
    } else {
      json::array a;
      for (const auto& x : c.aud) a.push_back(json::value(x));
      o["aud"] = std::move(a);
    }
    if (!c.jti.empty()) o["jti"] = c.jti;
    o["token_type"] = "access_token";
    return json_response(200, o);
  }

  HttpResponse revoke(const HttpRequest& req) {
    auto token = token_param(req);
    if (!token) return from_error(token.error());
    // RFC 7009 §2.2: the answer is 200 whether or not the token was valid;
    // only a malformed request is refused. A store that did not answer is
    // 503 (§2.2.1): the client must not believe a revocation that did not
    // happen.
    if (auto n = deps.service.logout(*token, RevokeScope::session);
        !n && is_transient(n.error().code)) {
      return from_error(n.error());
    }
    HttpResponse r;
    r.status = 200;
    return r;
  }

  HttpResponse jwks() {
    auto keys = deps.keys.get();
    std::string body;
    {
      std::lock_guard lock(jwks_mu);
      if (jwks_keys != keys) {
        jwks_body = keys->public_jwks();
        jwks_keys = keys;
      }
      body = jwks_body;
    }
    HttpResponse r;
    r.content_type = "application/json";
    r.body = std::move(body);
    r.headers.emplace_back("Cache-Control",
                           fmt::format("public, max-age={}", options.jwks_max_age.count()));
    return r;
  }

  HttpResponse readyz() {
    if (auto e = deps.store.epoch(""); !e) {
      return problem(ErrorCode::store_unavailable, "the session store does not answer");
    }
    return json_response(200, json::object{{"status", "ready"}});
  }

  HttpResponse metrics() {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = deps.metrics.render();
    return r;
  }

  static bool method_allowed(std::string_view allow, std::string_view method) {
    while (!allow.empty()) {
      const auto comma = allow.find(',');
      if (trim(allow.substr(0, comma)) == method) return true;
      allow = comma == std::string_view::npos ? std::string_view{} : allow.substr(comma + 1);
    }
    return false;
  }

  HttpResponse dispatch(const HttpRequest& req) {
    std::string_view target = req.target;
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query =
        q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

    auto matched = match(path);
    if (!matched) return from_error(matched.error());
    if (!*matched) return problem(404, ErrorCode::invalid_request, "no such route");
    const Route& route = **matched;
    const RouteSpec& spec = route_spec(route.id);

    if (!method_allowed(spec.allow, req.method)) {
      HttpResponse r = problem(405, ErrorCode::invalid_request,
                               fmt::format("method not allowed; allowed: {}", spec.allow));
      r.headers.emplace_back("Allow", spec.allow);
      r.route = spec.path;
      return r;
    }
    const bool needs_key = spec.access == Access::service ||
                           (spec.access == Access::metrics && !options.metrics_public);
    if (needs_key && !authorized(req)) {
      HttpResponse r = problem(ErrorCode::unauthorized, "a valid API key is required");
      r.route = spec.path;
      return r;
    }

    HttpResponse r;
    bool no_store = true;  // token-bearing (or token-judging) answers
    switch (route.id) {
      case RouteId::issue:
        r = issue(req);
        break;
      case RouteId::validate:
        r = validate(req);
        break;
      case RouteId::refresh:
        r = refresh(req);
        break;
      case RouteId::logout:
        r = logout(req);
        break;
      case RouteId::subject_sessions:
        r = subject_sessions(req, route, query);
        break;
      case RouteId::subject_session:
        r = subject_session(route);
        break;
      case RouteId::subject_epoch:
        r = epoch(req, route);
        break;
      case RouteId::introspect:
        r = introspect(req);
        break;
      case RouteId::revoke:
        r = revoke(req);
        break;
      case RouteId::jwks:
        r = jwks();
        no_store = false;
        break;
      case RouteId::healthz:
        r = json_response(200, json::object{{"status", "ok"}});
        no_store = false;
        break;
      case RouteId::readyz:
        r = readyz();
        no_store = false;
        break;
      case RouteId::metrics:
        r = metrics();
        no_store = false;
        break;
      case RouteId::unmatched:
        r = problem(404, ErrorCode::invalid_request, "no such route");
        no_store = false;
        break;
    }
    r.route = spec.path;
    if (no_store) r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }
};

Api::Api(const ServerOptions& options, ServerDeps& deps)
    : impl_(std::make_unique<Impl>(options, deps)) {}
Api::~Api() = default;

HttpResponse Api::handle(const HttpRequest& request) noexcept {
  try {
    return impl_->dispatch(request);
  } catch (const std::exception& e) {
    log_event(LogLevel::error, "handler_exception", e.what());
  } catch (...) {
    log_event(LogLevel::error, "handler_exception", "not a std::exception");
  }
  try {
    return problem(ErrorCode::internal, "internal error");
  } catch (...) {
    HttpResponse r;
    r.status = 500;
    r.code = "internal";
    return r;
  }
}

}  // namespace tessera::server
