#include "tessera/ulid.hpp"

namespace tessera {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 32; ++i) {
    const char c = kCrockford[i];
    t[static_cast<unsigned char>(c)] = static_cast<std::int8_t>(i);
    if (c >= 'A' && c <= 'Z')
      t[static_cast<unsigned char>(c - 'A' + 'a')] = static_cast<std::int8_t>(i);
  }
  return t;
}
constexpr auto kDecode = make_table();

}  // namespace

std::optional<Ulid> Ulid::parse(std::string_view text) noexcept {
  if (text.size() != kTextSize) return std::nullopt;
  // 26 chars × 5 bits = 130 bits; the first char carries only 3 (≤ '7').
  // Bit b of the 130-bit text (b = 0 is the most significant) is bit b - 2
  // of the 128-bit value.
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < kTextSize; ++i) {
    const int v = kDecode[static_cast<unsigned char>(text[i])];
    if (v < 0) return std::nullopt;
    if (i == 0 && v > 7) return std::nullopt;
    for (int k = 0; k < 5; ++k) {
      const std::size_t bit = i * 5 + static_cast<std::size_t>(k);
      if (bit < 2 || ((v >> (4 - k)) & 1) == 0) continue;
      const std::size_t pos = bit - 2;
      out[pos / 8] = static_cast<std::uint8_t>(out[pos / 8] | (0x80u >> (pos % 8)));
    }
  }
  return Ulid(out);
}

std::string Ulid::to_string() const {
  std::string out(kTextSize, '0');
  for (std::size_t i = 0; i < kTextSize; ++i) {
    unsigned v = 0;
    for (int k = 0; k < 5; ++k) {
      const std::size_t bit = i * 5 + static_cast<std::size_t>(k);
      v <<= 1;
      if (bit >= 2) {
        const std::size_t pos = bit - 2;
        v |= (bytes_[pos / 8] >> (7 - pos % 8)) & 1u;
      }
    }
    out[i] = kCrockford[v];
  }
  return out;
}

UnixMillis Ulid::timestamp() const noexcept {
  std::int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes_[static_cast<std::size_t>(i)];
  return UnixMillis{std::chrono::milliseconds{ms}};
}

Ulid UlidGenerator::next() {
  const auto ms =
      static_cast<std::uint64_t>(clock_.now_ms().time_since_epoch().count()) & 0xffffffffffffULL;
  std::array<std::uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i)
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  random_.fill(std::span(b).subspan(6));

  std::lock_guard lock(mu_);
  if (Ulid(b) <= last_) {
    // Same (or earlier: the clock stepped back) millisecond: continue from the
    // last id, incrementing its random part, so ids stay strictly ordered.
    b = last_.bytes();
    for (int i = 15; i >= 6; --i) {
      if (++b[static_cast<std::size_t>(i)] != 0) break;
    }
  }
  last_ = Ulid(b);
  return last_;
}

}  // namespace tessera
