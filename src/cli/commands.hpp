// The `tessera` command line: parsing, dispatch to the subcommands, and the
// exit-code contract of docs/cli.md.
#pragma once

#include <optional>

#include "cli/config.hpp"
#include "cli/key_files.hpp"
#include "tessera/error.hpp"
#include "tessera/secret.hpp"

namespace tessera::cli {

// Exit codes (docs/cli.md). Stable: scripts depend on them.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,   // a runtime failure: store unavailable, I/O error, internal
  kExitUsage = 2,     // bad flag, argument or setting; production mode without keys
  kExitNotFound = 3,  // the named session does not exist (or is another subject's)
  kExitRefused = 4,   // would overwrite existing key files (use --force)
};

[[nodiscard]] int exit_code_for(ErrorCode code) noexcept;

// Prints "tessera: <code>: <detail>" on stderr.
void print_error(const Error& error);

// Runs `tessera serve` once prepare_serve() has passed: serves until
// SIGTERM/SIGINT. `new_api_key` is the dev key generated on this start, if
// any, not stored yet: to be stored (store_new_api_key) and shown once the
// listener is bound.
using ServeFunction = Status (*)(const Config& config, std::optional<ApiKey> new_api_key);

// The whole command: returns the process exit code.
[[nodiscard]] int run(int argc, char** argv, ServeFunction serve);

}  // namespace tessera::cli
