// The HTTP authority (docs/api.md) on Boost.Beast: async, one io_context per io
// thread (one per core by default), every read bounded (header and body
// size, deadlines, pipelining depth, connection count). This header is the
// seam between the server and `tessera serve` (src/cli): it names no Boost
// type, so the command line does not compile Beast.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tessera/audit.hpp"
#include "tessera/clock.hpp"
#include "tessera/error.hpp"
#include "tessera/session.hpp"
#include "tessera/session_service.hpp"

namespace tessera::server {

struct CookieOptions {
  std::string name = "tessera_session";
  std::string domain;  // "" → host-only cookie
  std::string path = "/";
  bool secure = true;
  std::string same_site = "Lax";  // Strict | Lax | None
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 → any free port; see Server::port()
  unsigned threads = 0;       // io threads; 0 → one per core
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  std::chrono::seconds read_timeout{10};   // whole request, headers + body
  std::chrono::seconds idle_timeout{60};   // keep-alive connection with no request
  std::chrono::seconds drain_timeout{30};  // stop(): in-flight requests get this long
  std::size_t max_connections = 4096;
  std::size_t max_pipelined = 16;
  // SHA-256 of every accepted API key; compared in constant time.
  std::vector<std::array<std::uint8_t, 32>> api_key_hashes;
  bool metrics_public = true;  // false: /metrics needs an API key
  std::chrono::seconds jwks_max_age{300};
  CookieOptions cookie;
  bool access_log = true;      // one JSON line per request (spdlog default logger), no secret
  bool handle_signals = true;  // SIGINT/SIGTERM → stop(); SIGHUP → ServerDeps::on_reload
};

// Prometheus counters and histograms, shared by the server and the service:
// it is also an AuditSink that counts lifecycle events and forwards them.
class Metrics final : public AuditSink {
 public:
  explicit Metrics(AuditSink* next = nullptr);
  ~Metrics() override;
  void emit(const AuditEvent& event) noexcept override;
  // Prometheus text exposition format 0.0.4.
  [[nodiscard]] std::string render() const;
  // Called by the server for every answered request.
  void observe_request(std::string_view route, unsigned status, std::string_view error_code,
                       std::chrono::nanoseconds latency) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ServerDeps {
  SessionService& service;
  const SharedKeySet& keys;  // read per request: rotation shows at once
  SessionStore& store;       // /readyz asks it
  const Clock& clock;
  Metrics& metrics;
  std::function<void()> on_reload;  // SIGHUP; may be empty
};

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
