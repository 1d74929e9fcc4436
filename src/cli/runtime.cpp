#include "cli/runtime.hpp"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <iostream>
#include <iterator>

#include "tessera/memory_store.hpp"
#include "tessera/sqlite_store.hpp"

namespace tessera::cli {

namespace fs = std::filesystem;

namespace {

std::unexpected<Error> missing(std::string_view setting, std::string_view why) {
  return fail(ErrorCode::config_invalid, fmt::format("{}: {}", setting, why));
}

// An audit sink that owns the file it appends to.
class FileAuditSink final : public AuditSink {
 public:
  explicit FileAuditSink(const fs::path& path) : out_(path, std::ios::app), lines_(out_) {}
  [[nodiscard]] bool ok() const { return static_cast<bool>(out_); }
  void emit(const AuditEvent& event) noexcept override { lines_.emit(event); }

 private:
  std::ofstream out_;
  JsonLinesAuditSink lines_;
};

// Audit lines on stdout whatever log_level says: a logger of its own, on
// spdlog's stdout sink, which shares the console lock with the default logger
// so audit and log lines never interleave mid-line.
class StdoutAuditSink final : public AuditSink {
 public:
  StdoutAuditSink() : logger_(std::make_shared<spdlog::logger>("audit", make_sink())) {
    logger_->set_pattern("%v");
    logger_->set_level(spdlog::level::trace);
    logger_->flush_on(spdlog::level::trace);
  }
  void emit(const AuditEvent& event) noexcept override {
    try {
      logger_->info("{}", to_json_line(event));
    } catch (...) {
      // Auditing never takes a request down with it.
    }
  }

 private:
  static spdlog::sink_ptr make_sink() { return std::make_shared<spdlog::sinks::stdout_sink_mt>(); }
  std::shared_ptr<spdlog::logger> logger_;
};

// The mode ("0644") of a key file that group or others may read or write,
// if it is one: readers get the keys, writers can put in their own (and
// mint tokens). stat, not lstat: a mounted secret is often a symlink.
std::optional<std::string> exposed_mode(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO)) == 0)
    return std::nullopt;
  return fmt::format("{:04o}", st.st_mode & 07777);
}

std::string exposed_why(const fs::path& file, std::string_view mode) {
  return fmt::format("\"{}\" is mode {}; must not be accessible by group or others (chmod 600)",
                     file.string(), mode);
}

void warn_if_exposed(std::string_view setting, const fs::path& file) {
  if (auto mode = exposed_mode(file))
    log_event(spdlog::level::warn, "key_file_permissions",
              {{"setting", setting},
               {"file", file.string()},
               {"mode", *mode},
               {"detail", exposed_why(file, *mode)}});
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    case spdlog::level::critical:
      return "critical";
    default:
      return "off";
  }
}

// The JSON log lines with a "time" member in front: log shippers and people
// reading a file later need to know when, and the audit lines' Unix `at`
// (their own logger, not this one) is no help for the operational lines.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    if (payload.starts_with('{')) {
      payload.remove_prefix(1);
      const auto since = msg.time.time_since_epoch();
      const auto secs = std::chrono::floor<std::chrono::seconds>(since);
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
      const std::time_t t = secs.count();
      std::tm tm{};
      ::gmtime_r(&t, &tm);
      fmt::format_to(std::back_inserter(dest),
                     R"({{"time":"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z"{})",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ms, payload.starts_with('}') ? "" : ",");
    }
    dest.append(payload.data(), payload.data() + payload.size());
    dest.push_back('\n');
  }
  [[nodiscard]] std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

}  // namespace

Result<std::unique_ptr<SessionStore>> open_store(const Config& config) {
  switch (config.store_kind) {
    case StoreKind::memory:
      return make_memory_store();
    case StoreKind::sqlite: {
      if (auto s = make_private_dirs(config.sqlite_path.parent_path()); !s)
        return fail(ErrorCode::store_unavailable, s.error().detail);
      return open_sqlite_store(config.sqlite_path, config.sqlite);
    }
    case StoreKind::postgresql:
      return open_postgres_store(config.postgres);
  }
  return fail(ErrorCode::internal, "unknown store kind");
}

