// JWK and JWK Set parsing: never a crash; whatever parses re-serialises to
// something that parses to the same keys, and the public form of a key
// never carries a private member.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tessera/key_set.hpp"

// A member named `name` in serialised JSON. Boost.JSON writes `"name":` with
// no space, and inside a string value every quote is escaped, so the pattern
// cannot come from a value (a kid "k" once looked like a private member).
bool has_member(std::string_view json, std::string_view name) {
  return json.find("\"" + std::string(name) + "\":") != std::string_view::npos;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tessera;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto key = Key::from_jwk(text)) {
    auto again = Key::from_jwk(key->private_jwk());
    if (!again || again->kid() != key->kid() || again->algorithm() != key->algorithm())
      std::abort();
    if (auto pub = key->public_jwk()) {
      if (has_member(*pub, "d") || has_member(*pub, "k")) std::abort();
    }
  }
  if (auto set = KeySet::from_jwks(text)) {
    const std::string pub = set->public_jwks();
    if (has_member(pub, "d") || has_member(pub, "k")) std::abort();
    auto again = KeySet::from_jwks(set->private_jwks());
    if (!again || again->entries().size() != set->entries().size()) std::abort();
  }
  return 0;
}
