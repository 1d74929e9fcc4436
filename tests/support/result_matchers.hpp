// GoogleTest matchers for Result<T> and Status, in the spirit of abseil's
// status matchers:
//
//   EXPECT_THAT(service.renew(old), FailsWith(ErrorCode::refresh_token_reused));
//   ASSERT_THAT(service.issue(req), Succeeds());
//
// A result that unexpectedly succeeds is a readable failure ("succeeded"),
// never a call to .error() on a value (undefined behaviour).
#pragma once

#include <gmock/gmock.h>

#include <ostream>
#include <string>

#include "tessera/error.hpp"

namespace tessera {

// How GoogleTest prints a Result or Status (found by argument-dependent
// lookup through Error): its outcome, never a byte dump of the value.
template <class T>
void PrintTo(const std::expected<T, Error>& result, std::ostream* os) {
  *os << (result.has_value() ? "a Result holding a value" : "a Result holding an error");
}

}  // namespace tessera

namespace tessera::testing {

// Matches a failed Result<T>/Status whose error code is `code`.
MATCHER_P(FailsWith, code,
          std::string(negation ? "does not fail with " : "fails with ") +
              std::string(::tessera::to_string(code))) {
  if (arg.has_value()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "failed with " << arg.error();
  return arg.error().code == code;
}

// Matches a successful Result<T>/Status.
MATCHER(Succeeds, negation ? "fails" : "succeeds") {
  if (!arg.has_value()) {
    *result_listener << "failed with " << arg.error();
    return false;
  }
  return true;
}

}  // namespace tessera::testing
