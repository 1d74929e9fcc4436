#include "cli/config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>
#include <variant>

#include "cli/key_files.hpp"
#include "server/http_text.hpp"
#include "tessera/encoding.hpp"

namespace tessera::cli {

namespace {

using std::chrono::seconds;

// A value's text either fills its field or is refused, saying why (the
// setting's name is put in front by the caller).
using Filled = std::expected<void, std::string>;

// The kinds of setting. Each says how the text is read and checked, and
// holds the setter of the one Config field it fills (mostly put<...> below).
struct Text {
  void (*set)(Config&, std::string);
  bool required = false;  // refused when empty
};
struct Boolean {  // true | false
  void (*set)(Config&, bool);
};
struct Integer {  // decimal, min..max
  std::uint64_t min;
  std::uint64_t max;
  void (*set)(Config&, std::uint64_t);
};
struct Duration {  // parse_duration, at least min, at most max if set
  seconds min;
  std::optional<seconds> max;
  void (*set)(Config&, seconds);
  std::string_view unset = {};  // a word that leaves the field as it is
};
struct Choice {  // one of `allowed`, case-sensitive
  std::vector<std::string_view> allowed;
  void (*set)(Config&, std::string_view);
};
struct List {  // comma-separated; items trimmed, empty ones dropped
  void (*set)(Config&, std::vector<std::string>);
  bool required = false;  // refused without an item
};
struct Parsed {  // a syntax of its own
  Filled (*set)(Config&, const std::string&);
};
using Kind = std::variant<Text, Boolean, Integer, Duration, Choice, List, Parsed>;

struct Row {
  Setting setting;
  Kind kind;
};

// put<&Config::policy, &SessionPolicy::session_ttl> is the setter of
// c.policy.session_ttl (the value converted to the member's type).
template <auto... Path, class V>
void put(Config& c, V value) {
  auto& field = (c.*....*Path);  // a fold over .*: ((c.*P1).*P2)...
  field = static_cast<std::remove_cvref_t<decltype(field)>>(std::move(value));
}

Error bad(std::string_view key, std::string_view why) {
  return Error{ErrorCode::config_invalid, fmt::format("{}: {}", key, why)};
}

// Flags are written --session-ttl, env TESSERA_SESSION_TTL, files session_ttl.
std::string flag_name(std::string_view key) {
  std::string s(key);
  std::replace(s.begin(), s.end(), '_', '-');
  return s;
}
std::string env_name(std::string_view key) {
  std::string s = "TESSERA_";
  for (const char c : key)
    s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return s;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

// --- the settings with a syntax of their own ------------------------------------

// host:port, host an IP address (IPv6 in brackets) or localhost.
Filled set_listen(Config& c, const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
  const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned p = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (host.empty() || port.empty() || ec != std::errc{} || ptr != port.data() + port.size() ||
      p > 65535)
    return std::unexpected(
        fmt::format("must be host:port with a port 0..65535 (got \"{}\")", listen));
  if (host == "localhost") host = "127.0.0.1";
  in6_addr probe{};
  if (::inet_pton(AF_INET, host.c_str(), &probe) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), &probe) != 1)
    return std::unexpected(
        fmt::format("host must be an IP address or localhost (got \"{}\")", host));
  c.server.host = host;
  c.server.port = static_cast<std::uint16_t>(p);
  return {};
}

Filled set_store(Config& c, const std::string& url) {
  c.store_url = url;
  if (url == "memory:") {
    c.store_kind = StoreKind::memory;
  } else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
    c.store_kind = StoreKind::postgresql;
    c.postgres.url = url;
  } else if (url.starts_with("sqlite://")) {
    c.store_kind = StoreKind::sqlite;
    c.sqlite_path = url.substr(std::string_view("sqlite://").size());
    if (c.sqlite_path.empty()) return std::unexpected("sqlite:// needs a file path");
  } else {
    return std::unexpected(fmt::format(
        "unsupported store \"{}\" (expected sqlite://PATH, postgresql://... or memory:)",
        c.store_url_for_logs()));
  }
  return {};
}

// After `store` (table order): auto → inline for the in-process stores.
Filled set_store_inline_reads(Config& c, const std::string& text) {
  if (text == "auto") {
    c.server.inline_reads = c.store_kind != StoreKind::postgresql;
  } else if (text == "true" || text == "false") {
    c.server.inline_reads = text == "true";
  } else {
    return std::unexpected("must be auto, true or false");
  }
  return {};
}

// "5/s", "300/min", "100/h"; "0" for no limit.
std::optional<double> parse_rate(const std::string& text) {
  if (text == "0") return 0.0;
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::uint64_t n = 0;
  const char* end = text.data() + slash;
  const auto [p, ec] = std::from_chars(text.data(), end, n);
  if (slash == 0 || ec != std::errc{} || p != end || n > 1'000'000) return std::nullopt;
  const std::string_view unit = std::string_view(text).substr(slash + 1);
  if (unit == "s") return static_cast<double>(n);
  if (unit == "min") return static_cast<double>(n) / 60.0;
  if (unit == "h") return static_cast<double>(n) / 3600.0;
  return std::nullopt;
}

