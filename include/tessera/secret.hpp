// Secrets handed to clients, and the type that keeps them out of logs.
//
// A session token is "tss_" and a refresh token "tsr_", each followed by the
// base64url (no padding) of 32 bytes from the CSPRNG: 47 characters. The
// prefixes let secret scanners recognise a leaked token.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "tessera/error.hpp"
#include "tessera/random.hpp"

namespace tessera {

// A string that is a secret. It cannot be printed by accident: operator<<
// writes "[redacted]", there is no implicit conversion to a string, and fmt
// refuses to format it. The bytes are wiped when it is destroyed.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) noexcept : value_(std::move(value)) {}
  SecretString(const SecretString&) = default;
  SecretString(SecretString&&) noexcept = default;
  SecretString& operator=(const SecretString& other);
  SecretString& operator=(SecretString&& other) noexcept;
  ~SecretString();

  // The secret itself. Call only where it is sent to its owner or hashed.
  [[nodiscard]] std::string_view reveal() const noexcept { return value_; }
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }

  // Constant time in the contents.
  friend bool operator==(const SecretString& a, const SecretString& b) noexcept;
  friend std::ostream& operator<<(std::ostream& os, const SecretString&) {
    return os << "[redacted]";
  }

 private:
  void wipe() noexcept;
  std::string value_;
};

enum class TokenKind : std::uint8_t { session, refresh };

// "tss_" / "tsr_".
[[nodiscard]] std::string_view token_prefix(TokenKind kind) noexcept;
// The lookup-key domain: "session" / "refresh".
[[nodiscard]] std::string_view token_domain(TokenKind kind) noexcept;

inline constexpr std::size_t kTokenSecretBytes = 32;
inline constexpr std::size_t kTokenTextSize = 4 + 43;

// A fresh token of `kind`: prefix + base64url(32 random bytes).
[[nodiscard]] SecretString generate_token(TokenKind kind, Random& random);

// Strict parse of a presented token: the exact prefix of `kind`, exactly 43
// canonical base64url characters after it. Anything else is invalid_token
// (the detail never echoes the input).
[[nodiscard]] Result<SecretString> parse_token(TokenKind kind, std::string_view text);
// Which kind a token claims to be by its prefix; invalid_token if neither,
// or if the rest does not parse.
[[nodiscard]] Result<TokenKind> token_kind_of(std::string_view text);

}  // namespace tessera
