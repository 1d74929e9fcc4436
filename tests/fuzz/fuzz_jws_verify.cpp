// JWS/JWT parsing and verification on arbitrary input: never a crash, and
// an accepted token must be one of ours (it verified under a fixed key).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_keys.hpp"
#include "tessera/jwt.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tessera;
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  VerifyOptions strict;
  strict.issuer = "https://auth.example";
  strict.audiences = {"api"};
  VerifyOptions lax;
  lax.require_at_jwt_typ = false;
  lax.leeway = std::chrono::seconds{0};
  for (const VerifyOptions* opts : {&strict, &lax}) {
    auto v = verify_jwt(token, fuzz::fuzz_key_set(), *opts,
                        UnixSeconds{std::chrono::seconds{1'300'000'000}});
    if (v && fuzz::fuzz_key_set().find(v->kid) == nullptr) std::abort();
    if (!v && v.error().code == ErrorCode::internal) std::abort();  // bad input is never "our bug"
  }
  return 0;
}
