// The transactional outbox (tessera/outbox.hpp), for every adapter that has
// one: each change writes its events with it, and the claim / lease /
// retry / delivered / purge cycle a dispatcher runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "harness.hpp"
#include "result_matchers.hpp"
#include "tessera/outbox.hpp"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;

// The outbox of the harness's store, recording; skips adapters without one.
#define REQUIRE_OUTBOX(h)                                                     \
  EventOutbox* outbox = (h).raw->outbox();                                    \
  if (outbox == nullptr) GTEST_SKIP() << GetParam().name << " has no outbox"; \
  outbox->record_events()

const UnixMillis kFar = UnixMillis(std::chrono::milliseconds(std::int64_t{1} << 45));

std::vector<Event> drain(EventOutbox& outbox) {
  auto events = outbox.claim(1000, kFar, 1ms);
  EXPECT_TRUE(events.has_value()) << events.error();
  if (!events) return {};
  std::vector<std::uint64_t> seqs;
  for (const auto& e : *events) seqs.push_back(e.seq);
  EXPECT_TRUE(outbox.delivered(seqs, kFar).has_value());
  return *events;
}

TEST_P(StoreConformance, EveryRevocationAndEpochBumpWritesItsEventsWithTheChange) {
  Harness h(GetParam());
  REQUIRE_OUTBOX(h);
  auto a = h.issue("alice");
  auto b = h.issue("alice");
  auto c = h.issue("alice");
  EXPECT_TRUE(drain(*outbox).empty()) << "issuing ends nothing";

  ASSERT_THAT(h.service->revoke("alice", a.session.id), Succeeds());
  auto events = drain(*outbox);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::session_revoked);
  EXPECT_EQ(events[0].session_id, a.session.id);
  EXPECT_EQ(events[0].subject, "alice");
  EXPECT_EQ(events[0].family_id, a.session.family_id);
  EXPECT_EQ(events[0].reason, RevokeReason::revoked);
  EXPECT_TRUE(events[0].id().starts_with("evt_"));

  // Logout everywhere: one event per session it ended, and the epoch.
  ASSERT_THAT(h.service->logout(b.session_token.reveal(), RevokeScope::all), Succeeds());
  events = drain(*outbox);
  std::vector<std::string> ended;
  std::size_t bumps = 0;
  for (const auto& e : events) {
    if (e.type == EventType::session_revoked) {
      ended.push_back(e.session_id);
      EXPECT_EQ(e.reason, RevokeReason::logout);
    } else if (e.type == EventType::epoch_bumped) {
      ++bumps;
      EXPECT_EQ(e.subject, "alice");
      EXPECT_EQ(e.epoch, 1u);
    }
  }
  std::sort(ended.begin(), ended.end());
  std::vector<std::string> expected = {b.session.id, c.session.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ended, expected);
  EXPECT_EQ(bumps, 1u);

  // A global bump: subject "".
  ASSERT_THAT(h.service->bump_global_epoch(), Succeeds());
  events = drain(*outbox);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::epoch_bumped);
  EXPECT_EQ(events[0].subject, "");
  EXPECT_EQ(events[0].epoch, 2u) << "past every subject's epoch";
  EXPECT_TRUE(drain(*outbox).empty()) << "delivered events are never claimed again";
}

TEST_P(StoreConformance, AReplayWritesReplayDetectedForItsFamily) {
  SessionPolicy p;
  p.refresh_grace = 0s;
  Harness h(GetParam(), p);
  REQUIRE_OUTBOX(h);
  auto t = h.issue("bob", SessionMode::token);
  const std::string first(t.tokens->refresh_token.reveal());
  ASSERT_THAT(h.service->renew(first), Succeeds());
  h.clock.advance(2s);
  EXPECT_THAT(h.service->renew(first), FailsWith(ErrorCode::refresh_token_reused));
  const auto events = drain(*outbox);
  const auto replay = std::find_if(events.begin(), events.end(), [](const Event& e) {
    return e.type == EventType::replay_detected;
  });
  ASSERT_NE(replay, events.end());
  EXPECT_EQ(replay->family_id, t.session.family_id);
  EXPECT_EQ(replay->subject, "bob");
  EXPECT_EQ(replay->reason, RevokeReason::refresh_token_reused);
  EXPECT_TRUE(std::any_of(events.begin(), events.end(), [&](const Event& e) {
    return e.type == EventType::session_revoked && e.session_id == t.session.id;
  }));
}

TEST_P(StoreConformance, EvictionWritesAnEventForTheSessionItEnds) {
  SessionPolicy p;
  p.max_sessions_per_subject = 1;
  Harness h(GetParam(), p);
  REQUIRE_OUTBOX(h);
  auto first = h.issue("carol");
  h.clock.advance(1s);
  (void)h.issue("carol");
  const auto events = drain(*outbox);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].session_id, first.session.id);
  EXPECT_EQ(events[0].reason, RevokeReason::evicted);
}

