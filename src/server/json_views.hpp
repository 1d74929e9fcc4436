// The JSON views of the engine's values: the API's session object
// (docs/openapi.yaml `Session`) and the token pair around it. One home, used
// by the HTTP answers and by the command line's output (`tessera sessions
// list`), so both show a session the same way. Never a secret but the
// tokens token_pair_json is asked to carry.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>

#include "tessera/session.hpp"
#include "tessera/session_service.hpp"

namespace tessera::server {

// Seconds since the Unix epoch, as every time in the API is written.
[[nodiscard]] constexpr std::int64_t unix_seconds(UnixSeconds t) noexcept {
  return t.time_since_epoch().count();
}

// Who reads the session object. `service`: an API-key holder (issue,
// validate, the subject listings): the Session schema whole. `client`: a
// public answer (refresh), which the token holder reads: the same object
// without `metadata` and `data` — the IP, the user agent and the app's data
// are server-side information (schema PublicSession, docs/api.md §3.3).
enum class SessionView : bool { service, client };

// The Session schema: every member always present (times that do not apply
// are null); `data` is always an object ({} if the stored text is not one).
// Made with `storage` (a JsonScratch's, or the heap by default), like the
// token pair below.
[[nodiscard]] boost::json::object session_json(const Session& session,
                                               boost::json::storage_ptr storage = {},
                                               SessionView view = SessionView::service);

// The TokenPairResponse schema: `"mode": "token"` (the discriminator the
// issue answer shares with cookie mode), the session and both of its tokens.
// The issue answer (view `service`) and the refresh answer (view `client`)
// are both this object.
[[nodiscard]] boost::json::object token_pair_json(const Session& session, const TokenPair& tokens,
                                                  boost::json::storage_ptr storage = {},
                                                  SessionView view = SessionView::service);

}  // namespace tessera::server
