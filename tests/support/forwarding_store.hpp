// A SessionStore that forwards to another and can count writes, fail on cue
// or stall: for the faults a real store cannot produce when asked.
//
//   ForwardingStore store(inner);
//   store.delay(StoreMethod::rotate, 50ms);       // every rotate stalls 50 ms
//   store.fail_nth_call(StoreMethod::touch, 2);   // the 2nd touch from now fails
//   store.fail_always(StoreMethod::bump_epoch);   // every bump fails
//
// Every method runs one hook, before(), ahead of forwarding: it counts the
// call, stalls for the delays that apply (outside any lock, so stalled calls
// overlap), then fails the call if a fault applies. A failed call does not
// reach the inner store. Injected failures are store_unavailable unless
// another code is given. Thread-safe: faults may be armed while other
// threads call; a call's ordinal is taken when it enters, so "the nth call"
// is exact under concurrency.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "tessera/session.hpp"

namespace tessera::testing {

// The SessionStore methods, for naming which one a fault or delay is for.
enum class StoreMethod : std::uint8_t {
  create,
  find,
  find_by_credential,
  rotate,
  touch,
  revoke_session,
  revoke_family,
  revoke_subject,
  list_live,
  cleanup,
  epoch,
  bump_epoch,
  bump_global_epoch,
  epochs,
  find_by_credential_with_epochs,
  rotate_with_epochs,
};
inline constexpr std::size_t kStoreMethodCount =
    static_cast<std::size_t>(StoreMethod::rotate_with_epochs) + 1;

[[nodiscard]] constexpr std::string_view to_string(StoreMethod m) noexcept {
  switch (m) {
    case StoreMethod::create:
      return "create";
    case StoreMethod::find:
      return "find";
    case StoreMethod::find_by_credential:
      return "find_by_credential";
    case StoreMethod::rotate:
      return "rotate";
    case StoreMethod::touch:
      return "touch";
    case StoreMethod::revoke_session:
      return "revoke_session";
    case StoreMethod::revoke_family:
      return "revoke_family";
    case StoreMethod::revoke_subject:
      return "revoke_subject";
    case StoreMethod::list_live:
      return "list_live";
    case StoreMethod::cleanup:
      return "cleanup";
    case StoreMethod::epoch:
      return "epoch";
    case StoreMethod::bump_epoch:
      return "bump_epoch";
    case StoreMethod::bump_global_epoch:
      return "bump_global_epoch";
    case StoreMethod::epochs:
      return "epochs";
    case StoreMethod::find_by_credential_with_epochs:
      return "find_by_credential_with_epochs";
    case StoreMethod::rotate_with_epochs:
      return "rotate_with_epochs";
  }
  return "?";
}

// Whether the method writes (counted in `writes`, failed by `fail_writes`);
// the others are reads (failed by `fail_reads`).
[[nodiscard]] constexpr bool is_write(StoreMethod m) noexcept {
  switch (m) {
    case StoreMethod::create:
    case StoreMethod::rotate:
    case StoreMethod::touch:
    case StoreMethod::revoke_session:
    case StoreMethod::revoke_family:
    case StoreMethod::revoke_subject:
    case StoreMethod::cleanup:
    case StoreMethod::bump_epoch:
    case StoreMethod::bump_global_epoch:
    case StoreMethod::rotate_with_epochs:
      return true;
    case StoreMethod::find:
    case StoreMethod::find_by_credential:
    case StoreMethod::list_live:
    case StoreMethod::epoch:
    case StoreMethod::epochs:
    case StoreMethod::find_by_credential_with_epochs:
      return false;
  }
  return false;
}

class ForwardingStore : public SessionStore {
 public:
  // `inner` must outlive this store.
  explicit ForwardingStore(SessionStore& inner) : inner_(inner) {}

  std::atomic<int> writes{0};            // write calls so far, failed ones included
  std::atomic<bool> fail_writes{false};  // every write answers store_unavailable
  std::atomic<bool> fail_reads{false};   // every read answers store_unavailable

