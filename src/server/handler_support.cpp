// Errors leave every handler only through problem(): one place decides their
// status and shape (RFC 9457).
#include "server/handler_support.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "server/http_text.hpp"

namespace tessera::server {

namespace json = boost::json;

HttpResponse problem(ErrorCode code, std::string_view detail) {
  return problem(http_status(code), code, detail);
}

HttpResponse problem(unsigned status, ErrorCode code, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.code = code;
  json::object o;
  o["type"] = fmt::format("urn:tessera:problem:{}", to_string(code));
  o["title"] = reason_phrase(r.status);
  o["status"] = r.status;
  o["code"] = to_string(code);
  o["detail"] = detail;
  r.content_type = "application/problem+json";
  r.body = json::serialize(o);
  if (code == ErrorCode::unauthorized) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  // RFC 9449 §7.1's challenge: the scheme, the error and the algorithms a
  // proof may use (the nonce itself travels in DPoP-Nonce).
  if (code == ErrorCode::dpop_proof_invalid || code == ErrorCode::dpop_key_mismatch ||
      code == ErrorCode::use_dpop_nonce) {
    r.headers.emplace_back(
        "WWW-Authenticate",
        fmt::format("DPoP error=\"{}\", algs=\"{}\"",
                    code == ErrorCode::use_dpop_nonce ? "use_dpop_nonce" : "invalid_dpop_proof",
                    kDpopAlgorithms));
  }
  if (r.status == 503) {
    r.headers.emplace_back("Retry-After", "1");
    if (code != ErrorCode::overloaded) r.log_detail = detail;  // a full queue says it all
  }
  return r;
}

void log_event(LogLevel level, std::string_view event, std::string_view detail) noexcept {
  try {
    json::object o;
    switch (level) {
      case LogLevel::debug:
        if (!spdlog::should_log(spdlog::level::debug)) return;
        o["level"] = "debug";
        break;
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
      case LogLevel::debug:
        spdlog::debug("{}", line);
        break;
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

Result<DpopInput> dpop_input(const HandlerContext& ctx, const HttpRequest& req,
                             std::string_view path) {
  auto proof = dpop_header(req);
  if (!proof) return std::unexpected(proof.error());
  DpopInput in{.proof = std::move(*proof)};
  if (auto base = public_base(ctx.options, req)) in.url = *base + std::string(path);
  return in;
}

Result<std::optional<std::string>> dpop_header(const HttpRequest& req) {
  std::optional<std::string> proof;
  for (const auto& [name, value] : req.headers) {
    if (!iequals(name, "dpop")) continue;
    if (proof) return fail(ErrorCode::dpop_proof_invalid, "more than one DPoP header");
    proof = value;
  }
  return proof;
}

void add_dpop_nonce(const HandlerContext& ctx, HttpResponse& response) {
  if (auto nonce = ctx.deps.service.current_dpop_nonce())
    response.headers.emplace_back("DPoP-Nonce", std::move(*nonce));
}

HttpResponse json_response(unsigned status, const json::object& v) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json::serialize(v);
  return r;
}

HttpResponse from_error(const Error& e) {
  return problem(e.code, e.detail);
}

Result<json::object> read_object(const HttpRequest& req, bool empty_ok, json::storage_ptr storage) {
  if (req.body.empty() && empty_ok) return json::object(std::move(storage));
  json::error_code ec;
  json::parse_options opt;
  opt.max_depth = 32;
  json::value v = json::parse(req.body, ec, std::move(storage), opt);
  if (ec) return fail(ErrorCode::invalid_request, "body is not valid JSON (UTF-8)");
  if (!v.is_object()) return fail(ErrorCode::invalid_request, "body must be a JSON object");
  return std::move(v.as_object());
}

std::string cookie_header(const CookieOptions& c, std::string_view value,
                          std::optional<std::int64_t> max_age) {
  std::string out = fmt::format("{}={}; Path={}", c.name, value, c.path.empty() ? "/" : c.path);
  if (!c.domain.empty()) out += fmt::format("; Domain={}", c.domain);
  out += fmt::format("; Max-Age={}", max_age.value_or(0));
  if (!max_age) out += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
  if (c.secure) out += "; Secure";
  out += "; HttpOnly";
  if (!c.same_site.empty()) out += fmt::format("; SameSite={}", c.same_site);
  return out;
}

Result<std::optional<std::string>> single_cookie(const Headers& headers, std::string_view name) {
  auto all = cookie_values(headers, name);
  if (all.size() > 1)
    return fail(ErrorCode::invalid_request,
                "more than one session cookie (refused: a sibling domain may have set one)");
  if (all.empty()) return std::optional<std::string>{};
  return std::optional<std::string>{std::move(all.front())};
}

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

}  // namespace tessera::server
