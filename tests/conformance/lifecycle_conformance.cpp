// The lifecycle rules of docs/design.md §4, run through SessionService against
// every store adapter.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <functional>
#include <set>
#include <thread>

#include "harness.hpp"
#include "result_matchers.hpp"
#include "tessera/jwt.hpp"

namespace tessera::testing {
namespace {

using std::chrono::seconds;
using ::tessera::testing::FailsWith;
using ::tessera::testing::Succeeds;

TEST_P(StoreConformance, IssueCookieSessionThenValidate) {
  Harness h(GetParam());
  IssueRequest req{.subject = "alice",
                   .mode = SessionMode::cookie,
                   .metadata = {.ip = "203.0.113.7", .user_agent = "curl/8", .device = "laptop"},
                   .data = R"({"cart":3})"};
  auto issued = h.service->issue(req);
  ASSERT_THAT(issued, Succeeds());
  EXPECT_TRUE(issued->session_token.reveal().starts_with("tss_"));
  EXPECT_FALSE(issued->tokens.has_value());
  EXPECT_TRUE(Ulid::parse(issued->session.id).has_value());
  EXPECT_EQ(issued->session.expires_at, h.clock.now() + h.policy.session_ttl);

  auto s = h.service->validate(issued->session_token.reveal());
  ASSERT_THAT(s, Succeeds());
  EXPECT_EQ(s->id, issued->session.id);
  EXPECT_EQ(s->subject, "alice");
  EXPECT_EQ(s->metadata.ip, "203.0.113.7");
  EXPECT_EQ(s->metadata.device, "laptop");
  EXPECT_EQ(s->data, R"({"cart":3})");
  EXPECT_EQ(s->mode, SessionMode::cookie);
}

TEST_P(StoreConformance, IssueTokenModeReturnsAVerifiableAccessTokenAndARefreshToken) {
  Harness h(GetParam());
  IssueRequest req{.subject = "bob", .mode = SessionMode::token, .claims = R"({"role":"admin"})"};
  auto issued = h.service->issue(req);
  ASSERT_THAT(issued, Succeeds());
  ASSERT_TRUE(issued->tokens.has_value());
  EXPECT_TRUE(issued->tokens->refresh_token.reveal().starts_with("tsr_"));
  EXPECT_EQ(issued->tokens->refresh_expires_at, issued->session.expires_at);
  VerifyOptions o{.issuer = h.policy.issuer, .audiences = h.policy.audience};
  auto v = verify_jwt(issued->tokens->access_token.reveal(), *h.keys.get(), o, h.clock.now());
  ASSERT_THAT(v, Succeeds());
  EXPECT_EQ(v->claims.sub, "bob");
  EXPECT_EQ(v->claims.sid, issued->session.id);
  EXPECT_EQ(v->claims.sv, 0u);
  EXPECT_EQ(v->claims.custom, R"({"role":"admin"})");
  EXPECT_EQ(v->claims.exp, h.clock.now() + h.policy.access_ttl);
}

TEST_P(StoreConformance, IssueRefusesBadSubjectsDataAndClaims) {
  Harness h(GetParam());
  for (IssueRequest bad :
       {IssueRequest{.subject = ""}, IssueRequest{.subject = std::string(256, 'a')},
        IssueRequest{.subject = "bad\xff"}, IssueRequest{.subject = "a", .data = "[1]"},
        IssueRequest{.subject = "a", .data = std::string(5000, ' ') + "{}"},
        IssueRequest{.subject = "a", .mode = SessionMode::token, .claims = "{"},
        IssueRequest{.subject = "a", .mode = SessionMode::token, .claims = R"({"sub":"x"})"}}) {
    auto r = h.service->issue(bad);
    ASSERT_THAT(r, FailsWith(ErrorCode::invalid_request));
  }
  EXPECT_TRUE(h.service->issue({.subject = "ünïcødé ✓"}));
}

TEST_P(StoreConformance, ValidateRejectsMalformedAndUnknownTokens) {
  Harness h(GetParam());
  EXPECT_THAT(h.service->validate("garbage"), FailsWith(ErrorCode::invalid_token));
  EXPECT_THAT(h.service->validate("tss_" + std::string(43, 'A')),
              FailsWith(ErrorCode::invalid_token));
  auto issued = h.issue();
  auto refresh_shaped = "tsr_" + std::string(issued.session_token.reveal().substr(4));
  EXPECT_THAT(h.service->validate(refresh_shaped), FailsWith(ErrorCode::invalid_token));
}

TEST_P(StoreConformance, InspectSaysActiveOnlyForCurrentOrInGraceTokensAndNeverWrites) {
  SessionPolicy p;
  p.refresh_grace = seconds{10};
  Harness h(GetParam(), p);
  auto cookie = h.issue("alice", SessionMode::cookie);
  auto token = h.issue("alice", SessionMode::token);
  const std::string t0(token.tokens->refresh_token.reveal());
  const int writes = h.store.writes.load();
  auto c = h.service->inspect(cookie.session_token.reveal());
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->kind, TokenKind::session);
  EXPECT_EQ((*c)->session.id, cookie.session.id);
  ASSERT_TRUE(*h.service->inspect(t0));
  EXPECT_EQ(h.store.writes.load(), writes) << "inspect wrote";
  for (auto garbage : {"garbage", "tsr_", "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}) {
    auto r = h.service->inspect(garbage);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << garbage;
  }

  auto r1 = h.service->renew(t0);
  ASSERT_TRUE(r1);
  const std::string t1(r1->tokens.refresh_token.reveal());
  EXPECT_TRUE(*h.service->inspect(t0)) << "the previous token is in grace";
  EXPECT_TRUE(*h.service->inspect(t1));
  h.clock.advance(seconds{10});
  EXPECT_TRUE(*h.service->inspect(t0)) << "whole seconds: grace lasts at least refresh_grace";
  h.clock.advance(seconds{1});
  EXPECT_FALSE(*h.service->inspect(t0)) << "grace is over";
  auto r2 = h.service->renew(t1);
  ASSERT_TRUE(r2);
  EXPECT_FALSE(*h.service->inspect(t0)) << "two generations old";

  ASSERT_TRUE(h.service->logout(cookie.session_token.reveal(), RevokeScope::session));
  EXPECT_FALSE(*h.service->inspect(cookie.session_token.reveal()));

  h.store.fail_reads = true;
  auto down = h.service->inspect(r2->tokens.refresh_token.reveal());
  ASSERT_THAT(down, FailsWith(ErrorCode::store_unavailable));
}

TEST_P(StoreConformance, SessionEndsAtItsAbsoluteExpiry) {
  SessionPolicy p;
  p.session_ttl = seconds{3600};
  Harness h(GetParam(), p);
  auto issued = h.issue();
  h.clock.advance(seconds{3599});
  EXPECT_TRUE(h.service->validate(issued.session_token.reveal()));
  h.clock.advance(seconds{1});
  EXPECT_THAT(h.service->validate(issued.session_token.reveal()),
              FailsWith(ErrorCode::session_expired));
}

TEST_P(StoreConformance, IdleTimeoutEndsAnUnusedSessionButActivityKeepsItAlive) {
  SessionPolicy p;
  p.idle_timeout = seconds{600};
  Harness h(GetParam(), p);
  ASSERT_EQ(h.policy.effective_touch_interval(), seconds{30});
  auto active = h.issue("a");
  auto idle = h.issue("b");
  for (int i = 0; i < 20; ++i) {  // 2000 s of activity every 100 s
    h.clock.advance(seconds{100});
    ASSERT_TRUE(h.service->validate(active.session_token.reveal())) << i;
  }
  EXPECT_THAT(h.service->validate(idle.session_token.reveal()),
              FailsWith(ErrorCode::session_idle_timeout));
  h.clock.advance(seconds{600});
  EXPECT_THAT(h.service->validate(active.session_token.reveal()),
              FailsWith(ErrorCode::session_idle_timeout));
}

TEST_P(StoreConformance, ThousandValidationsInsideOneTouchIntervalWriteAtMostOnce) {
  Harness h(GetParam());  // no idle timeout: touch interval 300 s
  auto issued = h.issue();
  h.clock.advance(seconds{1});
  const int before = h.store.writes;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(h.service->validate(issued.session_token.reveal()));
    if (i % 10 == 0) h.clock.advance(std::chrono::milliseconds{200});  // 20 s in all, inside 300 s
  }
  EXPECT_LE(h.store.writes - before, 1);
  h.clock.advance(seconds{300});
  ASSERT_TRUE(h.service->validate(issued.session_token.reveal()));
  EXPECT_EQ(h.store.writes - before, 1) << "the next interval touches again";
  auto s = h.service->validate(issued.session_token.reveal());
  EXPECT_EQ(s->last_seen_at, h.clock.now());
}

TEST_P(StoreConformance, AFailedTouchStillAdmits) {
  Harness h(GetParam());
  auto issued = h.issue();
  h.clock.advance(seconds{301});
  h.store.fail_writes = true;
  EXPECT_TRUE(h.service->validate(issued.session_token.reveal()));
}

TEST_P(StoreConformance, FingerprintMismatchRevokesTheSession) {
  SessionPolicy p;
  p.bind_fingerprint = true;
  Harness h(GetParam(), p);
  auto issued = h.service->issue({.subject = "alice", .fingerprint = "ua=firefox;tls=abc"});
  ASSERT_TRUE(issued);
  EXPECT_NE(issued->session.metadata.fingerprint_digest, "");
  EXPECT_EQ(issued->session.metadata.fingerprint_digest.find("firefox"), std::string::npos);
  const auto tok = issued->session_token.reveal();
  EXPECT_TRUE(h.service->validate(tok, "ua=firefox;tls=abc"));
  EXPECT_THAT(h.service->validate(tok, "ua=chrome;tls=abc"),
              FailsWith(ErrorCode::fingerprint_mismatch));
  EXPECT_THAT(h.service->validate(tok, "ua=firefox;tls=abc"),
              FailsWith(ErrorCode::session_revoked));
  auto s = h.store.find(issued->session.id);
  EXPECT_EQ((*s)->revoke_reason, RevokeReason::fingerprint_mismatch);
}

TEST_P(StoreConformance, CapEvictsTheLeastRecentlySeenSessions) {
  SessionPolicy p;
  p.max_sessions_per_subject = 3;
  p.touch_interval = seconds{1};
  Harness h(GetParam(), p);
  std::vector<IssuedSession> s;
  for (int i = 0; i < 3; ++i) {
    s.push_back(h.issue());
    h.clock.advance(seconds{10});
  }
  ASSERT_TRUE(h.service->validate(s[0].session_token.reveal()));  // s[0] is now the most recent
  h.clock.advance(seconds{10});
  auto fourth = h.issue();
  ASSERT_EQ(fourth.evicted.size(), 1u);
  EXPECT_EQ(fourth.evicted[0], s[1].session.id);
  EXPECT_THAT(h.service->validate(s[1].session_token.reveal()),
              FailsWith(ErrorCode::session_revoked));
  EXPECT_TRUE(h.service->validate(s[0].session_token.reveal()));
  EXPECT_TRUE(h.service->validate(s[2].session_token.reveal()));
  EXPECT_EQ(h.service->list("alice")->size(), 3u);
  EXPECT_EQ((*h.store.find(s[1].session.id))->revoke_reason, RevokeReason::evicted);
  h.issue("bob");  // other subjects do not count
  EXPECT_EQ(h.service->list("alice")->size(), 3u);
}

TEST_P(StoreConformance, RenewWithCurrentTokenRotatesToTheNextGeneration) {
  Harness h(GetParam());
  auto issued = h.issue("alice", SessionMode::token);
  const std::string t0(issued.tokens->refresh_token.reveal());
  h.clock.advance(seconds{60});
  auto r1 = h.service->renew(t0);
  ASSERT_THAT(r1, Succeeds());
  EXPECT_EQ(r1->session.generation, 1u);
  EXPECT_NE(r1->tokens.refresh_token.reveal(), t0);
  EXPECT_NE(r1->tokens.access_token, issued.tokens->access_token);
  h.clock.advance(seconds{60});
  auto r2 = h.service->renew(r1->tokens.refresh_token.reveal());
  ASSERT_THAT(r2, Succeeds());
  EXPECT_EQ(r2->session.generation, 2u);
  EXPECT_EQ((*h.store.find(issued.session.id))->generation, 2u);
}

TEST_P(StoreConformance, RenewWithPreviousTokenInsideGraceReturnsSameSuccessor) {
  Harness h(GetParam());
  auto issued = h.issue("alice", SessionMode::token);
  const std::string t0(issued.tokens->refresh_token.reveal());
  auto r1 = h.service->renew(t0);
  ASSERT_TRUE(r1);
  h.clock.advance(seconds{10});  // the window's last second: at least refresh_grace
  auto again = h.service->renew(t0);
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(again->tokens.refresh_token, r1->tokens.refresh_token);
  EXPECT_NE(again->tokens.access_token, r1->tokens.access_token) << "a fresh access token";
  EXPECT_EQ((*h.store.find(issued.session.id))->generation, 1u) << "no new generation";
  EXPECT_TRUE(h.service->renew(r1->tokens.refresh_token.reveal())) << "the lineage goes on";
}

TEST_P(StoreConformance, RenewWithPreviousTokenAfterGraceRevokesTheFamily) {
  Harness h(GetParam());
  auto issued = h.issue("alice", SessionMode::token);
  const std::string t0(issued.tokens->refresh_token.reveal());
  auto r1 = h.service->renew(t0);
  ASSERT_TRUE(r1);
  h.clock.advance(seconds{11});
  EXPECT_THAT(h.service->renew(t0), FailsWith(ErrorCode::refresh_token_reused));
  EXPECT_THAT(h.service->renew(r1->tokens.refresh_token.reveal()),
              FailsWith(ErrorCode::session_revoked))
      << "the successor stops working";
  auto s = *h.store.find(issued.session.id);
  EXPECT_EQ(s->revoke_reason, RevokeReason::refresh_token_reused);
}

TEST_P(StoreConformance, RenewWithAnOlderTokenRevokesTheFamilyEvenInsideGrace) {
  Harness h(GetParam());
  auto issued = h.issue("alice", SessionMode::token);
  const std::string t0(issued.tokens->refresh_token.reveal());
  auto r1 = h.service->renew(t0);
  auto r2 = h.service->renew(r1->tokens.refresh_token.reveal());
  ASSERT_TRUE(r2);
  EXPECT_THAT(h.service->renew(t0), FailsWith(ErrorCode::refresh_token_reused));
  EXPECT_THAT(h.service->renew(r2->tokens.refresh_token.reveal()),
              FailsWith(ErrorCode::session_revoked));
  bool saw = false;
  for (const auto& line : h.audit.lines())
    saw = saw || line.find("\"replay_detected\"") != std::string::npos;
  EXPECT_TRUE(saw);
}

TEST_P(StoreConformance, ReplayDaysLaterIsStillRecognised) {
  Harness h(GetParam());
  auto issued = h.issue("alice", SessionMode::token);
  const std::string t0(issued.tokens->refresh_token.reveal());
  auto r = h.service->renew(t0);
  for (int i = 0; i < 5; ++i) {
    h.clock.advance(std::chrono::days{1});
    r = h.service->renew(r->tokens.refresh_token.reveal());
    ASSERT_TRUE(r);
  }
  EXPECT_THAT(h.service->renew(t0), FailsWith(ErrorCode::refresh_token_reused));
}

TEST_P(StoreConformance, RenewRejectsUnknownRevokedAndExpiredWithTheirOwnCodes) {
  SessionPolicy p;
  p.session_ttl = seconds{1000};
  Harness h(GetParam(), p);
  EXPECT_THAT(h.service->renew("tsr_nope"), FailsWith(ErrorCode::invalid_token));
  EXPECT_THAT(h.service->renew("tsr_" + std::string(43, 'A')), FailsWith(ErrorCode::invalid_token));
  auto a = h.issue("a", SessionMode::token);
  ASSERT_EQ(h.service->logout(a.tokens->refresh_token.reveal(), RevokeScope::session), 1u);
  EXPECT_THAT(h.service->renew(a.tokens->refresh_token.reveal()),
              FailsWith(ErrorCode::session_revoked));
  auto b = h.issue("b", SessionMode::token);
  h.clock.advance(seconds{1000});
  EXPECT_THAT(h.service->renew(b.tokens->refresh_token.reveal()),
              FailsWith(ErrorCode::session_expired));
}

TEST_P(StoreConformance, RefreshTokenNeverOutlivesTheSessionAndAccessTokenNeither) {
  SessionPolicy p;
  p.session_ttl = seconds{1000};
  p.access_ttl = seconds{900};
  Harness h(GetParam(), p);
  auto a = h.issue("a", SessionMode::token);
  h.clock.advance(seconds{500});
  auto r = h.service->renew(a.tokens->refresh_token.reveal());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tokens.refresh_expires_at, a.session.expires_at);
  EXPECT_EQ(r->tokens.access_expires_at, a.session.expires_at);
}

