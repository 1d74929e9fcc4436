// An OpenID Shared Signals Framework transmitter (docs/events.md "SSF"):
// streams that receivers configure, and push delivery (RFC 8935) of CAEP
// session-revoked Security Event Tokens (RFC 8417, typ secevent+jwt) for
// the outbox's session revocations and subject-wide epoch bumps, signed
// with the authority's active key.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/key_set.hpp"
#include "tessera/outbox.hpp"
#include "tessera/secret.hpp"
#include "tessera/verify_http.hpp"

namespace tessera {

inline constexpr std::string_view kSsfPushDelivery = "urn:ietf:rfc:8935";
inline constexpr std::string_view kCaepSessionRevoked =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

struct SsfStream {
  std::string id;                             // "ssf_" and a ULID
  std::string endpoint_url;                   // the receiver's push endpoint (http or https)
  std::vector<std::string> audience;          // the `aud` of its SETs
  std::vector<std::string> events_requested;  // event type URIs
  std::string description;
  // Sent as the Authorization header of each push ("" → none). A secret:
  // kept in the streams file, never answered.
  SecretString authorization;
  UnixSeconds created_at{};

  // The requested events this transmitter supports (today: session-revoked).
  [[nodiscard]] std::vector<std::string> events_delivered() const;
};

// The stream configuration as SSF 1.0 §8.1.1 answers it (stream_id, iss,
// aud, events_supported, events_requested, events_delivered, delivery,
// description). Never the authorization header.
[[nodiscard]] std::string ssf_stream_json(const SsfStream& stream, std::string_view issuer);

// The streams file: a JSON array of streams, authorization included.
[[nodiscard]] Result<std::vector<SsfStream>> parse_ssf_streams(std::string_view text);
[[nodiscard]] std::string ssf_streams_text(const std::vector<SsfStream>& streams);

// The claims of the SET announcing `event` to `stream`, or nullopt when
// the stream takes nothing of it: session_revoked → a session-revoked of
// the session (a complex sub_id: session and user), epoch_bumped of a
// subject → a session-revoked of the user (every session of the subject).
[[nodiscard]] std::optional<std::string> ssf_set_claims(const Event& event, const SsfStream& stream,
                                                        std::string_view issuer, UnixSeconds now);

// The streams in force; replaced whole, read per delivery. Thread-safe.
class SsfStreams {
 public:
  [[nodiscard]] std::shared_ptr<const std::vector<SsfStream>> get() const;
  void set(std::vector<SsfStream> streams);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<SsfStream>> streams_ =
      std::make_shared<const std::vector<SsfStream>>();
};

// The outbox consumer that pushes SETs to every stream that takes the
// event. 2xx is delivered; 400 (RFC 8935 §2.3: the receiver refused this
// SET, and will refuse it again) is logged through `on_refused` and not
// retried; anything else is upstream_unavailable and the event is retried
// for every stream (receivers de-duplicate by jti, the event's id).
class SsfPushConsumer final : public EventConsumer {
 public:
  SsfPushConsumer(const SsfStreams& streams, const SharedKeySet& keys, std::string issuer,
                  const Clock& clock, verify::HttpOptions http = {});
  [[nodiscard]] Status deliver(const Event& event) override;
  // Called (from the dispatcher's thread) for a SET a receiver refused.
  std::function<void(const SsfStream&, const Event&, unsigned status)> on_refused;

 private:
  const SsfStreams& streams_;
  const SharedKeySet& keys_;
  std::string issuer_;
  const Clock& clock_;
  verify::HttpOptions http_;
};

}  // namespace tessera
