#include "tessera/random.hpp"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

namespace tessera {

void CsprngRandom::fill(std::span<std::uint8_t> out) noexcept {
  while (!out.empty()) {
    const std::size_t n = std::min<std::size_t>(out.size(), std::numeric_limits<int>::max());
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      std::fputs("tessera: the CSPRNG failed; refusing to continue\n", stderr);
      std::abort();
    }
    out = out.subspan(n);
  }
}

CsprngRandom& CsprngRandom::instance() noexcept {
  static CsprngRandom random;
  return random;
}

void DeterministicRandom::fill(std::span<std::uint8_t> out) noexcept {
  // splitmix64: tiny, well distributed, and plenty for reproducible tests.
  std::lock_guard lock(mu_);
  std::size_t i = 0;
  while (i < out.size()) {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < out.size(); ++b, ++i)
      out[i] = static_cast<std::uint8_t>(z >> (8 * b));
  }
}

}  // namespace tessera
