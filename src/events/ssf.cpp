#include "tessera/ssf.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "tessera/jwt.hpp"
#include "tessera/session.hpp"

namespace tessera {

namespace json = boost::json;

namespace {

json::value audience_json(const std::vector<std::string>& aud) {
  if (aud.size() == 1) return json::value(aud.front());
  json::array a;
  for (const auto& x : aud) a.emplace_back(x);
  return a;
}

json::array strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& x : v) a.emplace_back(x);
  return a;
}

// CAEP's initiating_entity for what ended the session.
std::string_view initiating_entity(std::optional<RevokeReason> reason) {
  if (!reason) return "system";
  switch (*reason) {
    case RevokeReason::logout:
      return "user";
    case RevokeReason::revoked:
      return "admin";
    case RevokeReason::evicted:
    case RevokeReason::rotated:
    case RevokeReason::fingerprint_mismatch:
    case RevokeReason::refresh_token_reused:
    case RevokeReason::upstream_revoked:
    case RevokeReason::dpop_key_mismatch:
      return "policy";
  }
  return "system";
}

Result<std::vector<std::string>> string_list(const json::object& o, std::string_view name) {
  std::vector<std::string> out;
  const auto* v = o.if_contains(name);
  if (v == nullptr) return out;
  if (v->is_string()) {
    out.emplace_back(v->as_string());
    return out;
  }
  if (!v->is_array()) return fail(ErrorCode::invalid_request, fmt::format("{}: not a list", name));
  for (const auto& x : v->as_array()) {
    if (!x.is_string())
      return fail(ErrorCode::invalid_request, fmt::format("{}: not a list of strings", name));
    out.emplace_back(x.as_string());
  }
  return out;
}

}  // namespace

std::vector<std::string> SsfStream::events_delivered() const {
  std::vector<std::string> out;
  for (const auto& e : events_requested) {
    if (e == kCaepSessionRevoked) out.push_back(e);
  }
  return out;
}

std::string ssf_stream_json(const SsfStream& s, std::string_view issuer) {
  json::object o;
  o["stream_id"] = s.id;
  o["iss"] = issuer;
  o["aud"] = audience_json(s.audience);
  o["events_supported"] = json::array{kCaepSessionRevoked};
  o["events_requested"] = strings(s.events_requested);
  o["events_delivered"] = strings(s.events_delivered());
  o["delivery"] = json::object{{"method", kSsfPushDelivery}, {"endpoint_url", s.endpoint_url}};
  if (!s.description.empty()) o["description"] = s.description;
  return json::serialize(o);
}

Result<std::vector<SsfStream>> parse_ssf_streams(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec || !v.is_array()) return fail(ErrorCode::config_invalid, "not a JSON array of streams");
  std::vector<SsfStream> out;
  for (const auto& item : v.as_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) return fail(ErrorCode::config_invalid, "a stream is not an object");
    auto str = [&](std::string_view name) {
      const auto* m = o->if_contains(name);
      return m != nullptr && m->is_string() ? std::string(m->as_string()) : std::string();
    };
    SsfStream s;
    s.id = str("stream_id");
    s.endpoint_url = str("endpoint_url");
    s.description = str("description");
    s.authorization = SecretString(str("authorization"));
    auto aud = string_list(*o, "aud");
    auto events = string_list(*o, "events_requested");
    if (!aud || !events || s.id.empty() || s.endpoint_url.empty())
      return fail(ErrorCode::config_invalid, "a stream lacks stream_id, endpoint_url or aud");
    s.audience = std::move(*aud);
    s.events_requested = std::move(*events);
    if (const auto* c = o->if_contains("created_at"); c != nullptr && c->is_int64())
      s.created_at = UnixSeconds{std::chrono::seconds{c->as_int64()}};
    out.push_back(std::move(s));
  }
  return out;
}

