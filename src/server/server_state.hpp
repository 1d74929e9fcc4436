// What the listener (server.cpp) and the connections (connection.cpp)
// share: the server's state on Asio. Internal to src/server, and only these
// two files include it, so Asio compiles twice and Beast's HTTP once.
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
#include <unordered_map>
#include <vector>

#include "server/options.hpp"
#include "server/routes.hpp"

namespace tessera::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class Connection;  // connection.cpp

struct ServerState {
  ServerOptions options;
  ServerDeps deps;
  Api api;
  std::uint16_t bound_port = 0;

  // Declared before the io_context: connections still queued in it when it
  // is destroyed deregister themselves here.
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> connections{0};
  std::mutex registry_mu;
  std::uint64_t next_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> registry;

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

  ServerState(ServerOptions o, ServerDeps d, unsigned threads);

  // The context for the next connection: ioc and the workers in turn.
  asio::io_context& next_io_context();
  // Every context stops at once (drain timeout, or a failed stop()).
  void stop_all() noexcept;

  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void do_stop();
  void wait_signal();
  // From a Connection's destructor.
  void connection_gone(std::uint64_t id);
};

// ---- connection.cpp ---------------------------------------------------------
// A connection for an accepted socket; it serves nothing until started.
[[nodiscard]] std::shared_ptr<Connection> make_connection(ServerState& server, tcp::socket socket,
                                                          std::uint64_t id);
// Starts reading requests, on the connection's own strand.
void start(Connection& connection);
// From stop(), on any thread: closes the connection if it waits for a
// request; a request being read or handled is finished first.
void shutdown_if_idle(Connection& connection);

}  // namespace tessera::server
