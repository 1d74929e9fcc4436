// The JWK parsing entry points that take an already parsed JSON object (the
// `jwk` of a DPoP proof's header), for the core's own translation units.
#pragma once

#include <boost/json/object.hpp>

#include "tessera/jwk.hpp"

namespace tessera::detail {

// Key::from_public_jwk, on a parsed object.
[[nodiscard]] Result<Key> public_key_from_jwk_object(const boost::json::object& o);

}  // namespace tessera::detail
