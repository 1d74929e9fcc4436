// Standard Webhooks signing (tessera::WebhookSecret) and the standard
// base64 it rides on. The signature vector was computed with Python's hmac
// and base64 modules (an implementation independent of ours).
#include "tessera/webhooks.hpp"

#include <gtest/gtest.h>

#include "tessera/session.hpp"

namespace tessera {
namespace {

TEST(Base64, RoundTripsAndIsStrict) {
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const std::string enc = base64_encode(as_bytes(s));
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(as_chars(*dec), s);
  }
  EXPECT_EQ(base64_encode(as_bytes(std::string_view("foobar"))), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(as_bytes(std::string_view("fo"))), "Zm8=");
  EXPECT_EQ(base64_encode(as_bytes(std::string_view("\xfb\xff"))), "+/8=");
  EXPECT_FALSE(base64_decode("Zm8"));    // padding missing
  EXPECT_FALSE(base64_decode("Zm8=="));  // too much
  EXPECT_FALSE(base64_decode("Zg=A"));   // padding inside
  EXPECT_FALSE(base64_decode("-_8="));   // the url alphabet
  EXPECT_FALSE(base64_decode("Zm9="));   // unused bits set
  EXPECT_FALSE(base64_decode("Zm 8"));
}

TEST(WebhookSecret, SignsAsTheSpecificationSays) {
  auto secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(secret);
  EXPECT_EQ(secret->sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_EQ(secret->text().reveal(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
}

TEST(WebhookSecret, RefusesWhatIsNotASecretWithoutRepeatingIt) {
  for (std::string_view bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!",
                               "whsec_dG9vc2hvcnQ=" /* 9 bytes */}) {
    auto s = WebhookSecret::parse(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code, ErrorCode::key_invalid);
    if (bad.size() > 6) {
      EXPECT_EQ(s.error().detail.find(bad.substr(6)), std::string::npos);
    }
  }
}

TEST(WebhookSecret, GeneratedSecretsParseAndDiffer) {
  auto& random = CsprngRandom::instance();
  const auto a = WebhookSecret::generate(random).text();
  const auto b = WebhookSecret::generate(random).text();
  EXPECT_TRUE(WebhookSecret::parse(a.reveal()));
  EXPECT_FALSE(a == b);
}

TEST(WebhookBody, CarriesTheTypeTimeAndIdsOfTheEvent) {
  Event e{.seq = 7,
          .type = EventType::session_revoked,
          .at = UnixMillis(std::chrono::milliseconds(1'700'000'000'123)),
          .subject = "alice",
          .session_id = "ses_1",
          .family_id = "fam_1",
          .reason = RevokeReason::logout};
  const std::string body = webhook_body(e);
  EXPECT_NE(body.find(R"("type":"session.revoked")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("timestamp":"2023-11-14T22:13:20.123Z")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("session_id":"ses_1")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("reason":"logout")"), std::string::npos) << body;
  EXPECT_NE(body.find(e.id()), std::string::npos) << body;
  EXPECT_EQ(webhook_type(EventType::replay_detected), "session.replay_detected");
  EXPECT_EQ(webhook_type(EventType::epoch_bumped), "subject.epoch_bumped");
  EXPECT_EQ(webhook_type(EventType::signing_key_rotated), "signing_key.rotated");
  EXPECT_EQ(webhook_type(EventType::family_revoked), "family.revoked");
}

}  // namespace
}  // namespace tessera
