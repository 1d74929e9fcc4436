// Links to an upstream identity provider (docs/upstream.md), for every
// adapter: written with the session, found by (issuer, sid) or (issuer,
// sub), kept across a cookie rotation, forgotten when the session ends,
// and the liveness refresh's due list and bookkeeping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "harness.hpp"
#include "result_matchers.hpp"
#include "tessera/outbox.hpp"

namespace tessera::testing {
namespace {

using namespace std::chrono_literals;

IssuedSession issue_linked(Harness& h, std::string subject, std::string issuer, std::string sid,
                           std::string sub, std::optional<std::string> refresh = std::nullopt,
                           SessionMode mode = SessionMode::cookie) {
  IssueRequest r;
  r.subject = std::move(subject);
  r.mode = mode;
  r.upstream = IssueRequest::Upstream{.issuer = std::move(issuer),
                                      .sid = std::move(sid),
                                      .sub = std::move(sub),
                                      .refresh_token = std::nullopt};
  if (refresh) r.upstream->refresh_token = SecretString(*refresh);
  auto out = h.service->issue(r);
  if (!out) throw std::runtime_error("issue: " + out.error().detail);
  return std::move(*out);
}

#define REQUIRE_LINKS(h) \
  if (!(h).raw->keeps_upstream_links()) GTEST_SKIP() << GetParam().name << " keeps no links"

TEST_P(StoreConformance, AnUpstreamLogoutBySidEndsExactlyTheSessionsOfThatLogin) {
  Harness h(GetParam());
  REQUIRE_LINKS(h);
  auto a = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1");
  auto b = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1", std::nullopt,
                        SessionMode::token);
  auto c = issue_linked(h, "alice", "https://idp.example", "sid-2", "u-1");
  auto d = issue_linked(h, "bob", "https://other.example", "sid-1", "u-1");
  auto plain = h.issue("alice");

  auto n = h.service->revoke_upstream("https://idp.example", "sid-1", "");
  ASSERT_THAT(n, Succeeds());
  EXPECT_EQ(*n, 2u);
  for (const auto* s : {&a, &b}) {
    auto found = h.store.find(s->session.id);
    ASSERT_THAT(found, Succeeds());
    ASSERT_TRUE(*found);
    EXPECT_EQ((*found)->revoke_reason, RevokeReason::upstream_revoked);
  }
  for (const auto* s : {&c, &d, &plain}) {
    auto found = h.store.find(s->session.id);
    ASSERT_THAT(found, Succeeds());
    EXPECT_FALSE((*found)->revoked()) << "another login, issuer, or no link";
  }
  EXPECT_EQ(*h.service->revoke_upstream("https://idp.example", "sid-1", ""), 0u) << "idempotent";
}

TEST_P(StoreConformance, AnUpstreamLogoutBySubEndsEveryLoginOfThatSubject) {
  Harness h(GetParam());
  REQUIRE_LINKS(h);
  auto a = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1");
  auto b = issue_linked(h, "alice", "https://idp.example", "sid-2", "u-1");
  auto c = issue_linked(h, "carol", "https://idp.example", "", "u-2");
  auto n = h.service->revoke_upstream("https://idp.example", "", "u-1");
  ASSERT_THAT(n, Succeeds());
  EXPECT_EQ(*n, 2u);
  EXPECT_FALSE((*h.store.find(c.session.id))->revoked());
  EXPECT_EQ(*h.service->revoke_upstream("https://idp.example", "", "u-2"), 1u);
  EXPECT_THAT(h.service->revoke_upstream("https://idp.example", "", ""),
              FailsWith(ErrorCode::invalid_request));
  (void)a, (void)b;
}

TEST_P(StoreConformance, AnUpstreamRevocationWritesItsEventsWithIt) {
  Harness h(GetParam());
  REQUIRE_LINKS(h);
  EventOutbox* outbox = h.raw->outbox();
  if (outbox == nullptr) GTEST_SKIP() << "no outbox";
  outbox->record_events();
  auto a = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1");
  ASSERT_THAT(h.service->revoke_upstream("https://idp.example", "sid-1", ""), Succeeds());
  const UnixMillis far = UnixMillis(std::chrono::milliseconds(std::int64_t{1} << 45));
  auto events = outbox->claim(100, far, 1ms);
  ASSERT_THAT(events, Succeeds());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, EventType::session_revoked);
  EXPECT_EQ((*events)[0].session_id, a.session.id);
  EXPECT_EQ((*events)[0].reason, RevokeReason::upstream_revoked);
}