Result<std::unique_ptr<AuditSink>> open_audit_sink(const Config& config, bool one_shot) {
  switch (config.audit) {
    case AuditTarget::none:
      return std::unique_ptr<AuditSink>{};
    case AuditTarget::stdout_lines:
      if (one_shot)
        return std::unique_ptr<AuditSink>(std::make_unique<JsonLinesAuditSink>(std::cerr));
      return std::unique_ptr<AuditSink>(std::make_unique<StdoutAuditSink>());
    case AuditTarget::file: {
      if (auto s = make_private_dirs(config.audit_path.parent_path()); !s)
        return fail(ErrorCode::config_invalid, fmt::format("audit_log: {}", s.error().detail));
      // Create it 0600 before the stream opens it: it names subjects.
      const int fd =
          ::open(config.audit_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd < 0)
        return fail(ErrorCode::config_invalid,
                    fmt::format("audit_log: cannot open \"{}\"", config.audit_path.string()));
      ::close(fd);
      auto sink = std::make_unique<FileAuditSink>(config.audit_path);
      if (!sink->ok())
        return fail(ErrorCode::config_invalid,
                    fmt::format("audit_log: cannot open \"{}\"", config.audit_path.string()));
      return std::unique_ptr<AuditSink>(std::move(sink));
    }
  }
  return fail(ErrorCode::internal, "unknown audit target");
}

Result<std::optional<ApiKey>> prepare_serve(Config& config, Random& random, const Clock& clock) {
  std::error_code ec;
  if (config.mode == Mode::production) {
    if (!config.signing_keys_given)
      return missing("signing_keys", "production mode needs it set explicitly");
    if (!fs::exists(config.signing_keys, ec))
      return missing("signing_keys",
                     fmt::format("\"{}\" does not exist", config.signing_keys.string()));
    if (auto mode = exposed_mode(config.signing_keys))
      return missing("signing_keys", exposed_why(config.signing_keys, *mode));
    if (!config.secret_keys_given)
      return missing("secret_keys", "production mode needs it set explicitly");
    if (!fs::exists(config.secret_keys, ec))
      return missing("secret_keys",
                     fmt::format("\"{}\" does not exist", config.secret_keys.string()));
    if (auto mode = exposed_mode(config.secret_keys))
      return missing("secret_keys", exposed_why(config.secret_keys, *mode));
    // Scoped keys (tessera api-keys) or full-scope hashes: at least one.
    auto keys = load_api_keys(config.api_keys_file());
    if (!keys) return std::unexpected(keys.error());
    if (!config.api_key_hashes_given && keys->empty())
      return missing("api_key_hashes",
                     fmt::format("production mode needs at least one, or a key in \"{}\" "
                                 "(tessera api-keys create)",
                                 config.api_keys_file().string()));
    return std::optional<ApiKey>{};
  }

  if (auto s = make_private_dirs(config.data_dir); !s) return missing("data_dir", s.error().detail);
  if (!fs::exists(config.signing_keys, ec)) {
    auto keys = generate_signing_keys(config.signing_alg, random, clock);
    if (!keys) return std::unexpected(keys.error());
    if (auto s = write_private_file(config.signing_keys, keys->private_jwks()); !s)
      return std::unexpected(s.error());
    log_event(spdlog::level::info, "signing_keys_generated",
              {{"file", config.signing_keys.string()}});
  }
  if (!fs::exists(config.secret_keys, ec)) {
    if (auto s =
            write_private_file(config.secret_keys, secret_keys_json(generate_secret_keys(random)));
        !s)
      return std::unexpected(s.error());
    log_event(spdlog::level::info, "secret_keys_generated",
              {{"file", config.secret_keys.string()}});
  }
  // Dev mode: say so, but start (production refuses, above).
  warn_if_exposed("signing_keys", config.signing_keys);
  warn_if_exposed("secret_keys", config.secret_keys);
  // The file is read (and must parse) whenever it exists; serve keeps
  // reading it. A key is generated only when there is no key at all.
  auto keys = load_api_keys(config.api_keys_file());
  if (!keys) return std::unexpected(keys.error());
  if (config.api_key_hashes_given || !keys->empty()) return std::optional<ApiKey>{};
  return std::optional<ApiKey>(generate_api_key(random));
}

server::ApiKeyEntry dev_api_key_entry(const ApiKey& key, const Clock& clock) {
  return {.hash = key.hash,
          .name = "dev",
          .scopes = server::kAdminScopes,
          .created_at = rfc3339(clock.now())};
}

