#include "server/json_views.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <optional>

namespace tessera::server {

namespace json = boost::json;

namespace {

json::value optional_time(const std::optional<UnixSeconds>& t) {
  return t ? json::value(unix_seconds(*t)) : json::value(nullptr);
}

}  // namespace

json::object session_json(const Session& s, json::storage_ptr storage, SessionView view) {
  json::object o(13, storage);
  o["id"] = s.id;
  o["subject"] = s.subject;
  o["family_id"] = s.family_id;
  o["mode"] = to_string(s.mode);
  o["created_at"] = unix_seconds(s.created_at);
  o["last_seen_at"] = unix_seconds(s.last_seen_at);
  o["expires_at"] = unix_seconds(s.expires_at);
  o["idle_expires_at"] = optional_time(s.idle_expires_at);
  o["revoked_at"] = optional_time(s.revoked_at);
  o["revoke_reason"] =
      s.revoke_reason ? json::value(to_string(*s.revoke_reason)) : json::value(nullptr);
  o["generation"] = s.generation;
  if (view == SessionView::client) return o;
  json::object m(3, storage);
  m["ip"] = s.metadata.ip;
  m["user_agent"] = s.metadata.user_agent;
  m["device"] = s.metadata.device;
  o["metadata"] = std::move(m);
  // The engine stores only objects (IssueRequest::data is checked), but a
  // row written by hand or by an older version must not break the schema.
  json::error_code ec;
  json::value data = json::parse(s.data, ec, storage);
  o["data"] = ec || !data.is_object() ? json::value(json::object{}) : std::move(data);
  return o;
}

json::object token_pair_json(const Session& s, const TokenPair& t, json::storage_ptr storage,
                             SessionView view) {
  json::object o(7, storage);
  o["mode"] = "token";
  o["session"] = session_json(s, storage, view);
  o["access_token"] = t.access_token.reveal();
  // A DPoP-bound session's access tokens carry cnf.jkt (RFC 9449 §5).
  o["token_type"] = s.bound_jkt.empty() ? "Bearer" : "DPoP";
  o["access_expires_at"] = unix_seconds(t.access_expires_at);
  o["refresh_token"] = t.refresh_token.reveal();
  o["refresh_expires_at"] = unix_seconds(t.refresh_expires_at);
  return o;
}

}  // namespace tessera::server