TEST_P(StoreConformance, ARotatedCookieSessionKeepsItsUpstreamLink) {
  Harness h(GetParam());
  REQUIRE_LINKS(h);
  auto a = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1", "upstream-rt-1");
  auto rotated = h.service->rotate_session(a.session_token.reveal());
  ASSERT_THAT(rotated, Succeeds());
  ASSERT_EQ(*h.service->revoke_upstream("https://idp.example", "sid-1", ""), 1u);
  EXPECT_EQ((*h.store.find(rotated->session.id))->revoke_reason, RevokeReason::upstream_revoked);
}

TEST_P(StoreConformance, TheLivenessRefreshClaimsDueLinkedSessionsAndRecordsItsChecks) {
  Harness h(GetParam());
  REQUIRE_LINKS(h);
  const UnixSeconds t0 = h.clock.now();
  const auto lease = 120s;
  auto a = issue_linked(h, "alice", "https://idp.example", "sid-1", "u-1", "rt-a");
  h.clock.advance(1s);
  auto b = issue_linked(h, "bob", "https://idp.example", "sid-2", "u-2", "rt-b");
  auto no_token = issue_linked(h, "carol", "https://idp.example", "sid-3", "u-3");
  EXPECT_TRUE(h.store.upstream_due(t0, 10, lease)->empty()) << "not due before the interval";
  const UnixSeconds due_at = t0 + 1s + h.policy.upstream_check_interval;

  // The most overdue first, bounded; a claimed session is leased.
  auto first = h.store.upstream_due(due_at, 1, lease);
  ASSERT_THAT(first, Succeeds());
  ASSERT_EQ(first->size(), 1u);
  const UpstreamDue& d = (*first)[0];
  EXPECT_EQ(d.session_id, a.session.id);
  EXPECT_EQ(d.subject, "alice");
  EXPECT_EQ(d.family_id, a.session.family_id);
  EXPECT_EQ(d.link.issuer, "https://idp.example");
  EXPECT_EQ(d.link.sid, "sid-1");
  EXPECT_EQ(d.link.next_check, t0 + h.policy.upstream_check_interval);
  ASSERT_TRUE(d.link.refresh_token);
  auto opened = h.cipher.open(*d.link.refresh_token, upstream_aad(a.session.family_id));
  ASSERT_THAT(opened, Succeeds());
  EXPECT_EQ(opened->reveal(), "rt-a") << "sealed, and only the cipher opens it";
  auto rest = h.store.upstream_due(due_at, 10, lease);
  ASSERT_THAT(rest, Succeeds());
  ASSERT_EQ(rest->size(), 1u) << "alice is leased; carol holds no refresh token";
  EXPECT_EQ((*rest)[0].session_id, b.session.id);
  EXPECT_TRUE(h.store.upstream_due(due_at, 10, lease)->empty()) << "both leased";
  auto again = h.store.upstream_due(due_at + lease, 10, lease);
  EXPECT_EQ(again->size(), 2u) << "a refresher that died leaves them due when the lease ends";

  // Fresh: the rotated token is kept, the next check moves.
  auto sealed = h.cipher.seal(SecretString("rt-a2"), upstream_aad(a.session.family_id));
  ASSERT_THAT(h.store.upstream_checked(a.session.id, *sealed, due_at + 600s, std::nullopt),
              Succeeds());
  // Transient: the streak is recorded, the token unchanged.
  ASSERT_THAT(h.store.upstream_checked(b.session.id, std::nullopt, due_at + 300s, due_at),
              Succeeds());
  auto later = h.store.upstream_due(due_at + 600s, 10, lease);
  ASSERT_THAT(later, Succeeds());
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[0].session_id, b.session.id) << "the most overdue first";
  EXPECT_EQ((*later)[0].link.failing_since, due_at);
  EXPECT_EQ(
      h.cipher.open(*(*later)[0].link.refresh_token, upstream_aad(b.session.family_id))->reveal(),
      "rt-b");
  EXPECT_EQ(
      h.cipher.open(*(*later)[1].link.refresh_token, upstream_aad(a.session.family_id))->reveal(),
      "rt-a2");
  EXPECT_FALSE((*later)[1].link.failing_since);

  // An ended session is never refreshed upstream again.
  ASSERT_THAT(h.service->revoke("alice", a.session.id), Succeeds());
  later = h.store.upstream_due(due_at + 3600s, 10, lease);
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].session_id, b.session.id);
  (void)no_token;
}

}  // namespace
}  // namespace tessera::testing
