// A SessionStore that forwards to another and can count writes, fail on cue
// or stall: for the faults a real store cannot produce when asked.
#pragma once

#include <atomic>
#include <functional>

#include "tessera/session.hpp"

namespace tessera::testing {

class ForwardingStore : public SessionStore {
 public:
  explicit ForwardingStore(SessionStore& inner) : inner_(inner) {}

  std::atomic<int> writes{0};
  std::atomic<bool> fail_writes{false};  // every write answers store_unavailable
  std::atomic<bool> fail_reads{false};

  Result<RevokeResult> create(const Session& s, TokenKind k, const LookupKey& c, std::size_t m,
                              UnixSeconds n, std::optional<std::string_view> r) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.create(s, k, c, m, n, r);
  }
  Result<std::optional<Session>> find(std::string_view id) override {
    if (auto st = read(); !st) return std::unexpected(st.error());
    return inner_.find(id);
  }
  Result<std::optional<CredentialHit>> find_by_credential(TokenKind k,
                                                          std::span<const LookupKey> c) override {
    if (auto st = read(); !st) return std::unexpected(st.error());
    return inner_.find_by_credential(k, c);
  }
  Result<RotateResult> rotate(std::string_view id, std::uint64_t e, const LookupKey& n,
                              const SealedToken& s, UnixSeconds now,
                              std::optional<UnixSeconds> idle) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.rotate(id, e, n, s, now, idle);
  }
  Status touch(std::string_view id, UnixSeconds l, std::optional<UnixSeconds> i,
               std::optional<std::pair<LookupKey, LookupKey>> r) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.touch(id, l, i, r);
  }
  Result<RevokeResult> revoke_session(std::string_view id, RevokeReason r, UnixSeconds n) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.revoke_session(id, r, n);
  }
  Result<RevokeResult> revoke_family(std::string_view id, RevokeReason r, UnixSeconds n) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.revoke_family(id, r, n);
  }
  Result<RevokeResult> revoke_subject(std::string_view s, std::optional<std::string_view> e,
                                      RevokeReason r, UnixSeconds n) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.revoke_subject(s, e, r, n);
  }
  Result<std::vector<Session>> list_live(std::string_view s, UnixSeconds n) override {
    if (auto st = read(); !st) return std::unexpected(st.error());
    return inner_.list_live(s, n);
  }
  Result<std::size_t> cleanup(UnixSeconds b) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.cleanup(b);
  }
  Result<std::uint64_t> epoch(std::string_view s) override {
    if (auto st = read(); !st) return std::unexpected(st.error());
    return inner_.epoch(s);
  }
  Result<Epochs> epochs(std::string_view s) override {
    if (auto st = read(); !st) return std::unexpected(st.error());
    return inner_.epochs(s);
  }
  Result<std::uint64_t> bump_epoch(std::string_view s) override {
    if (auto st = write(); !st) return std::unexpected(st.error());
    return inner_.bump_epoch(s);
  }

 private:
  Status write() {
    ++writes;
    if (fail_writes) return fail(ErrorCode::store_unavailable, "injected write fault");
    return {};
  }
  Status read() {
    if (fail_reads) return fail(ErrorCode::store_unavailable, "injected read fault");
    return {};
  }
  SessionStore& inner_;
};

}  // namespace tessera::testing
