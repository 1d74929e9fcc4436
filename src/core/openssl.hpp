// OpenSSL 3 plumbing shared by the core: algorithms fetched once per process
// (the implicit fetch inside one-shot helpers costs more than the work for
// short inputs), RAII handles, and a keyed HMAC-SHA256 with pooled contexts.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::ossl {

struct Algorithms {
  EVP_MAC* hmac = nullptr;
  EVP_MD* sha256 = nullptr;
  EVP_CIPHER* aes256gcm = nullptr;
};
// Fetched on first use, kept for the life of the process. Aborts if the
// default provider lacks one of them (a broken installation).
const Algorithms& algorithms();

// Drains OpenSSL's thread error queue into one line, for details of internal
// errors. OpenSSL never puts key material into its error strings.
std::string drain_errors();

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* p) const noexcept { EVP_MAC_CTX_free(p); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* p) const noexcept { EVP_CIPHER_CTX_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

using Digest256 = std::array<std::uint8_t, 32>;

// HMAC-SHA256 under one key. Keyed contexts are made once and pooled, so a
// MAC costs a re-init (no key schedule, no fetch) plus the hashing.
// Thread-safe; the key is wiped when the object goes.
class HmacSha256 {
 public:
  explicit HmacSha256(std::span<const std::uint8_t> key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // MAC over the concatenation of `parts`.
  [[nodiscard]] Digest256 mac(std::initializer_list<std::string_view> parts) const;

 private:
  MacCtxPtr acquire() const;
  void release(MacCtxPtr ctx) const;

  MacCtxPtr keyed_;  // template: every pooled context is a dup of it
  mutable std::mutex mu_;
  mutable std::vector<MacCtxPtr> pool_;
};

}  // namespace tessera::ossl
