// JWK and JWK Set parsing: never a crash; whatever parses re-serialises to
// something that parses to the same keys, and the public form of a key
// never carries a private member.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tessera/key_set.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tessera;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto key = Key::from_jwk(text)) {
    auto again = Key::from_jwk(key->private_jwk());
    if (!again || again->kid() != key->kid() || again->algorithm() != key->algorithm())
      std::abort();
    if (auto pub = key->public_jwk()) {
      if (pub->find("\"d\"") != std::string::npos || pub->find("\"k\"") != std::string::npos)
        std::abort();
    }
  }
  if (auto set = KeySet::from_jwks(text)) {
    const std::string pub = set->public_jwks();
    if (pub.find("\"d\"") != std::string::npos || pub.find("\"k\"") != std::string::npos)
      std::abort();
    auto again = KeySet::from_jwks(set->private_jwks());
    if (!again || again->entries().size() != set->entries().size()) std::abort();
  }
  return 0;
}
