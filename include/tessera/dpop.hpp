// DPoP proofs (RFC 9449): the verification core, for token mode and for
// resource services. No I/O: the caller says what request the proof must be
// for (DpopCheck) and what time it is.
//
// A proof is a JWS compact JWT with the header {"typ": "dpop+jwt", "alg",
// "jwk"}: the client's public key (Key::from_public_jwk: EC P-256 → ES256,
// OKP Ed25519 → EdDSA, RSA ≥ 2048 bits → RS256; never a symmetric key, never
// a private member) and the claims jti, htm, htu, iat, and ath (with an
// access token) and nonce (when the server asked for one).
//
// verify runs, in this order, stopping at the first failure:
//    1. size ≤ kMaxDpopProofBytes (8 KiB), before any parsing;
//    2. compact JWS: three base64url parts;
//    3. header JSON (skipped when the key cache holds this exact header,
//       which passed this step before): no "crit"; typ exactly "dpop+jwt";
//       alg ES256, EdDSA (or RFC 9864's Ed25519) or RS256 (none, HS256 and
//       every other name refused); jwk a public key object whose type fits
//       alg;
//    4. the signature verifies under that jwk;
//    5. claims JSON: jti (a string of 1 to 256 bytes), htm and htu (strings)
//       and iat (a number) present; ath and nonce strings when present;
//    6. htm equals DpopCheck::method exactly;
//    7. htu equals DpopCheck::url, both normalised (normalize_htu);
//    8. iat within ±DpopOptions::iat_window of `now`;
//    9. with DpopCheck::access_token: ath present and equal to
//       dpop_ath(access_token);
//   10. with DpopCheck::expected_jkt: the proof key's thumbprint equals it,
//       else dpop_key_mismatch (a valid proof by another key: the caller
//       revokes the family, reason dpop_key_mismatch);
//   11. with DpopCheck::nonce: the proof's nonce equals it (or
//       DpopCheck::previous_nonce), else
//       use_dpop_nonce (missing or stale: the caller answers with a fresh
//       DPoP-Nonce);
//   12. jti not seen before (the replay cache): recorded only here, so only
//       proofs that passed every other check take room in the cache.
// Every failure but 10 and 11 is dpop_proof_invalid (401); a DpopCheck url
// that is not an absolute http(s) URL is the caller's bug: invalid_request.
// Error details never hold the proof, the access token or the nonce.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"

namespace tessera {

inline constexpr std::size_t kMaxDpopProofBytes = 8 * 1024;
inline constexpr std::size_t kMaxDpopJtiBytes = 256;
// The proof algorithms accepted, as the algs of a DPoP challenge and the
// dpop_signing_alg_values_supported of the metadata name them.
// "Ed25519" (RFC 9864's fully-specified name) is accepted as EdDSA.
inline constexpr std::string_view kDpopAlgorithms = "ES256 EdDSA Ed25519 RS256";

struct DpopOptions {
  // A proof is accepted while |now − iat| ≤ iat_window (RFC 9449 §11.1).
  std::chrono::seconds iat_window{60};
  // The replay cache's bound, in entries (about 100 bytes each). When it is
  // full, entries whose proofs could no longer pass the iat check go first;
  // then the entry that would expire soonest. A replay can therefore pass
  // only when more than replay_capacity distinct valid proofs were accepted
  // within the iat window of the replayed one: size it above the peak number
  // of DPoP requests per 2 × iat_window.
  std::size_t replay_capacity = 100'000;
  // Client keys remembered by the exact header of their proofs (a client
  // sends the same header with every proof): a hit skips the header's
  // parse, the key's build from its jwk and its thumbprint, never the
  // signature. Bounded, oldest out first; 0 turns it off.
  std::size_t key_cache_entries = 4096;
};

// What the proof must be for. The views must outlive the verify call.
struct DpopCheck {
  std::string_view method;  // the request's method; htm is compared exactly
  std::string_view url;     // the request's absolute URL (query and fragment are ignored)
  // The access token presented with the proof (at a resource, or a bound
  // refresh): ath is then required and must be its hash.
  std::optional<std::string_view> access_token;
  // The nonce the server expects: the proof's nonce must equal it (or
  // previous_nonce, the one it handed out before, while that still counts).
  std::optional<std::string_view> nonce;
  std::optional<std::string_view> previous_nonce;
  // The thumbprint the token or refresh family is bound to (cnf.jkt).
  std::optional<std::string_view> expected_jkt;
};

// What a request brought and what it was for, as a handler sees it: the
// input of a check that a bound token's holder proved its key (the
// renewal of a bound session, a resource's verify).
struct DpopPresented {
  std::optional<std::string_view> proof;  // the DPoP header's value; nullopt: none was sent
  std::string_view method;                // the request's method
  std::string_view url;                   // the request's absolute public URL (the proof's htu)
  std::optional<std::string_view> nonce;  // the server nonce the proof must carry, if any
  std::optional<std::string_view> previous_nonce;  // ... or this one (DpopCheck::previous_nonce)
};

struct DpopProof {
  std::string jkt;  // the RFC 7638 SHA-256 thumbprint of the proof's key, base64url
  std::string jti;
  UnixSeconds iat{};
  std::string htm;
  std::string htu;  // as the proof states it (not normalised)
  bool has_nonce = false;
};

// Thread-safe: one verifier (one replay cache) may be shared by every
// thread of a process. Replays are detected within one verifier: a fleet of
// processes shares no cache (a nonce, checked by step 11, is the defence
// across processes).
class DpopVerifier {
 public:
  explicit DpopVerifier(DpopOptions options = {});
  ~DpopVerifier();
  DpopVerifier(const DpopVerifier&) = delete;
  DpopVerifier& operator=(const DpopVerifier&) = delete;

  [[nodiscard]] Result<DpopProof> verify(std::string_view proof, const DpopCheck& check,
                                         UnixSeconds now);

  // How many jti the replay cache holds now (for tests and metrics).
  [[nodiscard]] std::size_t replay_cache_size() const;
  // How many client keys the key cache holds now.
  [[nodiscard]] std::size_t key_cache_size() const;

 private:
  struct State;
  DpopOptions options_;
  std::unique_ptr<State> state_;
};

// The htu comparison form (RFC 9449 §4.3 point 9, RFC 3986 §6.2.2–6.2.3):
// scheme and host in lower case, the scheme's default port dropped, no
// query and no fragment, an empty path as "/". Only http and https URLs
// with a host and no userinfo; nullopt for anything else. The path is kept
// as it is (percent-encodings are not normalised).
[[nodiscard]] std::optional<std::string> normalize_htu(std::string_view url);

// base64url(SHA-256(access_token)): the ath claim (RFC 9449 §4.2).
[[nodiscard]] std::string dpop_ath(std::string_view access_token);

}  // namespace tessera
