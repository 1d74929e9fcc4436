#include "tessera/memory_store.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

#include "tessera/clock.hpp"
#include "tessera/outbox.hpp"

namespace tessera {
namespace {

std::string mac_key(const LookupKey& k) {
  return std::string(reinterpret_cast<const char*>(k.mac.data()), k.mac.size());
}

class MemoryStore final : public SessionStore, public EventOutbox {
 public:
  EventOutbox* outbox() noexcept override { return this; }

  // --- EventOutbox: events in a vector, under the store's lock ---------------
  void record_events() noexcept override { recording_ = true; }

  Status append(const Event& event) override {
    std::unique_lock lock(mu_);
    push_event(event);
    return {};
  }

  Result<std::vector<Event>> claim(std::size_t max, UnixMillis now,
                                   std::chrono::milliseconds lease) override {
    std::unique_lock lock(mu_);
    std::vector<Event> out;
    for (auto& [seq, row] : events_) {
      if (out.size() >= max) break;
      if (row.delivered_at || row.next_attempt > now) continue;
      row.next_attempt = now + lease;
      out.push_back(row.event);
    }
    return out;
  }

  Status delivered(std::span<const std::uint64_t> seqs, UnixMillis now) override {
    std::unique_lock lock(mu_);
    for (auto seq : seqs) {
      if (auto it = events_.find(seq); it != events_.end()) it->second.delivered_at = now;
    }
    return {};
  }

  Status retry(std::uint64_t seq, UnixMillis next_attempt) override {
    std::unique_lock lock(mu_);
    if (auto it = events_.find(seq); it != events_.end() && !it->second.delivered_at) {
      it->second.next_attempt = next_attempt;
      ++it->second.event.attempts;
    }
    return {};
  }

  Status release(std::span<const std::uint64_t> seqs, UnixMillis next_attempt) override {
    std::unique_lock lock(mu_);
    for (auto seq : seqs) {
      if (auto it = events_.find(seq); it != events_.end() && !it->second.delivered_at)
        it->second.next_attempt = next_attempt;
    }
    return {};
  }

  Result<Purged> purge(UnixMillis delivered_before, std::size_t max_pending) override {
    std::unique_lock lock(mu_);
    Purged p;
    std::size_t pending = 0;
    for (const auto& [seq, row] : events_) pending += row.delivered_at ? 0 : 1;
    for (auto it = events_.begin(); it != events_.end();) {
      const auto& row = it->second;
      if (row.delivered_at && *row.delivered_at < delivered_before) {
        it = events_.erase(it);
        ++p.deleted;
      } else if (!row.delivered_at && pending > max_pending) {
        it = events_.erase(it);  // oldest first: the map is in seq order
        --pending;
        ++p.dropped;
      } else {
        ++it;
      }
    }
    return p;
  }

  Result<Backlog> backlog() override {
    std::shared_lock lock(mu_);
    Backlog b;
    for (const auto& [seq, row] : events_) {
      if (row.delivered_at) continue;
      if (b.pending++ == 0) b.oldest = row.event.at;
    }
    return b;
  }

  // --- SessionStore ------------------------------------------------------------
  Result<RevokeResult> create(const Session& session, TokenKind kind, const LookupKey& credential,
                              std::size_t max_live, UnixSeconds now,
                              std::optional<std::string_view> replaces) override {
    std::unique_lock lock(mu_);
    return create_locked(session, kind, credential, max_live, now, replaces, nullptr);
  }

  Result<RevokeResult> create_locked(const Session& session, TokenKind kind,
                                     const LookupKey& credential, std::size_t max_live,
                                     UnixSeconds now, std::optional<std::string_view> replaces,
                                     const UpstreamLink* link) {
    if (sessions_.contains(session.id))
      return fail(ErrorCode::invalid_request, "session id already exists");
    if (credentials_.contains(mac_key(credential)))
      return fail(ErrorCode::invalid_request, "credential already exists");
    RevokeResult out;
    if (replaces) {
      revoke_locked(std::string(*replaces), RevokeReason::rotated, now, out);
      if (out.session_ids.empty())
        return fail(ErrorCode::session_revoked, "the session to replace is no longer live");
    }
    if (replaces) {
      // The replacement keeps the login it came from.
      if (auto l = links_.find(std::string(*replaces)); l != links_.end()) {
        UpstreamLink moved = std::move(l->second);
        links_.erase(l);
        links_.emplace(session.id, std::move(moved));
      }
    }
    if (link != nullptr) links_.emplace(session.id, *link);
    sessions_.emplace(session.id, session);
    subjects_[session.subject].insert(session.id);
    families_[session.family_id].insert(session.id);
    add_credential(credential, kind, session.id, session.generation);

    std::vector<const Session*> live;
    for (const auto& id : subjects_[session.subject]) {
      const Session& s = sessions_.at(id);
      if (s.live_at(now)) live.push_back(&s);
    }
    if (live.size() > max_live) {
      // Least recently seen first; the new session is never the one to go.
      std::sort(live.begin(), live.end(), [](const Session* a, const Session* b) {
        return std::tie(a->last_seen_at, a->id) < std::tie(b->last_seen_at, b->id);
      });
      std::size_t excess = live.size() - max_live;
      std::vector<std::string> victims;
      for (const Session* s : live) {
        if (excess == 0) break;
        if (s->id == session.id) continue;
        victims.push_back(s->id);
        --excess;
      }
      for (const auto& id : victims) revoke_locked(id, RevokeReason::evicted, now, out);
    }
    return out;
  }

  bool keeps_upstream_links() const noexcept override { return true; }

  Result<RevokeResult> create_linked(const Session& session, TokenKind kind,
                                     const LookupKey& credential, std::size_t max_live,
                                     UnixSeconds now, const UpstreamLink& link) override {
    std::unique_lock lock(mu_);
    return create_locked(session, kind, credential, max_live, now, std::nullopt, &link);
  }

  Result<RevokeResult> revoke_upstream(std::string_view issuer, std::string_view sid,
                                       std::string_view sub, RevokeReason reason,
                                       UnixSeconds now) override {
    std::unique_lock lock(mu_);
    RevokeResult out;
    std::vector<std::string> ids;
    for (const auto& [id, l] : links_) {
      if (l.issuer == issuer && (sid.empty() ? l.sub == sub : l.sid == sid)) ids.push_back(id);
    }
    for (const auto& id : ids) revoke_locked(id, reason, now, out);
    return out;
  }

  Result<std::vector<UpstreamDue>> upstream_due(UnixSeconds now, std::size_t max,
                                                std::chrono::seconds lease) override {
    std::unique_lock lock(mu_);
    std::vector<UpstreamDue> out;
    for (const auto& [id, l] : links_) {
      if (!l.refresh_token || !l.next_check || *l.next_check > now) continue;
      const Session& s = sessions_.at(id);
      if (!s.live_at(now)) continue;
      out.push_back({.session_id = id, .subject = s.subject, .family_id = s.family_id, .link = l});
    }
    std::sort(out.begin(), out.end(), [](const UpstreamDue& a, const UpstreamDue& b) {
      return std::tie(*a.link.next_check, a.session_id) <
             std::tie(*b.link.next_check, b.session_id);
    });
    if (out.size() > max) out.resize(max);
    for (const auto& d : out) links_.at(d.session_id).next_check = now + lease;
    return out;
  }

  Status upstream_checked(std::string_view session_id, const std::optional<SealedToken>& rotated,
                          UnixSeconds next_check,
                          std::optional<UnixSeconds> failing_since) override {
    std::unique_lock lock(mu_);
    auto it = links_.find(std::string(session_id));
    if (it == links_.end()) return {};
    if (rotated) it->second.refresh_token = *rotated;
    it->second.next_check = next_check;
    it->second.failing_since = failing_since;
    return {};
  }

  Result<std::optional<Session>> find(std::string_view session_id) override {
    std::shared_lock lock(mu_);
    auto it = sessions_.find(std::string(session_id));
    if (it == sessions_.end()) return std::optional<Session>{};
    return std::optional<Session>{it->second};
  }

  Result<std::optional<CredentialHit>> find_by_credential(
      TokenKind kind, std::span<const LookupKey> candidates) override {
    std::shared_lock lock(mu_);
    for (const auto& c : candidates) {
      auto it = credentials_.find(mac_key(c));
      if (it == credentials_.end() || it->second.kind != kind || it->second.version != c.version)
        continue;
      auto s = sessions_.find(it->second.session_id);
      if (s == sessions_.end()) continue;
      return std::optional<CredentialHit>{CredentialHit{s->second, it->second.generation, c}};
    }
    return std::optional<CredentialHit>{};
  }

