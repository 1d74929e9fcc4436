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

#include "tessera/encoding.hpp"

namespace tessera::cli {

namespace {

using std::chrono::seconds;

constexpr std::array kSettings{
    Setting{"mode", "dev",
            "dev: generate missing keys and an API key; production: refuse to start without "
            "explicit keys"},
    Setting{"data_dir", "./var",
            "where dev keys, api_keys and the default SQLite file live (0700)"},
    Setting{"listen", "127.0.0.1:8080", "host:port to listen on; port 0 picks a free port"},
    Setting{"ready_file", "", "once listening, the bound port is written here (atomically)"},
    Setting{"threads", "0", "io threads; 0: one per core"},
    Setting{"store", "sqlite://<data_dir>/tessera.db",
            "sqlite:///abs/path.db, sqlite://relative.db, postgresql://user@host:port/db or "
            "memory:"},
    Setting{"sqlite_synchronous", "full", "full or normal"},
    Setting{"postgres_schema", "public", "PostgreSQL schema for tessera's tables (created)"},
    Setting{"postgres_pool_size", "16", "PostgreSQL connections per instance"},
    Setting{"redis_url", "",
            "redis://host:port: epoch bumps are written there and published to resource "
            "services; empty: none"},
    Setting{"signing_keys", "<data_dir>/keys/signing.jwks",
            "private JWK set with key states (0600)"},
    Setting{"secret_keys", "<data_dir>/keys/secrets.json",
            "lookup-key and token-cipher keys (0600)"},
    Setting{"signing_alg", "EdDSA", "algorithm of new signing keys: EdDSA, ES256, HS256"},
    Setting{"key_reload_interval", "5s", "how often serve checks the signing key file for changes"},
    Setting{"api_key_hashes", "", "comma-separated sha256:<64 hex> of accepted API keys"},
    Setting{"issuer", "tessera", "iss of access tokens"},
    Setting{"audience", "tessera", "aud of access tokens (comma-separated list)"},
    Setting{"session_ttl", "30d", "absolute session lifetime"},
    Setting{"idle_timeout", "0", "idle timeout; 0: off"},
    Setting{"touch_interval", "auto", "how often validation may record activity"},
    Setting{"access_ttl", "15m", "access token lifetime"},
    Setting{"refresh_grace", "10s", "0..60s: retry window of the previous refresh token"},
    Setting{"max_sessions_per_subject", "10", ">= 1; least recently seen are evicted"},
    Setting{"max_data_bytes", "4096", "bound on a session's data"},
    Setting{"bind_fingerprint", "false", "revoke a session validated with another fingerprint"},
    Setting{"cleanup_retention", "7d", "ended sessions are deleted this long after they end"},
    Setting{"cleanup_interval", "1h", "how often serve runs cleanup; 0: never"},
    Setting{"cookie_name", "tessera_session", "cookie mode: the cookie's name"},
    Setting{"cookie_domain", "", "cookie Domain; empty: host-only"},
    Setting{"cookie_path", "/", "cookie Path"},
    Setting{"cookie_secure", "true", "cookie Secure attribute"},
    Setting{"cookie_same_site", "Lax", "Strict, Lax or None (None needs cookie_secure)"},
    Setting{"max_body_bytes", "65536", "larger request bodies answer 413"},
    Setting{"max_header_bytes", "8192", "larger header blocks answer 431"},
    Setting{"read_timeout", "10s", "a request must arrive whole within this"},
    Setting{"idle_connection_timeout", "60s", "idle keep-alive connections are closed after this"},
    Setting{"drain_timeout", "30s", "on SIGTERM in-flight requests get this long"},
    Setting{"max_connections", "4096", "further connections are closed at once"},
    Setting{"max_pipelined", "16", "requests queued per connection before reading pauses"},
    Setting{"jwks_max_age", "300s", "Cache-Control max-age of the JWKS"},
    Setting{"metrics_public", "true", "false: /metrics needs an API key"},
    Setting{"access_log", "true", "one JSON line per request on stdout"},
    Setting{"audit_log", "<data_dir>/audit.jsonl",
            "lifecycle events as JSON lines; - for stdout, none (or empty) for none"},
    Setting{"log_level", "info", "trace, debug, info, warn, error, critical, off"},
};

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

// Reads settings one at a time, remembering the first error.
class Reader {
 public:
  explicit Reader(const RawSettings& raw) : raw_(raw) {}

