// `tessera serve`: wires the configured store, keys and audit sink into a
// SessionService and the HTTP server (src/server), and runs it.
#pragma once

#include <optional>

#include "cli/config.hpp"
#include "tessera/secret.hpp"

namespace tessera::cli {

// Serves until SIGTERM/SIGINT and the drain are done. A background thread
// polls the signing key file every key_reload_interval (SIGHUP reloads at
// once) and runs cleanup every cleanup_interval.
[[nodiscard]] Status serve(const Config& config, std::optional<SecretString> new_api_key);

}  // namespace tessera::cli
