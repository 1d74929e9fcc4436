// The store conformance suite: every SessionStore adapter must pass it,
// through the SessionService and directly. An adapter joins by registering
// a factory with INSTANTIATE_TEST_SUITE_P(Name, StoreConformance, ...).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "tessera/session.hpp"

namespace tessera::testing {

struct StoreFactory {
  std::string name;
  // Makes a fresh, empty store; `dir` is a scratch directory for this test.
  // Called again with the same dir to reopen (for adapters that persist).
  std::function<std::unique_ptr<SessionStore>(const std::filesystem::path& dir)> make;
};

inline void PrintTo(const StoreFactory& f, std::ostream* os) {
  *os << f.name;
}

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {};

inline std::string factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

}  // namespace tessera::testing