TEST_P(StoreConformance, LogoutScopesRevokeWhatTheySay) {
  Harness h(GetParam());
  auto a1 = h.issue("alice");
  auto a2 = h.issue("alice", SessionMode::token);
  auto a3 = h.issue("alice");
  auto b1 = h.issue("bob");
  // session
  EXPECT_EQ(h.service->logout(a1.session_token.reveal(), RevokeScope::session), 1u);
  EXPECT_EQ(h.service->logout(a1.session_token.reveal(), RevokeScope::session), 0u) << "idempotent";
  // others, presented with an access token
  EXPECT_EQ(h.service->logout(a2.tokens->access_token.reveal(), RevokeScope::others), 1u);
  EXPECT_THAT(h.service->validate(a3.session_token.reveal()),
              FailsWith(ErrorCode::session_revoked));
  EXPECT_TRUE(h.service->renew(a2.tokens->refresh_token.reveal()));
  // all: bumps the epoch too
  EXPECT_EQ(*h.service->epoch("alice"), 0u);
  auto a4 = h.issue("alice");
  EXPECT_EQ(h.service->logout(a4.session_token.reveal(), RevokeScope::all), 2u);
  EXPECT_EQ(*h.service->epoch("alice"), 1u);
  EXPECT_TRUE(h.service->list("alice")->empty());
  EXPECT_TRUE(h.service->validate(b1.session_token.reveal())) << "bob is untouched";
  // garbage is an error, a well-formed unknown token is a no-op
  EXPECT_THAT(h.service->logout("nonsense", RevokeScope::session),
              FailsWith(ErrorCode::invalid_token));
  EXPECT_EQ(h.service->logout("tss_" + std::string(43, 'A'), RevokeScope::session), 0u);
}

