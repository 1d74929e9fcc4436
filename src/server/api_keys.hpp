// API keys and their scopes (docs/api.md "API keys and scopes"): what a key
// may do, the api_keys file that holds their hashes, and the table the
// router asks. No Boost type, no I/O: the file is read by the command line
// (src/cli), which hands the parsed table over.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/route_table.hpp"
#include "tessera/digest.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

// One bit each; a key holds a set of them. `admin` (every bit) is what a
// key from `api_key_hashes`, or a hash-only line of the file, holds.
enum class Scope : std::uint16_t {
  sessions_issue = 1u << 0,   // POST /v1/sessions, POST /v1/sessions/rotate
  sessions_read = 1u << 1,    // POST /v1/sessions/validate, GET a subject's sessions
  sessions_revoke = 1u << 2,  // DELETE a subject's sessions
  epochs_read = 1u << 3,      // GET an epoch
  epochs_write = 1u << 4,     // POST (bump) an epoch
  introspect = 1u << 5,       // POST /oauth2/introspect
  metrics = 1u << 6,          // GET /metrics when metrics_public = false
  authz = 1u << 7,            // the forward-auth mounts when authz_require_api_key
  ssf = 1u << 8,              // the SSF stream configuration (/ssf/streams)
};
using Scopes = std::uint16_t;
inline constexpr Scopes kAdminScopes = 0x1ff;

// "sessions:issue", ... ; the names a key file and the command line use.
[[nodiscard]] std::string_view scope_name(Scope scope) noexcept;
// A comma-separated list ("sessions:read,introspect", "admin"). Refuses an
// unknown name (naming the known ones) and an empty list.
[[nodiscard]] Result<Scopes> parse_scopes(std::string_view text);
// Its inverse: "admin" for every scope, else the names in declaration order.
[[nodiscard]] std::vector<std::string> scope_names(Scopes scopes);

// The scope a route needs for `method`; nullopt: no key at all (an open
// route, or metrics/authz when they are not keyed — the router decides).
[[nodiscard]] std::optional<Scope> required_scope(RouteId route, std::string_view method) noexcept;

// "sha256:<64 hex digits>" → the digest; nullopt for anything else.
[[nodiscard]] std::optional<Sha256Digest> parse_key_hash(std::string_view text) noexcept;

struct ApiKeyEntry {
  Sha256Digest hash{};
  std::string name;  // "" for a key from api_key_hashes or a hash-only line
  Scopes scopes = kAdminScopes;
  std::string created_at;  // RFC 3339, as written; "" when unknown
};

// The api_keys file: one key per line,
//   sha256:<64 hex> name=<name> scopes=<list> created_at=<RFC 3339>
// or a bare sha256:<64 hex> (a full-scope key, as the dev mode once wrote
// them); blank lines and # comments skipped. `file` names it in errors.
[[nodiscard]] Result<std::vector<ApiKeyEntry>> parse_api_keys(std::string_view text,
                                                              std::string_view file);
// One line of it (no newline).
[[nodiscard]] std::string api_key_line(const ApiKeyEntry& key);
// 1..64 of [A-Za-z0-9._-].
[[nodiscard]] bool valid_api_key_name(std::string_view name) noexcept;

// The keys the authority accepts. find() compares the SHA-256 of a
// presented key with every entry in constant time.
class ApiKeyTable {
 public:
  ApiKeyTable() = default;
  explicit ApiKeyTable(std::vector<ApiKeyEntry> keys) : keys_(std::move(keys)) {}
  // The scopes of the key whose SHA-256 is `digest`, or nullopt for a key
  // that is not in the table.
  [[nodiscard]] std::optional<Scopes> find(const Sha256Digest& digest) const noexcept;
  [[nodiscard]] const std::vector<ApiKeyEntry>& keys() const noexcept { return keys_; }

 private:
  std::vector<ApiKeyEntry> keys_;
};

// The table the server reads per request and the reloader replaces (the
// api_keys file changed, or SIGHUP): a revoked key stops working without a
// restart. Thread-safe.
class SharedApiKeys {
 public:
  explicit SharedApiKeys(ApiKeyTable table = {})
      : p_(std::make_shared<const ApiKeyTable>(std::move(table))) {}
  [[nodiscard]] std::shared_ptr<const ApiKeyTable> get() const {
    std::lock_guard lock(mu_);
    return p_;
  }
  void set(ApiKeyTable table) {
    auto fresh = std::make_shared<const ApiKeyTable>(std::move(table));
    std::lock_guard lock(mu_);
    p_.swap(fresh);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const ApiKeyTable> p_;
};

}  // namespace tessera::server