template <server::RateLimit server::RateLimitOptions::*Limit>
Filled set_rate(Config& c, const std::string& text) {
  const auto rate = parse_rate(text);
  if (!rate)
    return std::unexpected(
        fmt::format("not a rate (got \"{}\"; use e.g. 5/s, 300/min, 100/h, or 0 for none)", text));
  (c.server.rate_limits.*Limit).per_second = *rate;
  return {};
}

Filled set_redis_url(Config& c, const std::string& url) {
  if (url.empty()) return {};
  auto options = parse_redis_url(url);
  if (!options) return std::unexpected(options.error().detail);
  c.redis = *options;
  return {};
}

Filled set_signing_alg(Config& c, const std::string& alg) {
  const auto a = algorithm_from_string(alg);
  if (!a)
    return std::unexpected(fmt::format("must be EdDSA, ES256, HS256 or RS256 (got \"{}\")", alg));
  c.signing_alg = *a;
  return {};
}

Filled set_api_key_hashes(Config& c, const std::string& text) {
  const auto hashes = split_list(text);
  c.api_key_hashes_given = !hashes.empty();
  for (const auto& h : hashes) {
    const auto digest = parse_key_hash_text(h);
    // Show only the shape: a wrongly pasted value may be a key itself.
    if (!digest)
      return std::unexpected(fmt::format(
          "each entry must be sha256:<64 hex digits> (an entry of {} characters is not)",
          h.size()));
    c.server.api_key_hashes.push_back(*digest);
  }
  return {};
}

// The cookie's name. Unset: `__Host-tessera_session` when the cookie can
// carry that prefix (Secure, host-only, Path=/: no sibling subdomain and
// no other path can then set or shadow it), else `tessera_session`. A
// name with a prefix must meet the prefix's rules (RFC 6265bis §4.1.3),
// which browsers enforce by dropping the cookie.
Filled choose_cookie_name(server::CookieOptions& k) {
  const bool host_only = k.secure && k.domain.empty() && k.path == "/";
  if (k.name.empty()) {
    k.name = host_only ? "__Host-tessera_session" : "tessera_session";
    return {};
  }
  if (k.name.starts_with("__Host-") && !host_only)
    return std::unexpected(
        "a __Host- name needs cookie_secure = true, no cookie_domain and "
        "cookie_path = / (browsers drop it otherwise)");
  if (k.name.starts_with("__Secure-") && !k.secure)
    return std::unexpected(
        "a __Secure- name needs cookie_secure = true (browsers drop it otherwise)");
  return {};
}

// "" → chosen once every cookie setting is known (choose_cookie_name).
Filled set_cookie_name(Config& c, const std::string& name) {
  if (name.empty()) {
    c.server.cookie.name.clear();
    return {};
  }
  if (!std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
      }))
    return std::unexpected("must be non-empty letters, digits, '_', '-' or '.'");
  c.server.cookie.name = name;
  return {};
}

// "" or http(s)://host[:port][/path]: the authority as browsers reach it.
Filled set_public_url(Config& c, const std::string& url) {
  c.public_url = url;
  c.server.public_host.clear();
  c.server.public_scheme.clear();
  c.server.public_base.clear();
  c.server.public_path.clear();
  if (url.empty()) return {};
  const auto sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  if (scheme != "http" && scheme != "https")
    return std::unexpected(fmt::format("must be an http:// or https:// URL (got \"{}\")", url));
  const std::string rest = url.substr(sep + 3);
  std::string host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.find('@') != std::string::npos ||
      std::any_of(host.begin(), host.end(),
                  [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; }))
    return std::unexpected(fmt::format("must name a host, without user info (got \"{}\")", url));
  // The scheme's default port is left out, as browsers write the Host header.
  if ((scheme == "https" && host.ends_with(":443")) || (scheme == "http" && host.ends_with(":80")))
    host = host.substr(0, host.rfind(':'));
  c.server.public_host = host;
  c.server.public_scheme = scheme;
  std::string base = url.substr(0, url.find_first_of("?#"));
  while (base.ends_with('/')) base.pop_back();
  c.server.public_base = base;
  const auto host_end = rest.find_first_of("/?#");
  if (host_end != std::string::npos && sep + 3 + host_end < base.size())
    c.server.public_path = base.substr(sep + 3 + host_end);
  c.server.public_base_from_host = false;
  return {};
}