TEST_P(StoreConformance, LogoutFamilyEndsRotatedSessionsOfTheSameLogin) {
  Harness h(GetParam());
  auto a = h.issue("alice");
  auto rotated = h.service->rotate_session(a.session_token.reveal());
  ASSERT_THAT(rotated, Succeeds());
  auto other = h.issue("alice");
  EXPECT_EQ(h.service->logout(rotated->session_token.reveal(), RevokeScope::family), 1u);
  EXPECT_TRUE(h.service->validate(other.session_token.reveal()));
}

TEST_P(StoreConformance, RevokeByIdChecksOwnership) {
  Harness h(GetParam());
  auto a = h.issue("alice");
  auto b = h.issue("bob");
  EXPECT_THAT(h.service->revoke("alice", b.session.id), FailsWith(ErrorCode::session_not_found));
  EXPECT_THAT(h.service->revoke("alice", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
              FailsWith(ErrorCode::session_not_found));
  EXPECT_TRUE(h.service->validate(b.session_token.reveal()));
  EXPECT_EQ(h.service->revoke("alice", a.session.id), 1u);
  EXPECT_EQ(h.service->revoke("alice", a.session.id), 0u);
  EXPECT_THAT(h.service->validate(a.session_token.reveal()), FailsWith(ErrorCode::session_revoked));
}

TEST_P(StoreConformance, RevokeAllButOne) {
  Harness h(GetParam());
  auto a = h.issue("alice");
  h.issue("alice");
  h.issue("alice");
  EXPECT_EQ(h.service->revoke_all("alice", a.session.id), 2u);
  EXPECT_EQ(h.service->list("alice")->size(), 1u);
  EXPECT_EQ(h.service->revoke_all("alice"), 1u);
  EXPECT_EQ(h.service->revoke_all("nobody"), 0u);
}

TEST_P(StoreConformance, ListShowsLiveSessionsMostRecentlySeenFirst) {
  SessionPolicy p;
  p.touch_interval = seconds{1};
  Harness h(GetParam(), p);
  auto s1 = h.issue();
  h.clock.advance(seconds{5});
  auto s2 = h.issue();
  h.clock.advance(seconds{5});
  auto s3 = h.issue();
  h.clock.advance(seconds{5});
  ASSERT_TRUE(h.service->validate(s1.session_token.reveal()));
  ASSERT_EQ(h.service->revoke("alice", s3.session.id), 1u);
  auto list = h.service->list("alice");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, s1.session.id);
  EXPECT_EQ((*list)[1].id, s2.session.id);
}

