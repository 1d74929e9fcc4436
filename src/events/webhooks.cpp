#include "tessera/webhooks.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "tessera/digest.hpp"
#include "tessera/session.hpp"

namespace tessera {

namespace json = boost::json;

namespace {

constexpr std::string_view kPrefix = "whsec_";

std::string rfc3339_ms(UnixMillis t) {
  const auto ms = t.time_since_epoch().count();
  const auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(secs),
                     static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000));
}

}  // namespace

Result<WebhookSecret> WebhookSecret::parse(std::string_view text) {
  if (!text.starts_with(kPrefix))
    return fail(ErrorCode::key_invalid, "webhook secret: must start with whsec_");
  auto key = base64_decode(text.substr(kPrefix.size()));
  if (!key) return fail(ErrorCode::key_invalid, "webhook secret: not base64 after whsec_");
  if (key->size() < 24 || key->size() > 64)
    return fail(ErrorCode::key_invalid,
                fmt::format("webhook secret: {} bytes; must be 24 to 64", key->size()));
  WebhookSecret s{SecretString(std::string(as_chars(*key)))};
  std::fill(key->begin(), key->end(), std::uint8_t{0});
  return s;
}

WebhookSecret WebhookSecret::generate(Random& random) {
  std::array<std::uint8_t, 32> b{};
  random.fill(b);
  WebhookSecret s{SecretString(std::string(as_chars(b)))};
  b.fill(0);
  return s;
}

SecretString WebhookSecret::text() const {
  return SecretString(std::string(kPrefix) + base64_encode(as_bytes(key_.reveal())));
}

std::string WebhookSecret::sign(std::string_view id, std::int64_t timestamp,
                                std::string_view body) const {
  const std::string content = fmt::format("{}.{}.{}", id, timestamp, body);
  return "v1," + base64_encode(hmac_sha256(as_bytes(key_.reveal()), content));
}

std::string_view webhook_type(EventType type) noexcept {
  switch (type) {
    case EventType::session_revoked:
      return "session.revoked";
    case EventType::family_revoked:
      return "family.revoked";
    case EventType::replay_detected:
      return "session.replay_detected";
    case EventType::epoch_bumped:
      return "subject.epoch_bumped";
    case EventType::signing_key_rotated:
      return "signing_key.rotated";
  }
  return "unknown";
}

std::string webhook_body(const Event& e) {
  json::object data;
  data["event_id"] = e.id();
  switch (e.type) {
    case EventType::session_revoked:
      data["subject"] = e.subject;
      data["session_id"] = e.session_id;
      if (!e.family_id.empty()) data["family_id"] = e.family_id;
      break;
    case EventType::family_revoked:
    case EventType::replay_detected:
      data["subject"] = e.subject;
      data["family_id"] = e.family_id;
      break;
    case EventType::epoch_bumped:
      // "" is the global epoch: every subject.
      data["subject"] = e.subject;
      data["global"] = e.subject.empty();
      data["epoch"] = e.epoch;
      break;
    case EventType::signing_key_rotated:
      data["kid"] = e.kid;
      break;
  }
  if (e.reason) data["reason"] = to_string(*e.reason);
  data["occurred_at"] = rfc3339_ms(e.at);
  json::object body;
  body["type"] = webhook_type(e.type);
  body["timestamp"] = rfc3339_ms(e.at);
  body["data"] = std::move(data);
  return json::serialize(body);
}

WebhookConsumer::WebhookConsumer(WebhookEndpoint endpoint, const Clock& clock)
    : endpoint_(std::move(endpoint)), clock_(clock) {}

Status WebhookConsumer::deliver(const Event& event) {
  const std::string id = event.id();
  const std::int64_t ts = clock_.now().time_since_epoch().count();
  std::string body = webhook_body(event);
  verify::HttpCall call{.url = endpoint_.url,
                        .headers = {{"Content-Type", "application/json"},
                                    {"webhook-id", id},
                                    {"webhook-timestamp", std::to_string(ts)},
                                    {"webhook-signature", endpoint_.secret.sign(id, ts, body)}},
                        .body = std::move(body)};
  auto answer = verify::send(std::move(call), endpoint_.http, ErrorCode::upstream_unavailable);
  if (!answer) return std::unexpected(answer.error());
  if (answer->status < 200 || answer->status > 299)
    return fail(ErrorCode::upstream_unavailable,
                fmt::format("webhook {}: HTTP {}", endpoint_.url, answer->status));
  return {};
}

}  // namespace tessera
