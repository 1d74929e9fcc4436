// The router: matches a path against the route table, checks the method and
// the API key, decodes the path parameters and calls the route's handler
// (handlers.hpp). No Boost here: errors are made by problem()
// (handler_support.cpp), texts are read by http_text.cpp.
#include "server/routes.hpp"

#include <fmt/format.h>

#include "server/api_keys.hpp"
#include "server/cors.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/rate_limits.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"

namespace tessera::server {

namespace {

constexpr std::string_view kExtAuthz = "/v1/authz/ext-authz";

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
  if (path == kExtAuthz || (path.starts_with(kExtAuthz) && path[kExtAuthz.size()] == '/')) {
    // Envoy's original path, below the mount, still encoded.
    const std::string_view rest = path.substr(kExtAuthz.size());
    return Out{Route{RouteId::authz_ext_authz, {std::string(rest.empty() ? "/" : rest)}}};
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
    auto decoded = decode_path_segment(seg[i]);
    if (!decoded) return fail(ErrorCode::invalid_request, "bad percent-encoding in the path");
    if (decoded->empty()) return fail(ErrorCode::invalid_request, "empty path parameter");
    r.params.push_back(std::move(*decoded));
  }
  return Out{std::move(r)};
}

// The credential an open route's failures are counted under; nullopt for
// the routes whose failures are not guesses (service routes relay their
// users' credentials, and count only a wrong API key) or tell the caller
// nothing (RFC 7009 revocation answers 200 to any token).
std::optional<Credential> guessed_credential(RouteId id) noexcept {
  switch (id) {
    case RouteId::refresh:
    case RouteId::token:
      return Credential::refresh_token;
    case RouteId::logout:
    case RouteId::account:
    case RouteId::authz_auth_request:
    case RouteId::authz_forward_auth:
    case RouteId::authz_ext_authz:
      return Credential::session;
    default:
      return std::nullopt;
  }
}

// The password of an HTTP Basic credential, as OAuth writes it: base64 of
// "client_id:client_secret", each form-urlencoded. nullopt when malformed.
std::optional<std::string> basic_password(std::string_view b64) {
  auto decoded = base64_decode(b64);
  if (!decoded) return std::nullopt;
  const std::string_view pair = as_chars(*decoded);
  const auto colon = pair.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto form = parse_form(fmt::format("p={}", pair.substr(colon + 1)));
  if (!form) return std::nullopt;
  return form_value(*form, "p");
}

// A credential that is forged, guessed or someone else's; not one that was
// genuine and has ended (expired, revoked, idle, outdated epoch): those are
// normal traffic and never count.
bool is_guess(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_token:
    case ErrorCode::token_too_large:
    case ErrorCode::token_type_invalid:
    case ErrorCode::algorithm_not_allowed:
    case ErrorCode::algorithm_mismatch:
    case ErrorCode::key_not_found:
    case ErrorCode::key_retired:
    case ErrorCode::signature_invalid:
    case ErrorCode::decryption_failed:
    case ErrorCode::audience_mismatch:
    case ErrorCode::issuer_mismatch:
    case ErrorCode::session_not_found:
    case ErrorCode::refresh_token_reused:
    case ErrorCode::fingerprint_mismatch:
      return true;
    default:
      return false;
  }
}

HttpResponse too_many(std::chrono::seconds wait, RouteId route, std::string_view what) {
  HttpResponse r = problem(ErrorCode::rate_limited,
                           fmt::format("too many {} from this address; retry later", what));
  r.headers.emplace_back("Retry-After", std::to_string(wait.count()));
  r.route = route;
  return r;
}

ApiKeyTable full_scope_keys(const ServerOptions& options) {
  std::vector<ApiKeyEntry> keys;
  for (const auto& h : options.api_key_hashes) keys.push_back({.hash = h});
  return ApiKeyTable(std::move(keys));
}

}  // namespace

RouteId route_of(std::string_view target) noexcept {
  const std::string_view path = target.substr(0, target.find('?'));
  for (const RouteSpec& spec : kRouteTable) {
    if (path == spec.path) return spec.id;
  }
  if (path.starts_with("/v1/subjects/")) return RouteId::subject_sessions;
  if (path == kExtAuthz || (path.starts_with(kExtAuthz) && path[kExtAuthz.size()] == '/'))
    return RouteId::authz_ext_authz;
  return RouteId::unmatched;
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  return find_header(headers, name);
}

struct Api::Impl {
  Impl(const ServerOptions& o, ServerDeps& d)
      : options(o),
        deps(d),
        ctx{o, d},
        fixed_keys(full_scope_keys(o)),
        limits(o.rate_limits, d.clock, d.shared_limits),
        oauth2(ctx),
        upstream(ctx),
        authz(ctx, oauth2.access_verifier()) {}

