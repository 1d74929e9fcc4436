#include "tessera/upstream_http.hpp"

#include <fmt/format.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include "tessera/encoding.hpp"

namespace tessera {

namespace json = boost::json;

namespace {

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// application/x-www-form-urlencoded, as RFC 6749 Appendix B has it for the
// client credentials too.
std::string form_escape(std::string_view s) {
  return boost::urls::encode(s, boost::urls::unreserved_chars);
}

const json::object* object_of(const std::string& body, json::value& storage) {
  boost::system::error_code ec;
  storage = json::parse(body, ec);
  return ec ? nullptr : storage.if_object();
}

std::string string_member(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

Status discover(UpstreamProvider& p, const verify::HttpOptions& http) {
  if (!p.token_endpoint.empty() && !p.jwks_uri.empty()) return {};
  const std::string base = trim_slash(p.issuer);
  std::string last = "no metadata";
  for (const char* well_known :
       {"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"}) {
    auto r = verify::send({.method = "GET", .url = base + well_known}, http,
                          ErrorCode::upstream_unavailable);
    if (!r) {
      last = r.error().detail;
      continue;
    }
    if (r->status != 200) {
      last = fmt::format("{}{}: HTTP {}", base, well_known, r->status);
      continue;
    }
    json::value v;
    const json::object* o = object_of(r->body, v);
    if (o == nullptr) {
      last = fmt::format("{}{}: not a JSON object", base, well_known);
      continue;
    }
    if (string_member(*o, "issuer") != p.issuer)
      return fail(ErrorCode::config_invalid,
                  fmt::format("{}{}: its issuer is not {}", base, well_known, p.issuer));
    if (p.token_endpoint.empty()) p.token_endpoint = string_member(*o, "token_endpoint");
    if (p.jwks_uri.empty()) p.jwks_uri = string_member(*o, "jwks_uri");
    if (p.jwks_uri.empty())
      return fail(ErrorCode::config_invalid,
                  fmt::format("{}: the metadata names no jwks_uri", p.issuer));
    return {};
  }
  return fail(ErrorCode::upstream_unavailable,
              fmt::format("{}: metadata unavailable ({})", p.issuer, last));
}

HttpUpstreamTokenEndpoint::HttpUpstreamTokenEndpoint(std::vector<UpstreamProvider> providers,
                                                     verify::HttpOptions http)
    : http_(std::move(http)) {
  for (auto& p : providers) {
    std::string issuer = p.issuer;
    providers_.emplace(std::move(issuer), std::move(p));
  }
}

UpstreamRefresh HttpUpstreamTokenEndpoint::refresh(std::string_view issuer,
                                                   const SecretString& refresh_token) {
  const auto it = providers_.find(issuer);
  if (it == providers_.end())
    return {.detail = fmt::format("{} is not a configured upstream provider", issuer)};
  const UpstreamProvider& p = it->second;
  if (p.token_endpoint.empty()) return {.detail = fmt::format("{} has no token endpoint", issuer)};
  verify::HttpCall call{.url = p.token_endpoint,
                        .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                    {"Accept", "application/json"}}};
  call.body = "grant_type=refresh_token&refresh_token=" + form_escape(refresh_token.reveal());
  if (p.client_secret.empty()) {
    call.body += "&client_id=" + form_escape(p.client_id);
  } else {
    const std::string credentials =
        form_escape(p.client_id) + ":" + form_escape(p.client_secret.reveal());
    call.headers.emplace_back("Authorization", "Basic " + base64_encode(as_bytes(credentials)));
  }
  auto r = verify::send(std::move(call), http_, ErrorCode::upstream_unavailable);
  if (!r) return {.detail = r.error().detail};
  json::value v;
  const json::object* o = object_of(r->body, v);
  if (r->status == 200) {
    if (o == nullptr || string_member(*o, "access_token").empty())
      return {.detail = fmt::format("{}: 200 without an access_token", issuer)};
    UpstreamRefresh out{.answer = UpstreamAnswer::fresh};
    if (auto rotated = string_member(*o, "refresh_token"); !rotated.empty())
      out.rotated = SecretString(std::move(rotated));
    return out;
  }
  const std::string error = o != nullptr ? string_member(*o, "error") : std::string();
  if ((r->status == 400 || r->status == 401) && error == "invalid_grant")
    return {.answer = UpstreamAnswer::revoked, .detail = fmt::format("{}: invalid_grant", issuer)};
  return {.detail =
              fmt::format("{}: HTTP {}{}{}", issuer, r->status, error.empty() ? "" : " ", error)};
}

}  // namespace tessera