// Exact origins, as browsers send them: http(s)://host[:port], no path, no
// wildcard (credentials and `*` never go together).
Filled set_cors_allowed_origins(Config& c, const std::string& text) {
  c.server.cors_allowed_origins.clear();
  for (const std::string& item : split_list(text)) {
    if (item == "*" || item == "null")
      return std::unexpected(fmt::format(
          "\"{}\" is refused: list exact origins (https://app.example.com); the session "
          "cookie must never be offered to every site",
          item));
    const auto sep = item.find("://");
    const std::string scheme = sep == std::string::npos ? "" : item.substr(0, sep);
    const std::string host = sep == std::string::npos ? "" : item.substr(sep + 3);
    const bool ok = (scheme == "http" || scheme == "https") && !host.empty() &&
                    host.find_first_of("/?#@*") == std::string::npos &&
                    std::none_of(host.begin(), host.end(),
                                 [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; });
    if (!ok)
      return std::unexpected(fmt::format(
          "\"{}\" is not an origin (http(s)://host[:port], no path, no wildcard)", item));
    c.server.cors_allowed_origins.push_back(server::lower(item));
  }
  return {};
}

Filled set_trusted_proxies(Config& c, const std::string& text) {
  c.server.trusted_proxies.networks.clear();
  for (const std::string& item : split_list(text)) {
    auto cidr = server::Cidr::parse(item);
    if (!cidr)
      return std::unexpected(fmt::format(
          "\"{}\" is not an address or a network (e.g. 10.0.0.0/8, ::1/128; no host bits)", item));
    c.server.trusted_proxies.networks.push_back(*cidr);
  }
  return {};
}

Filled set_webhook_urls(Config& c, const std::string& text) {
  c.webhook_urls.clear();
  for (const std::string& url : split_list(text)) {
    const bool ok = (url.starts_with("https://") || url.starts_with("http://")) &&
                    url.find("://") + 3 < url.size() &&
                    std::none_of(url.begin(), url.end(),
                                 [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; });
    if (!ok) return std::unexpected(fmt::format("\"{}\" is not an http(s) URL", url));
    c.webhook_urls.push_back(url);
  }
  return {};
}

// The text is a secret: an error never repeats it.
Filled set_webhook_secret(Config& c, const std::string& text) {
  if (text.empty()) return {};
  auto secret = WebhookSecret::parse(text);
  if (!secret)
    return std::unexpected(
        "must be whsec_ and the base64 of 24 to 64 bytes (tessera webhooks new-secret makes one)");
  c.webhook_secret = std::move(*secret);
  return {};
}

// "" (no redirects), a path on the authority, or an absolute http(s) URL.
Filled set_authz_login_url(Config& c, const std::string& url) {
  const bool ok = url.empty() || (url.starts_with('/') && !url.starts_with("//")) ||
                  url.starts_with("https://") || url.starts_with("http://");
  if (!ok || std::any_of(url.begin(), url.end(),
                         [](unsigned char ch) { return ch <= 0x20 || ch >= 0x7f; }))
    return std::unexpected(
        fmt::format("must be empty, a path (/login) or an http(s) URL (got \"{}\")", url));
  c.server.authz.login_url = url;
  return {};
}

// Header names: RFC 9110 tokens, and none that framing or cookies depend on.
Filled set_authz_subject_headers(Config& c, const std::string& text) {
  c.server.authz.subject_headers.clear();
  for (const std::string& name : split_list(text)) {
    const bool token = std::all_of(name.begin(), name.end(), [](unsigned char ch) {
      return std::isalnum(ch) ||
             std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    });
    static constexpr std::string_view kReserved[] = {
        "content-length", "transfer-encoding", "connection",   "set-cookie",
        "location",       "cache-control",     "content-type", "www-authenticate"};
    const bool reserved = std::any_of(std::begin(kReserved), std::end(kReserved),
                                      [&](std::string_view r) { return server::iequals(r, name); });
    if (!token || reserved)
      return std::unexpected(
          fmt::format("\"{}\" is not a header name that may carry the subject", name));
    c.server.authz.subject_headers.emplace_back(name);
  }
  return {};
}

Filled set_cookie_path(Config& c, const std::string& path) {
  if (!path.starts_with('/')) return std::unexpected("must start with /");
  c.server.cookie.path = path;
  return {};
}

// "-" is stdout, "none" or empty is none, anything else a file.
Filled set_audit_log(Config& c, const std::string& audit) {
  if (audit.empty() || audit == "none") {
    c.audit = AuditTarget::none;
  } else if (audit == "-") {
    c.audit = AuditTarget::stdout_lines;
  } else {
    c.audit = AuditTarget::file;
    c.audit_path = audit;
  }
  return {};
}

// --- the table ------------------------------------------------------------------

