// What the subcommands share: opening the configured store and audit sink,
// the start-up checks and dev-mode bootstrap of `serve`, the signing-key
// reloader, and the JSON shapes printed on stdout.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <boost/json/object.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cli/config.hpp"
#include "cli/key_files.hpp"
#include "tessera/audit.hpp"
#include "tessera/clock.hpp"
#include "tessera/session.hpp"
#include "tessera/session_service.hpp"

namespace tessera::cli {

// Opens the configured store (creating the SQLite file's directory 0700);
// migrations run on open.
[[nodiscard]] Result<std::unique_ptr<SessionStore>> open_store(const Config& config);

// The configured audit sink, or nullptr for none. Owns its file (appended,
// created 0600). One-shot commands pass `one_shot`: their stdout is one JSON
// document, so audit_log "-" writes to stderr instead.
[[nodiscard]] Result<std::unique_ptr<AuditSink>> open_audit_sink(const Config& config,
                                                                 bool one_shot = false);

// `serve`'s start-up checks and, in dev mode, its first-start bootstrap:
//  - production: signing_keys, secret_keys and api_key_hashes must be set
//    explicitly, the files must exist and group and others must have no
//    access to them; config_invalid naming the first setting that fails;
//  - dev: creates data_dir, generates missing key files (one open to group
//    or others is logged as key_file_permissions, not refused) and, with
//    neither api_key_hashes nor a key in <data_dir>/api_keys (first start),
//    generates an API key, in memory only: store_new_api_key() writes its
//    hash once the listener is bound, so a start that fails before that
//    leaves no hash of a key nobody was shown.
// Both modes refuse an api_keys file that does not parse. Returns the API
// key when one was just generated: the caller serves it (full scope, as
// dev_api_key_entry), stores it, shows it once, and never logs it.
[[nodiscard]] Result<std::optional<ApiKey>> prepare_serve(Config& config, Random& random,
                                                          const Clock& clock);

// The api_keys entry of a key prepare_serve() generated: name "dev", admin.
[[nodiscard]] server::ApiKeyEntry dev_api_key_entry(const ApiKey& key, const Clock& clock);
// Adds it (its hash only) to <data_dir>/api_keys, 0600. A later start, and
// `tessera api-keys list|revoke`, read it from there.
[[nodiscard]] Status store_new_api_key(const Config& config, const ApiKey& key, const Clock& clock);

// "2026-12-03T18:00:00Z".
[[nodiscard]] std::string rfc3339(UnixSeconds t);

// The first-start banner: the API key and a curl line that works verbatim
// against host:port.
[[nodiscard]] std::string dev_banner(const SecretString& api_key, const Config& config,
                                     std::uint16_t port);

// Re-reads the signing key file when it changes (mtime, size or inode) and
// swaps it into the SharedKeySet; a file that does not load is logged and
// the keys in use are kept. When the swapped-in set has another active key
// than the one before, a key_rotated event goes to `audit` (if not null;
// it must outlive the reloader). Thread-safe.
class KeyReloader {
 public:
  KeyReloader(std::filesystem::path file, SharedKeySet& keys, AuditSink* audit = nullptr,
              const Clock& clock = SystemClock::instance());
  // Reloads if the file changed since the last look (or always, if `force`).
  // True if new keys were swapped in.
  bool check(bool force = false);

 private:
  std::mutex mu_;
  std::filesystem::path file_;
  SharedKeySet& keys_;
  AuditSink* audit_;
  const Clock& clock_;
  std::optional<FileStamp> last_;
};

// Re-reads the api_keys file when it changes and swaps it into the
// SharedApiKeys the server reads per request: a key revoked by `tessera
// api-keys revoke` stops working within key_reload_interval (at once on
// SIGHUP). A file that does not parse is logged and the keys in use are
// kept; a removed file leaves no scoped key. Thread-safe.
class ApiKeyReloader {
 public:
  ApiKeyReloader(std::filesystem::path file, server::SharedApiKeys& keys);
  bool check(bool force = false);

 private:
  std::mutex mu_;
  std::filesystem::path file_;
  server::SharedApiKeys& keys_;
  std::optional<FileStamp> last_;
};

// The default logger's line format: a payload that is a JSON object gets
// "time" (RFC 3339, UTC, milliseconds: "2026-12-02T07:10:00.123Z") as its
// first member; any other payload is written as it is. One line each.
[[nodiscard]] std::unique_ptr<spdlog::formatter> json_line_formatter();

// One JSON log line through the spdlog default logger:
// {"level":"info","event":"listening",...fields} (and "time", when the
// logger uses json_line_formatter()).
void log_event(spdlog::level::level_enum level, std::string_view event,
               boost::json::object fields = {});

}  // namespace tessera::cli
