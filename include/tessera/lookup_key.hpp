// Lookup keys: what the store holds instead of a secret (docs/design.md §3.2).
//
//   lookup = HMAC-SHA256(key vN, "tessera/v1/lookup" 0x00 domain 0x00 token)
//
// where domain is "session" or "refresh" and token is the whole presented
// token text (prefix included). The key version is stored beside the MAC.
// A ring holds several versions; new lookups use the newest, and a presented
// token is searched under every held version, newest first, so lookup keys
// rotate without logging anyone out.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tessera/error.hpp"
#include "tessera/secret.hpp"

namespace tessera {

struct LookupKey {
  std::uint32_t version = 0;
  std::array<std::uint8_t, 32> mac{};

  // base64url of the MAC; the form the stores index.
  [[nodiscard]] std::string text() const;
  friend bool operator==(const LookupKey& a, const LookupKey& b) noexcept;
};

// Key material for one version: at least 32 bytes.
struct LookupKeyMaterial {
  std::uint32_t version = 0;
  SecretString key;  // raw bytes held in a SecretString so they never print
};

// Immutable once built; thread-safe.
class LookupKeyRing {
 public:
  // Versions must be unique and non-empty; each key ≥ 32 bytes. The highest
  // version is the active one. config_invalid otherwise.
  [[nodiscard]] static Result<LookupKeyRing> create(std::vector<LookupKeyMaterial> keys);

  // The lookup key of `token` under the active version.
  [[nodiscard]] LookupKey derive(TokenKind kind, const SecretString& token) const;
  // The lookup key under every held version, newest first.
  [[nodiscard]] std::vector<LookupKey> candidates(TokenKind kind, const SecretString& token) const;
  [[nodiscard]] std::uint32_t active_version() const noexcept;
  [[nodiscard]] std::vector<std::uint32_t> versions() const;

  LookupKeyRing(LookupKeyRing&&) noexcept;
  LookupKeyRing& operator=(LookupKeyRing&&) noexcept;
  ~LookupKeyRing();

 private:
  struct Impl;
  explicit LookupKeyRing(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera
