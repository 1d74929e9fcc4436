// A signing key set with states (docs/design.md §3.4):
//   next     published in the JWKS, not yet signing
//   active   signing (at most one)
//   retired  published until every token it signed has expired, then pruned
// Rotation promotes `next` to `active` and retires the old active key, so a
// token that verified before a rotation still verifies after it.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/jwk.hpp"

namespace tessera {

enum class KeyState : std::uint8_t { next, active, retired };
[[nodiscard]] std::string_view to_string(KeyState state) noexcept;

// A value type; not synchronised: share it as std::shared_ptr<const KeySet>
// and swap the pointer to change it.
class KeySet {
 public:
  struct Entry {
    Key key;
    KeyState state;
    std::optional<UnixSeconds> retired_at;
  };

  // Adds a key. Kids are unique; at most one key is active. invalid_request
  // otherwise.
  [[nodiscard]] Status add(Key key, KeyState state, std::optional<UnixSeconds> retired_at = {});
  // The key with this kid, whatever its state (every published key verifies).
  [[nodiscard]] const Key* find(std::string_view kid) const noexcept;
  // The same, with its state and retirement time.
  [[nodiscard]] const Entry* find_entry(std::string_view kid) const noexcept;
  // The signing key, if any.
  [[nodiscard]] const Key* active() const noexcept;
  // Promotes `kid` (in state next) to active; the former active key becomes
  // retired at `now`. key_not_found / invalid_request otherwise.
  [[nodiscard]] Status activate(std::string_view kid, UnixSeconds now);
  // Drops retired keys whose every token has expired: retired_at +
  // max_token_lifetime + leeway ≤ now. Returns how many went.
  std::size_t prune(UnixSeconds now, std::chrono::seconds max_token_lifetime,
                    std::chrono::seconds leeway);

  [[nodiscard]] const std::vector<Entry>& entries() const noexcept { return entries_; }

  // {"keys":[...]}: the public JWK of every asymmetric key, whatever its
  // state, and for a retired key its retirement time ("tessera_retired_at",
  // Unix seconds: verifiers refuse what it signed later, see
  // kRetiredKeyGrace in jwt.hpp). Never a private member, never a
  // symmetric key.
  [[nodiscard]] std::string public_jwks() const;
  // Every key with its private members and, as extra members, its state
  // ("tessera_state") and retirement time ("tessera_retired_at"). For a key
  // file with mode 0600; never to be served.
  [[nodiscard]] std::string private_jwks() const;
  // Parses a JWK set, public or private. Keys without "tessera_state" are
  // taken as `next` (published, not signing): right for a resource server
  // reading the authority's JWKS. Keys of unsupported types are skipped,
  // as RFC 7517 §5 asks; a malformed supported key fails the whole set.
  [[nodiscard]] static Result<KeySet> from_jwks(std::string_view json);

 private:
  std::vector<Entry> entries_;
};

// A key set replaceable while readers use it (rotation): get() hands out the
// current set, set() swaps in a new one. Thread-safe.
// A mutex rather than std::atomic<std::shared_ptr>: GCC 12's atomic
// shared_ptr hides its lock from ThreadSanitizer (false reports on every
// reload), and the lock is held only to copy a pointer.
class SharedKeySet {
 public:
  explicit SharedKeySet(KeySet keys) : p_(std::make_shared<const KeySet>(std::move(keys))) {}
  [[nodiscard]] std::shared_ptr<const KeySet> get() const {
    std::lock_guard lock(mu_);
    return p_;
  }
  void set(KeySet keys) {
    auto fresh = std::make_shared<const KeySet>(std::move(keys));
    std::lock_guard lock(mu_);
    p_.swap(fresh);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const KeySet> p_;
};

}  // namespace tessera
