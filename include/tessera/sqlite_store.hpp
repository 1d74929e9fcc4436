// SQLite SessionStore: the embedded default. One file in WAL mode; one
// writer connection (serialised), a pool of reader connections; prepared
// statements cached per connection; versioned schema migrations applied on
// open. Durable across kill -9 at normal and full; FULL also survives
// power loss. off never waits for the disk: for loading a store in bulk
// (bench/seed_sessions.cpp), where a crash of the machine may corrupt the
// file; not offered by serve.
#pragma once

#include <filesystem>
#include <memory>

#include "tessera/session.hpp"

namespace tessera {

enum class SqliteSync : std::uint8_t { normal, full, off };

struct SqliteOptions {
  SqliteSync synchronous = SqliteSync::full;
  std::size_t readers = 4;  // reader connections kept open
  std::chrono::milliseconds busy_timeout{5000};
};

// Opens (creating if needed) the database at `path` and migrates it to the
// current schema. A database it creates is mode 0600 whatever the umask, and
// so are its -wal and -shm files (SQLite gives them the database's mode). store_unavailable if the
// file cannot be opened or is not a tessera database of a known version.
[[nodiscard]] Result<std::unique_ptr<SessionStore>> open_sqlite_store(
    const std::filesystem::path& path, SqliteOptions options = {});

// The schema version this build writes.
inline constexpr int kSqliteSchemaVersion = 4;

}  // namespace tessera
