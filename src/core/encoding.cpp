// base64url is written here rather than taken from OpenSSL: EVP_EncodeBlock
// speaks standard base64 with padding and line rules, and EVP_DecodeBlock
// accepts whitespace and non-canonical trailing bits. Translating around it
// costs an extra pass and still is not strict, while a table-driven codec is
// a few lines and sits on the hot path of every JWT.
#include "tessera/encoding.hpp"

#include <openssl/crypto.h>

#include <array>

namespace tessera {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kDecode = make_decode_table();

template <class Out>
bool decode_impl(std::string_view text, Out& out) {
  const std::size_t rem = text.size() % 4;
  if (rem == 1) return false;
  out.resize(text.size() / 4 * 3 + (rem ? rem - 1 : 0));
  std::size_t o = 0;
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (; i + 4 <= text.size(); i += 4) {
    const int a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]],
              d = kDecode[p[i + 3]];
    if ((a | b | c | d) < 0) return false;
    const std::uint32_t v = (std::uint32_t(a) << 18) | (std::uint32_t(b) << 12) |
                            (std::uint32_t(c) << 6) | std::uint32_t(d);
    out[o++] = static_cast<typename Out::value_type>(v >> 16);
    out[o++] = static_cast<typename Out::value_type>(v >> 8);
    out[o++] = static_cast<typename Out::value_type>(v);
  }
  if (rem == 2) {
    const int a = kDecode[p[i]], b = kDecode[p[i + 1]];
    if ((a | b) < 0 || (b & 0x0f) != 0) return false;
    out[o++] = static_cast<typename Out::value_type>((a << 2) | (b >> 4));
  } else if (rem == 3) {
    const int a = kDecode[p[i]], b = kDecode[p[i + 1]], c = kDecode[p[i + 2]];
    if ((a | b | c) < 0 || (c & 0x03) != 0) return false;
    out[o++] = static_cast<typename Out::value_type>((a << 2) | (b >> 4));
    out[o++] = static_cast<typename Out::value_type>(((b & 0x0f) << 4) | (c >> 2));
  }
  return true;
}

}  // namespace

std::string base64url_encode(std::span<const std::uint8_t> data) {
  std::string out;
  out.resize((data.size() * 4 + 2) / 3);
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t(data[i]) << 16) | (std::uint32_t(data[i + 1]) << 8) | data[i + 2];
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    const std::uint32_t v = std::uint32_t(data[i]) << 16;
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
  } else if (data.size() - i == 2) {
    const std::uint32_t v = (std::uint32_t(data[i]) << 16) | (std::uint32_t(data[i + 1]) << 8);
    out[o++] = kAlphabet[(v >> 18) & 63];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::string base64url_encode(std::string_view data) {
  return base64url_encode(as_bytes(data));
}

std::optional<Bytes> base64url_decode(std::string_view text) {
  Bytes out;
  if (!decode_impl(text, out)) return std::nullopt;
  return out;
}

bool base64url_decode_into(std::string_view text, std::string& out) {
  out.clear();
  return decode_impl(text, out);
}

// Standard base64 as base64url with two letters swapped and the padding
// added: one codec, one set of strictness rules.
std::string base64_encode(std::span<const std::uint8_t> data) {
  std::string out = base64url_encode(data);
  for (char& c : out) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  out.append((4 - out.size() % 4) % 4, '=');
  return out;
}

std::optional<Bytes> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  std::string url(text.substr(0, text.size() - pad));
  for (char& c : url) {
    if (c == '-' || c == '_' || c == '=') return std::nullopt;
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  // The padding must be exactly what the length needs (none for a multiple
  // of 3 bytes): base64url's decoder then checks the rest.
  if (url.size() % 4 == 1 || (url.size() % 4 == 0 ? 0 : 4 - url.size() % 4) != pad)
    return std::nullopt;
  return base64url_decode(url);
}

std::string hex_encode(std::span<const std::uint8_t> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(data.size() * 2, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

bool constant_time_equal(std::span<const std::uint8_t> a,
                         std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  return constant_time_equal(as_bytes(a), as_bytes(b));
}

}  // namespace tessera
