// Key files of the `tessera` command that only the authority uses: the dev
// mode's API key hashes. The signing and secret key files are public API
// (tessera/key_files.hpp), shared with programs that embed the engine.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tessera/digest.hpp"
#include "tessera/error.hpp"
#include "tessera/key_files.hpp"
#include "tessera/random.hpp"
#include "tessera/secret.hpp"

namespace tessera::cli {

// --- API keys -------------------------------------------------------------
using KeyHash = Sha256Digest;
struct ApiKey {
  SecretString key;  // "tsk_" + base64url(32 random bytes)
  KeyHash hash;      // SHA-256 of the whole key text
};
[[nodiscard]] ApiKey generate_api_key(Random& random);
// "sha256:<64 lowercase hex>".
[[nodiscard]] std::string key_hash_text(const KeyHash& hash);
// Its inverse: nullopt unless `text` is exactly sha256:<64 hex digits>.
[[nodiscard]] std::optional<KeyHash> parse_key_hash_text(std::string_view text);
// One sha256:<hex> per line; blank lines and # comments skipped.
[[nodiscard]] Result<std::vector<KeyHash>> load_api_key_hashes(const std::filesystem::path& file);

}  // namespace tessera::cli
