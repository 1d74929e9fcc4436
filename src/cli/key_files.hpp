// Key files of the `tessera` command that only the authority uses: the dev
// mode's API key hashes and the scoped keys of `tessera api-keys`. The signing and secret key files
// are public API (tessera/key_files.hpp), shared with programs that embed the engine.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "server/api_keys.hpp"
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

// The api_keys file (server/api_keys.hpp has its format). A missing file
// holds no key; a file that does not parse is an error naming the line.
[[nodiscard]] Result<std::vector<server::ApiKeyEntry>> load_api_keys(
    const std::filesystem::path& file);
// Replaces the file at once (a reader sees the old or the new one), 0600.
[[nodiscard]] Status write_api_keys(const std::filesystem::path& file,
                                    const std::vector<server::ApiKeyEntry>& keys);

// An exclusive lock on <file>.lock for a read-modify-write of the api_keys
// file: two `tessera api-keys create` at once keep both keys.
class ApiKeysLock {
 public:
  [[nodiscard]] static Result<ApiKeysLock> acquire(const std::filesystem::path& file);
  ApiKeysLock(ApiKeysLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ApiKeysLock& operator=(ApiKeysLock&&) = delete;
  ~ApiKeysLock();

 private:
  explicit ApiKeysLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace tessera::cli
