// Token strings, ids and sealed blobs: strict parsers on arbitrary input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tessera/encoding.hpp"
#include "tessera/secret.hpp"
#include "tessera/token_cipher.hpp"
#include "tessera/ulid.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tessera;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (TokenKind kind : {TokenKind::session, TokenKind::refresh}) {
    if (auto t = parse_token(kind, text)) {
      if (t->reveal() != text || text.size() != kTokenTextSize) std::abort();
    }
  }
  (void)token_kind_of(text);
  if (auto bytes = base64url_decode(text)) {
    if (base64url_encode(*bytes) != text) std::abort();  // strict: one encoding per byte string
  }
  if (auto id = Ulid::parse(text)) {
    if (!Ulid::parse(id->to_string()) || *Ulid::parse(id->to_string()) != *id) std::abort();
  }
  static DeterministicRandom random(1);
  static const TokenCipher cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'f'))}}, random);
  if (cipher.open({1, std::string(text)})) std::abort();  // forging AES-GCM is not on the menu
  return 0;
}
