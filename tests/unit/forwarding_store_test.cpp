// The fault-injecting ForwardingStore (tests/support) over the memory store:
// each fault fires exactly when asked and only then, a delay really stalls,
// and the nth-call cue is exact when 32 threads call at once.
#include "forwarding_store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <thread>
#include <vector>

#include "result_matchers.hpp"
#include "tessera/memory_store.hpp"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr UnixSeconds kNow{std::chrono::seconds{1'700'000'000}};

template <class R>
std::optional<Error> error_of(const R& r) {
  if (r) return std::nullopt;
  return r.error();
}

// One call of each method, with arguments the memory store accepts (or
// refuses on its own, which is not an injected fault). Revoke reasons are
// value-initialised so the calls do not depend on the reason's type.
std::optional<Error> call(SessionStore& s, StoreMethod m) {
  Session session;
  session.id = "01SESSION";
  session.subject = "alice";
  session.family_id = "01FAMILY";
  session.created_at = kNow;
  session.last_seen_at = kNow;
  session.expires_at = kNow + std::chrono::hours{1};
  const LookupKey key{.version = 1, .mac = {1}};
  switch (m) {
    case StoreMethod::create:
      return error_of(s.create(session, TokenKind::refresh, key, 10, kNow, std::nullopt));
    case StoreMethod::find:
      return error_of(s.find(session.id));
    case StoreMethod::find_by_credential:
      return error_of(s.find_by_credential(TokenKind::refresh, std::span(&key, 1)));
    case StoreMethod::rotate:
      return error_of(s.rotate(session.id, 0, LookupKey{.version = 1, .mac = {2}}, SealedToken{},
                               kNow, std::nullopt));
    case StoreMethod::touch:
      return error_of(s.touch(session.id, kNow, std::nullopt, std::nullopt));
    case StoreMethod::revoke_session:
      return error_of(s.revoke_session(session.id, {}, kNow));
    case StoreMethod::revoke_family:
      return error_of(s.revoke_family(session.family_id, {}, kNow));
    case StoreMethod::revoke_subject:
      return error_of(s.revoke_subject(session.subject, std::nullopt, {}, kNow));
    case StoreMethod::list_live:
      return error_of(s.list_live(session.subject, kNow));
    case StoreMethod::cleanup:
      return error_of(s.cleanup(kNow));
    case StoreMethod::epoch:
      return error_of(s.epoch("alice"));
    case StoreMethod::bump_epoch:
      return error_of(s.bump_epoch("alice"));
    case StoreMethod::bump_global_epoch:
      return error_of(s.bump_global_epoch());
    case StoreMethod::epochs:
      return error_of(s.epochs("alice"));
    case StoreMethod::find_by_credential_with_epochs:
      return error_of(s.find_by_credential_with_epochs(TokenKind::refresh, std::span(&key, 1)));
    case StoreMethod::rotate_with_epochs:
      return error_of(s.rotate_with_epochs(session.id, session.subject, 0,
                                           LookupKey{.version = 1, .mac = {3}}, SealedToken{}, kNow,
                                           std::nullopt));
  }
  return Error{ErrorCode::internal, "unknown method"};
}

bool injected(const std::optional<Error>& e) {
  return e && e->detail.starts_with("injected fault");
}

constexpr std::array kAllMethods = {
    StoreMethod::create,
    StoreMethod::find,
    StoreMethod::find_by_credential,
    StoreMethod::rotate,
    StoreMethod::touch,
    StoreMethod::revoke_session,
    StoreMethod::revoke_family,
    StoreMethod::revoke_subject,
    StoreMethod::list_live,
    StoreMethod::cleanup,
    StoreMethod::epoch,
    StoreMethod::bump_epoch,
    StoreMethod::bump_global_epoch,
    StoreMethod::epochs,
    StoreMethod::find_by_credential_with_epochs,
    StoreMethod::rotate_with_epochs,
};
static_assert(kAllMethods.size() == kStoreMethodCount);

struct Fixture {
  std::unique_ptr<SessionStore> inner = make_memory_store();
  ForwardingStore store{*inner};
};

TEST(ForwardingStore, WithoutFaultsEveryMethodReachesTheInnerStore) {
  Fixture f;
  for (StoreMethod m : kAllMethods) {
    EXPECT_FALSE(injected(call(f.store, m))) << to_string(m);
    EXPECT_EQ(f.store.calls(m), 1u) << to_string(m);
  }
  EXPECT_EQ(f.store.calls(), kStoreMethodCount);
  EXPECT_THAT(f.inner->find("01SESSION"), Succeeds());
  EXPECT_EQ(*f.inner->epoch("alice"), 1u) << "bump_epoch was forwarded";
}

TEST(ForwardingStore, FailAlwaysFailsTheNamedMethodAndNoOther) {
  for (StoreMethod failing : kAllMethods) {
    SCOPED_TRACE(to_string(failing));
    Fixture f;
    f.store.fail_always(failing, ErrorCode::internal);
    for (int round = 0; round < 2; ++round) {
      for (StoreMethod m : kAllMethods) {
        const auto e = call(f.store, m);
        if (m == failing) {
          ASSERT_TRUE(injected(e)) << to_string(m) << " was not failed";
          EXPECT_EQ(e->code, ErrorCode::internal);
          EXPECT_NE(e->detail.find(to_string(m)), std::string::npos) << e->detail;
        } else {
          EXPECT_FALSE(injected(e)) << to_string(m) << " failed: " << *e;
        }
      }
    }
  }
}

