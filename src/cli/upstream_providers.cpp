#include "cli/upstream_providers.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "tessera/key_files.hpp"

namespace tessera::cli {

namespace json = boost::json;

Result<std::vector<UpstreamProvider>> parse_upstream_providers(std::string_view text,
                                                               std::string_view where) {
  auto bad = [&](std::string_view why) {
    return fail(ErrorCode::config_invalid, fmt::format("upstream_providers: {}: {}", where, why));
  };
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_array()) return bad("must be a JSON array of providers");
  std::vector<UpstreamProvider> out;
  for (const json::value& item : v.as_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) return bad("each provider is a JSON object");
    auto str = [&](std::string_view name) -> std::optional<std::string> {
      const auto* m = o->if_contains(name);
      if (m == nullptr) return std::string();
      if (!m->is_string()) return std::nullopt;
      return std::string(m->as_string());
    };
    for (const auto& [key, _] : *o) {
      if (key != "issuer" && key != "client_id" && key != "client_secret" &&
          key != "token_endpoint" && key != "jwks_uri")
        return bad(fmt::format("unknown member \"{}\"", std::string_view(key)));
    }
    const auto issuer = str("issuer"), client_id = str("client_id"), secret = str("client_secret"),
               token_endpoint = str("token_endpoint"), jwks_uri = str("jwks_uri");
    if (!issuer || !client_id || !secret || !token_endpoint || !jwks_uri)
      return bad("the members are strings");
    if (!issuer->starts_with("https://") && !issuer->starts_with("http://"))
      return bad(fmt::format("issuer \"{}\" is not an http(s) URL", *issuer));
    if (client_id->empty()) return bad(fmt::format("{}: client_id is required", *issuer));
    for (const auto& p : out) {
      if (p.issuer == *issuer) return bad(fmt::format("{} is listed twice", *issuer));
    }
    out.push_back(UpstreamProvider{.issuer = *issuer,
                                   .client_id = *client_id,
                                   .client_secret = SecretString(*secret),
                                   .token_endpoint = *token_endpoint,
                                   .jwks_uri = *jwks_uri});
  }
  return out;
}

Result<std::vector<UpstreamProvider>> load_upstream_providers(const std::filesystem::path& file) {
  auto text = read_text_file(file);
  if (!text)
    return fail(ErrorCode::config_invalid,
                fmt::format("upstream_providers: {}", text.error().detail));
  return parse_upstream_providers(*text, file.string());
}

struct ProviderDirectory::Entry {
  std::mutex mu;
  UpstreamProvider provider;
  bool discovered = false;
  UnixSeconds last_try{};
  std::unique_ptr<verify::HttpJwksSource> jwks;
  std::unique_ptr<HttpUpstreamTokenEndpoint> token;
};

ProviderDirectory::ProviderDirectory(std::vector<UpstreamProvider> providers, const Clock& clock,
                                     verify::HttpOptions http)
    : clock_(clock), http_(std::move(http)) {
  for (auto& p : providers) {
    auto e = std::make_unique<Entry>();
    e->provider = std::move(p);
    entries_.push_back(std::move(e));
  }
}
ProviderDirectory::~ProviderDirectory() = default;

ProviderDirectory::Entry* ProviderDirectory::find(std::string_view issuer) const {
  for (const auto& e : entries_) {
    if (e->provider.issuer == issuer) return e.get();  // immutable once built
  }
  return nullptr;
}

Status ProviderDirectory::ready(Entry& e) {
  if (e.discovered) return {};
  const UnixSeconds now = clock_.now();
  if (e.last_try != UnixSeconds{} && now - e.last_try < kRetryDiscovery)
    return fail(ErrorCode::upstream_unavailable,
                fmt::format("{}: its metadata could not be had lately", e.provider.issuer));
  e.last_try = now;
  if (auto s = discover(e.provider, http_); !s) return s;
  auto jwks =
      verify::HttpJwksSource::create(e.provider.jwks_uri, clock_, http_, std::chrono::seconds{10});
  if (!jwks)
    return fail(ErrorCode::upstream_unavailable,
                fmt::format("{}: JWKS: {}", e.provider.issuer, jwks.error().detail));
  e.jwks = std::move(*jwks);
  e.token =
      std::make_unique<HttpUpstreamTokenEndpoint>(std::vector<UpstreamProvider>{e.provider}, http_);
  e.discovered = true;
  return {};
}

std::vector<Error> ProviderDirectory::discover_all() {
  std::vector<Error> errors;
  for (const auto& e : entries_) {
    std::lock_guard lock(e->mu);
    if (auto s = ready(*e); !s) errors.push_back(s.error());
  }
  return errors;
}

std::optional<std::string> ProviderDirectory::client_id(std::string_view issuer) const {
  const Entry* e = find(issuer);
  if (e == nullptr) return std::nullopt;
  return e->provider.client_id;  // set at construction, never changed
}

Result<std::shared_ptr<const KeySet>> ProviderDirectory::keys(std::string_view issuer,
                                                              bool refresh) {
  Entry* e = find(issuer);
  if (e == nullptr) return fail(ErrorCode::issuer_mismatch, "not a configured provider");
  verify::HttpJwksSource* jwks = nullptr;
  {
    std::lock_guard lock(e->mu);
    if (auto s = ready(*e); !s) return std::unexpected(s.error());
    jwks = e->jwks.get();
  }
  if (!refresh) return jwks->keys();
  auto again = jwks->refresh_for_unknown_kid();
  if (!again)
    return fail(ErrorCode::upstream_unavailable,
                fmt::format("{}: JWKS: {}", issuer, again.error().detail));
  return *again;
}

UpstreamRefresh ProviderDirectory::refresh(std::string_view issuer,
                                           const SecretString& refresh_token) {
  Entry* e = find(issuer);
  if (e == nullptr) return {.detail = fmt::format("{} is not a configured provider", issuer)};
  HttpUpstreamTokenEndpoint* token = nullptr;
  {
    std::lock_guard lock(e->mu);
    if (auto s = ready(*e); !s) return {.detail = s.error().detail};
    token = e->token.get();
  }
  return token->refresh(issuer, refresh_token);
}

}  // namespace tessera::cli
