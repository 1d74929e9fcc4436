#include "server/api_keys.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <charconv>

#include "server/http_text.hpp"
#include "tessera/encoding.hpp"

namespace tessera::server {

namespace {

constexpr std::array<std::pair<Scope, std::string_view>, 9> kScopeNames = {{
    {Scope::sessions_issue, "sessions:issue"},
    {Scope::sessions_read, "sessions:read"},
    {Scope::sessions_revoke, "sessions:revoke"},
    {Scope::epochs_read, "epochs:read"},
    {Scope::epochs_write, "epochs:write"},
    {Scope::introspect, "introspect"},
    {Scope::metrics, "metrics"},
    {Scope::authz, "authz"},
    {Scope::ssf, "ssf"},
}};

constexpr std::string_view kKnown =
    "admin, sessions:issue, sessions:read, sessions:revoke, epochs:read, epochs:write, "
    "introspect, metrics, authz, ssf";

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Sha256Digest> parse_key_hash(std::string_view text) noexcept {
  constexpr std::string_view kPrefix = "sha256:";
  if (!text.starts_with(kPrefix) || text.size() != kPrefix.size() + 64) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  Sha256Digest out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char* first = text.data() + 2 * i;
    const auto [p, ec] = std::from_chars(first, first + 2, out[i], 16);
    if (ec != std::errc{} || p != first + 2) return std::nullopt;
  }
  return out;
}

std::string_view scope_name(Scope scope) noexcept {
  for (const auto& [s, name] : kScopeNames) {
    if (s == scope) return name;
  }
  return "";
}

Result<Scopes> parse_scopes(std::string_view text) {
  Scopes out = 0;
  bool any = false;
  std::string_view item;
  while (next_list_item(text, item)) {
    any = true;
    if (item == "admin") {
      out |= kAdminScopes;
    } else {
      bool known = false;
      for (const auto& [s, name] : kScopeNames) {
        if (item == name) {
          out |= static_cast<Scopes>(s);
          known = true;
        }
      }
      // Names only ours (never echoed beyond 64 bytes: it may be a pasted key).
      if (!known)
        return fail(ErrorCode::invalid_request,
                    fmt::format("unknown scope \"{}\"; known: {}",
                                item.size() <= 64 ? item : item.substr(0, 64), kKnown));
    }
  }
  if (!any)
    return fail(ErrorCode::invalid_request, fmt::format("no scope given; known: {}", kKnown));
  return out;
}

std::vector<std::string> scope_names(Scopes scopes) {
  if ((scopes & kAdminScopes) == kAdminScopes) return {"admin"};
  std::vector<std::string> out;
  for (const auto& [s, name] : kScopeNames) {
    if ((scopes & static_cast<Scopes>(s)) != 0) out.emplace_back(name);
  }
  return out;
}

std::optional<Scope> required_scope(RouteId route, std::string_view method) noexcept {
  const bool reads = method == "GET" || method == "HEAD";
  switch (route) {
    case RouteId::issue:
    case RouteId::rotate:
      return Scope::sessions_issue;
    case RouteId::validate:
      return Scope::sessions_read;
    case RouteId::subject_sessions:
      return reads ? Scope::sessions_read : Scope::sessions_revoke;
    case RouteId::subject_session:
      return Scope::sessions_revoke;
    case RouteId::subject_epoch:
    case RouteId::global_epoch:
      return reads ? Scope::epochs_read : Scope::epochs_write;
    case RouteId::introspect:
      return Scope::introspect;
    case RouteId::metrics:
      return Scope::metrics;
    case RouteId::ssf_streams:
      return Scope::ssf;
    case RouteId::authz_auth_request:
    case RouteId::authz_forward_auth:
    case RouteId::authz_ext_authz:
      return Scope::authz;
    case RouteId::refresh:
    case RouteId::logout:
    case RouteId::revoke:
    case RouteId::token:
    case RouteId::backchannel_logout:
    case RouteId::account:
    case RouteId::jwks:
    case RouteId::oauth_metadata:
    case RouteId::ssf_configuration:
    case RouteId::healthz:
    case RouteId::readyz:
    case RouteId::unmatched:
      return std::nullopt;
  }
  return std::nullopt;
}

bool valid_api_key_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::vector<ApiKeyEntry>> parse_api_keys(std::string_view text, std::string_view file) {
  std::vector<ApiKeyEntry> out;
  int n = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = trim_spaces(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++n;
    if (line.empty() || line.front() == '#') continue;
    const auto bad = [&](std::string_view why) {
      return fail(ErrorCode::config_invalid, fmt::format("{}: line {}: {}", file, n, why));
    };
    const auto space = line.find(' ');
    const auto hash = parse_key_hash(line.substr(0, space));
    if (!hash) return bad("expected sha256:<64 hex digits> first");
    ApiKeyEntry key{.hash = *hash};
    std::string_view rest = space == std::string_view::npos ? "" : line.substr(space + 1);
    bool scopes_given = false;
    while (!(rest = trim_spaces(rest)).empty()) {
      const auto end = rest.find(' ');
      const std::string_view field = rest.substr(0, end);
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
      const auto eq = field.find('=');
      if (eq == std::string_view::npos) return bad("expected name=value after the hash");
      const std::string_view k = field.substr(0, eq);
      const std::string_view v = field.substr(eq + 1);
      if (k == "name") {
        if (!valid_api_key_name(v)) return bad("name: 1..64 of A-Z a-z 0-9 . _ -");
        key.name = v;
      } else if (k == "scopes") {
        auto scopes = parse_scopes(v);
        if (!scopes) return bad(fmt::format("scopes: {}", scopes.error().detail));
        key.scopes = *scopes;
        scopes_given = true;
      } else if (k == "created_at") {
        key.created_at = v;
      } else {
        return bad("unknown field (name, scopes, created_at)");
      }
    }
    // A named key states its scopes: a line that lost them is not admin.
    if (!key.name.empty() && !scopes_given) return bad("a named key needs scopes=");
    out.push_back(std::move(key));
  }
  return out;
}

std::string api_key_line(const ApiKeyEntry& key) {
  std::string line = "sha256:" + hex_encode(key.hash);
  if (!key.name.empty()) line += fmt::format(" name={}", key.name);
  line += fmt::format(" scopes={}", fmt::join(scope_names(key.scopes), ","));
  if (!key.created_at.empty()) line += fmt::format(" created_at={}", key.created_at);
  return line;
}

std::optional<Scopes> ApiKeyTable::find(const Sha256Digest& digest) const noexcept {
  // Every entry is compared, so the time says nothing about which matched.
  std::optional<Scopes> found;
  for (const ApiKeyEntry& e : keys_) {
    if (constant_time_equal(digest, e.hash)) found = found.value_or(0) | e.scopes;
  }
  return found;
}

}  // namespace tessera::server
