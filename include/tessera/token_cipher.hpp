// TokenCipher: AES-256-GCM for secrets that must be stored recoverably (a
// refresh successor held for the grace window, an upstream provider's
// refresh token). Output is base64url(nonce12 || ciphertext || tag16) with a
// fresh random nonce each time; the key version is returned beside it and
// must be stored with it. Optional associated data binds a ciphertext to its
// context (e.g. a session id) so it cannot be moved to another row.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/error.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/random.hpp"
#include "tessera/secret.hpp"

namespace tessera {

struct SealedToken {
  std::uint32_t key_version = 0;
  std::string text;  // base64url(nonce || ciphertext || tag)
};

// Immutable once built; thread-safe.
class TokenCipher {
 public:
  // Keys are exactly 32 bytes, versions unique; the highest seals.
  // (LookupKeyMaterial is reused as "a versioned 32-byte key".)
  [[nodiscard]] static Result<TokenCipher> create(std::vector<LookupKeyMaterial> keys,
                                                  Random& random);

  [[nodiscard]] Result<SealedToken> seal(const SecretString& plaintext,
                                         std::string_view aad = {}) const;
  // decryption_failed for any tampering, a wrong key, wrong aad or bad
  // encoding; key_not_found for a version this cipher does not hold.
  [[nodiscard]] Result<SecretString> open(const SealedToken& sealed,
                                          std::string_view aad = {}) const;

  TokenCipher(TokenCipher&&) noexcept;
  TokenCipher& operator=(TokenCipher&&) noexcept;
  ~TokenCipher();

 private:
  struct Impl;
  explicit TokenCipher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera
