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

std::optional<KeyHash> parse_key_hash_text(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!text.starts_with(kPrefix) || text.size() != kPrefix.size() + 64) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  KeyHash out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char* first = text.data() + 2 * i;
    const auto [p, ec] = std::from_chars(first, first + 2, out[i], 16);
    if (ec != std::errc{} || p != first + 2) return std::nullopt;
  }
  return out;
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
    const auto h = parse_key_hash_text(line);
    if (!h)
      return fail(ErrorCode::config_invalid,
                  fmt::format("{}: line {}: expected sha256:<64 hex digits>", file.string(), n));
    out.push_back(*h);
  }
  return out;
}

}  // namespace tessera::cli
