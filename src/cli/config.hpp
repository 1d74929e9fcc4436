// The settings of the `tessera` command (docs/configuration.md): one table
// binding each key to its default, bounds, help text and the Config field it
// fills, layered file < environment (TESSERA_*) < flags, and validated all
// at once into a Config that maps onto SessionPolicy, SqliteOptions and
// server::ServerOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "server/server.hpp"
#include "tessera/error.hpp"
#include "tessera/jwk.hpp"
#include "tessera/postgres_store.hpp"
#include "tessera/redis_epochs.hpp"
#include "tessera/session_service.hpp"
#include "tessera/sqlite_store.hpp"
#include "tessera/upstream.hpp"
#include "tessera/webhooks.hpp"

namespace tessera::cli {

enum class Mode : std::uint8_t { dev, production };
enum class StoreKind : std::uint8_t { sqlite, memory, postgresql };
enum class AuditTarget : std::uint8_t { none, stdout_lines, file };

// Every setting, validated. Paths are as given (relative to the working
// directory), with the defaults that depend on data_dir filled in.
struct Config {
  Mode mode = Mode::dev;
  std::filesystem::path data_dir;
  std::optional<std::filesystem::path> ready_file;

  StoreKind store_kind = StoreKind::sqlite;
  std::string store_url;  // as configured (or defaulted); may hold a password
  std::filesystem::path sqlite_path;
  SqliteOptions sqlite;
  PostgresOptions postgres;  // when store_kind is postgresql
  // Epoch bumps are written to Redis and published to resource services.
  std::optional<RedisOptions> redis;
  // With redis, the rate limits' failure counts are shared by every instance.
  bool rate_limit_shared = true;

  // store_url with any password replaced by "***": the form for logs.
  [[nodiscard]] std::string store_url_for_logs() const;

  std::filesystem::path signing_keys;
  bool signing_keys_given = false;  // set explicitly, not defaulted
  std::filesystem::path secret_keys;
  bool secret_keys_given = false;
  Algorithm signing_alg = Algorithm::EdDSA;
  bool signing_alg_given = false;  // else `keys rotate` keeps the set's algorithm
  std::chrono::seconds key_reload_interval{5};
  bool api_key_hashes_given = false;  // the hashes themselves are in server.api_key_hashes

  std::string public_url;  // "" when unknown (production without the setting)

  // The outbox's events are POSTed to each (Standard Webhooks), signed
  // with webhook_secret.
  std::vector<std::string> webhook_urls;
  std::optional<WebhookSecret> webhook_secret;

  // Upstream identity providers (docs/upstream.md): a JSON file of them
  // ("" → none), and the liveness refresh's cadence.
  std::filesystem::path upstream_providers;
  UpstreamRefreshOptions upstream_refresh;

  // The SSF transmitter (docs/events.md "SSF"), its streams in
  // ssf_streams_file().
  bool ssf = false;
  [[nodiscard]] std::filesystem::path ssf_streams_file() const {
    return data_dir / "ssf_streams.json";
  }

  SessionPolicy policy;
  std::chrono::seconds cleanup_interval{3600};  // 0: never
  server::ServerOptions server;

  AuditTarget audit = AuditTarget::file;
  std::filesystem::path audit_path;
  std::string log_level = "info";

  // <data_dir>/api_keys: the dev mode's generated API key hash.
  [[nodiscard]] std::filesystem::path api_keys_file() const { return data_dir / "api_keys"; }
};

struct Setting {
  std::string_view key;           // snake_case; the file key
  std::string_view default_text;  // for --help; "" when there is none
  std::string_view help;
};
// Every setting, in documentation order.
[[nodiscard]] std::span<const Setting> settings();

// The values given for settings (any source), by key. Keys not present take
// their defaults.
using RawSettings = std::map<std::string, std::string, std::less<>>;

// Validates and converts. config_invalid whose detail starts with the name
// of the bad setting ("refresh_grace: must be between 0s and 60s (got 90s)").
[[nodiscard]] Result<Config> build_config(const RawSettings& raw);

// What `serve` warns about when production mode listens in plain HTTP on an
// address other than loopback (it starts all the same: TLS may end at a
// proxy on a private network); nullopt when there is nothing to warn about.
// `port` is the bound one.
[[nodiscard]] std::optional<std::string> plaintext_listener_warning(const Config& config,
                                                                    std::uint16_t port);

// "90s", "15m", "1h", "30d", or a bare integer (seconds). nullopt otherwise.
[[nodiscard]] std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// 90 → "90s", 900 → "15m" (the largest unit that divides it).
[[nodiscard]] std::string format_duration(std::chrono::seconds d);

// Adds --config (env TESSERA_CONFIG) and one --<key> flag (env TESSERA_<KEY>)
// per setting to `app`, and after app.parse() layers them with the file:
// file < environment < flags. Neither copyable nor movable: CLI11 holds
// pointers into it.
class SettingsBinder {
 public:
  explicit SettingsBinder(CLI::App& app);
  SettingsBinder(const SettingsBinder&) = delete;
  SettingsBinder& operator=(const SettingsBinder&) = delete;

  // config_invalid if the file cannot be read or holds an unknown key.
  [[nodiscard]] Result<RawSettings> resolve() const;

  // TESSERA_* variables of `environ` that name no setting (likely typos:
  // CLI11 would silently ignore them).
  [[nodiscard]] static std::vector<std::string> unknown_environment();

 private:
  std::string config_file_;
  CLI::Option* config_option_ = nullptr;
  std::map<std::string, std::string, std::less<>> values_;
  std::map<std::string, CLI::Option*, std::less<>> options_;
};

}  // namespace tessera::cli
