#include "server/upstream_tokens.hpp"

#include <vector>

namespace tessera::server {

UpstreamTokens::UpstreamTokens(SessionService& service, const Clock& clock,
                               std::chrono::seconds renew_before, std::size_t max_entries)
    : service_(service), clock_(clock), renew_before_(renew_before), max_entries_(max_entries) {}

std::shared_ptr<UpstreamTokens::Entry> UpstreamTokens::entry_for(const std::string& session_id) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(session_id); it != entries_.end()) return it->second;
  if (entries_.size() >= max_entries_) {
    // Drop the tokens no one can use any more; if that is not enough, all
    // (an entry being minted stays alive through its shared_ptr).
    const UnixSeconds now = clock_.now();
    std::erase_if(entries_, [&](const auto& kv) {
      std::unique_lock entry(kv.second->mu, std::try_to_lock);
      return entry.owns_lock() && kv.second->expires_at <= now;
    });
    if (entries_.size() >= max_entries_) entries_.clear();
  }
  return entries_.emplace(session_id, std::make_shared<Entry>()).first->second;
}

Result<SecretString> UpstreamTokens::token_for(const Session& s) {
  auto epoch = service_.epoch(s.subject);
  if (!epoch) return std::unexpected(epoch.error());
  const std::shared_ptr<Entry> e = entry_for(s.id);
  std::lock_guard lock(e->mu);
  const UnixSeconds now = clock_.now();
  if (!e->token.empty() && e->epoch == *epoch && now + renew_before_ < e->expires_at)
    return e->token;
  auto minted = service_.mint_access(s, *epoch);
  if (!minted) return std::unexpected(minted.error());
  e->token = std::move(minted->token);
  e->expires_at = minted->expires_at;
  e->epoch = *epoch;
  mints_.fetch_add(1, std::memory_order_relaxed);
  return e->token;
}

}  // namespace tessera::server