  const ServerOptions& options;
  ServerDeps& deps;
  HandlerContext ctx;
  ApiKeyTable fixed_keys;  // api_key_hashes: full scope
  RateLimiter limits;
  OAuth2Handlers oauth2;
  UpstreamHandlers upstream;
  AuthzHandlers authz;
  JwksHandler jwks;
  WriteHealth writes;

  // The scopes of the key presented, or nullopt for none or an unknown one.
  // Forward-auth takes it from X-Tessera-Api-Key (Authorization there is the
  // user's access token); every other route from Authorization: Bearer.
  // `presented`: a key was sent at all (only a wrong one is a guess).
  std::optional<Scopes> key_scopes(const HttpRequest& req, bool forward_auth,
                                   bool& presented) const {
    std::string_view key;
    std::string basic_secret;  // owns the key of a Basic credential
    if (forward_auth) {
      auto h = req.header("x-tessera-api-key");
      if (!h) return std::nullopt;
      key = trim(*h);
    } else {
      auto h = req.header("authorization");
      if (!h) return std::nullopt;
      std::string_view v = trim(*h);
      if (v.size() >= 6 && iequals(v.substr(0, 6), "basic ")) {
        // OAuth client authentication (RFC 6749 §2.3.1), as client
        // libraries send it to introspection: the API key is the client
        // secret; the client id is not checked (keys are found by hash).
        presented = true;
        auto secret = basic_password(trim(v.substr(6)));
        if (!secret) return std::nullopt;
        basic_secret = std::move(*secret);
        key = basic_secret;
      } else {
        if (v.size() < 7 || !iequals(v.substr(0, 7), "bearer ")) return std::nullopt;
        key = trim(v.substr(7));
      }
    }
    if (key.empty()) return std::nullopt;
    presented = true;
    const Sha256Digest digest = sha256(key);  // once, for both tables
    std::optional<Scopes> found = fixed_keys.find(digest);
    if (deps.api_keys != nullptr) {
      if (auto more = deps.api_keys->get()->find(digest)) found = found.value_or(0) | *more;
    }
    return found;
  }

  // nullopt: the route may proceed; else the 401, 403 or 429 to answer.
  // A wrong key (not a missing one) costs a token of the client's api_key bucket; with none
  // left it is answered 429 (a right key always passes: hashing it costs
  // less than the lockout of a service that shares an address).
  std::optional<HttpResponse> refuse_key(const RouteSpec& spec, const HttpRequest& req,
                                         std::string_view client) {
    const bool forward_auth = is_forward_auth(spec.id);
    const bool needs_key = spec.access == Access::service ||
                           (spec.access == Access::metrics && !options.metrics_public) ||
                           (forward_auth && options.authz.require_api_key);
    if (!needs_key) return std::nullopt;
    bool presented = false;
    const auto scopes = key_scopes(req, forward_auth, presented);
    HttpResponse r;
    if (!scopes) {
      if (presented && limits.limits_failures()) {
        if (const auto wait = limits.failed(client, Credential::api_key))
          return too_many(*wait, spec.id, "failed API keys");
      }
      r = problem(ErrorCode::unauthorized, forward_auth
                                               ? "a valid API key is required in X-Tessera-Api-Key"
                                               : "a valid API key is required");
    } else if (const auto scope = required_scope(spec.id, req.method);
               scope && (*scopes & static_cast<Scopes>(*scope)) == 0) {
      r = problem(ErrorCode::insufficient_scope,
                  fmt::format("this API key lacks the scope {}", scope_name(*scope)));
      // RFC 6750 §3.1's challenge, which names what was missing.
      r.headers.emplace_back(
          "WWW-Authenticate",
          fmt::format("Bearer error=\"insufficient_scope\", scope=\"{}\"", scope_name(*scope)));
    } else {
      return std::nullopt;
    }
    r.route = spec.id;
    return r;
  }

