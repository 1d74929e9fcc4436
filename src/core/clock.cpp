#include "tessera/clock.hpp"

namespace tessera {

UnixMillis SystemClock::now_ms() const noexcept {
  return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

SystemClock& SystemClock::instance() noexcept {
  static SystemClock clock;
  return clock;
}

}  // namespace tessera
