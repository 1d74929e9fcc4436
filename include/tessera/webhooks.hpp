// Webhooks (docs/events.md "Webhooks"): the outbox's events POSTed to an
// endpoint as the Standard Webhooks specification has them
// (https://www.standardwebhooks.com): a JSON body {"type", "timestamp",
// "data"} and three headers, `webhook-id` (the event's stable id, by which
// the receiver de-duplicates), `webhook-timestamp` (Unix seconds of the
// attempt) and `webhook-signature` ("v1," and the base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>" under the endpoint's secret).
//
// The types: session.revoked, family.revoked, session.replay_detected,
// subject.epoch_bumped, signing_key.rotated. The data holds ids, the
// subject, the reason and times, never a credential or a secret.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "tessera/clock.hpp"
#include "tessera/encoding.hpp"
#include "tessera/error.hpp"
#include "tessera/outbox.hpp"
#include "tessera/random.hpp"
#include "tessera/secret.hpp"
#include "tessera/verify_http.hpp"

namespace tessera {

// A Standard Webhooks signing secret: "whsec_" and the standard base64 of
// 24 to 64 random bytes (the key is the decoded bytes).
class WebhookSecret {
 public:
  // key_invalid for anything else; the detail never repeats the text.
  [[nodiscard]] static Result<WebhookSecret> parse(std::string_view text);
  // 32 bytes from `random`.
  [[nodiscard]] static WebhookSecret generate(Random& random);

  // "whsec_..." (for the settings file; a secret: print it once, if ever).
  [[nodiscard]] SecretString text() const;
  // "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
  [[nodiscard]] std::string sign(std::string_view id, std::int64_t timestamp,
                                 std::string_view body) const;

 private:
  explicit WebhookSecret(SecretString key) : key_(std::move(key)) {}
  SecretString key_;  // the decoded bytes; wiped when it goes
};

// The webhook type of an event ("session.revoked", ...).
[[nodiscard]] std::string_view webhook_type(EventType type) noexcept;
// The JSON body for an event: {"type", "timestamp" (the change's commit
// time, RFC 3339 with milliseconds), "data"}.
[[nodiscard]] std::string webhook_body(const Event& event);

struct WebhookEndpoint {
  std::string url;  // http:// or https://
  WebhookSecret secret;
  verify::HttpOptions http{.timeout = std::chrono::seconds{5}};
};

// One endpoint as an outbox consumer: each event POSTed, signed; any 2xx
// is delivered, anything else (a 4xx included: the receiver may be
// misconfigured for a while, and events must not be lost meanwhile), a
// timeout or no answer is upstream_unavailable and the dispatcher tries
// again later (docs/events.md). One consumer per endpoint, so an endpoint
// that is down holds back no other.
class WebhookConsumer final : public EventConsumer {
 public:
  WebhookConsumer(WebhookEndpoint endpoint, const Clock& clock);
  [[nodiscard]] Status deliver(const Event& event) override;
  [[nodiscard]] const std::string& url() const noexcept { return endpoint_.url; }

 private:
  WebhookEndpoint endpoint_;
  const Clock& clock_;
};

}  // namespace tessera
