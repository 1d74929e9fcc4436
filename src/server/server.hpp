// The HTTP authority (docs/api.md) on Boost.Beast: async, one io_context per
// io thread (one per core by default), every read bounded (header and body
// size, deadlines, connection count). This header is the seam between the
// server and `tessera serve` (src/cli): it names no Boost type, so the
// command line does not compile Beast.
#pragma once

#include <cstdint>
#include <memory>

#include "server/metrics.hpp"
#include "server/options.hpp"
#include "tessera/error.hpp"

namespace tessera::server {

class Server {
 public:
  // Binds and listens (so port() is known), but serves nothing until run().
  // config_invalid for bad options, store_unavailable never; an address in
  // use or not bindable is config_invalid naming `listen`.
  [[nodiscard]] static Result<std::unique_ptr<Server>> create(ServerOptions options,
                                                              ServerDeps deps);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;
  // Serves on `threads` io threads until stop() (or SIGINT/SIGTERM) and the
  // drain are done. Returns once every in-flight request has been answered or
  // drain_timeout passed.
  void run();
  // Thread-safe: stops accepting, lets in-flight requests finish, closes
  // idle keep-alive connections.
  void stop() noexcept;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::server