TEST(ForwardingStore, AFailedCallDoesNotReachTheInnerStoreAndClearFaultsEndsIt) {
  Fixture f;
  f.store.fail_always(StoreMethod::bump_epoch);
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(f.store.bump_epoch("alice"), FailsWith(ErrorCode::store_unavailable));
  }
  EXPECT_EQ(*f.inner->epoch("alice"), 0u);
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
  f.store.clear_faults();
  EXPECT_THAT(f.store.bump_epoch("alice"), Succeeds());
  EXPECT_EQ(*f.inner->epoch("alice"), 1u);
}

TEST(ForwardingStore, FailNthCallOfAMethodFailsThatCallOnlyOnce) {
  Fixture f;
  ASSERT_THAT(f.store.bump_epoch("alice"), Succeeds());  // before arming: not counted
  f.store.fail_nth_call(StoreMethod::bump_epoch, 3, ErrorCode::epoch_unavailable);
  std::vector<bool> failed;
  for (int i = 0; i < 6; ++i) {
    ASSERT_THAT(f.store.epoch("alice"), Succeeds());  // other methods do not count
    failed.push_back(!f.store.bump_epoch("alice"));
  }
  EXPECT_THAT(failed, ::testing::ElementsAre(false, false, true, false, false, false));
  EXPECT_EQ(*f.inner->epoch("alice"), 6u);
}

TEST(ForwardingStore, FailNthCallOfAnyMethodCountsEveryMethod) {
  Fixture f;
  (void)f.store.epoch("alice");
  f.store.fail_nth_call(4);
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
  EXPECT_THAT(f.store.find("x"), Succeeds());
  EXPECT_THAT(f.store.bump_epoch("alice"), Succeeds());
  EXPECT_THAT(f.store.list_live("alice", kNow), FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(f.store.list_live("alice", kNow), Succeeds());
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
}

TEST(ForwardingStore, TheNthCallCueIsExactUnderConcurrency) {
  constexpr int kThreads = 32, kCallsEach = 50;
  for (const bool of_any_method : {false, true}) {
    SCOPED_TRACE(of_any_method ? "of any method" : "of bump_epoch");
    Fixture f;
    if (of_any_method) {
      f.store.fail_nth_call(1000);  // a bump or a read
    } else {
      f.store.fail_nth_call(StoreMethod::bump_epoch, 777);
    }
    std::atomic<int> bump_failures{0}, read_failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kCallsEach; ++i) {
          if (!f.store.bump_epoch("alice")) ++bump_failures;
          if (!f.store.epoch("alice")) ++read_failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(f.store.calls(StoreMethod::bump_epoch), std::uint64_t{kThreads * kCallsEach});
    EXPECT_EQ(f.store.calls(), std::uint64_t{2 * kThreads * kCallsEach});
    EXPECT_EQ(bump_failures + read_failures, 1) << "exactly the one call fails";
    if (!of_any_method) {
      EXPECT_EQ(bump_failures, 1);
    }
    EXPECT_EQ(*f.inner->epoch("alice"), std::uint64_t(kThreads * kCallsEach - bump_failures));
  }
}

TEST(ForwardingStore, ADelayStallsTheNamedMethodAndDelayAllStallsEveryOne) {
  Fixture f;
  f.store.delay(StoreMethod::find, 60ms);
  auto start = Clock::now();
  EXPECT_THAT(f.store.find("x"), Succeeds());
  EXPECT_GE(Clock::now() - start, 60ms);

  f.store.delay_all(40ms);
  start = Clock::now();
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
  EXPECT_GE(Clock::now() - start, 40ms);
  start = Clock::now();
  EXPECT_THAT(f.store.find("x"), Succeeds());
  EXPECT_GE(Clock::now() - start, 100ms) << "a method's delay adds to delay_all";
}

TEST(ForwardingStore, AStalledCallThatFailsFailsAfterTheStall) {
  Fixture f;
  f.store.delay(StoreMethod::rotate, 50ms);
  f.store.fail_nth_call(StoreMethod::rotate, 1);
  const auto start = Clock::now();
  EXPECT_THAT(call(f.store, StoreMethod::rotate),
              ::testing::Optional(::testing::Field(&Error::code, ErrorCode::store_unavailable)));
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(ForwardingStore, WritesCountAndTheReadWriteSwitchesKeepWorking) {
  Fixture f;
  for (StoreMethod m : kAllMethods) (void)call(f.store, m);
  EXPECT_EQ(f.store.writes.load(), 10)
      << "create rotate touch revoke×3 cleanup bump_epoch bump_global_epoch rotate_with_epochs";

  f.store.fail_writes = true;
  EXPECT_THAT(f.store.bump_epoch("alice"), FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
  EXPECT_EQ(f.store.writes.load(), 11) << "a failed write is still counted";
  f.store.fail_writes = false;
  f.store.fail_reads = true;
  EXPECT_THAT(f.store.epoch("alice"), FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(f.store.epochs("alice"), FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(f.store.bump_epoch("alice"), Succeeds());
  f.store.fail_reads = false;
  EXPECT_THAT(f.store.epoch("alice"), Succeeds());
}

}  // namespace
}  // namespace tessera::testing
