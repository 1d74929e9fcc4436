#include "tessera/encoding.hpp"

#include <gtest/gtest.h>

#include "tessera/random.hpp"

namespace tessera {
namespace {

TEST(Base64Url, EncodesRfc4648Vectors) {
  // RFC 4648 §10, without padding, in the url-safe alphabet.
  EXPECT_EQ(base64url_encode(std::string_view("")), "");
  EXPECT_EQ(base64url_encode(std::string_view("f")), "Zg");
  EXPECT_EQ(base64url_encode(std::string_view("fo")), "Zm8");
  EXPECT_EQ(base64url_encode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(base64url_encode(std::string_view("foob")), "Zm9vYg");
  EXPECT_EQ(base64url_encode(std::string_view("fooba")), "Zm9vYmE");
  EXPECT_EQ(base64url_encode(std::string_view("foobar")), "Zm9vYmFy");
  const std::uint8_t urlsafe[] = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url_encode(urlsafe), "-_-_");
}

TEST(Base64Url, RoundTripsRandomBytesOfEveryLength) {
  DeterministicRandom random(7);
  for (std::size_t n = 0; n < 100; ++n) {
    Bytes data(n);
    random.fill(data);
    const auto decoded = base64url_decode(base64url_encode(data));
    ASSERT_TRUE(decoded.has_value()) << n;
    EXPECT_EQ(*decoded, data);
  }
}

TEST(Base64Url, RejectsPaddingWhitespaceStandardAlphabetAndBadLengths) {
  for (std::string_view bad :
       std::initializer_list<std::string_view>{"Zg==", "Zm9v YmFy", "Zm9v\n", "+/+/", "Z", "Zm9vY",
                                               "Zm9v!", std::string_view("Zm\0v", 4)}) {
    EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
  }
}

TEST(Base64Url, RejectsNonCanonicalTrailingBits) {
  EXPECT_TRUE(base64url_decode("Zg").has_value());
  EXPECT_FALSE(base64url_decode("Zh").has_value());  // same byte, low bits set
  EXPECT_TRUE(base64url_decode("Zm8").has_value());
  EXPECT_FALSE(base64url_decode("Zm9").has_value());
}

TEST(Hex, EncodesLowercase) {
  const std::uint8_t b[] = {0x00, 0xab, 0xff};
  EXPECT_EQ(hex_encode(b), "00abff");
}

TEST(ConstantTimeEqual, ComparesContentsAndLengths) {
  EXPECT_TRUE(constant_time_equal(std::string_view("abc"), std::string_view("abc")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("abd")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("abcd")));
  EXPECT_TRUE(constant_time_equal(std::string_view(""), std::string_view("")));
}

}  // namespace
}  // namespace tessera
