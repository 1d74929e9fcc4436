#include "tessera/lookup_key.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "openssl.hpp"
#include "tessera/encoding.hpp"

namespace tessera {

std::string LookupKey::text() const {
  return base64url_encode(mac);
}

bool operator==(const LookupKey& a, const LookupKey& b) noexcept {
  return a.version == b.version && constant_time_equal(a.mac, b.mac);
}

struct LookupKeyRing::Impl {
  struct Entry {
    std::uint32_t version;
    std::unique_ptr<ossl::HmacSha256> hmac;
  };
  std::vector<Entry> entries;  // newest (highest version) first
};

LookupKeyRing::LookupKeyRing(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LookupKeyRing::LookupKeyRing(LookupKeyRing&&) noexcept = default;
LookupKeyRing& LookupKeyRing::operator=(LookupKeyRing&&) noexcept = default;
LookupKeyRing::~LookupKeyRing() = default;

Result<LookupKeyRing> LookupKeyRing::create(std::vector<LookupKeyMaterial> keys) {
  if (keys.empty())
    return fail(ErrorCode::config_invalid, "lookup key ring needs at least one key");
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a.version > b.version; });
  auto impl = std::make_unique<Impl>();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0 && keys[i].version == keys[i - 1].version) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("lookup key version {} appears twice", keys[i].version));
    }
    if (keys[i].key.reveal().size() < 32) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("lookup key version {} is shorter than 32 bytes", keys[i].version));
    }
    impl->entries.push_back(
        {keys[i].version, std::make_unique<ossl::HmacSha256>(as_bytes(keys[i].key.reveal()))});
  }
  return LookupKeyRing(std::move(impl));
}

namespace {
constexpr std::string_view kLabel{"tessera/v1/lookup\0", 18};
constexpr std::string_view kSep{"\0", 1};
}  // namespace

LookupKey LookupKeyRing::derive(TokenKind kind, const SecretString& token) const {
  const auto& e = impl_->entries.front();
  return {e.version, e.hmac->mac({kLabel, token_domain(kind), kSep, token.reveal()})};
}

std::vector<LookupKey> LookupKeyRing::candidates(TokenKind kind, const SecretString& token) const {
  std::vector<LookupKey> out;
  out.reserve(impl_->entries.size());
  for (const auto& e : impl_->entries) {
    out.push_back({e.version, e.hmac->mac({kLabel, token_domain(kind), kSep, token.reveal()})});
  }
  return out;
}

std::uint32_t LookupKeyRing::active_version() const noexcept {
  return impl_->entries.front().version;
}

std::vector<std::uint32_t> LookupKeyRing::versions() const {
  std::vector<std::uint32_t> out;
  for (const auto& e : impl_->entries) out.push_back(e.version);
  return out;
}

}  // namespace tessera