std::string ssf_streams_text(const std::vector<SsfStream>& streams) {
  json::array a;
  for (const auto& s : streams) {
    json::object o;
    o["stream_id"] = s.id;
    o["endpoint_url"] = s.endpoint_url;
    o["aud"] = strings(s.audience);
    o["events_requested"] = strings(s.events_requested);
    o["description"] = s.description;
    o["authorization"] = s.authorization.reveal();
    o["created_at"] = s.created_at.time_since_epoch().count();
    a.push_back(std::move(o));
  }
  return json::serialize(a) + "\n";
}

std::optional<std::string> ssf_set_claims(const Event& e, const SsfStream& s,
                                          std::string_view issuer, UnixSeconds now) {
  if (s.events_delivered().empty()) return std::nullopt;
  json::object sub_id;
  if (e.type == EventType::session_revoked) {
    sub_id = {{"format", "complex"},
              {"session", json::object{{"format", "opaque"}, {"id", e.session_id}}},
              {"user", json::object{{"format", "opaque"}, {"id", e.subject}}}};
  } else if (e.type == EventType::epoch_bumped && !e.subject.empty()) {
    sub_id = {{"format", "opaque"}, {"id", e.subject}};
  } else {
    return std::nullopt;  // families: their sessions' events say it; the global epoch: no subject
  }
  json::object caep;
  caep["event_timestamp"] =
      std::chrono::duration_cast<std::chrono::seconds>(e.at.time_since_epoch()).count();
  caep["initiating_entity"] =
      e.type == EventType::epoch_bumped ? std::string_view("admin") : initiating_entity(e.reason);
  if (e.reason) caep["reason_admin"] = json::object{{"en", to_string(*e.reason)}};
  json::object claims;
  claims["iss"] = issuer;
  claims["jti"] = e.id();
  claims["iat"] = now.time_since_epoch().count();
  claims["aud"] = audience_json(s.audience);
  claims["sub_id"] = std::move(sub_id);
  claims["events"] = json::object{{kCaepSessionRevoked, std::move(caep)}};
  return json::serialize(claims);
}

std::shared_ptr<const std::vector<SsfStream>> SsfStreams::get() const {
  std::lock_guard lock(mu_);
  return streams_;
}

void SsfStreams::set(std::vector<SsfStream> streams) {
  auto fresh = std::make_shared<const std::vector<SsfStream>>(std::move(streams));
  std::lock_guard lock(mu_);
  streams_.swap(fresh);
}

SsfPushConsumer::SsfPushConsumer(const SsfStreams& streams, const SharedKeySet& keys,
                                 std::string issuer, const Clock& clock, verify::HttpOptions http)
    : streams_(streams), keys_(keys), issuer_(std::move(issuer)), clock_(clock), http_(http) {}

Status SsfPushConsumer::deliver(const Event& event) {
  const auto streams = streams_.get();
  const auto keys = keys_.get();
  for (const SsfStream& s : *streams) {
    auto claims = ssf_set_claims(event, s, issuer_, clock_.now());
    if (!claims) continue;
    const Key* key = keys->active();
    if (key == nullptr) return fail(ErrorCode::key_invalid, "no active signing key");
    // A receiver verifies through the JWKS, which never holds a secret key.
    if (key->is_symmetric())
      return fail(ErrorCode::key_invalid, "SETs need an asymmetric signing key (not HS256)");
    auto set = sign_jws(*key, "secevent+jwt", *claims);
    if (!set) return std::unexpected(set.error());
    verify::HttpCall call{
        .url = s.endpoint_url,
        .headers = {{"Content-Type", "application/secevent+jwt"}, {"Accept", "application/json"}},
        .body = std::move(*set)};
    if (!s.authorization.empty())
      call.headers.emplace_back("Authorization", std::string(s.authorization.reveal()));
    auto r = verify::send(std::move(call), http_, ErrorCode::upstream_unavailable);
    if (!r) return std::unexpected(r.error());
    if (r->status >= 200 && r->status <= 299) continue;
    if (r->status == 400) {
      if (on_refused) on_refused(s, event, r->status);
      continue;
    }
    return fail(ErrorCode::upstream_unavailable,
                fmt::format("SSF stream {}: HTTP {}", s.id, r->status));
  }
  return {};
}

}  // namespace tessera
