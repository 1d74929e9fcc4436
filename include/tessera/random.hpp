// Randomness as an injected port: the OpenSSL CSPRNG in production, a seeded
// deterministic generator in tests (never in production: its output is
// predictable by design).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>

namespace tessera {

// Thread-safe: fill() may be called from any thread at once.
class Random {
 public:
  virtual ~Random() = default;
  // Fills `out` entirely. A CSPRNG that cannot produce bytes aborts the
  // process: handing out a predictable secret is worse than stopping.
  virtual void fill(std::span<std::uint8_t> out) noexcept = 0;
};

// OpenSSL's RAND_bytes (per-thread DRBGs seeded from the OS).
class CsprngRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) noexcept override;
  static CsprngRandom& instance() noexcept;
};

// Deterministic, for tests: the same seed gives the same bytes.
class DeterministicRandom final : public Random {
 public:
  explicit DeterministicRandom(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<std::uint8_t> out) noexcept override;

 private:
  std::mutex mu_;
  std::uint64_t state_;
};

}  // namespace tessera
