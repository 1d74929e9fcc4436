#include "cli/key_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "tessera/encoding.hpp"

namespace tessera::cli {

namespace fs = std::filesystem;

// --- API keys ---------------------------------------------------------------

ApiKey generate_api_key(Random& random) {
  std::array<std::uint8_t, 32> bytes{};
  random.fill(bytes);
  ApiKey k{SecretString("tsk_" + base64url_encode(bytes)), {}};
  std::fill(bytes.begin(), bytes.end(), std::uint8_t{0});
  k.hash = sha256(k.key.reveal());
  return k;
}

std::string key_hash_text(const KeyHash& hash) {
  return "sha256:" + hex_encode(hash);
}

std::optional<KeyHash> parse_key_hash_text(std::string_view text) {
  return server::parse_key_hash(text);
}

Result<std::vector<server::ApiKeyEntry>> load_api_keys(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::vector<server::ApiKeyEntry>{};
  auto text = read_text_file(file);
  if (!text) return std::unexpected(text.error());
  return server::parse_api_keys(*text, file.string());
}

Status write_api_keys(const fs::path& file, const std::vector<server::ApiKeyEntry>& keys) {
  std::string text =
      "# tessera API keys: SHA-256 of each key, its name and scopes (tessera api-keys)\n";
  for (const auto& k : keys) text += server::api_key_line(k) + "\n";
  return write_private_file(file, text);
}

Result<ApiKeysLock> ApiKeysLock::acquire(const fs::path& file) {
  if (auto s = make_private_dirs(file.parent_path()); !s) return std::unexpected(s.error());
  fs::path lock = file;
  lock += ".lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return fail(ErrorCode::internal,
                fmt::format("cannot open \"{}\": {}", lock.string(), std::strerror(errno)));
  if (::flock(fd, LOCK_EX) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(ErrorCode::internal,
                fmt::format("cannot lock \"{}\": {}", lock.string(), std::strerror(e)));
  }
  return ApiKeysLock(fd);
}

ApiKeysLock::~ApiKeysLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace tessera::cli
