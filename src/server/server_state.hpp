// What the listener (server.cpp) and the connections (connection.cpp)
// share: the server's state on Asio. Internal to src/server, and only these
// two files include it, so Asio compiles twice and Beast's HTTP once. The
// TLS context is only declared here: server.cpp builds it (ssl/context.hpp)
// and connection.cpp streams over it (Beast's ssl_stream), nobody else.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/options.hpp"
#include "server/routes.hpp"
#include "server/store_workers.hpp"

namespace boost::asio::ssl {
class context;
}

namespace tessera::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class Connection;  // connection.cpp

// The TLS context new connections take; replaced whole on SIGHUP. Each
// connection holds the shared_ptr it started with, so a reload never
// changes a connection in flight, and the old context lives until its last
// connection is gone. Thread-safe. A mutex rather than
// std::atomic<std::shared_ptr>, as in SharedKeySet (tessera/key_set.hpp).
class SharedTlsContext {
 public:
  [[nodiscard]] std::shared_ptr<asio::ssl::context> get() const {
    std::lock_guard lock(mu_);
    return p_;
  }
  void set(std::shared_ptr<asio::ssl::context> fresh) {
    std::lock_guard lock(mu_);
    p_.swap(fresh);  // the old one is released with `fresh`, after the lock
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<asio::ssl::context> p_;
};

struct ServerState {
  ServerOptions options;
  ServerDeps deps;
  Api api;
  std::uint16_t bound_port = 0;
  SharedTlsContext tls;  // empty: plain HTTP (options.tls not enabled)

  // Declared before the io_context: connections still queued in it when it
  // is destroyed deregister themselves here.
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> connections{0};
  std::mutex registry_mu;
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> registry;
  // Open connections per client address (untrusted peers), under registry_mu.
  std::unordered_map<std::string, std::size_t> per_client;

  // One io_context per io thread, each run by its thread alone: a
  // connection lives on one of them (round-robin at accept), so its
  // completions never hop between threads (measured: cross-thread wake-ups
  // were 40 % of the CPU under load). `ioc` also holds the acceptor,
  // signals and the drain timer; the others are kept alive by work guards
  // until the server stops.
  asio::io_context ioc;
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> worker_guards;
  std::size_t next_context = 0;  // on the acceptor's strand
  // Stopping, signals and the drain timer run on one strand, so stop() from
  // any thread and a signal arriving at the same time do not race.
  asio::strand<asio::io_context::executor_type> control;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer drain_timer;
  asio::steady_timer accept_retry;  // on the acceptor's strand
  // After the io contexts: stopped and joined before they go, since a job
  // posts its answer to one of them.
  StoreWorkers store_workers;

  ServerState(ServerOptions o, ServerDeps d, unsigned threads);

  // The context for the next connection: ioc and the workers in turn.
  asio::io_context& next_io_context();
  // Every context stops at once (drain timeout, or a failed stop()).
  void stop_all() noexcept;

  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void do_stop();
  void wait_signal();
  // SIGHUP: reads options.tls's files again into a new context; on failure
  // keeps the old one and logs tls_reload_failed.
  void reload_tls();
  // From a Connection's destructor; `peer` is the address it counted under
  // in per_client, or "" when it was not counted.
  void connection_gone(std::uint64_t id, const std::string& counted_peer);
};

// ---- connection.cpp ---------------------------------------------------------
// How a connection was let in: its peer's address (IPv4-mapped shown as
// IPv4), whether it counts in per_client, and whether it is one of the
// health_connections beyond max_connections.
struct Admission {
  std::string peer;
  bool counted = false;
  bool health_only = false;
};
// A connection for an accepted socket; it serves nothing until started.
[[nodiscard]] std::shared_ptr<Connection> make_connection(ServerState& server, tcp::socket socket,
                                                          std::uint64_t id, Admission admission);
// Starts reading requests, on the connection's own strand.
void start(Connection& connection);
// From stop(), on any thread: closes the connection if it waits for a
// request; a request being read or handled is finished first.
void shutdown_if_idle(Connection& connection);

}  // namespace tessera::server