TEST_P(StoreConformance, CleanupDeletesEndedSessionsAfterTheRetentionMargin) {
  SessionPolicy p;
  p.session_ttl = seconds{100};
  p.cleanup_retention = seconds{50};
  Harness h(GetParam(), p);
  auto a = h.issue("a");
  auto b = h.issue("b");
  h.clock.advance(seconds{10});
  auto c = h.issue("c");
  ASSERT_EQ(h.service->revoke("a", a.session.id), 1u);
  EXPECT_EQ(*h.service->cleanup(), 0u);
  h.clock.advance(seconds{51});  // a revoked 51 s ago
  EXPECT_EQ(*h.service->cleanup(), 1u);
  EXPECT_FALSE(*h.store.find(a.session.id));
  h.clock.advance(seconds{40});  // b expired (t=100) 51 s ago... not yet: now is t=101
  EXPECT_EQ(*h.service->cleanup(), 0u);
  h.clock.advance(seconds{60});
  EXPECT_EQ(*h.service->cleanup(), 2u);  // b and c
  EXPECT_FALSE(*h.store.find(c.session.id));
}

TEST_P(StoreConformance, RotateSessionStaysInTheFamilyWithTheSameExpiry) {
  Harness h(GetParam());
  auto a = h.issue();
  h.clock.advance(seconds{100});
  auto r = h.service->rotate_session(a.session_token.reveal());
  ASSERT_THAT(r, Succeeds());
  EXPECT_NE(r->session.id, a.session.id);
  EXPECT_EQ(r->session.family_id, a.session.family_id);
  EXPECT_EQ(r->session.expires_at, a.session.expires_at);
  EXPECT_NE(r->session_token, a.session_token);
  EXPECT_THAT(h.service->validate(a.session_token.reveal()), FailsWith(ErrorCode::session_revoked));
  EXPECT_EQ((*h.store.find(a.session.id))->revoke_reason, RevokeReason::rotated);
  EXPECT_TRUE(h.service->validate(r->session_token.reveal()));
}

TEST_P(StoreConformance, OfTwoRotationsOfOneSessionOnlyOneWins) {
  // The second rotation finds the session already replaced: it fails and
  // writes nothing (no second live successor in the family).
  Harness h(GetParam());
  auto a = h.issue();
  ASSERT_THAT(h.service->rotate_session(a.session_token.reveal()), Succeeds());
  // What a concurrent caller that validated the old token before the first
  // rotation committed would write next:
  Session late = a.session;
  late.id = "01ARZ3NDEKTSV4RRFFQ69G5FAW";
  SecretString secret = generate_token(TokenKind::session, CsprngRandom::instance());
  EXPECT_THAT(h.store.create(late, TokenKind::session, h.lookup.derive(TokenKind::session, secret),
                             100, h.clock.now(), a.session.id),
              FailsWith(ErrorCode::session_revoked));
  EXPECT_FALSE(*h.store.find(late.id));
  EXPECT_THAT(h.service->validate(secret.reveal()), FailsWith(ErrorCode::invalid_token));
  EXPECT_THAT(h.service->rotate_session(a.session_token.reveal()),
              FailsWith(ErrorCode::session_revoked));
}

TEST_P(StoreConformance, EpochIsTheMaxOfGlobalAndSubjectAndBumpAlwaysMovesIt) {
  Harness h(GetParam());
  EXPECT_EQ(*h.service->epoch("alice"), 0u);
  EXPECT_EQ(*h.service->bump_epoch("alice"), 1u);
  EXPECT_EQ(*h.service->epoch("alice"), 1u);
  ASSERT_TRUE(h.store.bump_epoch(""));
  ASSERT_TRUE(h.store.bump_epoch(""));
  ASSERT_TRUE(h.store.bump_epoch(""));
  EXPECT_EQ(*h.service->epoch("alice"), 3u);
  EXPECT_EQ(*h.service->epoch("bob"), 3u);
  EXPECT_EQ(*h.service->bump_epoch("alice"), 4u);
  auto t = h.issue("alice", SessionMode::token);
  auto v = verify_jwt(t.tokens->access_token.reveal(), *h.keys.get(),
                      {.issuer = h.policy.issuer, .audiences = h.policy.audience}, h.clock.now());
  EXPECT_EQ(v->claims.sv, 4u);
}

TEST_P(StoreConformance, EveryEpochMoveIsToldToTheEpochPublisherOnce) {
  Harness h(GetParam());
  using Moves = std::vector<std::pair<std::string, std::uint64_t>>;
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());
  ASSERT_THAT(h.service->bump_global_epoch(), Succeeds());
  auto t = h.issue("bob", SessionMode::token);
  ASSERT_THAT(h.service->logout(t.tokens->refresh_token.reveal(), RevokeScope::all), Succeeds());
  auto c = h.issue("carol");
  ASSERT_THAT(h.service->logout(c.session_token.reveal(), RevokeScope::others), Succeeds());
  EXPECT_EQ(h.epochs.moves(), (Moves{{"alice", 1}, {"", 2}, {"bob", 3}}))
      << "the global epoch passes alice's, bob's own passes the global one; other scopes move "
         "no epoch";
  EXPECT_EQ(*h.service->epoch("bob"), 3u);
}

