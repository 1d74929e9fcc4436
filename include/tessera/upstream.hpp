// Sessions that follow their upstream identity provider (docs/upstream.md):
// the liveness refresh. A session issued with an upstream refresh token
// (IssueRequest::upstream) is refreshed against the provider's token
// endpoint on a cadence, and the answer decides its fate:
//   fresh     — the provider still honours the login: the rotated refresh
//               token (if it gave one) is sealed and kept, the next check
//               is `interval` away;
//   revoked   — the provider refused the grant (invalid_grant): the session
//               ends at once, reason upstream_revoked (an outbox event);
//   transient — no usable answer (network, 5xx, a timeout): the session is
//               kept (fail open: a periodic check must not log everyone out
//               during a provider's outage) and tried again `retry` later,
//               until the failures have lasted `max_failure`: then it ends
//               (fail closed), reason upstream_revoked.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/secret.hpp"
#include "tessera/session.hpp"
#include "tessera/token_cipher.hpp"

namespace tessera {

enum class UpstreamAnswer : std::uint8_t { fresh, revoked, transient };
[[nodiscard]] std::string_view to_string(UpstreamAnswer answer) noexcept;

struct UpstreamRefresh {
  UpstreamAnswer answer = UpstreamAnswer::transient;
  std::optional<SecretString> rotated;  // fresh: the provider's new refresh token, if any
  std::string detail;                   // why, for logs (never a token)
};

// The port to the providers: one RFC 6749 §6 refresh grant for a login of
// `issuer`. Thread-safe.
class UpstreamTokenEndpoint {
 public:
  virtual ~UpstreamTokenEndpoint() = default;
  [[nodiscard]] virtual UpstreamRefresh refresh(std::string_view issuer,
                                                const SecretString& refresh_token) = 0;
};

struct UpstreamRefreshOptions {
  std::chrono::seconds interval{std::chrono::minutes{5}};   // after a fresh answer
  std::chrono::seconds retry{std::chrono::minutes{1}};      // after a transient one
  std::chrono::seconds max_failure{std::chrono::hours{1}};  // transient this long: fail closed
  std::size_t batch = 100;                                  // sessions per round
  // A claimed session is skipped by other refreshers (other authorities on
  // the same database) this long; a refresher that died leaves it due again.
  std::chrono::seconds lease{std::chrono::minutes{2}};
};

// What one round did.
struct UpstreamReport {
  std::size_t fresh = 0;
  std::size_t revoked = 0;         // the provider refused
  std::size_t transient = 0;       // kept, tried again later
  std::size_t failed_closed = 0;   // transient past max_failure: ended
  std::vector<std::string> ended;  // the session ids ended this round
  std::optional<Error> error;      // the store failed
};

// Runs rounds of the liveness refresh over a store that keeps upstream
// links (SessionStore::keeps_upstream_links). Thread-safe; one round at a
// time per refresher, and several refreshers over one database split the
// due sessions between them (SessionStore::upstream_due leases them).
class UpstreamRefresher {
 public:
  UpstreamRefresher(SessionStore& store, const TokenCipher& cipher, UpstreamTokenEndpoint& endpoint,
                    const Clock& clock, UpstreamRefreshOptions options = {});
  // One round: claims up to `batch` due sessions and refreshes each.
  UpstreamReport run_once();

 private:
  SessionStore& store_;
  const TokenCipher& cipher_;
  UpstreamTokenEndpoint& endpoint_;
  const Clock& clock_;
  UpstreamRefreshOptions options_;
};

}  // namespace tessera
