// Linked instead of serve.cpp while this build has no HTTP server target.
#include "cli/serve.hpp"

namespace tessera::cli {

Status serve(const Config&, std::optional<SecretString>) {
  return fail(ErrorCode::internal, "this build of tessera has no HTTP server (tessera_server)");
}

}  // namespace tessera::cli