TEST_P(StoreConformance, LogoutByAccessTokenSeesASigningKeyRotationAtOnce) {
  Harness h(GetParam());
  auto before = h.issue("alice", SessionMode::token);
  KeySet rotated;
  ASSERT_THAT(rotated.add(*Key::generate(Algorithm::EdDSA, "k2", CsprngRandom::instance()),
                          KeyState::active),
              Succeeds());
  h.keys.set(std::move(rotated));
  auto after = h.issue("alice", SessionMode::token);
  EXPECT_THAT(h.service->logout(before.tokens->access_token.reveal(), RevokeScope::session),
              FailsWith(ErrorCode::key_not_found))
      << "k1 left the set: its tokens stop verifying at once";
  auto n = h.service->logout(after.tokens->access_token.reveal(), RevokeScope::session);
  ASSERT_THAT(n, Succeeds());
  EXPECT_EQ(*n, 1u) << "a token of the new key logs out at once";
}

TEST_P(StoreConformance, LogoutByAnExpiredAccessTokenEndsItsLiveSessionButNeedsAnAuthenticOne) {
  Harness h(GetParam());
  auto t = h.issue("alice", SessionMode::token);
  const std::string access(t.tokens->access_token.reveal());
  h.clock.advance(h.policy.access_ttl + seconds{60});
  // The same claims under another key with the same kid: not authentic.
  KeySet other;
  ASSERT_THAT(
      other.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()), KeyState::active),
      Succeeds());
  auto forged_jwt = verify_jwt(
      access, *h.keys.get(),
      {.issuer = h.policy.issuer, .audiences = h.policy.audience, .leeway = h.policy.session_ttl},
      h.clock.now());
  ASSERT_THAT(forged_jwt, Succeeds());
  auto forged = sign_jwt(*other.active(), forged_jwt->claims);
  ASSERT_THAT(forged, Succeeds());
  EXPECT_THAT(h.service->logout(*forged, RevokeScope::session),
              FailsWith(ErrorCode::signature_invalid));
  auto n = h.service->logout(access, RevokeScope::session);
  ASSERT_THAT(n, Succeeds());
  EXPECT_EQ(*n, 1u);
  EXPECT_TRUE((*h.store.find(t.session.id))->revoked());
}

// A leaked old access token is no "log this user out everywhere": only
// its own session may end with it once it has expired.
TEST_P(StoreConformance, AnExpiredAccessTokenEndsOnlyItsOwnSessionNeverItsSiblings) {
  Harness h(GetParam());
  auto t = h.issue("alice", SessionMode::token);
  auto sibling = h.issue("alice", SessionMode::cookie);
  const std::string access(t.tokens->access_token.reveal());
  const std::uint64_t epoch = *h.service->epoch("alice");
  h.clock.advance(h.policy.access_ttl + seconds{60});
  for (RevokeScope scope : {RevokeScope::family, RevokeScope::others, RevokeScope::all}) {
    EXPECT_THAT(h.service->logout(access, scope), FailsWith(ErrorCode::token_expired))
        << to_string(scope);
  }
  EXPECT_FALSE((*h.store.find(sibling.session.id))->revoked());
  EXPECT_FALSE((*h.store.find(t.session.id))->revoked());
  EXPECT_EQ(*h.service->epoch("alice"), epoch) << "scope all bumped nothing";
  auto n = h.service->logout(access, RevokeScope::session);
  ASSERT_THAT(n, Succeeds());
  EXPECT_EQ(*n, 1u);
  EXPECT_FALSE((*h.store.find(sibling.session.id))->revoked());
}

TEST_P(StoreConformance, GlobalEpochBumpRaisesEverySubjectAndASubjectBumpStillMovesItsOwn) {
  Harness h(GetParam());
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());  // alice: 2, bob: 0
  // A token of alice's minted under her epoch 2, before the global bump.
  auto before = h.issue("alice", SessionMode::token);
  auto global = h.service->bump_global_epoch();
  ASSERT_THAT(global, Succeeds());
  EXPECT_EQ(*global, 3u) << "past the highest epoch held, alice's 2";
  EXPECT_EQ(*h.service->global_epoch(), 3u);
  EXPECT_EQ(*h.service->epoch("bob"), 3u) << "a subject never bumped follows the global epoch";
  EXPECT_EQ(*h.service->epoch("alice"), 3u) << "a subject above the old global epoch moves too";
  auto sv = verify_jwt(before.tokens->access_token.reveal(), *h.keys.get(),
                       {.issuer = h.policy.issuer, .audiences = h.policy.audience}, h.clock.now());
  ASSERT_THAT(sv, Succeeds());
  EXPECT_LT(*sv->claims.sv, *h.service->epoch("alice")) << "so the old token is stale";
  global = h.service->bump_global_epoch();
  global = h.service->bump_global_epoch();
  ASSERT_THAT(global, Succeeds());
  EXPECT_EQ(*global, 5u);
  EXPECT_EQ(*h.service->epoch("alice"), 5u);
  EXPECT_EQ(*h.service->epoch("bob"), 5u);
  // Afterwards a subject's bump still moves its effective epoch past the global one.
  auto bob = h.service->bump_epoch("bob");
  ASSERT_THAT(bob, Succeeds());
  EXPECT_EQ(*bob, 6u);
  EXPECT_EQ(*h.service->epoch("bob"), 6u);
  EXPECT_EQ(*h.service->epoch("alice"), 5u);
  EXPECT_EQ(*h.service->global_epoch(), 5u);
  // And tokens carry the effective epoch.
  auto t = h.issue("bob", SessionMode::token);
  auto v = verify_jwt(t.tokens->access_token.reveal(), *h.keys.get(),
                      {.issuer = h.policy.issuer, .audiences = h.policy.audience}, h.clock.now());
  ASSERT_THAT(v, Succeeds());
  EXPECT_EQ(v->claims.sv, 6u);
}

TEST_P(StoreConformance, LookupKeyRotationKeepsEveryoneLoggedInAndReKeys) {
  Harness h(GetParam());
  auto a = h.issue();
  auto t = h.issue("alice", SessionMode::token);
  const LookupKeyRing v12 = make_ring({{1, 'a'}, {2, 'b'}});
  auto svc2 = h.with_ring(v12);
  ASSERT_TRUE(svc2->validate(a.session_token.reveal()));  // found under v1, re-keyed to v2
  auto r = svc2->renew(t.tokens->refresh_token.reveal());
  ASSERT_THAT(r, Succeeds());
  const LookupKeyRing v2 = make_ring({{2, 'b'}});
  auto svc3 = h.with_ring(v2);
  EXPECT_TRUE(svc3->validate(a.session_token.reveal()))
      << "the re-keyed row is found under v2 alone";
  EXPECT_TRUE(svc3->renew(r->tokens.refresh_token.reveal()));
}