// Every setting, in documentation order (docs/configuration.md). A default
// under <data_dir> follows the data_dir row, which therefore comes first.
const std::vector<Row>& table() {
  using P = SessionPolicy;
  using S = server::ServerOptions;
  using K = server::CookieOptions;
  using A = server::AuthzOptions;
  using T = server::TlsOptions;
  static const std::vector<Row> rows{
      {{"mode", "dev",
        "dev: generate missing keys and an API key; production: refuse to start without "
        "explicit keys"},
       Choice{{"dev", "production"},
              [](Config& c, std::string_view v) {
                c.mode = v == "production" ? Mode::production : Mode::dev;
              }}},
      {{"data_dir", "./var", "where dev keys, api_keys and the default SQLite file live (0700)"},
       Text{put<&Config::data_dir>, true}},
      {{"listen", "127.0.0.1:8080", "host:port to listen on; port 0 picks a free port"},
       Parsed{set_listen}},
      {{"tls_cert", "",
        "PEM certificate chain (leaf first): every connection speaks TLS; with tls_key"},
       Text{put<&Config::server, &S::tls, &T::cert_file>}},
      {{"tls_key", "", "PEM private key of tls_cert (unencrypted; keep it 0600)"},
       Text{put<&Config::server, &S::tls, &T::key_file>}},
      {{"tls_client_ca", "",
        "PEM CA bundle: clients must present a certificate it verifies; needs tls_cert"},
       Text{put<&Config::server, &S::tls, &T::client_ca_file>}},
      {{"ready_file", "", "once listening, the bound port is written here (atomically)"},
       Text{[](Config& c, std::string v) {
         if (!v.empty()) c.ready_file = std::move(v);
       }}},
      {{"threads", "0", "io threads; 0: one per core"},
       Integer{0, 1024, put<&Config::server, &S::threads>}},
      {{"store", "sqlite://<data_dir>/tessera.db",
        "sqlite:///abs/path.db, sqlite://relative.db, postgresql://user@host:port/db or "
        "memory:"},
       Parsed{set_store}},
      {{"sqlite_synchronous", "full", "full or normal"},
       Choice{{"full", "normal"},
              [](Config& c, std::string_view v) {
                c.sqlite.synchronous = v == "normal" ? SqliteSync::normal : SqliteSync::full;
              }}},
      {{"postgres_schema", "public", "PostgreSQL schema for tessera's tables (created)"},
       Text{put<&Config::postgres, &PostgresOptions::schema>}},
      {{"postgres_pool_size", "16", "PostgreSQL connections per instance"},
       Integer{1, 1000, put<&Config::postgres, &PostgresOptions::pool_size>}},
      {{"redis_url", "",
        "redis://host:port: epoch bumps are written there and published to resource "
        "services; empty: none"},
       Parsed{set_redis_url}},
      {{"signing_keys", "<data_dir>/keys/signing.jwks", "private JWK set with key states (0600)"},
       Text{put<&Config::signing_keys>, true}},
      {{"secret_keys", "<data_dir>/keys/secrets.json", "lookup-key and token-cipher keys (0600)"},
       Text{put<&Config::secret_keys>, true}},
      {{"signing_alg", "EdDSA", "algorithm of new signing keys: EdDSA, ES256, HS256, RS256"},
       Parsed{set_signing_alg}},
      {{"key_reload_interval", "5s", "how often serve checks the signing key file for changes"},
       Duration{seconds{1}, {}, put<&Config::key_reload_interval>}},
      {{"api_key_hashes", "", "comma-separated sha256:<64 hex> of accepted API keys"},
       Parsed{set_api_key_hashes}},
      {{"issuer", "tessera", "iss of access tokens"}, Text{put<&Config::policy, &P::issuer>, true}},
      {{"audience", "tessera", "aud of access tokens (comma-separated list)"},
       List{put<&Config::policy, &P::audience>, true}},
      {{"session_ttl", "30d", "absolute session lifetime"},
       Duration{seconds{1}, {}, put<&Config::policy, &P::session_ttl>}},
      {{"idle_timeout", "0", "idle timeout; 0: off"},
       Duration{seconds{0}, {}, put<&Config::policy, &P::idle_timeout>}},
      {{"touch_interval", "auto", "how often validation may record activity"},
       Duration{seconds{1}, {}, put<&Config::policy, &P::touch_interval>, "auto"}},
      {{"access_ttl", "15m", "access token lifetime"},
       Duration{seconds{1}, {}, put<&Config::policy, &P::access_ttl>}},
      {{"refresh_grace", "10s", "0..60s: retry window of the previous refresh token"},
       Duration{seconds{0}, seconds{60}, put<&Config::policy, &P::refresh_grace>}},
      {{"max_sessions_per_subject", "10", ">= 1; least recently seen are evicted"},
       Integer{1, std::numeric_limits<std::uint32_t>::max(),
               put<&Config::policy, &P::max_sessions_per_subject>}},
      {{"max_data_bytes", "4096", "bound on a session's data"},
       Integer{2, 16 * 1024 * 1024, put<&Config::policy, &P::max_data_bytes>}},
      {{"bind_fingerprint", "false", "revoke a session validated with another fingerprint"},
       Boolean{put<&Config::policy, &P::bind_fingerprint>}},
      {{"cleanup_retention", "7d", "ended sessions are deleted this long after they end"},
       Duration{seconds{0}, {}, put<&Config::policy, &P::cleanup_retention>}},
      {{"cleanup_interval", "1h", "how often serve runs cleanup; 0: never"},
       Duration{seconds{0}, {}, put<&Config::cleanup_interval>}},
      {{"cookie_name", "", "cookie name; empty: __Host-tessera_session when it can be"},
       Parsed{set_cookie_name}},
      {{"cookie_domain", "", "cookie Domain; empty: host-only"},
       Text{put<&Config::server, &S::cookie, &K::domain>}},
      {{"cookie_path", "/", "cookie Path"}, Parsed{set_cookie_path}},
      {{"cookie_secure", "true", "cookie Secure attribute"},
       Boolean{put<&Config::server, &S::cookie, &K::secure>}},
      {{"cookie_same_site", "Lax", "Strict, Lax or None (None needs cookie_secure)"},
       Choice{{"Strict", "Lax", "None"}, put<&Config::server, &S::cookie, &K::same_site>}},
      {{"public_url", "", "the authority's address as browsers reach it; dev: http://<listen>"},
       Parsed{set_public_url}},
      {{"cors_allowed_origins", "", "origins whose pages may call refresh, logout, JWKS, authz"},
       Parsed{set_cors_allowed_origins}},
      {{"trusted_proxies", "", "addresses/CIDRs whose X-Forwarded-*/X-Original-* are believed"},
       Parsed{set_trusted_proxies}},
      {{"rate_limit_auth_failures", "5/s",
        "failed authentication attempts per client address and credential kind; 0: none"},
       Parsed{set_rate<&server::RateLimitOptions::auth_failures>}},
      {{"rate_limit_auth_burst", "50", "failed attempts allowed at once before the rate applies"},
       Integer{1, 1'000'000,
               [](Config& c, std::uint64_t v) {
                 c.server.rate_limits.auth_failures.burst = static_cast<double>(v);
               }}},
      {{"rate_limit_requests", "0", "every request per client address (e.g. 200/s); 0: none"},
       Parsed{set_rate<&server::RateLimitOptions::requests>}},
      {{"rate_limit_requests_burst", "100", "requests allowed at once before the rate applies"},
       Integer{1, 1'000'000,
               [](Config& c, std::uint64_t v) {
                 c.server.rate_limits.requests.burst = static_cast<double>(v);
               }}},
      {{"rate_limit_shared", "true",
        "with redis_url, failed attempts also count over every instance (10 s windows)"},
       Boolean{put<&Config::rate_limit_shared>}},
      {{"webhook_urls", "",
        "comma-separated endpoints the revocation events are POSTed to (Standard Webhooks)"},
       Parsed{set_webhook_urls}},
      {{"webhook_secret", "", "whsec_...: signs every webhook (a secret; 0600 file or env)"},
       Parsed{set_webhook_secret}},
      {{"ssf", "false",
        "the SSF transmitter: /.well-known/ssf-configuration, /ssf/streams (scope ssf), "
        "CAEP session-revoked SETs pushed to each stream"},
       Boolean{put<&Config::ssf>}},
      {{"upstream_providers", "",
        "JSON file of upstream identity providers (issuer, client_id, client_secret): "
        "back-channel logout and the liveness refresh (0600)"},
       Text{put<&Config::upstream_providers>}},
      {{"upstream_check_interval", "5m",
        "a session holding an upstream refresh token is refreshed at its provider this often"},
       Duration{seconds{1},
                {},
                [](Config& c, seconds v) {
                  c.policy.upstream_check_interval = v;
                  c.upstream_refresh.interval = v;
                }}},
      {{"upstream_retry_interval", "1m", "after a provider did not answer, tried again this soon"},
       Duration{seconds{1}, {}, put<&Config::upstream_refresh, &UpstreamRefreshOptions::retry>}},
      {{"upstream_max_failure", "1h",
        "a provider unanswering this long ends its sessions (fail closed)"},
       Duration{
           seconds{1}, {}, put<&Config::upstream_refresh, &UpstreamRefreshOptions::max_failure>}},
      {{"dpop_iat_window", "60s",
        "a DPoP proof is accepted while its iat is this close to now (RFC 9449 §11.1)"},
       Duration{seconds{1}, seconds{600},
                put<&Config::policy, &SessionPolicy::dpop, &DpopOptions::iat_window>}},
      {{"dpop_nonce", "false",
        "refreshes of DPoP-bound sessions also need a server nonce (RFC 9449 §8, DPoP-Nonce)"},
       Boolean{put<&Config::policy, &SessionPolicy::dpop_nonce>}},
      {{"dpop_replay_capacity", "100000",
        "DPoP proofs remembered per process against replay (size it above the DPoP requests "
        "per 2 x dpop_iat_window)"},
       Integer{1, 100'000'000,
               [](Config& c, std::uint64_t v) {
                 c.policy.dpop.replay_capacity = static_cast<std::size_t>(v);
               }}},
      {{"authz_login_url", "", "forward-auth: where a denied browser navigation goes"},
       Parsed{set_authz_login_url}},
      {{"authz_allowed_hosts", "", "forward-auth: further hosts (.example.com: below it)"},
       List{put<&Config::server, &S::authz, &A::allowed_hosts>}},
      {{"authz_subject_headers", "", "forward-auth: further headers carrying the subject"},
       Parsed{set_authz_subject_headers}},
      {{"authz_require_api_key", "false",
        "forward-auth: the proxy must send an API key (scope authz) in X-Tessera-Api-Key"},
       Boolean{put<&Config::server, &S::authz, &A::require_api_key>}},
      {{"authz_upstream_token", "false",
        "forward-auth: an allow carries Authorization: Bearer <access token> for the upstream"},
       Boolean{put<&Config::server, &S::authz, &A::upstream_token>}},
      {{"authz_upstream_token_renew_before", "2m",
        "forward-auth: the upstream token is replaced this long before it expires"},
       Duration{seconds{0}, {}, put<&Config::server, &S::authz, &A::upstream_token_renew_before>}},
      {{"max_body_bytes", "65536", "larger request bodies answer 413"},
       Integer{1024, 64 * 1024 * 1024, put<&Config::server, &S::max_body_bytes>}},
      {{"max_header_bytes", "8192", "larger header blocks answer 431"},
       Integer{1024, 1024 * 1024, put<&Config::server, &S::max_header_bytes>}},
      {{"header_timeout", "5s",
        "a request's head must arrive within this (of the connection, or of its first byte)"},
       Duration{seconds{1}, {}, put<&Config::server, &S::header_timeout>}},
      {{"read_timeout", "10s", "a request's body must arrive within this after its head"},
       Duration{seconds{1}, {}, put<&Config::server, &S::read_timeout>}},
      {{"idle_connection_timeout", "60s", "idle keep-alive connections are closed after this"},
       Duration{seconds{1}, {}, put<&Config::server, &S::idle_timeout>}},
      {{"drain_timeout", "30s", "on SIGTERM in-flight requests get this long"},
       Duration{seconds{0}, {}, put<&Config::server, &S::drain_timeout>}},
      {{"max_connections", "4096", "further connections are closed at once"},
       Integer{1, 1'000'000, put<&Config::server, &S::max_connections>}},
      {{"health_connections", "16",
        "connections beyond max_connections for /healthz, /readyz, /metrics only"},
       Integer{0, 10'000, put<&Config::server, &S::health_connections>}},
      {{"max_connections_per_client", "512",
        "connections one client address may hold (trusted proxies: no limit); 0: no limit"},
       Integer{0, 1'000'000, put<&Config::server, &S::max_connections_per_client>}},
      {{"store_workers", "32", "threads running store work off the io threads; 0: inline"},
       Integer{0, 1024, put<&Config::server, &S::store_workers>}},
      {{"store_queue", "4096", "requests waiting for a store worker; more answer 503"},
       Integer{1, 1'000'000, put<&Config::server, &S::store_queue>}},
      {{"store_inline_reads", "auto", "validate on the io thread; auto: memory and SQLite"},
       Parsed{set_store_inline_reads}},
      {{"jwks_max_age", "300s", "Cache-Control max-age of the JWKS"},
       Duration{seconds{0}, {}, put<&Config::server, &S::jwks_max_age>}},
      {{"metrics_public", "true", "false: /metrics needs an API key"},
       Boolean{put<&Config::server, &S::metrics_public>}},
      {{"access_log", "true", "one JSON line per request on stdout"},
       Boolean{put<&Config::server, &S::access_log>}},
      {{"audit_log", "<data_dir>/audit.jsonl",
        "lifecycle events as JSON lines; - for stdout, none (or empty) for none"},
       Parsed{set_audit_log}},
      {{"log_level", "info", "trace, debug, info, warn, error, critical, off"},
       Choice{{"trace", "debug", "info", "warn", "error", "critical", "off"},
              put<&Config::log_level>}},
  };
  return rows;
}

bool known(std::string_view key) {
  return std::any_of(table().begin(), table().end(),
                     [&](const Row& row) { return row.setting.key == key; });
}

// A default such as "sqlite://<data_dir>/tessera.db", with data_dir filled in.
std::string with_data_dir(std::string_view text, const std::filesystem::path& data_dir) {
  constexpr std::string_view kDataDir = "<data_dir>/";
  const auto at = text.find(kDataDir);
  if (at == std::string_view::npos) return std::string(text);
  return std::string(text.substr(0, at)) +
         (data_dir / std::filesystem::path(text.substr(at + kDataDir.size()))).string();
}

// --- reading one value, by kind -------------------------------------------------

Filled fill(const Text& kind, const std::string& text, Config& c) {
  if (kind.required && text.empty()) return std::unexpected("must not be empty");
  kind.set(c, text);
  return {};
}

Filled fill(const Boolean& kind, const std::string& text, Config& c) {
  if (text != "true" && text != "false")
    return std::unexpected(fmt::format("must be true or false (got \"{}\")", text));
  kind.set(c, text == "true");
  return {};
}

Filled fill(const Integer& kind, const std::string& text, Config& c) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size())
    return std::unexpected(fmt::format("not a non-negative integer (got \"{}\")", text));
  if (v < kind.min || v > kind.max)
    return std::unexpected(
        fmt::format("must be between {} and {} (got {})", kind.min, kind.max, v));
  kind.set(c, v);
  return {};
}

