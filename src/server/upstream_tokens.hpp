// Forward-auth's upstream token (authz_upstream_token, docs/api.md §3.10):
// an at+jwt for the session behind the cookie, handed to the proxy in
// `Authorization` so the services behind it verify locally and never see
// the cookie. One token per session is reused until it enters the renewal
// window before its expiry, or the subject's epoch moves past it; then it
// is minted again, once: the concurrent sub-requests of one page wait for
// that one mint and all get the same token (single flight). No Boost type.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/secret.hpp"
#include "tessera/session.hpp"
#include "tessera/session_service.hpp"

namespace tessera::server {

class UpstreamTokens {
 public:
  // `renew_before`: how long before its expiry a token is replaced.
  // `max_entries`: the sessions remembered; past it, ended entries are
  // dropped first, then all (a mint more, never a wrong token).
  UpstreamTokens(SessionService& service, const Clock& clock, std::chrono::seconds renew_before,
                 std::size_t max_entries = 100'000);

  // The token for the live session `s` (just validated): the kept one, or
  // a new one. Reads the subject's epoch every time, so a bump shows at the
  // next request. Fails only as epoch() or minting fails.
  [[nodiscard]] Result<SecretString> token_for(const Session& s);

  // For tests and metrics: how many tokens were minted.
  [[nodiscard]] std::uint64_t mints() const noexcept {
    return mints_.load(std::memory_order_relaxed);
  }

 private:
  struct Entry {
    std::mutex mu;  // held while minting: the single flight
    SecretString token;
    UnixSeconds expires_at{};
    std::uint64_t epoch = 0;
  };
  std::shared_ptr<Entry> entry_for(const std::string& session_id);

  SessionService& service_;
  const Clock& clock_;
  std::chrono::seconds renew_before_;
  std::size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::atomic<std::uint64_t> mints_{0};
};

}  // namespace tessera::server
