#include "tessera/secret.hpp"

#include <openssl/crypto.h>

#include <array>

#include "tessera/encoding.hpp"

namespace tessera {

SecretString& SecretString::operator=(const SecretString& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.wipe();
  }
  return *this;
}

SecretString::~SecretString() {
  wipe();
}

void SecretString::wipe() noexcept {
  if (!value_.empty()) OPENSSL_cleanse(value_.data(), value_.size());
  value_.clear();
}

bool operator==(const SecretString& a, const SecretString& b) noexcept {
  return constant_time_equal(a.value_, b.value_);
}

std::string_view token_prefix(TokenKind kind) noexcept {
  switch (kind) {
    case TokenKind::session:
      return "tss_";
    case TokenKind::refresh:
      return "tsr_";
  }
  return "";
}

std::string_view token_domain(TokenKind kind) noexcept {
  switch (kind) {
    case TokenKind::session:
      return "session";
    case TokenKind::refresh:
      return "refresh";
  }
  return "";
}

SecretString generate_token(TokenKind kind, Random& random) {
  std::array<std::uint8_t, kTokenSecretBytes> raw{};
  random.fill(raw);
  std::string text(token_prefix(kind));
  text += base64url_encode(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return SecretString(std::move(text));
}

Result<SecretString> parse_token(TokenKind kind, std::string_view text) {
  const std::string_view prefix = token_prefix(kind);
  if (text.size() != kTokenTextSize)
    return fail(ErrorCode::invalid_token, "token has the wrong length");
  if (!text.starts_with(prefix))
    return fail(ErrorCode::invalid_token, "token has the wrong prefix");
  std::string scratch;
  const bool ok = base64url_decode_into(text.substr(prefix.size()), scratch);
  if (!scratch.empty()) OPENSSL_cleanse(scratch.data(), scratch.size());
  if (!ok) return fail(ErrorCode::invalid_token, "token is not canonical base64url");
  return SecretString(std::string(text));
}

Result<TokenKind> token_kind_of(std::string_view text) {
  for (TokenKind kind : {TokenKind::session, TokenKind::refresh}) {
    if (text.starts_with(token_prefix(kind))) {
      auto parsed = parse_token(kind, text);
      if (!parsed) return std::unexpected(parsed.error());
      return kind;
    }
  }
  return fail(ErrorCode::invalid_token, "token has no known prefix");
}

}  // namespace tessera