Filled fill(const Duration& kind, const std::string& text, Config& c) {
  if (!kind.unset.empty() && text == kind.unset) return {};
  const auto d = parse_duration(text);
  if (!d)
    return std::unexpected(
        fmt::format("not a duration (got \"{}\"; use e.g. 90s, 15m, 1h, 30d)", text));
  // Bounds in plain seconds, as the documentation writes them ("0s and 60s").
  if (kind.max && (*d < kind.min || *d > *kind.max))
    return std::unexpected(fmt::format("must be between {}s and {}s (got {})", kind.min.count(),
                                       kind.max->count(), text));
  if (*d < kind.min)
    return std::unexpected(fmt::format("must be at least {}s (got {})", kind.min.count(), text));
  kind.set(c, *d);
  return {};
}

Filled fill(const Choice& kind, const std::string& text, Config& c) {
  if (std::find(kind.allowed.begin(), kind.allowed.end(), text) == kind.allowed.end())
    return std::unexpected(
        fmt::format("must be one of {} (got \"{}\")", fmt::join(kind.allowed, ", "), text));
  kind.set(c, text);
  return {};
}

Filled fill(const List& kind, const std::string& text, Config& c) {
  auto items = split_list(text);
  if (kind.required && items.empty()) return std::unexpected("needs at least one value");
  kind.set(c, std::move(items));
  return {};
}

