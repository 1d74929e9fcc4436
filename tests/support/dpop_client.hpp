// A DPoP client for the C++ tests: a key made with tessera's generator, its
// public JWK and thumbprint, and RFC 9449 proofs signed with it. The HTTP
// suites use npm's `dpop` instead (an independent implementation).
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"
#include "tessera/dpop.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwk.hpp"
#include "tessera/random.hpp"

namespace tessera::testing {

struct DpopClient {
  Key key;
  std::string jwk;  // the public JWK, as the proof header carries it
  std::string jkt;  // its RFC 7638 thumbprint

  static DpopClient make(Algorithm alg = Algorithm::ES256) {
    Key key = *Key::generate(alg, "client", CsprngRandom::instance());
    std::string jwk = *key.public_jwk();
    std::string jkt = *key.thumbprint();
    return {std::move(key), std::move(jwk), std::move(jkt)};
  }

  // A proof for `method` `url` at `iat`; with an access token, its ath.
  [[nodiscard]] std::string proof(std::string_view method, std::string_view url, UnixSeconds iat,
                                  std::optional<std::string_view> access_token = std::nullopt,
                                  std::optional<std::string_view> nonce = std::nullopt) const {
    static int counter = 0;
    const std::string header =
        fmt::format(R"({{"typ":"dpop+jwt","alg":"{}","jwk":{}}})", to_string(key.algorithm()), jwk);
    std::string claims =
        fmt::format(R"({{"jti":"jti-{}-{}","htm":"{}","htu":"{}","iat":{})", ++counter,
                    iat.time_since_epoch().count(), method, url, iat.time_since_epoch().count());
    if (access_token) claims += fmt::format(R"(,"ath":"{}")", dpop_ath(*access_token));
    if (nonce) claims += fmt::format(R"(,"nonce":"{}")", *nonce);
    claims += '}';
    const std::string input = base64url_encode(header) + "." + base64url_encode(claims);
    return input + "." + base64url_encode(*key.sign(input));
  }
};

}  // namespace tessera::testing