  [[nodiscard]] bool given(std::string_view key) const { return raw_.contains(key); }
  [[nodiscard]] std::string text(std::string_view key, std::string_view fallback) const {
    const auto it = raw_.find(key);
    return it == raw_.end() ? std::string(fallback) : std::string(trim(it->second));
  }

  seconds duration(std::string_view key, std::string_view fallback, seconds min = seconds{0}) {
    const std::string t = text(key, fallback);
    const auto d = parse_duration(t);
    if (!d) {
      error(key, fmt::format("not a duration (got \"{}\"; use e.g. 90s, 15m, 1h, 30d)", t));
      return {};
    }
    if (*d < min) error(key, fmt::format("must be at least {} (got {})", format_duration(min), t));
    return *d;
  }

  std::uint64_t integer(std::string_view key, std::string_view fallback, std::uint64_t min,
                        std::uint64_t max) {
    const std::string t = text(key, fallback);
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size()) {
      error(key, fmt::format("not a non-negative integer (got \"{}\")", t));
      return min;
    }
    if (v < min || v > max) {
      error(key, fmt::format("must be between {} and {} (got {})", min, max, v));
      return min;
    }
    return v;
  }

  bool boolean(std::string_view key, std::string_view fallback) {
    const std::string t = text(key, fallback);
    if (t == "true") return true;
    if (t == "false") return false;
    error(key, fmt::format("must be true or false (got \"{}\")", t));
    return false;
  }

  std::string choice(std::string_view key, std::string_view fallback,
                     std::initializer_list<std::string_view> allowed) {
    const std::string t = text(key, fallback);
    if (std::find(allowed.begin(), allowed.end(), t) != allowed.end()) return t;
    std::string list;
    for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    error(key, fmt::format("must be one of {} (got \"{}\")", list, t));
    return std::string(*allowed.begin());
  }

  void error(std::string_view key, std::string_view why) {
    if (!first_) first_ = bad(key, why);
  }
  [[nodiscard]] const std::optional<Error>& first_error() const { return first_; }

 private:
  const RawSettings& raw_;
  std::optional<Error> first_;
};

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}

std::optional<std::array<std::uint8_t, 32>> parse_key_hash(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!s.starts_with(kPrefix) || s.size() != kPrefix.size() + 64) return std::nullopt;
  s.remove_prefix(kPrefix.size());
  if (!std::all_of(s.begin(), s.end(), is_hex)) return std::nullopt;
  std::array<std::uint8_t, 32> out{};
  for (std::size_t i = 0; i < 32; ++i) {
    std::from_chars(s.data() + 2 * i, s.data() + 2 * i + 2, out[i], 16);
  }
  return out;
}

}  // namespace