TEST_P(StoreConformance, AHitUnderAnOldLookupKeyReportsThatExactKey) {
  Harness h(GetParam());
  auto a = h.issue();
  auto t = h.issue("alice", SessionMode::token);
  const LookupKeyRing v12 = make_ring({{1, 'a'}, {2, 'b'}});
  for (auto [kind, token] : {std::pair{TokenKind::session, &a.session_token},
                             std::pair{TokenKind::refresh, &t.tokens->refresh_token}}) {
    const auto candidates = v12.candidates(kind, *token);
    ASSERT_EQ(candidates.size(), 2u);
    ASSERT_EQ(candidates[1].version, 1u);
    auto hit = h.store.find_by_credential(kind, candidates);
    ASSERT_THAT(hit, Succeeds());
    ASSERT_TRUE(hit->has_value());
    EXPECT_EQ((*hit)->key, candidates[1]) << "the v1 candidate matched, not the active v2 one";
    EXPECT_EQ((*hit)->key.version, 1u);
  }
  // Validation re-keys the session token: the next hit is under v2.
  auto svc2 = h.with_ring(v12);
  ASSERT_THAT(svc2->validate(a.session_token.reveal()), Succeeds());
  const auto candidates = v12.candidates(TokenKind::session, a.session_token);
  auto hit = h.store.find_by_credential(TokenKind::session, candidates);
  ASSERT_THAT(hit, Succeeds());
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((*hit)->key, candidates[0]);
  EXPECT_EQ((*hit)->key.version, 2u);
}

TEST_P(StoreConformance, AuditEventsNeverContainASecret) {
  Harness h(GetParam());
  std::vector<std::string> secrets;
  auto keep = [&](const SecretString& s) { secrets.emplace_back(s.reveal()); };
  auto c = h.issue("alice");
  keep(c.session_token);
  auto t = h.issue("alice", SessionMode::token);
  keep(t.tokens->refresh_token);
  keep(t.tokens->access_token);
  auto r = h.service->renew(t.tokens->refresh_token.reveal());
  keep(r->tokens.refresh_token);
  keep(r->tokens.access_token);
  (void)h.service->validate(c.session_token.reveal());
  (void)h.service->validate("tss_" + std::string(43, 'B'));
  h.clock.advance(seconds{11});
  (void)h.service->renew(t.tokens->refresh_token.reveal());  // replay
  (void)h.service->logout(c.session_token.reveal(), RevokeScope::all);
  const auto lines = h.audit.lines();
  ASSERT_GE(lines.size(), 6u);
  for (const auto& line : lines) {
    for (const auto& secret : secrets) {
      EXPECT_EQ(line.find(secret), std::string::npos) << line;
      EXPECT_EQ(line.find(secret.substr(4, 16)), std::string::npos) << line;
    }
    EXPECT_EQ(line.find("tss_"), std::string::npos) << line;
    EXPECT_EQ(line.find("tsr_"), std::string::npos) << line;
  }
}

// --- the bundled calls (find_by_credential_with_epochs, rotate_with_epochs) --

// The epochs an adapter reads with a lookup or a swap, when it reads them,
// are the store's own; an adapter that does not read them leaves them out.
void expect_epochs(const std::optional<Epochs>& got, SessionStore& store,
                   std::string_view subject) {
  if (!got) return;
  auto want = store.epochs(subject);
  ASSERT_THAT(want, Succeeds());
  EXPECT_EQ(got->global, want->global);
  EXPECT_EQ(got->subject, want->subject);
}

TEST_P(StoreConformance, FindByCredentialWithEpochsFindsWhatFindByCredentialFinds) {
  Harness h(GetParam());
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());
  ASSERT_THAT(h.service->bump_global_epoch(), Succeeds());
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());  // alice 3, global 2
  auto t = h.issue("alice", SessionMode::token);
  const LookupKeyRing v12 = make_ring({{1, 'a'}, {2, 'b'}});
  for (const LookupKeyRing* ring : {static_cast<const LookupKeyRing*>(&h.lookup), &v12}) {
    const auto candidates = ring->candidates(TokenKind::refresh, t.tokens->refresh_token);
    auto plain = h.store.find_by_credential(TokenKind::refresh, candidates);
    auto read = h.store.find_by_credential_with_epochs(TokenKind::refresh, candidates);
    ASSERT_THAT(plain, Succeeds());
    ASSERT_THAT(read, Succeeds());
    ASSERT_TRUE(plain->has_value());
    ASSERT_TRUE(read->hit.has_value());
    EXPECT_EQ(read->hit->key, (*plain)->key) << "the same candidate, the v1 one";
    EXPECT_EQ(read->hit->key.version, 1u);
    EXPECT_EQ(read->hit->generation, 0u);
    EXPECT_EQ(read->hit->session.id, t.session.id);
    EXPECT_EQ(read->hit->session.subject, "alice");
    if (read->epochs) {
      EXPECT_EQ(read->epochs->global, 2u);
      EXPECT_EQ(read->epochs->subject, 3u);
    }
  }
  // No hit: nothing, and no epochs to speak of.
  const auto unknown =
      v12.candidates(TokenKind::refresh, SecretString("tsr_" + std::string(43, 'Q')));
  auto miss = h.store.find_by_credential_with_epochs(TokenKind::refresh, unknown);
  ASSERT_THAT(miss, Succeeds());
  EXPECT_FALSE(miss->hit.has_value());
  // The kind is part of the key: a refresh lookup never finds a session token.
  auto c = h.issue("alice");
  auto wrong = h.store.find_by_credential_with_epochs(
      TokenKind::refresh, h.lookup.candidates(TokenKind::session, c.session_token));
  ASSERT_THAT(wrong, Succeeds());
  EXPECT_FALSE(wrong->hit.has_value());
}

