// SHA-256 over bytes: fingerprints, API key hashes, cache keys. The one
// helper for it, on the algorithm the core fetched once per process.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace tessera {

using Sha256Digest = std::array<std::uint8_t, 32>;

// Thread-safe. OpenSSL's return values are checked; SHA-256 on a fetched
// algorithm can fail only on a broken installation or memory exhaustion,
// and then the process aborts (as the pooled HMAC does) rather than hand out
// a digest of zeros.
[[nodiscard]] Sha256Digest sha256(std::string_view data) noexcept;

// HMAC-SHA256 of `data` under `key`, for signatures made now and then
// (webhooks): a keyed context per call. Thread-safe; aborts as sha256 does.
[[nodiscard]] Sha256Digest hmac_sha256(std::span<const std::uint8_t> key,
                                       std::string_view data) noexcept;

}  // namespace tessera