  // Every call of `m` stalls for `d` before it goes on (zero: no stall).
  void delay(StoreMethod m, std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    delay_[index(m)] = d;
  }
  // Every call of every method stalls for `d` (on top of a method's own delay).
  void delay_all(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    delay_all_ = d;
  }
  // The nth call from now (1: the next one), of any method, fails with
  // `code`; once. Arming again replaces the previous cue.
  void fail_nth_call(std::uint64_t n, ErrorCode code = ErrorCode::store_unavailable) {
    std::lock_guard lock(mu_);
    nth_any_ = Cue{calls_ + n, code};
  }
  // The nth call of `m` from now (1: the next one) fails with `code`; once.
  void fail_nth_call(StoreMethod m, std::uint64_t n,
                     ErrorCode code = ErrorCode::store_unavailable) {
    std::lock_guard lock(mu_);
    nth_[index(m)] = Cue{calls_of_[index(m)] + n, code};
  }
  // Every call of `m` fails with `code` until clear_faults().
  void fail_always(StoreMethod m, ErrorCode code = ErrorCode::store_unavailable) {
    std::lock_guard lock(mu_);
    always_[index(m)] = code;
  }
  // Drops every delay and cue armed above (fail_writes/fail_reads stay).
  void clear_faults() {
    std::lock_guard lock(mu_);
    delay_ = {};
    delay_all_ = {};
    nth_any_.reset();
    nth_ = {};
    always_ = {};
  }
  // Calls so far, of any method or of `m`, failed ones included.
  [[nodiscard]] std::uint64_t calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  [[nodiscard]] std::uint64_t calls(StoreMethod m) const {
    std::lock_guard lock(mu_);
    return calls_of_[index(m)];
  }

  Result<RevokeResult> create(const Session& s, TokenKind k, const LookupKey& c, std::size_t m,
                              UnixSeconds n, std::optional<std::string_view> r) override {
    return forward(StoreMethod::create, [&] { return inner_.create(s, k, c, m, n, r); });
  }
  Result<std::optional<Session>> find(std::string_view id) override {
    return forward(StoreMethod::find, [&] { return inner_.find(id); });
  }
  Result<std::optional<CredentialHit>> find_by_credential(TokenKind k,
                                                          std::span<const LookupKey> c) override {
    return forward(StoreMethod::find_by_credential,
                   [&] { return inner_.find_by_credential(k, c); });
  }
  Result<RotateResult> rotate(std::string_view id, std::uint64_t e, const LookupKey& n,
                              const SealedToken& s, UnixSeconds now,
                              std::optional<UnixSeconds> idle) override {
    return forward(StoreMethod::rotate, [&] { return inner_.rotate(id, e, n, s, now, idle); });
  }
  Status touch(std::string_view id, UnixSeconds l, std::optional<UnixSeconds> i,
               std::optional<std::pair<LookupKey, LookupKey>> r) override {
    return forward(StoreMethod::touch, [&] { return inner_.touch(id, l, i, r); });
  }
  Result<RevokeResult> revoke_session(std::string_view id, RevokeReason r, UnixSeconds n) override {
    return forward(StoreMethod::revoke_session, [&] { return inner_.revoke_session(id, r, n); });
  }
  Result<RevokeResult> revoke_family(std::string_view id, RevokeReason r, UnixSeconds n) override {
    return forward(StoreMethod::revoke_family, [&] { return inner_.revoke_family(id, r, n); });
  }
  Result<RevokeResult> revoke_subject(std::string_view s, std::optional<std::string_view> e,
                                      RevokeReason r, UnixSeconds n) override {
    return forward(StoreMethod::revoke_subject, [&] { return inner_.revoke_subject(s, e, r, n); });
  }
  // Upstream links: passed through, without faults (none is armed on them yet).
  bool keeps_upstream_links() const noexcept override { return inner_.keeps_upstream_links(); }
  Result<RevokeResult> create_linked(const Session& s, TokenKind k, const LookupKey& c,
                                     std::size_t m, UnixSeconds n, const UpstreamLink& l) override {
    return inner_.create_linked(s, k, c, m, n, l);
  }
  Result<RevokeResult> revoke_upstream(std::string_view i, std::string_view sid,
                                       std::string_view sub, RevokeReason r,
                                       UnixSeconds n) override {
    return inner_.revoke_upstream(i, sid, sub, r, n);
  }
  Result<std::vector<UpstreamDue>> upstream_due(UnixSeconds n, std::size_t m,
                                                std::chrono::seconds l) override {
    return inner_.upstream_due(n, m, l);
  }
  Status upstream_checked(std::string_view id, const std::optional<SealedToken>& t,
                          UnixSeconds next, std::optional<UnixSeconds> f) override {
    return inner_.upstream_checked(id, t, next, f);
  }
  Result<std::vector<Session>> list_live(std::string_view s, UnixSeconds n) override {
    return forward(StoreMethod::list_live, [&] { return inner_.list_live(s, n); });
  }
  Result<std::size_t> cleanup(UnixSeconds b) override {
    return forward(StoreMethod::cleanup, [&] { return inner_.cleanup(b); });
  }
  Result<std::uint64_t> epoch(std::string_view s) override {
    return forward(StoreMethod::epoch, [&] { return inner_.epoch(s); });
  }
  Result<Epochs> epochs(std::string_view s) override {
    return forward(StoreMethod::epochs, [&] { return inner_.epochs(s); });
  }
  Result<std::uint64_t> bump_epoch(std::string_view s) override {
    return forward(StoreMethod::bump_epoch, [&] { return inner_.bump_epoch(s); });
  }
  Result<std::uint64_t> bump_global_epoch() override {
    return forward(StoreMethod::bump_global_epoch, [&] { return inner_.bump_global_epoch(); });
  }
  // The inner store's outbox: its events are written by its own changes, so
  // a write this wrapper fails writes none.
  EventOutbox* outbox() noexcept override { return inner_.outbox(); }
  // The bundled calls reach the inner store's own (one statement where it
  // has one), not the composition through this store's hooks.
  Result<CredentialRead> find_by_credential_with_epochs(TokenKind k,
                                                        std::span<const LookupKey> c) override {
    return forward(StoreMethod::find_by_credential_with_epochs,
                   [&] { return inner_.find_by_credential_with_epochs(k, c); });
  }
  Result<RotateOutcome> rotate_with_epochs(std::string_view id, std::string_view subject,
                                           std::uint64_t e, const LookupKey& n,
                                           const SealedToken& s, UnixSeconds now,
                                           std::optional<UnixSeconds> idle) override {
    return forward(StoreMethod::rotate_with_epochs,
                   [&] { return inner_.rotate_with_epochs(id, subject, e, n, s, now, idle); });
  }

