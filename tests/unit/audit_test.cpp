// The audit vocabulary is read by machines (log pipelines, the metrics'
// labels, databases holding revoke reasons): these tests pin its spellings.
#include "tessera/audit.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tessera {
namespace {

constexpr UnixSeconds kAt{std::chrono::seconds{1700000000}};

template <typename Enum, std::size_t N, typename FromString>
std::vector<std::string> names_round_trip(const Enum (&all)[N], FromString from_string) {
  std::vector<std::string> names;
  for (Enum e : all) {
    names.emplace_back(to_string(e));
    EXPECT_EQ(from_string(to_string(e)), e) << to_string(e);
  }
  return names;
}

TEST(AuditVocabulary, EventTypeNamesAreStableAndRoundTrip) {
  EXPECT_EQ(names_round_trip(kAllAuditEventTypes, audit_event_type_from_string),
            (std::vector<std::string>{"issued", "renewed", "replay_detected", "revoked", "evicted",
                                      "epoch_bumped", "key_rotated", "validate_failed"}));
  EXPECT_EQ(audit_event_type_from_string("Issued"), std::nullopt);
  EXPECT_EQ(audit_event_type_from_string(""), std::nullopt);
}

TEST(AuditVocabulary, RevokeReasonNamesAreStableAndRoundTrip) {
  EXPECT_EQ(
      names_round_trip(kAllRevokeReasons, revoke_reason_from_string),
      (std::vector<std::string>{"logout", "revoked", "evicted", "rotated", "fingerprint_mismatch",
                                "refresh_token_reused", "upstream_revoked", "dpop_key_mismatch"}));
  EXPECT_EQ(revoke_reason_from_string("device_key_mismatch"), std::nullopt);
  EXPECT_EQ(revoke_reason_from_string(""), std::nullopt);
}

TEST(AuditVocabulary, ActorNamesAreStableAndRoundTrip) {
  EXPECT_EQ(names_round_trip(kAllActors, actor_from_string),
            (std::vector<std::string>{"user", "service", "system"}));
  EXPECT_EQ(actor_from_string("admin"), std::nullopt);
}

TEST(AuditVocabulary, RevokeScopeNamesAreStableAndRoundTrip) {
  EXPECT_EQ(names_round_trip(kAllRevokeScopes, revoke_scope_from_string),
            (std::vector<std::string>{"session", "family", "others", "all"}));
  EXPECT_EQ(revoke_scope_from_string("everything"), std::nullopt);
}

// One line per event type, as the engine and `tessera keys rotate` emit them.
TEST(AuditJsonLine, EveryEventTypeKeepsItsExactLine) {
  struct Case {
    AuditEvent event;
    std::string line;
  };
  const std::vector<Case> cases = {
      {{.type = AuditEventType::issued,
        .at = kAt,
        .subject = "alice",
        .session_id = "S1",
        .family_id = "F1"},
       R"({"event":"issued","at":1700000000,"subject":"alice","session_id":"S1","family_id":"F1"})"},
      {{.type = AuditEventType::renewed,
        .at = kAt,
        .subject = "alice",
        .session_id = "S1",
        .family_id = "F1",
        .count = 3},
       R"({"event":"renewed","at":1700000000,"subject":"alice","session_id":"S1","family_id":"F1","count":3})"},
      {{.type = AuditEventType::replay_detected,
        .at = kAt,
        .subject = "alice",
        .session_id = "S1",
        .family_id = "F1",
        .count = 1},
       R"({"event":"replay_detected","at":1700000000,"subject":"alice","session_id":"S1","family_id":"F1","count":1})"},
      {{.type = AuditEventType::revoked,
        .at = kAt,
        .subject = "alice",
        .session_id = "S1",
        .family_id = "F1",
        .scope = RevokeScope::family,
        .reason = RevokeReason::refresh_token_reused,
        .actor = Actor::system,
        .count = 2},
       R"({"event":"revoked","at":1700000000,"subject":"alice","session_id":"S1","family_id":"F1","scope":"family","reason":"refresh_token_reused","actor":"system","count":2})"},
      {{.type = AuditEventType::evicted,
        .at = kAt,
        .subject = "alice",
        .session_id = "S0",
        .reason = RevokeReason::evicted,
        .actor = Actor::system},
       R"({"event":"evicted","at":1700000000,"subject":"alice","session_id":"S0","reason":"evicted","actor":"system"})"},
      {{.type = AuditEventType::epoch_bumped, .at = kAt, .subject = "alice", .count = 7},
       R"({"event":"epoch_bumped","at":1700000000,"subject":"alice","count":7})"},
      {{.type = AuditEventType::key_rotated,
        .at = kAt,
        .actor = Actor::system,
        .kid = "k-2026",
        .count = 1},
       R"({"event":"key_rotated","at":1700000000,"reason":"k-2026","actor":"system","count":1})"},
      {{.type = AuditEventType::validate_failed,
        .at = kAt,
        .subject = "alice",
        .session_id = "S1",
        .code = ErrorCode::session_idle_timeout},
       R"({"event":"validate_failed","at":1700000000,"subject":"alice","session_id":"S1","code":"session_idle_timeout"})"},
  };
  ASSERT_EQ(cases.size(), kAuditEventTypeCount);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].event.type, kAllAuditEventTypes[i]);
    EXPECT_EQ(to_json_line(cases[i].event), cases[i].line);
  }
}

TEST(AuditJsonLine, ARevocationByTheUserNamesEveryScopeAndActor) {
  EXPECT_EQ(
      to_json_line({.type = AuditEventType::revoked,
                    .at = kAt,
                    .subject = "bob",
                    .scope = RevokeScope::all,
                    .reason = RevokeReason::logout,
                    .actor = Actor::user,
                    .count = 4}),
      R"({"event":"revoked","at":1700000000,"subject":"bob","scope":"all","reason":"logout","actor":"user","count":4})");
  EXPECT_EQ(
      to_json_line({.type = AuditEventType::revoked,
                    .at = kAt,
                    .subject = "bob",
                    .scope = RevokeScope::others,
                    .reason = RevokeReason::revoked,
                    .actor = Actor::service}),
      R"({"event":"revoked","at":1700000000,"subject":"bob","scope":"others","reason":"revoked","actor":"service"})");
}

}  // namespace
}  // namespace tessera
