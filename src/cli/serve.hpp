// `tessera serve`: wires the configured store, keys and audit sink into a
// SessionService and the HTTP server (src/server), and runs it.
#pragma once

#include <optional>

#include "cli/config.hpp"
#include "cli/key_files.hpp"

namespace tessera::cli {

// Serves until SIGTERM/SIGINT and the drain are done. A background thread
// polls the signing key file every key_reload_interval (SIGHUP reloads at
// once) and runs cleanup every cleanup_interval.
// A `new_api_key` (dev mode's first start) is stored and shown only once the
// listener is bound: a start that fails before leaves no trace of it.
[[nodiscard]] Status serve(const Config& config, std::optional<ApiKey> new_api_key);

}  // namespace tessera::cli