TEST_P(StoreConformance, NothingIsRecordedBeforeADispatcherAttaches) {
  Harness h(GetParam());
  EventOutbox* outbox = h.raw->outbox();
  if (outbox == nullptr) GTEST_SKIP() << GetParam().name << " has no outbox";
  auto a = h.issue("dave");
  ASSERT_THAT(h.service->revoke("dave", a.session.id), Succeeds());
  ASSERT_THAT(h.service->bump_epoch("dave"), Succeeds());
  auto b = outbox->backlog();
  ASSERT_THAT(b, Succeeds());
  EXPECT_EQ(b->pending, 0u);
}

TEST_P(StoreConformance, ClaimLeasesRetryBacksOffAndDeliveredIsFinal) {
  Harness h(GetParam());
  REQUIRE_OUTBOX(h);
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(
        outbox->append({.type = EventType::signing_key_rotated, .kid = "k" + std::to_string(i)}),
        Succeeds());
  }
  const UnixMillis t0 = UnixMillis(std::chrono::milliseconds(std::int64_t{1} << 44));
  auto two = outbox->claim(2, t0, 10s);
  ASSERT_THAT(two, Succeeds());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].kid, "k0") << "oldest first";
  EXPECT_LT((*two)[0].seq, (*two)[1].seq);
  auto rest = outbox->claim(10, t0, 10s);
  ASSERT_THAT(rest, Succeeds());
  ASSERT_EQ(rest->size(), 1u) << "the leased ones are skipped";
  EXPECT_EQ((*rest)[0].kid, "k2");

  // k0 delivered; k1 failed (retry in 5 s); k2's lease runs out.
  ASSERT_THAT(outbox->delivered(std::vector<std::uint64_t>{(*two)[0].seq}, t0), Succeeds());
  ASSERT_THAT(outbox->retry((*two)[1].seq, t0 + 5s), Succeeds());
  auto after_lease = outbox->claim(10, t0 + 11s, 10s);
  ASSERT_THAT(after_lease, Succeeds());
  ASSERT_EQ(after_lease->size(), 2u);
  EXPECT_EQ((*after_lease)[0].kid, "k1");
  EXPECT_EQ((*after_lease)[0].attempts, 1u);
  EXPECT_EQ((*after_lease)[1].kid, "k2");
  EXPECT_EQ((*after_lease)[1].attempts, 0u) << "a lease that ran out is no failed attempt";

  auto backlog = outbox->backlog();
  ASSERT_THAT(backlog, Succeeds());
  EXPECT_EQ(backlog->pending, 2u);
  ASSERT_TRUE(backlog->oldest);

  // Released: due again at the time given, attempts unchanged.
  ASSERT_THAT(outbox->release(std::vector<std::uint64_t>{(*after_lease)[1].seq}, t0 + 30s),
              Succeeds());
  auto early = outbox->claim(10, t0 + 29s, 10s);
  ASSERT_THAT(early, Succeeds());
  EXPECT_EQ(early->size(), 1u) << "k1 (its lease ran out), not the released k2";
  auto due = outbox->claim(10, t0 + 30s, 1s);
  ASSERT_THAT(due, Succeeds());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].kid, "k2");
  EXPECT_EQ((*due)[0].attempts, 0u);
}

TEST_P(StoreConformance, PurgeDeletesDeliveredEventsAndDropsTheOldestBeyondTheBound) {
  Harness h(GetParam());
  REQUIRE_OUTBOX(h);
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(
        outbox->append({.type = EventType::signing_key_rotated, .kid = "k" + std::to_string(i)}),
        Succeeds());
  }
  const UnixMillis t0 = UnixMillis(std::chrono::milliseconds(std::int64_t{1} << 44));
  auto first = outbox->claim(1, t0, 1s);
  ASSERT_THAT(first, Succeeds());
  ASSERT_THAT(outbox->delivered(std::vector<std::uint64_t>{(*first)[0].seq}, t0), Succeeds());
  auto kept = outbox->purge(t0 - 1s, 1000);
  ASSERT_THAT(kept, Succeeds());
  EXPECT_EQ(kept->deleted, 0u) << "delivered after the cut: kept";
  auto p = outbox->purge(t0 + 1s, 2);
  ASSERT_THAT(p, Succeeds());
  EXPECT_EQ(p->deleted, 1u);
  EXPECT_EQ(p->dropped, 2u) << "4 pending, 2 allowed";
  auto left = outbox->claim(10, t0 + 10s, 1s);
  ASSERT_THAT(left, Succeeds());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].kid, "k3") << "the oldest went first";
  EXPECT_EQ((*left)[1].kid, "k4");
}

}  // namespace
}  // namespace tessera::testing
