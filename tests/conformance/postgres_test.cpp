// Registers the PostgreSQL adapter with the conformance suite, against the
// server named by TESSERA_TEST_POSTGRES_URL (scripts/with-servers.sh starts
// one). Each test gets a schema of its own. Without the variable the suite
// is not instantiated — unless TESSERA_REQUIRE_SERVERS=1 (make test, CI),
// where a missing server fails every test instead of skipping silently.
#include <fmt/format.h>

#include <cctype>
#include <cstdlib>

#include "harness.hpp"
#include "store_conformance.hpp"
#include "tessera/postgres_store.hpp"

namespace tessera::testing {
namespace {

const char* postgres_url() {
  return std::getenv("TESSERA_TEST_POSTGRES_URL");
}

bool servers_required() {
  const char* r = std::getenv("TESSERA_REQUIRE_SERVERS");
  return r != nullptr && std::string_view(r) == "1";
}

// The same scratch directory maps to the same schema, so a reopen finds
// what the first open wrote.
std::string schema_for(const std::filesystem::path& dir) {
  std::string name = "t_";
  for (const char c : dir.filename().string()) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return name;
}

StoreFactory postgres_factory() {
  return {"postgresql", [](const std::filesystem::path& dir) -> std::unique_ptr<SessionStore> {
            const char* url = postgres_url();
            if (url == nullptr) throw std::runtime_error("TESSERA_TEST_POSTGRES_URL is not set");
            auto s = open_postgres_store({.url = url, .schema = schema_for(dir), .pool_size = 40});
            if (!s) throw std::runtime_error(s.error().detail);
            return std::move(*s);
          }};
}

std::vector<StoreFactory> factories() {
  if (postgres_url() == nullptr && !servers_required()) return {};
  return {postgres_factory()};
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance, ::testing::ValuesIn(factories()),
                         factory_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreConformance);

TEST(PostgresStore, RefusesABadSchemaNameAndAnEmptyUrl) {
  EXPECT_EQ(open_postgres_store({.url = ""}).error().code, ErrorCode::config_invalid);
  EXPECT_EQ(
      open_postgres_store({.url = "postgresql://x", .schema = "a; DROP TABLE x"}).error().code,
      ErrorCode::config_invalid);
}

TEST(PostgresStore, AnUnreachableServerIsStoreUnavailable) {
  // Port 1 on loopback: nothing listens there.
  auto s = open_postgres_store({.url = "postgresql://postgres@127.0.0.1:1/postgres",
                                .connect_timeout = std::chrono::seconds{2}});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::store_unavailable);
}

TEST(PostgresStore, RefusesADatabaseFromANewerSchema) {
  if (postgres_url() == nullptr) {
    if (servers_required()) FAIL() << "TESSERA_TEST_POSTGRES_URL is not set";
    GTEST_SKIP() << "no PostgreSQL server (run through scripts/with-servers.sh)";
  }
  const auto dir = make_scratch_dir();
  const std::string schema = schema_for(dir);
  ASSERT_TRUE(open_postgres_store({.url = postgres_url(), .schema = schema}));
  {
    // Pretend a newer build migrated this schema.
    auto raw = open_postgres_store({.url = postgres_url(), .schema = schema});
    ASSERT_TRUE(raw);
  }
  const std::string cmd =
      fmt::format("psql -q '{}' -c 'UPDATE {}.tessera_schema SET version = {}' >/dev/null",
                  postgres_url(), schema, kPostgresSchemaVersion + 1);
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto s = open_postgres_store({.url = postgres_url(), .schema = schema});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::store_unavailable);
  EXPECT_NE(s.error().detail.find("newer"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera::testing
