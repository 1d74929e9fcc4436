// Byte encodings used on the wire, and constant-time comparison.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

using Bytes = std::vector<std::uint8_t>;

// RFC 4648 §5 base64url, without padding.
[[nodiscard]] std::string base64url_encode(std::span<const std::uint8_t> data);
[[nodiscard]] std::string base64url_encode(std::string_view data);
// Strict decoding: only the base64url alphabet, no padding, no whitespace,
// and the unused low bits of the last character must be zero (so every byte
// string has exactly one accepted encoding). nullopt on any violation.
[[nodiscard]] std::optional<Bytes> base64url_decode(std::string_view text);
// As above, appending into `out` (cleared first); false on any violation.
[[nodiscard]] bool base64url_decode_into(std::string_view text, std::string& out);

// RFC 4648 §4 standard base64, with padding (Standard Webhooks secrets and
// signatures). Decoding is as strict as base64url's: the standard alphabet
// only, the padding exactly as long as the length needs, no whitespace.
[[nodiscard]] std::string base64_encode(std::span<const std::uint8_t> data);
[[nodiscard]] std::optional<Bytes> base64_decode(std::string_view text);

// Lowercase hex.
[[nodiscard]] std::string hex_encode(std::span<const std::uint8_t> data);

// Compares in time that depends only on the lengths, never on the contents.
[[nodiscard]] bool constant_time_equal(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b) noexcept;
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

inline std::span<const std::uint8_t> as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::uint8_t> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace tessera
