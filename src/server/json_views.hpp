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

// The Session schema: every member always present (times that do not apply
// are null); `data` is always an object ({} if the stored text is not one).
// Made with `storage` (a JsonScratch's, or the heap by default), like the
// token pair below.
[[nodiscard]] boost::json::object session_json(const Session& session,
                                               boost::json::storage_ptr storage = {});

// The TokenPairResponse schema: `"mode": "token"` (the discriminator the
// issue answer shares with cookie mode), the session and both of its tokens.
// The issue and the refresh answer are both this object.
[[nodiscard]] boost::json::object token_pair_json(const Session& session, const TokenPair& tokens,
                                                  boost::json::storage_ptr storage = {});

}  // namespace tessera::server