Filled fill(const Parsed& kind, const std::string& text, Config& c) {
  return kind.set(c, text);
}

}  // namespace

std::span<const Setting> settings() {
  static const std::vector<Setting> keys = [] {
    std::vector<Setting> out;
    for (const Row& row : table()) out.push_back(row.setting);
    return out;
  }();
  return keys;
}

std::optional<seconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 's':
      unit = 1, text.remove_suffix(1);
      break;
    case 'm':
      unit = 60, text.remove_suffix(1);
      break;
    case 'h':
      unit = 3600, text.remove_suffix(1);
      break;
    case 'd':
      unit = 86400, text.remove_suffix(1);
      break;
    default:
      break;
  }
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::int64_t n = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  // Bound at 100 years so arithmetic on UnixSeconds cannot overflow.
  constexpr std::int64_t kMax = std::int64_t{100} * 365 * 86400;
  if (n > kMax / unit) return std::nullopt;
  return seconds{n * unit};
}

std::string format_duration(seconds d) {
  const auto n = d.count();
  if (n != 0 && n % 86400 == 0) return fmt::format("{}d", n / 86400);
  if (n != 0 && n % 3600 == 0) return fmt::format("{}h", n / 3600);
  if (n != 0 && n % 60 == 0) return fmt::format("{}m", n / 60);
  return fmt::format("{}s", n);
}

