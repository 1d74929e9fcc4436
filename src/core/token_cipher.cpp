#include "tessera/token_cipher.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>

#include "openssl.hpp"
#include "tessera/encoding.hpp"

namespace tessera {
namespace {
constexpr std::size_t kNonce = 12;
constexpr std::size_t kTag = 16;
}  // namespace

struct TokenCipher::Impl {
  struct Key {
    std::uint32_t version;
    SecretString key;
  };
  std::vector<Key> keys;  // newest first
  Random* random = nullptr;

  const Key* find(std::uint32_t version) const {
    for (const auto& k : keys) {
      if (k.version == version) return &k;
    }
    return nullptr;
  }
};

TokenCipher::TokenCipher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TokenCipher::TokenCipher(TokenCipher&&) noexcept = default;
TokenCipher& TokenCipher::operator=(TokenCipher&&) noexcept = default;
TokenCipher::~TokenCipher() = default;

Result<TokenCipher> TokenCipher::create(std::vector<LookupKeyMaterial> keys, Random& random) {
  if (keys.empty()) return fail(ErrorCode::config_invalid, "token cipher needs at least one key");
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.version > b.version; });
  auto impl = std::make_unique<Impl>();
  impl->random = &random;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0 && keys[i].version == keys[i - 1].version) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("cipher key version {} appears twice", keys[i].version));
    }
    if (keys[i].key.reveal().size() != 32) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("cipher key version {} is not 32 bytes", keys[i].version));
    }
    impl->keys.push_back({keys[i].version, std::move(keys[i].key)});
  }
  return TokenCipher(std::move(impl));
}

Result<SealedToken> TokenCipher::seal(const SecretString& plaintext, std::string_view aad) const {
  const auto& key = impl_->keys.front();
  const std::string_view pt = plaintext.reveal();
  std::string buf(kNonce + pt.size() + kTag, '\0');
  auto* out = reinterpret_cast<unsigned char*>(buf.data());
  impl_->random->fill(std::span(out, kNonce));

  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx &&
      EVP_EncryptInit_ex2(ctx.get(), ossl::algorithms().aes256gcm,
                          reinterpret_cast<const unsigned char*>(key.key.reveal().data()), out,
                          nullptr) == 1 &&
      (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                                        reinterpret_cast<const unsigned char*>(aad.data()),
                                        static_cast<int>(aad.size())) == 1) &&
      EVP_EncryptUpdate(ctx.get(), out + kNonce, &len,
                        reinterpret_cast<const unsigned char*>(pt.data()),
                        static_cast<int>(pt.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), out + kNonce + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, out + kNonce + pt.size()) == 1;
  if (!ok) {
    OPENSSL_cleanse(buf.data(), buf.size());
    return fail(ErrorCode::internal, "AES-GCM seal failed: " + ossl::drain_errors());
  }
  SealedToken sealed{key.version, base64url_encode(as_bytes(buf))};
  return sealed;
}

Result<SecretString> TokenCipher::open(const SealedToken& sealed, std::string_view aad) const {
  const auto* key = impl_->find(sealed.key_version);
  if (key == nullptr)
    return fail(ErrorCode::key_not_found,
                fmt::format("no cipher key version {}", sealed.key_version));
  std::string raw;
  if (!base64url_decode_into(sealed.text, raw) || raw.size() < kNonce + kTag) {
    return fail(ErrorCode::decryption_failed, "sealed token is malformed");
  }
  const auto* in = reinterpret_cast<const unsigned char*>(raw.data());
  const std::size_t ct_len = raw.size() - kNonce - kTag;
  std::string pt(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(pt.data());
  ossl::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex2(ctx.get(), ossl::algorithms().aes256gcm,
                          reinterpret_cast<const unsigned char*>(key->key.reveal().data()), in,
                          nullptr) == 1 &&
      (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                                        reinterpret_cast<const unsigned char*>(aad.data()),
                                        static_cast<int>(aad.size())) == 1) &&
      EVP_DecryptUpdate(ctx.get(), out, &len, in + kNonce, static_cast<int>(ct_len)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                          const_cast<unsigned char*>(in + kNonce + ct_len)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  OPENSSL_cleanse(raw.data(), raw.size());
  if (!ok) {
    OPENSSL_cleanse(pt.data(), pt.size());
    (void)ossl::drain_errors();
    return fail(ErrorCode::decryption_failed, "sealed token does not authenticate");
  }
  return SecretString(std::move(pt));
}

}  // namespace tessera
