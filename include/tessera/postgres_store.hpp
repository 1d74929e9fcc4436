// PostgreSQL SessionStore: the store several authority instances share.
// libpq, a bounded connection pool, statements prepared once per
// connection, versioned migrations applied on open under an advisory lock
// (several instances may start at once). Every write the algorithm needs
// atomic is one statement or one transaction: the renewal compare-and-swap
// is a single conditional UPDATE feeding the credential INSERT; issue with
// eviction runs under a per-subject advisory lock so that concurrent issues
// for one subject cannot both keep more than the cap.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "tessera/error.hpp"
#include "tessera/session.hpp"

namespace tessera {

struct PostgresOptions {
  std::string url;                // postgresql://user@host:port/db?...
  std::string schema = "public";  // [a-z_][a-z0-9_]*; created if missing
  std::size_t pool_size = 8;      // connections kept at most
  std::chrono::seconds connect_timeout{5};
  std::chrono::milliseconds acquire_timeout{5000};    // waiting for a free connection
  std::chrono::milliseconds statement_timeout{5000};  // per statement, server side
  // When set, counted up once per request the store sends and waits for
  // once connected (a statement, BEGIN, COMMIT): the round trips behind a
  // call, for tests and benchmarks. Connecting and preparing are not
  // counted. Must outlive the store.
  std::atomic<std::uint64_t>* round_trips = nullptr;
};

// Connects, creates the schema if needed and migrates it. store_unavailable
// if the server cannot be reached or holds a newer schema; config_invalid
// for a bad schema name or an empty URL. Once open, a lost connection is
// replaced on next use: while the server is down calls fail with
// store_unavailable, and they succeed again once it is back.
[[nodiscard]] Result<std::unique_ptr<SessionStore>> open_postgres_store(PostgresOptions options);

inline constexpr int kPostgresSchemaVersion = 4;

}  // namespace tessera
