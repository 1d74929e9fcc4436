#include "tessera/secret.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "result_matchers.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;

TEST(SecretString, RedactsItselfWhenPrinted) {
  const SecretString s("tss_super-secret");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "[redacted]");
  EXPECT_EQ(os.str().find("super"), std::string::npos);
  EXPECT_EQ(s.reveal(), "tss_super-secret");
}

TEST(SecretString, ComparesByValue) {
  EXPECT_EQ(SecretString("a"), SecretString("a"));
  EXPECT_FALSE(SecretString("a") == SecretString("b"));
  SecretString moved("x");
  SecretString target = std::move(moved);
  EXPECT_EQ(target.reveal(), "x");
}

TEST(Token, GeneratedTokensHavePrefixLengthAndParse) {
  CsprngRandom& random = CsprngRandom::instance();
  std::set<std::string> seen;
  for (TokenKind kind : {TokenKind::session, TokenKind::refresh}) {
    for (int i = 0; i < 100; ++i) {
      const SecretString t = generate_token(kind, random);
      ASSERT_EQ(t.reveal().size(), kTokenTextSize);
      EXPECT_TRUE(t.reveal().starts_with(token_prefix(kind)));
      EXPECT_TRUE(parse_token(kind, t.reveal()).has_value());
      EXPECT_EQ(token_kind_of(t.reveal()), kind);
      EXPECT_TRUE(seen.insert(std::string(t.reveal())).second);
    }
  }
  EXPECT_EQ(token_prefix(TokenKind::session), "tss_");
  EXPECT_EQ(token_prefix(TokenKind::refresh), "tsr_");
}

TEST(Token, StrictParsingRejectsWrongPrefixLengthAlphabetAndNonCanonical) {
  DeterministicRandom random(9);
  const std::string good(generate_token(TokenKind::session, random).reveal());
  ASSERT_TRUE(parse_token(TokenKind::session, good));

  std::vector<std::string> bad = {
      "",
      "tsr_" + good.substr(4),                     // wrong kind
      "TSS_" + good.substr(4),                     // prefix is case-sensitive
      good.substr(0, good.size() - 1),             // too short
      good + "A",                                  // too long
      good.substr(0, 10) + "+" + good.substr(11),  // standard alphabet
      good.substr(0, 10) + "=" + good.substr(11),
      good.substr(0, 10) + " " + good.substr(11),
  };
  // 43 chars carry 258 bits: the last char's 2 low bits must be zero.
  std::string noncanonical = good;
  noncanonical.back() = noncanonical.back() == 'A' ? 'B' : 'A' + 1;
  bad.push_back(noncanonical);
  for (const auto& b : bad) {
    auto r = parse_token(TokenKind::session, b);
    ASSERT_THAT(r, FailsWith(ErrorCode::invalid_token)) << b;
    EXPECT_EQ(r.error().detail.find(b.empty() ? "\x01" : b.substr(4, 10)), std::string::npos)
        << "detail echoes input";
  }
  EXPECT_THAT(token_kind_of("xyz_abc"), FailsWith(ErrorCode::invalid_token));
}

}  // namespace
}  // namespace tessera