  Result<RotateResult> rotate(std::string_view session_id, std::uint64_t expected,
                              const LookupKey& next, const SealedToken& sealed, UnixSeconds now,
                              std::optional<UnixSeconds> idle_expires_at) override {
    std::unique_lock lock(mu_);
    auto it = sessions_.find(std::string(session_id));
    if (it == sessions_.end() || it->second.revoked()) return RotateResult::session_gone;
    Session& s = it->second;
    if (s.generation != expected) return RotateResult::lost_race;
    if (credentials_.contains(mac_key(next)))
      return fail(ErrorCode::invalid_request, "credential already exists");
    s.generation = expected + 1;
    s.rotated_at = now;
    s.sealed_current = sealed;
    s.last_seen_at = std::max(s.last_seen_at, now);
    if (idle_expires_at && s.idle_expires_at)
      s.idle_expires_at = std::max(*s.idle_expires_at, *idle_expires_at);
    add_credential(next, TokenKind::refresh, s.id, s.generation);
    return RotateResult::rotated;
  }

  Status touch(std::string_view session_id, UnixSeconds last_seen,
               std::optional<UnixSeconds> idle_expires_at,
               std::optional<std::pair<LookupKey, LookupKey>> rekey) override {
    std::unique_lock lock(mu_);
    auto it = sessions_.find(std::string(session_id));
    if (it == sessions_.end() || it->second.revoked()) return {};
    Session& s = it->second;
    s.last_seen_at = std::max(s.last_seen_at, last_seen);
    if (idle_expires_at && s.idle_expires_at)
      s.idle_expires_at = std::max(*s.idle_expires_at, *idle_expires_at);
    if (rekey) {
      auto old = credentials_.find(mac_key(rekey->first));
      if (old != credentials_.end() && old->second.session_id == s.id &&
          old->second.version == rekey->first.version) {
        Credential c = old->second;
        c.version = rekey->second.version;
        credentials_.erase(old);
        auto& list = by_session_[s.id];
        std::erase(list, mac_key(rekey->first));
        list.push_back(mac_key(rekey->second));
        credentials_.emplace(mac_key(rekey->second), c);
      }
    }
    return {};
  }

  Result<RevokeResult> revoke_session(std::string_view session_id, RevokeReason reason,
                                      UnixSeconds now) override {
    std::unique_lock lock(mu_);
    RevokeResult out;
    revoke_locked(std::string(session_id), reason, now, out);
    return out;
  }

  Result<RevokeResult> revoke_family(std::string_view family_id, RevokeReason reason,
                                     UnixSeconds now) override {
    std::unique_lock lock(mu_);
    RevokeResult out;
    auto it = families_.find(std::string(family_id));
    if (it != families_.end()) {
      for (const auto& id : it->second) revoke_locked(id, reason, now, out);
    }
    if (recording_ && !out.session_ids.empty()) {
      push_event({.type = reason == RevokeReason::refresh_token_reused ? EventType::replay_detected
                                                                       : EventType::family_revoked,
                  .subject = sessions_.at(out.session_ids.front()).subject,
                  .family_id = std::string(family_id),
                  .reason = reason});
    }
    return out;
  }

  Result<RevokeResult> revoke_subject(std::string_view subject,
                                      std::optional<std::string_view> except, RevokeReason reason,
                                      UnixSeconds now) override {
    std::unique_lock lock(mu_);
    RevokeResult out;
    auto it = subjects_.find(std::string(subject));
    if (it != subjects_.end()) {
      for (const auto& id : it->second) {
        if (except && id == *except) continue;
        revoke_locked(id, reason, now, out);
      }
    }
    return out;
  }

  Result<std::vector<Session>> list_live(std::string_view subject, UnixSeconds now) override {
    std::shared_lock lock(mu_);
    std::vector<Session> out;
    auto it = subjects_.find(std::string(subject));
    if (it == subjects_.end()) return out;
    for (const auto& id : it->second) {
      const Session& s = sessions_.at(id);
      if (s.live_at(now)) out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const Session& a, const Session& b) {
      return std::tie(b.last_seen_at, b.id) < std::tie(a.last_seen_at, a.id);
    });
    return out;
  }

