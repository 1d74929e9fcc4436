// Signing keys as JWKs (RFC 7517, RFC 8037), each pinned to one algorithm.
//
// Supported: OKP/Ed25519 → EdDSA, EC/P-256 → ES256, oct (≥ 32 bytes) →
// HS256, RSA (kty "RSA", members n and e; a modulus of 2048 to 8192 bits) →
// RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3). A private RSA JWK
// carries d, p, q, dp, dq and qi (two primes only: "oth" is refused). A key's
// algorithm is decided by its type when it is made or parsed and never by a
// token: a JWK whose "alg" disagrees with its type is refused.
//
// Client keys (DPoP, RFC 9449) are keys a client brings, never keys of the
// authority's set: Key::from_public_jwk parses them (public members only, no
// kid needed), and Key::thumbprint names them (RFC 7638).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "tessera/error.hpp"
#include "tessera/random.hpp"

namespace tessera {

// The JWS algorithms tessera accepts. Anything else, "none" first of all, is
// not an Algorithm and cannot be asked for.
enum class Algorithm : std::uint8_t { EdDSA, ES256, HS256, RS256 };

namespace detail {
struct KeyAccess;
}

inline constexpr Algorithm kAllAlgorithms[] = {Algorithm::EdDSA, Algorithm::ES256, Algorithm::HS256,
                                               Algorithm::RS256};

// "EdDSA", "ES256", "HS256", "RS256".
[[nodiscard]] std::string_view to_string(Algorithm alg) noexcept;
// Exact, case-sensitive match against to_string of every Algorithm (one
// table: the parse and the dispatch cannot disagree). nullopt otherwise.
[[nodiscard]] std::optional<Algorithm> algorithm_from_string(std::string_view name) noexcept;

// An immutable key: cheap to copy (shared), thread-safe.
class Key {
 public:
  // A fresh key. Asymmetric keys come from OpenSSL's key generation (RS256:
  // a 2048-bit modulus, e = 65537); an HS256 secret is 32 bytes from `random`.
  [[nodiscard]] static Result<Key> generate(Algorithm alg, std::string kid, Random& random);
  // Parses one JWK object. `kid` is required (keys are found by it); "use",
  // when present, must be "sig". key_invalid for anything off.
  [[nodiscard]] static Result<Key> from_jwk(std::string_view json);
  // Parses a client's PUBLIC JWK: EC P-256 → ES256, OKP Ed25519 → EdDSA,
  // RSA (2048 to 8192 bits) → RS256. No kid is needed (one present is kept,
  // unused). Refused (key_invalid): any private member ("d", "p", "q", "dp",
  // "dq", "qi", "k", "oth"), an oct key, an RSA n or e with a leading zero
  // byte (not the one canonical base64urlUInt, which the thumbprint needs),
  // "use" other than "sig", an "alg" that does not fit, a point off the curve.
  [[nodiscard]] static Result<Key> from_public_jwk(std::string_view json);

  [[nodiscard]] const std::string& kid() const noexcept;
  [[nodiscard]] Algorithm algorithm() const noexcept;
  [[nodiscard]] bool has_private() const noexcept;
  [[nodiscard]] bool is_symmetric() const noexcept { return algorithm() == Algorithm::HS256; }

  // The public JWK (kty, crv, x[, y] or kty, n, e for RSA; kid, alg, use).
  // nullopt for a symmetric key: it has no public half, and is never published.
  [[nodiscard]] std::optional<std::string> public_jwk() const;
  // The full JWK including private members ("d", "k", or RSA's d, p, q, dp,
  // dq, qi). For key files only.
  [[nodiscard]] std::string private_jwk() const;
  // The RFC 7638 JWK SHA-256 thumbprint, base64url: SHA-256 over the
  // required public members only, in lexicographic order, no whitespace
  // ({"crv","kty","x","y"} for EC, {"crv","kty","x"} for OKP, {"e","kty","n"}
  // for RSA). nullopt for a symmetric key.
  [[nodiscard]] std::optional<std::string> thumbprint() const;

  // The JWS signature (raw JOSE form: r||s for ES256; as many bytes as the
  // modulus for RS256) over `input`.
  // key_invalid if this key has no private half.
  [[nodiscard]] Result<std::string> sign(std::string_view input) const;
  // True iff `signature` is a valid JOSE signature of `input` under this key.
  [[nodiscard]] bool verify(std::string_view input, std::span<const std::uint8_t> signature) const;

  struct Impl;

 private:
  explicit Key(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  friend class KeySet;
  friend struct detail::KeyAccess;
};

}  // namespace tessera