std::span<const Setting> settings() {
  return kSettings;
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
    if (std::none_of(kSettings.begin(), kSettings.end(),
                     [&](const Setting& s) { return s.key == key; }))
      return std::unexpected(bad(key, "unknown setting"));
  }
  Reader r(raw);
  Config c;

  c.mode =
      r.choice("mode", "dev", {"dev", "production"}) == "production" ? Mode::production : Mode::dev;
  const std::string data_dir = r.text("data_dir", "./var");
  if (data_dir.empty()) r.error("data_dir", "must not be empty");
  c.data_dir = data_dir;

  // listen: host:port, host may be a bracketed IPv6 address.
  {
    const std::string listen = r.text("listen", "127.0.0.1:8080");
    const auto colon = listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
    const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    unsigned p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (host.empty() || port.empty() || ec != std::errc{} || ptr != port.data() + port.size() ||
        p > 65535) {
      r.error("listen", fmt::format("must be host:port with a port 0..65535 (got \"{}\")", listen));
    } else {
      if (host == "localhost") host = "127.0.0.1";
      in6_addr probe{};
      if (::inet_pton(AF_INET, host.c_str(), &probe) != 1 &&
          ::inet_pton(AF_INET6, host.c_str(), &probe) != 1)
        r.error("listen",
                fmt::format("host must be an IP address or localhost (got \"{}\")", host));
      c.server.host = host;
      c.server.port = static_cast<std::uint16_t>(p);
    }
  }
  if (const std::string rf = r.text("ready_file", ""); !rf.empty()) c.ready_file = rf;
  c.server.threads = static_cast<unsigned>(r.integer("threads", "0", 0, 1024));

  // store
  {
    const std::string fallback = "sqlite://" + (c.data_dir / "tessera.db").string();
    c.store_url = r.text("store", fallback);
    if (c.store_url == "memory:") {
      c.store_kind = StoreKind::memory;
    } else if (c.store_url.starts_with("postgresql://") || c.store_url.starts_with("postgres://")) {
      c.store_kind = StoreKind::postgresql;
      c.postgres.url = c.store_url;
    } else if (c.store_url.starts_with("sqlite://")) {
      c.store_kind = StoreKind::sqlite;
      c.sqlite_path = c.store_url.substr(std::string_view("sqlite://").size());
      if (c.sqlite_path.empty()) r.error("store", "sqlite:// needs a file path");
    } else {
      r.error("store", fmt::format("unsupported store \"{}\" (expected sqlite://PATH, "
                                   "postgresql://... or memory:)",
                                   c.store_url_for_logs()));
    }
  }
  c.sqlite.synchronous = r.choice("sqlite_synchronous", "full", {"full", "normal"}) == "normal"
                             ? SqliteSync::normal
                             : SqliteSync::full;
  c.postgres.schema = r.text("postgres_schema", "public");
  c.postgres.pool_size = static_cast<std::size_t>(r.integer("postgres_pool_size", "16", 1, 1000));
  {
    const std::string url = r.text("redis_url", "");
    if (!url.empty()) {
      if (auto o = parse_redis_url(url)) {
        c.redis = *o;
      } else {
        r.error("redis_url", o.error().detail);
      }
    }
  }

  c.signing_keys_given = r.given("signing_keys");
  c.signing_keys = r.text("signing_keys", (c.data_dir / "keys" / "signing.jwks").string());
  if (c.signing_keys.empty()) r.error("signing_keys", "must not be empty");
  c.secret_keys_given = r.given("secret_keys");
  c.secret_keys = r.text("secret_keys", (c.data_dir / "keys" / "secrets.json").string());
  if (c.secret_keys.empty()) r.error("secret_keys", "must not be empty");
  {
    c.signing_alg_given = r.given("signing_alg");
    const std::string alg = r.text("signing_alg", "EdDSA");
    if (const auto a = algorithm_from_string(alg)) {
      c.signing_alg = *a;
    } else {
      r.error("signing_alg", fmt::format("must be EdDSA, ES256 or HS256 (got \"{}\")", alg));
    }
  }
  c.key_reload_interval = r.duration("key_reload_interval", "5s", seconds{1});
  {
    const auto hashes = split_list(r.text("api_key_hashes", ""));
    c.api_key_hashes_given = !hashes.empty();
    for (const auto& h : hashes) {
      if (const auto digest = parse_key_hash(h)) {
        c.server.api_key_hashes.push_back(*digest);
      } else {
        // Show only the shape: a wrongly pasted value may be a key itself.
        r.error("api_key_hashes",
                fmt::format("each entry must be sha256:<64 hex digits> (an entry of {} characters "
                            "is not)",
                            h.size()));
        break;
      }
    }
  }

  auto& p = c.policy;
  p.issuer = r.text("issuer", "tessera");
  if (p.issuer.empty()) r.error("issuer", "must not be empty");
  p.audience = split_list(r.text("audience", "tessera"));
  if (p.audience.empty()) r.error("audience", "needs at least one value");
  p.session_ttl = r.duration("session_ttl", "30d", seconds{1});
  p.idle_timeout = r.duration("idle_timeout", "0");
  if (const std::string t = r.text("touch_interval", "auto"); t != "auto")
    p.touch_interval = r.duration("touch_interval", "auto", seconds{1});
  p.access_ttl = r.duration("access_ttl", "15m", seconds{1});
  p.refresh_grace = r.duration("refresh_grace", "10s");
  if (p.refresh_grace > seconds{60})
    r.error("refresh_grace",
            fmt::format("must be between 0s and 60s (got {})", r.text("refresh_grace", "")));
  p.max_sessions_per_subject = static_cast<std::size_t>(
      r.integer("max_sessions_per_subject", "10", 1, std::numeric_limits<std::uint32_t>::max()));
  p.max_data_bytes =
      static_cast<std::size_t>(r.integer("max_data_bytes", "4096", 2, 16 * 1024 * 1024));
  p.bind_fingerprint = r.boolean("bind_fingerprint", "false");
  p.cleanup_retention = r.duration("cleanup_retention", "7d");
  c.cleanup_interval = r.duration("cleanup_interval", "1h");

  auto& ck = c.server.cookie;
  ck.name = r.text("cookie_name", "tessera_session");
  if (ck.name.empty() || !std::all_of(ck.name.begin(), ck.name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
      }))
    r.error("cookie_name", "must be non-empty letters, digits, '_', '-' or '.'");
  ck.domain = r.text("cookie_domain", "");
  ck.path = r.text("cookie_path", "/");
  if (!ck.path.starts_with('/')) r.error("cookie_path", "must start with /");
  ck.secure = r.boolean("cookie_secure", "true");
  ck.same_site = r.choice("cookie_same_site", "Lax", {"Strict", "Lax", "None"});
  if (ck.same_site == "None" && !ck.secure)
    r.error("cookie_same_site", "None needs cookie_secure = true (browsers refuse it otherwise)");

  auto& s = c.server;
  s.max_body_bytes =
      static_cast<std::size_t>(r.integer("max_body_bytes", "65536", 1024, 64 * 1024 * 1024));
  s.max_header_bytes =
      static_cast<std::size_t>(r.integer("max_header_bytes", "8192", 1024, 1024 * 1024));
  s.read_timeout = r.duration("read_timeout", "10s", seconds{1});
  s.idle_timeout = r.duration("idle_connection_timeout", "60s", seconds{1});
  s.drain_timeout = r.duration("drain_timeout", "30s");
  s.max_connections = static_cast<std::size_t>(r.integer("max_connections", "4096", 1, 1'000'000));
  s.jwks_max_age = r.duration("jwks_max_age", "300s");
  s.metrics_public = r.boolean("metrics_public", "true");
  s.access_log = r.boolean("access_log", "true");

  {
    const std::string audit = r.text("audit_log", (c.data_dir / "audit.jsonl").string());
    if (audit.empty() || audit == "none") {
      c.audit = AuditTarget::none;
    } else if (audit == "-") {
      c.audit = AuditTarget::stdout_lines;
    } else {
      c.audit = AuditTarget::file;
      c.audit_path = audit;
    }
  }
  c.log_level =
      r.choice("log_level", "info", {"trace", "debug", "info", "warn", "error", "critical", "off"});

  if (r.first_error()) return std::unexpected(*r.first_error());
  if (auto v = p.validate(); !v) return std::unexpected(v.error());
  return c;
}

SettingsBinder::SettingsBinder(CLI::App& app) {
  config_option_ = app.add_option("--config", config_file_,
                                  "configuration file of key = value lines (docs/configuration.md)")
                       ->envname("TESSERA_CONFIG")
                       ->group("Settings");
  for (const Setting& s : kSettings) {
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
    if (std::none_of(kSettings.begin(), kSettings.end(),
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