TEST_P(StoreConformance, RotateWithEpochsAnswersWhatTheSwapFound) {
  Harness h(GetParam());
  auto t = h.issue("alice", SessionMode::token);
  ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds());
  const SealedToken sealed{1, "sealed-1"};
  LookupKey next1{.version = 1};
  next1.mac.fill(0x11);
  LookupKey next2{.version = 1};
  next2.mac.fill(0x22);
  const auto now = h.clock.now();

  auto won = h.store.rotate_with_epochs(t.session.id, "alice", 0, next1, sealed, now, std::nullopt);
  ASSERT_THAT(won, Succeeds());
  EXPECT_EQ(won->result, RotateResult::rotated);
  EXPECT_FALSE(won->session.has_value());
  expect_epochs(won->epochs, h.store, "alice");
  auto hit = h.store.find_by_credential(TokenKind::refresh, std::span(&next1, 1));
  ASSERT_TRUE(hit && *hit);
  EXPECT_EQ((*hit)->generation, 1u) << "the new credential is generation 1";

  // The same swap again lost: the session as it now stands comes back.
  auto lost =
      h.store.rotate_with_epochs(t.session.id, "alice", 0, next2, sealed, now, std::nullopt);
  ASSERT_THAT(lost, Succeeds());
  EXPECT_EQ(lost->result, RotateResult::lost_race);
  ASSERT_TRUE(lost->session.has_value());
  EXPECT_EQ(lost->session->generation, 1u);
  EXPECT_EQ(lost->session->rotated_at, now);
  ASSERT_TRUE(lost->session->sealed_current.has_value());
  EXPECT_EQ(lost->session->sealed_current->text, "sealed-1");
  expect_epochs(lost->epochs, h.store, "alice");
  EXPECT_FALSE(*h.store.find_by_credential(TokenKind::refresh, std::span(&next2, 1)))
      << "a lost swap records no credential";

  // Revoked: session_gone, with the revoked session; nothing written.
  ASSERT_THAT(h.store.revoke_family(t.session.family_id, RevokeReason::revoked, now), Succeeds());
  auto gone =
      h.store.rotate_with_epochs(t.session.id, "alice", 1, next2, sealed, now, std::nullopt);
  ASSERT_THAT(gone, Succeeds());
  EXPECT_EQ(gone->result, RotateResult::session_gone);
  ASSERT_TRUE(gone->session.has_value());
  EXPECT_TRUE(gone->session->revoked());
  EXPECT_EQ(gone->session->generation, 1u);
  EXPECT_FALSE(*h.store.find_by_credential(TokenKind::refresh, std::span(&next2, 1)));

  // Unknown: session_gone and no session.
  auto none = h.store.rotate_with_epochs("01ARZ3NDEKTSV4RRFFQ69G5FAV", "alice", 0, next2, sealed,
                                         now, std::nullopt);
  ASSERT_THAT(none, Succeeds());
  EXPECT_EQ(none->result, RotateResult::session_gone);
  EXPECT_FALSE(none->session.has_value());
}

// A store that runs `between` once, just before the next rotate_with_epochs
// goes through: what another instance might do between a renewal's lookup
// and its compare-and-swap.
class Interposer final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::function<void()> between;
  Result<RotateOutcome> rotate_with_epochs(std::string_view id, std::string_view subject,
                                           std::uint64_t e, const LookupKey& n,
                                           const SealedToken& s, UnixSeconds now,
                                           std::optional<UnixSeconds> idle) override {
    if (auto f = std::exchange(between, nullptr)) f();
    return ForwardingStore::rotate_with_epochs(id, subject, e, n, s, now, idle);
  }
};

struct Interposed {
  explicit Interposed(Harness& h, std::optional<seconds> grace = std::nullopt)
      : store(h.store), policy(h.policy) {
    if (grace) policy.refresh_grace = *grace;
    service = *SessionService::create(
        {store, h.lookup, h.cipher, h.keys, h.clock, CsprngRandom::instance(), &h.audit}, policy);
  }
  Interposer store;
  SessionPolicy policy;
  std::unique_ptr<SessionService> service;
};

std::uint64_t sv_of(Harness& h, const SecretString& access) {
  auto v = verify_jwt(access.reveal(), *h.keys.get(),
                      {.issuer = h.policy.issuer, .audiences = h.policy.audience}, h.clock.now());
  if (!v || !v->claims.sv) throw std::runtime_error("no sv");
  return *v->claims.sv;
}

TEST_P(StoreConformance, AnEpochBumpBeforeTheSwapIsInTheRenewedAccessToken) {
  Harness h(GetParam());
  Interposed x(h);
  auto t = h.issue("alice", SessionMode::token);
  x.store.between = [&] { ASSERT_THAT(h.service->bump_epoch("alice"), Succeeds()); };
  auto r = x.service->renew(t.tokens->refresh_token.reveal());
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(sv_of(h, r->tokens.access_token), 1u)
      << "the swap came after the bump: its token carries the bumped epoch";
  x.store.between = [&] { ASSERT_THAT(h.service->bump_global_epoch(), Succeeds()); };
  r = x.service->renew(r->tokens.refresh_token.reveal());
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(sv_of(h, r->tokens.access_token), 2u);
}

TEST_P(StoreConformance, ARevocationBetweenLookupAndSwapWinsAndNothingIsWritten) {
  Harness h(GetParam());
  Interposed x(h);
  for (RevokeScope scope : {RevokeScope::session, RevokeScope::family, RevokeScope::all}) {
    SCOPED_TRACE(to_string(scope));
    auto t = h.issue("alice", SessionMode::token);
    x.store.between = [&] {
      auto n = h.service->logout(t.tokens->refresh_token.reveal(), scope);
      ASSERT_THAT(n, Succeeds());
      EXPECT_GE(*n, 1u);
    };
    const int renewed_before = static_cast<int>(std::ranges::count_if(
        h.audit.lines(), [](const auto& l) { return l.find("\"renewed\"") != std::string::npos; }));
    EXPECT_THAT(x.service->renew(t.tokens->refresh_token.reveal()),
                FailsWith(ErrorCode::session_revoked));
    auto s = h.store.find(t.session.id);
    ASSERT_TRUE(s && *s);
    EXPECT_EQ((*s)->generation, 0u) << "the swap did not happen";
    EXPECT_EQ((*s)->revoke_reason, RevokeReason::logout);
    const int renewed_after = static_cast<int>(std::ranges::count_if(
        h.audit.lines(), [](const auto& l) { return l.find("\"renewed\"") != std::string::npos; }));
    EXPECT_EQ(renewed_after, renewed_before) << "no renewal was audited";
  }
}

TEST_P(StoreConformance, ARenewalBetweenLookupAndSwapMakesTheLoserARetryOrAReplay) {
  Harness h(GetParam());
  {
    Interposed x(h);  // grace 10 s: the loser is rule 2 and gets the winner's successor
    auto t = h.issue("alice", SessionMode::token);
    std::optional<std::string> winner;
    x.store.between = [&] {
      auto w = h.service->renew(t.tokens->refresh_token.reveal());
      ASSERT_THAT(w, Succeeds());
      winner = std::string(w->tokens.refresh_token.reveal());
    };
    auto loser = x.service->renew(t.tokens->refresh_token.reveal());
    ASSERT_THAT(loser, Succeeds());
    ASSERT_TRUE(winner.has_value());
    EXPECT_EQ(loser->tokens.refresh_token.reveal(), *winner);
    EXPECT_EQ(loser->session.generation, 1u);
    EXPECT_EQ((*h.store.find(t.session.id))->generation, 1u) << "one generation, not two";
  }
  {
    Interposed x(h, seconds{0});  // no grace: the loser is a replay
    auto t = h.issue("bob", SessionMode::token);
    x.store.between = [&] {
      ASSERT_THAT(h.service->renew(t.tokens->refresh_token.reveal()), Succeeds());
    };
    EXPECT_THAT(x.service->renew(t.tokens->refresh_token.reveal()),
                FailsWith(ErrorCode::refresh_token_reused));
    EXPECT_EQ((*h.store.find(t.session.id))->revoke_reason, RevokeReason::refresh_token_reused);
  }
}

