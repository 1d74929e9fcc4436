// The store conformance suite: every SessionStore adapter must pass it,
// through the SessionService and directly. An adapter joins by registering
// a factory with INSTANTIATE_TEST_SUITE_P(Name, StoreConformance, ...).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "tessera/session.hpp"

namespace tessera::testing {

struct StoreFactory {
  std::string name;
  // Makes a fresh, empty store; `dir` is a scratch directory for this test.
  // Called again with the same dir to reopen (for adapters that persist).
  std::function<std::unique_ptr<SessionStore>(const std::filesystem::path& dir)> make;
  // Why the adapter cannot be tested here (its server is not running), or
  // nullopt. Empty function: always available. A skipped test still shows
  // in the test list, so whether it ran never depends on how the list was
  // made.
  std::function<std::optional<std::string>()> unavailable;
};

inline void PrintTo(const StoreFactory& f, std::ostream* os) {
  *os << f.name;
}

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (GetParam().unavailable) {
      if (auto why = GetParam().unavailable()) GTEST_SKIP() << *why;
    }
  }
};

inline std::string factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

}  // namespace tessera::testing
