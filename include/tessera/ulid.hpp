// ULIDs (https://github.com/ulid/spec): 26 Crockford base32 characters, a
// 48-bit millisecond timestamp then 80 random bits. Time-sortable ids for
// sessions and families; an id is never a credential.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"
#include "tessera/random.hpp"

namespace tessera {

class Ulid {
 public:
  static constexpr std::size_t kTextSize = 26;

  Ulid() = default;
  explicit Ulid(std::array<std::uint8_t, 16> bytes) : bytes_(bytes) {}

  // Case-insensitive Crockford base32 (I, L → 1 and O → 0 are NOT folded:
  // ids are machine-made, so anything but the canonical alphabet is refused).
  // nullopt for a wrong length, a bad character or an overflowing timestamp.
  [[nodiscard]] static std::optional<Ulid> parse(std::string_view text) noexcept;

  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] UnixMillis timestamp() const noexcept;
  [[nodiscard]] const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }

  friend auto operator<=>(const Ulid&, const Ulid&) = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
};

// Makes ULIDs that are strictly increasing within this generator, even
// within one millisecond (the random part is incremented). Thread-safe.
class UlidGenerator {
 public:
  UlidGenerator(const Clock& clock, Random& random) : clock_(clock), random_(random) {}
  [[nodiscard]] Ulid next();

 private:
  const Clock& clock_;
  Random& random_;
  std::mutex mu_;
  Ulid last_;
};

}  // namespace tessera
