#include "openssl.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>

#include <cstdio>
#include <cstdlib>

#include "tessera/digest.hpp"

namespace tessera::ossl {

const Algorithms& algorithms() {
  static const Algorithms algs = [] {
    Algorithms a;
    a.hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    a.sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    a.aes256gcm = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (a.hmac == nullptr || a.sha256 == nullptr || a.aes256gcm == nullptr) {
      std::fputs("tessera: OpenSSL lacks HMAC, SHA256 or AES-256-GCM\n", stderr);
      std::abort();
    }
    return a;
  }();
  return algs;
}

std::string drain_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "openssl call failed" : out;
}

HmacSha256::HmacSha256(std::span<const std::uint8_t> key)
    : keyed_(EVP_MAC_CTX_new(algorithms().hmac)) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (!keyed_ || EVP_MAC_init(keyed_.get(), key.data(), key.size(), params) != 1) {
    std::fputs("tessera: cannot key HMAC-SHA256\n", stderr);
    std::abort();
  }
}

HmacSha256::~HmacSha256() = default;  // EVP_MAC_CTX_free cleanses the key

MacCtxPtr HmacSha256::acquire() const {
  {
    std::lock_guard lock(mu_);
    if (!pool_.empty()) {
      MacCtxPtr ctx = std::move(pool_.back());
      pool_.pop_back();
      return ctx;
    }
  }
  MacCtxPtr ctx(EVP_MAC_CTX_dup(keyed_.get()));
  if (!ctx) std::abort();
  return ctx;
}

void HmacSha256::release(MacCtxPtr ctx) const {
  std::lock_guard lock(mu_);
  pool_.push_back(std::move(ctx));
}

Digest256 HmacSha256::mac(std::initializer_list<std::string_view> parts) const {
  MacCtxPtr ctx = acquire();
  Digest256 out{};
  std::size_t len = 0;
  // A null key re-initialises with the key already set: no re-keying.
  bool ok = EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) == 1;
  for (std::string_view p : parts) {
    ok = ok &&
         EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(p.data()), p.size()) == 1;
  }
  ok = ok && EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == out.size();
  if (!ok) std::abort();  // cannot fail with a valid keyed context
  release(std::move(ctx));
  return out;
}

}  // namespace tessera::ossl

namespace tessera {

Sha256Digest sha256(std::string_view data) noexcept {
  // One context per thread, reset by each Init: no allocation per digest.
  thread_local ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  Sha256Digest out{};
  unsigned int len = 0;
  const bool ok = ctx && EVP_DigestInit_ex2(ctx.get(), ossl::algorithms().sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size();
  if (!ok) std::abort();
  return out;
}

Sha256Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) noexcept {
  const ossl::HmacSha256 mac(key);
  return mac.mac({data});
}

}  // namespace tessera
