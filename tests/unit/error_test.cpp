#include "tessera/error.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "result_matchers.hpp"

namespace tessera {
namespace {

using tessera::testing::FailsWith;

TEST(ErrorCode, EveryCodeHasAUniqueSnakeCaseNameThatRoundTrips) {
  std::set<std::string_view> names;
  for (ErrorCode code : kAllErrorCodes) {
    const std::string_view name = to_string(code);
    ASSERT_FALSE(name.empty());
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    EXPECT_EQ(error_code_from_string(name), code);
  }
  EXPECT_EQ(names.size(), std::size(kAllErrorCodes));
}

TEST(ErrorCode, DesignDocumentCodesKeepTheirNames) {
  // docs/design.md §6.2 names these; clients match on them, so they never change.
  for (std::string_view name : {"invalid_request",       "invalid_token",
                                "token_expired",         "token_not_yet_valid",
                                "audience_mismatch",     "issuer_mismatch",
                                "algorithm_not_allowed", "key_not_found",
                                "signature_invalid",     "session_not_found",
                                "session_expired",       "session_idle_timeout",
                                "session_revoked",       "refresh_token_reused",
                                "epoch_stale",           "fingerprint_mismatch",
                                "liveness_unavailable",  "epoch_unavailable",
                                "store_unavailable",     "unauthorized",
                                "payload_too_large",     "internal"}) {
    EXPECT_TRUE(error_code_from_string(name).has_value()) << name;
  }
}

TEST(ErrorCode, UnknownNameIsRejected) {
  EXPECT_FALSE(error_code_from_string("Invalid_Token").has_value());
  EXPECT_FALSE(error_code_from_string("").has_value());
}

TEST(ErrorCode, OnlyDependencyFailuresAreTransient) {
  int transient = 0;
  for (ErrorCode code : kAllErrorCodes) transient += is_transient(code) ? 1 : 0;
  EXPECT_EQ(transient, 6);
  EXPECT_TRUE(is_transient(ErrorCode::store_unavailable));
  EXPECT_TRUE(is_transient(ErrorCode::overloaded));
  EXPECT_EQ(http_status(ErrorCode::overloaded), 503u);
  EXPECT_TRUE(is_transient(ErrorCode::upstream_unavailable));
  EXPECT_EQ(http_status(ErrorCode::upstream_unavailable), 503u);
  EXPECT_TRUE(is_transient(ErrorCode::jwks_unavailable));
  EXPECT_EQ(http_status(ErrorCode::jwks_unavailable), 503u);
  EXPECT_FALSE(is_transient(ErrorCode::signature_invalid));
}

TEST(ErrorCode, DpopCodesAreUnauthorizedAndFinal) {
  // Appended before internal (RFC 9449; docs/dpop.md): 401, never transient.
  for (std::string_view name : {"dpop_proof_invalid", "dpop_key_mismatch", "use_dpop_nonce"}) {
    const auto code = error_code_from_string(name);
    ASSERT_TRUE(code.has_value()) << name;
    EXPECT_EQ(http_status(*code), 401u) << name;
    EXPECT_FALSE(is_transient(*code)) << name;
  }
  EXPECT_EQ(std::size(kAllErrorCodes), 39u);
  EXPECT_EQ(kAllErrorCodes[std::size(kAllErrorCodes) - 1], ErrorCode::internal);
}

TEST(Error, PrintsCodeAndDetail) {
  std::ostringstream os;
  os << Error{ErrorCode::token_expired, "token has expired"};
  EXPECT_EQ(os.str(), "token_expired: token has expired");
  Result<int> r = fail(ErrorCode::internal);
  ASSERT_THAT(r, FailsWith(ErrorCode::internal));
}

}  // namespace
}  // namespace tessera
