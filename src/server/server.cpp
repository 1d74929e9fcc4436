// The listener and the server's lifecycle: bind, accept (spreading
// connections over the io contexts), signals, stop and drain. The
// connections themselves are connection.cpp's.
//
// Stopping: the acceptor closes, connections waiting for a request close at
// once, a connection inside a request finishes it (answered with
// `Connection: close`); run() returns when the last connection is gone or
// drain_timeout has passed.
#include "server/server.hpp"

#include <fmt/format.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <thread>

#include "server/server_state.hpp"

namespace tessera::server {

namespace {

constexpr std::chrono::milliseconds kAcceptRetry{50};

}  // namespace

ServerState::ServerState(ServerOptions o, ServerDeps d, unsigned threads)
    : options(std::move(o)),
      deps(std::move(d)),
      api(options, deps),
      ioc(1),
      control(asio::make_strand(ioc)),
      acceptor(asio::make_strand(ioc)),
      signals(control),
      drain_timer(control),
      accept_retry(acceptor.get_executor()) {
  for (unsigned i = 1; i < threads; ++i) {
    workers.push_back(std::make_unique<asio::io_context>(1));
    worker_guards.push_back(asio::make_work_guard(*workers.back()));
  }
}

asio::io_context& ServerState::next_io_context() {
  const std::size_t i = next_context++ % (workers.size() + 1);
  return i == 0 ? ioc : *workers[i - 1];
}

void ServerState::stop_all() noexcept {
  ioc.stop();
  for (auto& w : workers) w->stop();
}

struct Server::Impl final : ServerState {
  using ServerState::ServerState;
};

void ServerState::do_accept() {
  acceptor.async_accept(
      asio::make_strand(next_io_context()),
      [this](error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void ServerState::on_accept(error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    if (stopping || connections.load() >= options.max_connections) {
      error_code ignored;
      socket.close(ignored);
    } else {
      try {
        std::uint64_t id = 0;
        {
          std::lock_guard lock(registry_mu);
          id = next_id++;
        }
        auto c = make_connection(*this, std::move(socket), id);
        connections.fetch_add(1);  // only once built: its destructor gives it back
        {
          std::lock_guard lock(registry_mu);
          registry.emplace(id, c);
        }
        start(*c);
      } catch (const std::exception& e) {
        log_event(LogLevel::error, "connection_failed", e.what());
      }
    }
  } else {
    // Out of descriptors, most likely: do not spin; try again shortly.
    log_event(LogLevel::warn, "accept_failed", ec.message());
    accept_retry.expires_after(kAcceptRetry);
    accept_retry.async_wait([this](error_code e) {
      if (!e) do_accept();
    });
    return;
  }
  do_accept();
}

void ServerState::connection_gone(std::uint64_t id) {
  std::lock_guard lock(registry_mu);
  registry.erase(id);
  if (connections.fetch_sub(1) == 1 && stopping && !ioc.stopped()) {
    asio::post(control, [this] { drain_timer.cancel(); });
  }
}

void ServerState::do_stop() {
  if (stopping.exchange(true)) return;
  log_event(LogLevel::info, "draining", "no new connections; in-flight requests finish");
  error_code ec;
  asio::dispatch(acceptor.get_executor(), [this] {
    error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
  });
  signals.cancel(ec);
  std::vector<std::shared_ptr<Connection>> live;
  {
    std::lock_guard lock(registry_mu);
    for (auto& [id, weak] : registry) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) shutdown_if_idle(*c);
  live.clear();
  if (connections.load() == 0) return;
  drain_timer.expires_after(options.drain_timeout);
  drain_timer.async_wait([this](error_code e) {
    if (e) return;  // cancelled: every connection is gone
    log_event(LogLevel::warn, "drain_timeout", "closing the remaining connections");
    stop_all();
  });
}

void ServerState::wait_signal() {
  signals.async_wait([this](error_code ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log_event(LogLevel::info, "sighup_reload");
      if (deps.on_reload) {
        try {
          deps.on_reload();
        } catch (const std::exception& e) {
          log_event(LogLevel::error, "reload_failed", e.what());
        }
      }
      return wait_signal();
    }
    do_stop();
  });
}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options, ServerDeps deps) {
  if (options.max_body_bytes == 0 || options.max_header_bytes < 512 ||
      options.max_connections == 0) {
    return fail(ErrorCode::config_invalid,
                "max_body_bytes and max_connections must be positive, max_header_bytes at "
                "least 512");
  }
  if (options.read_timeout.count() <= 0 || options.idle_timeout.count() <= 0) {
    return fail(ErrorCode::config_invalid, "read_timeout and idle_connection_timeout must be > 0");
  }
  const CookieOptions& c = options.cookie;
  if (c.same_site != "Strict" && c.same_site != "Lax" && c.same_site != "None") {
    return fail(ErrorCode::config_invalid, "cookie_same_site: must be Strict, Lax or None");
  }
  if (c.same_site == "None" && !c.secure) {
    return fail(ErrorCode::config_invalid, "cookie_same_site: None needs cookie_secure");
  }
  if (c.name.empty()) return fail(ErrorCode::config_invalid, "cookie_name: must not be empty");
  unsigned threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  options.threads = threads;
  try {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(deps), threads);
    error_code ec;
    const auto address = asio::ip::make_address(impl->options.host, ec);
    if (ec) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("listen: not an IP address: {}", impl->options.host));
    }
    const tcp::endpoint endpoint(address, impl->options.port);
    impl->acceptor.open(endpoint.protocol(), ec);
    if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) impl->acceptor.bind(endpoint, ec);
    if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return fail(ErrorCode::config_invalid,
                  fmt::format("listen: cannot listen on {}:{}: {}", impl->options.host,
                              impl->options.port, ec.message()));
    }
    impl->bound_port = impl->acceptor.local_endpoint().port();
    if (impl->options.handle_signals) {
      impl->signals.add(SIGINT);
      impl->signals.add(SIGTERM);
      impl->signals.add(SIGHUP);
    }
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  } catch (const std::exception& e) {
    return fail(ErrorCode::config_invalid, fmt::format("listen: {}", e.what()));
  }
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

std::uint16_t Server::port() const noexcept {
  return impl_->bound_port;
}

void Server::run() {
  Impl& s = *impl_;
  if (s.stopping) return;
  s.do_accept();
  if (s.options.handle_signals) s.wait_signal();
  auto work = [](asio::io_context& ctx) {
    for (;;) {
      try {
        ctx.run();
        return;
      } catch (const std::exception& e) {
        log_event(LogLevel::error, "io_thread_exception", e.what());
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(s.workers.size());
  for (auto& w : s.workers) pool.emplace_back(work, std::ref(*w));
  // `ioc` runs out of work once the acceptor is closed and the drain is
  // over (every connection gone, or the drain timeout stopped them all);
  // the workers then have nothing left either and may return.
  work(s.ioc);
  s.worker_guards.clear();
  for (auto& t : pool) t.join();
  log_event(LogLevel::info, "server_stopped");
}

void Server::stop() noexcept {
  try {
    asio::post(impl_->control, [impl = impl_.get()] { impl->do_stop(); });
  } catch (...) {
    impl_->stop_all();
  }
}

}  // namespace tessera::server