 private:
  struct Cue {
    std::uint64_t at;  // the call ordinal that fails
    ErrorCode code;
  };

  static constexpr std::size_t index(StoreMethod m) noexcept { return static_cast<std::size_t>(m); }

  // The hook every method runs first: counts, stalls, then fails on cue.
  Status before(StoreMethod m) {
    if (is_write(m)) ++writes;
    std::chrono::nanoseconds stall{};
    std::optional<Error> fault;
    {
      std::lock_guard lock(mu_);
      const std::uint64_t ordinal = ++calls_;
      const std::uint64_t own = ++calls_of_[index(m)];
      stall = delay_all_ + delay_[index(m)];
      const auto injected = [&](ErrorCode code, std::string_view why) {
        return Error{code, std::string("injected fault: ") + std::string(to_string(m)) + " " +
                               std::string(why)};
      };
      // Every cue this call matches is used up, even when another fails it.
      if (auto& cue = nth_any_; cue && cue->at == ordinal) {
        fault = injected(cue->code, "call #" + std::to_string(ordinal));
        cue.reset();
      }
      if (auto& cue = nth_[index(m)]; cue && cue->at == own) {
        fault = injected(cue->code, "call #" + std::to_string(own) + " of the method");
        cue.reset();
      }
      if (const auto& always = always_[index(m)]) fault = injected(*always, "always fails");
    }
    if (stall > std::chrono::nanoseconds::zero()) std::this_thread::sleep_for(stall);
    if (fault) return std::unexpected(std::move(*fault));
    if (is_write(m) ? fail_writes.load() : fail_reads.load()) {
      return fail(ErrorCode::store_unavailable,
                  is_write(m) ? "injected write fault" : "injected read fault");
    }
    return {};
  }

  template <class Call>
  auto forward(StoreMethod m, Call&& call) -> decltype(call()) {
    if (auto st = before(m); !st) return std::unexpected(st.error());
    return call();
  }

  SessionStore& inner_;
  mutable std::mutex mu_;  // guards the fields below
  std::uint64_t calls_ = 0;
  std::array<std::uint64_t, kStoreMethodCount> calls_of_{};
  std::chrono::nanoseconds delay_all_{};
  std::array<std::chrono::nanoseconds, kStoreMethodCount> delay_{};
  std::optional<Cue> nth_any_;
  std::array<std::optional<Cue>, kStoreMethodCount> nth_{};
  std::array<std::optional<ErrorCode>, kStoreMethodCount> always_{};
};

}  // namespace tessera::testing
