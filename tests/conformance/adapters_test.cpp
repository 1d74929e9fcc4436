// Registers the embedded adapters with the conformance suite.
#include "store_conformance.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/sqlite_store.hpp"

namespace tessera::testing {
namespace {

StoreFactory memory_factory() {
  return {"memory", [](const std::filesystem::path&) { return make_memory_store(); }};
}

StoreFactory sqlite_factory(std::string name, SqliteSync sync) {
  return {std::move(name), [sync](const std::filesystem::path& dir) {
            auto s = open_sqlite_store(dir / "sessions.db", {.synchronous = sync});
            if (!s) throw std::runtime_error(s.error().detail);
            return std::move(*s);
          }};
}

INSTANTIATE_TEST_SUITE_P(Embedded, StoreConformance,
                         ::testing::Values(memory_factory(),
                                           sqlite_factory("sqlite", SqliteSync::normal),
                                           sqlite_factory("sqlite_off", SqliteSync::off)),
                         factory_name);

}  // namespace
}  // namespace tessera::testing
