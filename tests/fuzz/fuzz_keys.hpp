// Fixed keys for the fuzz targets, so seeds signed with them reach past the
// signature check. Public test vectors only: RFC 8037 A and RFC 7515 A.1/A.2/A.3.
#pragma once

#include <cstdlib>

#include "tessera/key_set.hpp"

namespace tessera::fuzz {

inline const KeySet& fuzz_key_set() {
  static const KeySet set = [] {
    KeySet s;
    auto add = [&s](const char* jwk, KeyState state) {
      auto key = Key::from_jwk(jwk);
      if (!key || !s.add(std::move(*key), state)) std::abort();
    };
    add(R"({"kty":"OKP","crv":"Ed25519","kid":"ed","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
        KeyState::active);
    add(R"({"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})",
        KeyState::next);
    add(R"({"kty":"oct","kid":"hs",
            "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})",
        KeyState::next);
    add(R"({"kty":"RSA","kid":"rs","e":"AQAB",
            "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"})",
        KeyState::next);
    return s;
  }();
  return set;
}

}  // namespace tessera::fuzz