TEST_P(StoreConformance, StoreFailuresAreStoreUnavailableNeverAWrongAnswer) {
  Harness h(GetParam());
  auto a = h.issue();
  auto t = h.issue("alice", SessionMode::token);
  h.store.fail_reads = true;
  EXPECT_THAT(h.service->validate(a.session_token.reveal()),
              FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(h.service->renew(t.tokens->refresh_token.reveal()),
              FailsWith(ErrorCode::store_unavailable));
  h.store.fail_reads = false;
  h.store.fail_writes = true;
  EXPECT_THAT(h.service->renew(t.tokens->refresh_token.reveal()),
              FailsWith(ErrorCode::store_unavailable));
  EXPECT_THAT(h.service->issue({.subject = "x"}), FailsWith(ErrorCode::store_unavailable));
  h.store.fail_writes = false;
  EXPECT_TRUE(h.service->renew(t.tokens->refresh_token.reveal()))
      << "a failed rotation left nothing behind";
}

// --- races -----------------------------------------------------------------

TEST_P(StoreConformance, ConcurrentRenewalsOfOneTokenConvergeOnOneSuccessor) {
  Harness h(GetParam());
  constexpr int kThreads = 32;
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    auto issued = h.issue("u" + std::to_string(round % 7), SessionMode::token);
    const std::string token(issued.tokens->refresh_token.reveal());
    std::vector<Result<RenewedSession>> results(kThreads, fail(ErrorCode::internal));
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[static_cast<std::size_t>(i)] = h.service->renew(token);
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> successors;
    for (const auto& r : results) {
      ASSERT_THAT(r, Succeeds()) << "round " << round;
      successors.emplace(r->tokens.refresh_token.reveal());
    }
    ASSERT_EQ(successors.size(), 1u) << "round " << round;
    ASSERT_EQ((*h.store.find(issued.session.id))->generation, 1u) << "round " << round;
    ASSERT_TRUE(h.service->renew(*successors.begin())) << "round " << round;
  }
}

TEST_P(StoreConformance, ReplayInterleavedWithLegitimateRenewalsEndsTheFamily) {
  Harness h(GetParam());
  for (int round = 0; round < 20; ++round) {
    auto issued = h.issue("u", SessionMode::token);
    std::string current(issued.tokens->refresh_token.reveal());
    const std::string stolen = current;
    std::atomic<bool> stop{false};
    std::vector<std::string> handed_out{current};
    std::mutex mu;
    std::thread legit([&] {
      for (int i = 0; i < 50 && !stop; ++i) {
        auto r = h.service->renew(current);
        if (!r) break;
        current = std::string(r->tokens.refresh_token.reveal());
        std::lock_guard lock(mu);
        handed_out.push_back(current);
      }
    });
    std::thread thief([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = h.service->renew(stolen);
        if (!r && r.error().code == ErrorCode::refresh_token_reused) break;
        if (r) {
          std::lock_guard lock(mu);
          handed_out.emplace_back(r->tokens.refresh_token.reveal());
        }
        h.clock.advance(seconds{1});  // pushes the stolen token out of grace
      }
      stop = true;
    });
    legit.join();
    thief.join();
    auto s = *h.store.find(issued.session.id);
    ASSERT_TRUE(s->revoked()) << "round " << round;
    EXPECT_EQ(s->revoke_reason, RevokeReason::refresh_token_reused);
    for (const auto& t : handed_out) {
      auto r = h.service->renew(t);
      EXPECT_THAT(r, ::testing::AnyOf(FailsWith(ErrorCode::session_revoked),
                                      FailsWith(ErrorCode::refresh_token_reused)))
          << "a token of a revoked family still renews";
    }
  }
}

// Concurrent writes may share one transaction (SQLite's group commit): a
// write that fails must fail alone, leaving nothing of itself behind and
// taking no other write with it.
TEST_P(StoreConformance, AConcurrentWriteThatFailsTakesNothingWithItAndLeavesNothingBehind) {
  Harness h(GetParam());
  constexpr int kThreads = 32;
  const auto now = h.clock.now();
  for (int round = 0; round < 30; ++round) {
    LookupKey shared{.version = 1};
    shared.mac.fill(static_cast<std::uint8_t>(round));
    std::vector<Session> sessions(kThreads);
    std::vector<Result<RevokeResult>> results(kThreads, fail(ErrorCode::internal));
    for (int i = 0; i < kThreads; ++i) {
      auto& s = sessions[static_cast<std::size_t>(i)];
      s.id = fmt::format("01J{:02}{:02}0000000000000000000", round, i);
      s.subject = fmt::format("s{}", i);
      s.family_id = s.id;
      s.created_at = s.last_seen_at = now;
      s.expires_at = now + seconds{3600};
    }
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        const auto k = static_cast<std::size_t>(i);
        // Even threads all present the same credential: one may win.
        LookupKey credential{.version = 1};
        credential.mac.fill(0xee);
        credential.mac[0] = static_cast<std::uint8_t>(round);
        credential.mac[1] = static_cast<std::uint8_t>(i);
        start.arrive_and_wait();
        results[k] = h.store.create(sessions[k], TokenKind::session,
                                    i % 2 == 0 ? shared : credential, 10, now, std::nullopt);
      });
    }
    for (auto& th : threads) th.join();
    int even_won = 0;
    for (int i = 0; i < kThreads; ++i) {
      const auto k = static_cast<std::size_t>(i);
      auto found = h.store.find(sessions[k].id);
      ASSERT_THAT(found, Succeeds());
      if (i % 2 == 1) {
        ASSERT_THAT(results[k], Succeeds()) << "round " << round;
      }
      if (results[k]) {
        EXPECT_TRUE(found->has_value()) << "a reported write is missing, round " << round;
        even_won += i % 2 == 0;
      } else {
        EXPECT_THAT(results[k], FailsWith(ErrorCode::invalid_request));
        EXPECT_FALSE(found->has_value()) << "a failed write left its session row, round " << round;
      }
    }
    ASSERT_EQ(even_won, 1) << "round " << round;
  }
}

}  // namespace
}  // namespace tessera::testing