Status store_new_api_key(const Config& config, const ApiKey& key, const Clock& clock) {
  auto lock = ApiKeysLock::acquire(config.api_keys_file());
  if (!lock) return std::unexpected(lock.error());
  auto keys = load_api_keys(config.api_keys_file());
  if (!keys) return std::unexpected(keys.error());
  keys->push_back(dev_api_key_entry(key, clock));
  return write_api_keys(config.api_keys_file(), *keys);
}

std::string rfc3339(UnixSeconds t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                     fmt::gmtime(static_cast<std::time_t>(t.time_since_epoch().count())));
}

ApiKeyReloader::ApiKeyReloader(fs::path file, server::SharedApiKeys& keys)
    : file_(std::move(file)), keys_(keys), last_(file_stamp(file_)) {}

bool ApiKeyReloader::check(bool force) {
  std::lock_guard lock(mu_);
  const auto stamp = file_stamp(file_);
  if (!force && stamp == last_) return false;
  last_ = stamp;                     // a bad file is reported once, not at every poll
  auto keys = load_api_keys(file_);  // a removed file: no scoped key any more
  if (!keys) {
    log_event(spdlog::level::warn, "api_keys_reload_failed",
              {{"file", file_.string()},
               {"code", to_string(keys.error().code)},
               {"detail", keys.error().detail},
               {"kept", "previous keys"}});
    return false;
  }
  const std::size_t n = keys->size();
  keys_.set(server::ApiKeyTable(std::move(*keys)));
  log_event(spdlog::level::info, "api_keys_reloaded", {{"file", file_.string()}, {"keys", n}});
  return true;
}

std::string dev_banner(const SecretString& api_key, const Config& config, std::uint16_t port) {
  std::string host = config.server.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format(
      "\n"
      "tessera dev mode: first start. Generated an API key; it is shown only this once\n"
      "(only its hash is kept, in {}):\n"
      "\n"
      "  {}\n"
      "\n"
      "Try it:\n"
      "\n"
      "  curl -s -X POST {}://{}:{}/v1/sessions -H 'Authorization: Bearer {}' "
      "-H 'Content-Type: application/json' -d '{{\"subject\":\"alice\",\"mode\":\"token\"}}'\n",
      config.api_keys_file().string(), api_key.reveal(),
      config.server.tls.enabled() ? "https" : "http", host, port, api_key.reveal());
}

KeyReloader::KeyReloader(fs::path file, SharedKeySet& keys, AuditSink* audit, const Clock& clock)
    : file_(std::move(file)), keys_(keys), audit_(audit), clock_(clock), last_(file_stamp(file_)) {}

bool KeyReloader::check(bool force) {
  std::lock_guard lock(mu_);
  const auto stamp = file_stamp(file_);
  if (!force && stamp == last_) return false;
  last_ = stamp;  // a bad file is reported once, not at every poll
  auto keys = load_signing_keys(file_);
  if (!keys) {
    log_event(spdlog::level::warn, "key_reload_failed",
              {{"file", file_.string()},
               {"code", to_string(keys.error().code)},
               {"detail", keys.error().detail},
               {"kept", "previous keys"}});
    return false;
  }
  const std::string active = keys->active()->kid();
  const std::string before = keys_.get()->active()->kid();
  keys_.set(std::move(*keys));
  log_event(spdlog::level::info, "keys_reloaded",
            {{"file", file_.string()}, {"active_kid", active}});
  // This instance signs with another key from now on (`keys rotate`, run
  // elsewhere, wrote its own event): counted in the metrics, and audited
  // like the command's, with the new active kid (public: it is in the JWKS).
  if (audit_ != nullptr && active != before)
    audit_->emit(AuditEvent{.type = AuditEventType::key_rotated,
                            .at = clock_.now(),
                            .actor = Actor::system,
                            .kid = active});
  return true;
}

std::unique_ptr<spdlog::formatter> json_line_formatter() {
  return std::make_unique<JsonLineFormatter>();
}

void log_event(spdlog::level::level_enum level, std::string_view event,
               boost::json::object fields) {
  boost::json::object o;
  o["level"] = level_name(level);
  o["event"] = event;
  for (auto& [k, v] : fields) o[k] = std::move(v);
  spdlog::log(level, "{}", boost::json::serialize(o));
}

}  // namespace tessera::cli