Result<Config> build_config(const RawSettings& raw) {
  for (const auto& [key, value] : raw) {
    if (!known(key)) return std::unexpected(bad(key, "unknown setting"));
  }
  Config c;
  for (const auto& [setting, kind] : table()) {
    const auto given = raw.find(setting.key);
    const std::string text = given != raw.end() ? std::string(trim(given->second))
                                                : with_data_dir(setting.default_text, c.data_dir);
    auto filled = std::visit([&](const auto& k) { return fill(k, text, c); }, kind);
    if (!filled) return std::unexpected(bad(setting.key, filled.error()));
  }
  // Dev mode knows its address; production must be told (the features
  // that need it refuse to start without it).
  if (c.public_url.empty() && c.mode == Mode::dev) {
    const std::string& h = c.server.host;
    const bool v6 = h.find(':') != std::string::npos;
    // Port 0 (any free port) is not known yet: the host alone, any port.
    const std::string port = c.server.port == 0 ? "" : fmt::format(":{}", c.server.port);
    (void)set_public_url(c, fmt::format("http://{}{}{}{}", v6 ? "[" : "",
                                        h.empty() ? "127.0.0.1" : h, v6 ? "]" : "", port));
    c.server.public_base_from_host = c.server.port == 0;
  }
  c.signing_keys_given = raw.contains("signing_keys");
  c.secret_keys_given = raw.contains("secret_keys");
  c.signing_alg_given = raw.contains("signing_alg");

  // The files themselves are read when the server starts (and on SIGHUP).
  const server::TlsOptions& tls = c.server.tls;
  if (!tls.cert_file.empty() && tls.key_file.empty())
    return std::unexpected(bad("tls_key", "must be set when tls_cert is"));
  if (tls.cert_file.empty() && !tls.key_file.empty())
    return std::unexpected(bad("tls_cert", "must be set when tls_key is"));
  if (tls.cert_file.empty() && !tls.client_ca_file.empty())
    return std::unexpected(
        bad("tls_client_ca", "needs tls_cert and tls_key (client certificates need TLS)"));
  if (auto named = choose_cookie_name(c.server.cookie); !named)
    return std::unexpected(bad("cookie_name", named.error()));
  if (c.server.cookie.same_site == "None" && !c.server.cookie.secure)
    return std::unexpected(
        bad("cookie_same_site", "None needs cookie_secure = true (browsers refuse it otherwise)"));
  if (c.server.authz.upstream_token &&
      c.server.authz.upstream_token_renew_before >= c.policy.access_ttl)
    return std::unexpected(bad("authz_upstream_token_renew_before",
                               "must be shorter than access_ttl (else every check mints)"));
  if (!c.webhook_urls.empty() && !c.webhook_secret)
    return std::unexpected(bad("webhook_urls", "needs webhook_secret (the receivers verify it)"));
  if (auto v = c.policy.validate(); !v) return std::unexpected(v.error());
  return c;
}