  HttpResponse dispatch(const HttpRequest& req) {
    // The client's address, only when a limit needs it (one place decides
    // it: the peer, or X-Forwarded-For from a trusted proxy).
    std::string client;
    std::optional<Credential> guessed;
    std::optional<HttpResponse> limited;
    if (limits.limits_failures() || limits.limits_requests()) {
      client = client_address(req.headers, req.peer, options.trusted_proxies);
      const RouteId id = route_of(req.target);
      if (const auto wait = limits.request(client)) {
        limited = too_many(*wait, id, "requests");
      } else if (limits.limits_failures() && (guessed = guessed_credential(id))) {
        // Refused before any store work while the address's bucket is empty.
        if (const auto wait = limits.blocked(client, *guessed))
          limited = too_many(*wait, id, "failed attempts");
      }
    }
    // A 429 goes through the rest too: a page at an allowed origin must
    // be able to read it (CORS).
    HttpResponse r = limited ? std::move(*limited) : answer(req, client);
    if (guessed) {
      if (const auto code = r.credential_code ? r.credential_code : r.code; code && is_guess(*code))
        (void)limits.failed(client, *guessed);
    }
    // A store-write route tells /readyz how the store took it: failed, or
    // done (2xx). A refusal (4xx) says nothing about writes.
    if (route_spec(r.route).work == Work::store_write &&
        (r.code == ErrorCode::store_unavailable || (r.status >= 200 && r.status < 300))) {
      writes.record(r.code == ErrorCode::store_unavailable, deps.clock.now_ms());
    }
    // An unauthenticated caller learns that the store is down, not where it
    // runs: a public route's 503 gets a generic detail (the specifics stay
    // in r.log_detail, for the log line with the request id).
    if (r.status == 503 && r.code && route_spec(r.route).access == Access::open &&
        !r.log_detail.empty()) {
      r.body = problem(*r.code, "the authority cannot answer now; retry later").body;
    }
    // A preflight's answer carries its own Access-Control-* (or none).
    if (req.method != "OPTIONS") add_cors_headers(options, r.route, req, r);
    return r;
  }

  HttpResponse answer(const HttpRequest& req, std::string_view client) {
    std::string_view target = req.target;
    const auto q = target.find('?');
    const std::string_view path = target.substr(0, q);
    const std::string_view query =
        q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

    auto matched = match(path);
    if (!matched) return problem(matched.error().code, matched.error().detail);
    if (!*matched) return problem(404, ErrorCode::invalid_request, "no such route");
    const Route& route = **matched;
    const RouteSpec& spec = route_spec(route.id);

    if (req.method == "OPTIONS" && cors_route(spec.id)) return cors_preflight(options, spec, req);
    if (!method_allowed(spec.allow, req.method)) {
      HttpResponse r = problem(405, ErrorCode::invalid_request,
                               fmt::format("method not allowed; allowed: {}", spec.allow));
      r.headers.emplace_back("Allow", spec.allow);
      r.route = spec.id;
      return r;
    }
    if (auto refused = refuse_key(spec, req, client)) return std::move(*refused);

    HttpResponse r;
    bool no_store = true;  // token-bearing (or token-judging) answers
    switch (route.id) {
      case RouteId::issue:
        r = issue_session(ctx, req);
        break;
      case RouteId::validate:
        r = validate_session(ctx, req);
        break;
      case RouteId::rotate:
        r = rotate_session(ctx, req);
        break;
      case RouteId::refresh:
        r = refresh_tokens(ctx, req);
        break;
      case RouteId::logout:
        r = logout(ctx, req);
        break;
      case RouteId::subject_sessions:
        r = subject_sessions(ctx, req, route.params[0], query);
        break;
      case RouteId::subject_session:
        r = subject_session(ctx, route.params[0], route.params[1]);
        break;
      case RouteId::subject_epoch:
        r = subject_epoch(ctx, req, route.params[0]);
        break;
      case RouteId::global_epoch:
        r = global_epoch(ctx, req);
        break;
      case RouteId::introspect:
        r = oauth2.introspect(req);
        break;
      case RouteId::revoke:
        r = oauth2.revoke(req);
        break;
      case RouteId::token:
        r = oauth2.token(req);
        break;
      case RouteId::backchannel_logout:
        r = upstream.backchannel_logout(req);
        break;
      case RouteId::ssf_streams:
        r = ssf_streams(ctx, req, query);
        break;
      case RouteId::ssf_configuration:
        r = ssf_configuration(ctx, req);
        no_store = false;
        break;
      case RouteId::oauth_metadata:
        r = oauth2.metadata(req);
        no_store = false;
        break;
      case RouteId::authz_auth_request:
        r = authz.handle(ForwardStyle::nginx, req, {});
        break;
      case RouteId::authz_forward_auth:
        r = authz.handle(ForwardStyle::forwarded, req, {});
        break;
      case RouteId::authz_ext_authz: {
        // The original request line: the path below the mount, and the query.
        std::string uri = route.params[0];
        if (q != std::string_view::npos) uri.append("?").append(query);
        r = authz.handle(ForwardStyle::envoy, req, uri);
        break;
      }
      case RouteId::account:
        r = account_page(ctx, req);
        break;
      case RouteId::jwks:
        r = jwks.handle(ctx);
        no_store = false;
        break;
      case RouteId::healthz:
        r = healthz();
        no_store = false;
        break;
      case RouteId::readyz:
        r = readyz(ctx, writes);
        no_store = false;
        break;
      case RouteId::metrics:
        r = metrics_text(ctx);
        no_store = false;
        break;
      case RouteId::unmatched:
        r = problem(404, ErrorCode::invalid_request, "no such route");
        no_store = false;
        break;
    }
    r.route = spec.id;
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
    r.code = ErrorCode::internal;
    return r;
  }
}

}  // namespace tessera::server