  Result<std::size_t> cleanup(UnixSeconds before) override {
    std::unique_lock lock(mu_);
    std::vector<std::string> doomed;
    for (const auto& [id, s] : sessions_) {
      if (s.expires_at < before || (s.revoked_at && *s.revoked_at < before)) doomed.push_back(id);
    }
    for (const auto& id : doomed) {
      const Session& s = sessions_.at(id);
      erase_from(subjects_, s.subject, id);
      erase_from(families_, s.family_id, id);
      for (const auto& mac : by_session_[id]) credentials_.erase(mac);
      by_session_.erase(id);
      links_.erase(id);
      sessions_.erase(id);
    }
    return doomed.size();
  }

  Result<std::uint64_t> epoch(std::string_view subject) override {
    std::shared_lock lock(mu_);
    auto it = epochs_.find(std::string(subject));
    return it == epochs_.end() ? 0 : it->second;
  }

  Result<std::uint64_t> bump_epoch(std::string_view subject) override {
    std::unique_lock lock(mu_);
    const std::uint64_t epoch = ++epochs_[std::string(subject)];
    if (recording_)
      push_event(
          {.type = EventType::epoch_bumped, .subject = std::string(subject), .epoch = epoch});
    return epoch;
  }

  Result<std::uint64_t> bump_global_epoch() override {
    std::unique_lock lock(mu_);
    std::uint64_t highest = 0;
    for (const auto& [subject, epoch] : epochs_) highest = std::max(highest, epoch);
    const std::uint64_t epoch = epochs_[""] = highest + 1;
    if (recording_) push_event({.type = EventType::epoch_bumped, .epoch = epoch});
    return epoch;
  }

 private:
  struct Credential {
    TokenKind kind;
    std::string session_id;
    std::uint64_t generation;
    std::uint32_t version;
  };

  void add_credential(const LookupKey& k, TokenKind kind, const std::string& session_id,
                      std::uint64_t generation) {
    credentials_.emplace(mac_key(k), Credential{kind, session_id, generation, k.version});
    by_session_[session_id].push_back(mac_key(k));
  }

  void revoke_locked(const std::string& id, RevokeReason reason, UnixSeconds now,
                     RevokeResult& out) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.revoked()) return;
    it->second.revoked_at = now;
    it->second.revoke_reason = reason;
    it->second.sealed_current.reset();  // nothing left to hand out
    if (auto l = links_.find(id); l != links_.end()) {
      l->second.refresh_token.reset();  // nor to refresh upstream
      l->second.next_check.reset();
    }
    out.session_ids.push_back(id);
    if (recording_) {
      push_event({.type = EventType::session_revoked,
                  .subject = it->second.subject,
                  .session_id = id,
                  .family_id = it->second.family_id,
                  .reason = reason});
    }
  }

  // Under the unique lock.
  void push_event(Event e) {
    e.seq = ++last_seq_;
    e.at = SystemClock::instance().now_ms();  // the commit time, as the other stores take it
    events_.emplace(e.seq, EventRow{.event = std::move(e)});
  }

  static void erase_from(std::unordered_map<std::string, std::unordered_set<std::string>>& index,
                         const std::string& key, const std::string& id) {
    auto it = index.find(key);
    if (it == index.end()) return;
    it->second.erase(id);
    if (it->second.empty()) index.erase(it);
  }

  std::shared_mutex mu_;
  std::unordered_map<std::string, Session> sessions_;
  std::unordered_map<std::string, Credential> credentials_;
  std::unordered_map<std::string, std::vector<std::string>> by_session_;
  std::unordered_map<std::string, std::unordered_set<std::string>> subjects_;
  std::unordered_map<std::string, std::unordered_set<std::string>> families_;
  std::unordered_map<std::string, std::uint64_t> epochs_;
  std::unordered_map<std::string, UpstreamLink> links_;  // by session id

  struct EventRow {
    Event event;
    UnixMillis next_attempt{};
    std::optional<UnixMillis> delivered_at;
  };
  std::atomic<bool> recording_{false};
  std::uint64_t last_seq_ = 0;
  std::map<std::uint64_t, EventRow> events_;  // in seq order
};

}  // namespace

std::unique_ptr<SessionStore> make_memory_store() {
  return std::make_unique<MemoryStore>();
}

}  // namespace tessera
