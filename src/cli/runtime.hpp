// What the subcommands share: opening the configured store and audit sink,
// the start-up checks and dev-mode bootstrap of `serve`, the signing-key
// reloader, and the JSON shapes printed on stdout.
#pragma once

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
//    explicitly and the files must exist; config_invalid naming the first
//    missing setting otherwise;
//  - dev: creates data_dir, generates missing key files and, without
//    api_key_hashes, reads <data_dir>/api_keys or (first start) generates an
//    API key and stores only its hash there.
// Fills config.server.api_key_hashes. Returns the API key when one was just
// generated: the caller shows it once, and never logs it.
[[nodiscard]] Result<std::optional<SecretString>> prepare_serve(Config& config, Random& random,
                                                                const Clock& clock);

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

// One JSON log line through the spdlog default logger:
// {"level":"info","event":"listening",...fields}.
void log_event(spdlog::level::level_enum level, std::string_view event,
               boost::json::object fields = {});

// The session object of docs/api.md §2.
[[nodiscard]] boost::json::object session_json(const Session& session);

}  // namespace tessera::cli
