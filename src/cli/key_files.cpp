#include "cli/key_files.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

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

Result<std::vector<KeyHash>> load_api_key_hashes(const fs::path& file) {
  auto text = read_text_file(file);
  if (!text) return std::unexpected(text.error());
  std::vector<KeyHash> out;
  std::istringstream in(*text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    const std::string_view hex =
        std::string_view(line).substr(std::min<std::size_t>(7, line.size()));
    auto bytes = line.starts_with("sha256:") && hex.size() == 64
                     ? std::optional<std::string>(std::string(hex))
                     : std::nullopt;
    KeyHash h{};
    bool ok = bytes.has_value();
    for (std::size_t i = 0; ok && i < 32; ++i) {
      const auto [p, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, h[i], 16);
      ok = ec == std::errc{} && p == hex.data() + 2 * i + 2;
    }
    if (!ok)
      return fail(ErrorCode::config_invalid,
                  fmt::format("{}: line {}: expected sha256:<64 hex digits>", file.string(), n));
    out.push_back(h);
  }
  return out;
}

}  // namespace tessera::cli