SettingsBinder::SettingsBinder(CLI::App& app) {
  config_option_ = app.add_option("--config", config_file_,
                                  "configuration file of key = value lines (docs/configuration.md)")
                       ->envname("TESSERA_CONFIG")
                       ->group("Settings");
  for (const Setting& s : settings()) {
    std::string help(s.help);
    if (!s.default_text.empty()) help += fmt::format(" [default: {}]", s.default_text);
    CLI::Option* o = app.add_option("--" + flag_name(s.key), values_[std::string(s.key)], help)
                         ->envname(env_name(s.key))
                         ->type_name("VALUE")
                         ->group("Settings");
    options_.emplace(std::string(s.key), o);
  }
}

std::vector<std::string> SettingsBinder::unknown_environment() {
  std::vector<std::string> unknown;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    if (!name.starts_with("TESSERA_") || name == "TESSERA_CONFIG") continue;
    if (std::none_of(settings().begin(), settings().end(),
                     [&](const Setting& s) { return env_name(s.key) == name; }))
      unknown.emplace_back(name);
  }
  return unknown;
}

Result<RawSettings> SettingsBinder::resolve() const {
  RawSettings raw;
  // Layer 1: the file, read with CLI11's INI/TOML parser.
  if (!config_file_.empty()) {
    std::ifstream in(config_file_);
    if (!in) return std::unexpected(bad("config", fmt::format("cannot read \"{}\"", config_file_)));
    std::vector<CLI::ConfigItem> items;
    try {
      items = CLI::ConfigTOML().from_config(in);
    } catch (const CLI::Error& e) {
      return std::unexpected(bad("config", fmt::format("\"{}\": {}", config_file_, e.what())));
    }
    for (const auto& item : items) {
      std::string key = item.name;
      std::replace(key.begin(), key.end(), '-', '_');
      // CLI11 reports section headers as items named "++" / "--".
      if (key == "++" || key == "__") continue;
      if (!item.parents.empty() && !(item.parents.size() == 1 && item.parents[0] == "default"))
        return std::unexpected(
            bad(fmt::format("{}.{}", fmt::join(item.parents, "."), key),
                fmt::format("settings take no [section] in \"{}\"", config_file_)));
      if (!options_.contains(key))
        return std::unexpected(bad(key, fmt::format("unknown setting in \"{}\"", config_file_)));
      std::string value;
      for (const auto& in_value : item.inputs) value += (value.empty() ? "" : ",") + in_value;
      raw[key] = value;
    }
  }
  // Layers 2 and 3: CLI11 filled each option from its flag, else its
  // environment variable; count() says whether either was there.
  for (const auto& [key, option] : options_) {
    if (option->count() > 0) raw[key] = values_.at(key);
  }
  return raw;
}

std::optional<std::string> plaintext_listener_warning(const Config& config, std::uint16_t port) {
  if (config.mode != Mode::production || config.server.tls.enabled()) return std::nullopt;
  const std::string& host = config.server.host;
  in_addr v4{};
  in6_addr v6{};
  bool loopback = false;
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    loopback = IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  if (loopback) return std::nullopt;
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return fmt::format(
      "listen {}:{} is not loopback and tls_cert is not set: API keys and session tokens "
      "cross the network in clear; set tls_cert and tls_key, or listen on loopback behind a "
      "TLS proxy",
      shown, port);
}

std::string Config::store_url_for_logs() const {
  std::string out = store_url;
  // user:password@ in the authority part.
  if (const auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto start = scheme + 3;
    const auto at = out.find('@', start);
    const auto slash = out.find('/', start);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... among the query parameters.
  for (auto at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    const auto value = at + 9;
    const auto end = out.find('&', value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
  }
  return out;
}

}  // namespace tessera::cli
