// In-memory SessionStore: for tests and for an embedded single process that
// accepts losing its sessions on restart. One reader-writer lock guards
// everything; every method is atomic.
#pragma once

#include <memory>

#include "tessera/session.hpp"

namespace tessera {

[[nodiscard]] std::unique_ptr<SessionStore> make_memory_store();

}  // namespace tessera
