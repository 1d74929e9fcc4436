// The network layer: Beast HTTP/1.1 on one io_context per io thread.
//
// One Connection object per socket owns its stream, buffer and parser, and
// runs on its own strand. A request is read whole (bounded header and body,
// one deadline for the whole request from its first byte), handed to the
// Api, and answered before the next is parsed: pipelined requests wait in
// the bounded read buffer, so at most one request per connection is ever in
// flight and reading pauses while it is handled.
//
// Stopping: the acceptor closes, connections waiting for a request close at
// once, a connection inside a request finishes it (answered with
// `Connection: close`); run() returns when the last connection is gone or
// drain_timeout has passed.
#include "server/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "server/routes.hpp"

namespace tessera::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 4096;
constexpr std::chrono::milliseconds kAcceptRetry{50};
constexpr std::chrono::seconds kLinger{1};
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;

// X-Request-Id: the client's if it is 1..64 of [A-Za-z0-9-_], else ours.
bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

// JSON string escaping for the access log (method and remote come from the
// network; route and code are ours).
std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

class Connection;

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

  ServerState(ServerOptions o, ServerDeps d, unsigned threads)
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

  // The context for the next connection: ioc and the workers in turn.
  asio::io_context& next_io_context() {
    const std::size_t i = next_context++ % (workers.size() + 1);
    return i == 0 ? ioc : *workers[i - 1];
  }

  // Every context stops at once (drain timeout, or a failed stop()).
  void stop_all() noexcept {
    ioc.stop();
    for (auto& w : workers) w->stop();
  }

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void do_stop();
  void wait_signal();
  void connection_gone(std::uint64_t id);
  void log_access(std::string_view method, const HttpResponse& res,
                  std::chrono::nanoseconds latency, std::string_view request_id,
                  std::string_view remote);
};

struct Server::Impl final : ServerState {
  using ServerState::ServerState;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerState& server, tcp::socket socket, std::uint64_t id)
      : server_(server),
        stream_(std::move(socket)),
        buffer_(server.options.max_header_bytes + server.options.max_body_bytes + kReadChunk),
        id_(id) {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  ~Connection() { server_.connection_gone(id_); }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait_request(); });
  }

  // From stop(), on any thread: close if waiting for a request; a request
  // being read or handled is finished first.
  void shutdown_if_idle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->close();
    });
  }

 private:
  // Waits for the first bytes of the next request (unless pipelined bytes
  // already wait in the buffer): idle_timeout between keep-alive requests,
  // read_timeout for a fresh connection.
  void wait_request() {
    if (buffer_.size() > 0) return read_request();
    if (server_.stopping) return close();
    idle_ = true;
    stream_.expires_after(first_ ? server_.options.read_timeout : server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->idle_ = false;
                              if (ec) return self->close();
                              self->buffer_.commit(n);
                              self->read_request();
                            });
  }

  void read_request() {
    idle_ = false;
    first_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    stream_.expires_after(server_.options.read_timeout);
    // The header first: a body over the limit is refused on its declared
    // length, and a client waiting on `Expect: 100-continue` is told to go on.
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    const auto expect = parser_->get()[http::field::expect];
    if (!parser_->is_done() && beast::iequals(expect, "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     parser_->get().version());
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code e, std::size_t) {
                          if (e) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    const auto started = std::chrono::steady_clock::now();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    if (ec) {
      // The request cannot be read whole: answer and close, since the rest
      // of the stream cannot be framed.
      HttpResponse res;
      if (ec == http::error::body_limit) {
        res = problem(ErrorCode::payload_too_large,
                      fmt::format("request body exceeds {} bytes", server_.options.max_body_bytes));
      } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        res = problem(
            431, ErrorCode::invalid_request,
            fmt::format("request header exceeds {} bytes", server_.options.max_header_bytes));
      } else {
        res = problem(ErrorCode::invalid_request, "malformed HTTP request");
      }
      std::string request_id = new_request_id();
      if (parser_) {  // the fields read so far
        if (const auto id = parser_->get()["X-Request-Id"]; sane_request_id(id))
          request_id = std::string(id);
      }
      return respond("-", std::move(res), std::move(request_id), false, 11, started);
    }

    const auto& msg = parser_->get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.headers.reserve(16);
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    const bool client_keep_alive = msg.keep_alive();
    const unsigned version = msg.version();
    req.body = std::move(parser_->get().body());
    parser_.reset();
    std::string request_id;
    if (auto id = req.header("x-request-id"); id && sane_request_id(*id)) {
      request_id = std::string(*id);
    } else {
      request_id = new_request_id();
    }
    HttpResponse res = server_.api.handle(req);
    const bool keep_alive = client_keep_alive && !server_.stopping;
    respond(req.method, std::move(res), std::move(request_id), keep_alive, version, started);
  }

  void respond(std::string_view method, HttpResponse res, std::string request_id, bool keep_alive,
               unsigned version, std::chrono::steady_clock::time_point started) {
    try {
      auto out = std::make_shared<http::response<http::string_body>>(
          static_cast<http::status>(res.status), version);
      out->set(http::field::server, "tessera");
      if (!res.content_type.empty()) out->set(http::field::content_type, res.content_type);
      for (const auto& [name, value] : res.headers) out->insert(name, value);
      out->set("X-Request-Id", request_id);
      out->body() = std::move(res.body);
      out->keep_alive(keep_alive);
      out->prepare_payload();
      res.body.clear();

      const auto latency = std::chrono::steady_clock::now() - started;
      server_.deps.metrics.observe_request(res.route, res.status, res.code, latency);
      if (server_.options.access_log) {
        server_.log_access(method, res, latency, request_id, remote_);
      }

      stream_.expires_after(server_.options.read_timeout);
      http::async_write(
          stream_, *out,
          [self = shared_from_this(), out, keep_alive](beast::error_code ec, std::size_t) {
            if (ec) return self->close();
            if (!keep_alive) return self->linger_close();
            self->wait_request();
          });
    } catch (const std::exception& e) {
      log_event(LogLevel::error, "write_failed", e.what());
      close();
    }
  }

  // After a last answer: stop sending, then read and drop what the client
  // still sends (the rest of a refused body), briefly and boundedly, so
  // that closing does not reset the connection before the client has read
  // the answer.
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    idle_ = true;  // stop() need not wait for it
    lingered_ = 0;
    stream_.expires_after(kLinger);
    drain();
  }

  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > kMaxLingerBytes) return self->close();
                              self->drain();
                            });
  }

  void close() {
    idle_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  ServerState& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::uint64_t id_;
  std::string remote_;
  std::size_t lingered_ = 0;
  bool first_ = true;
  bool idle_ = false;
};

void ServerState::do_accept() {
  acceptor.async_accept(
      asio::make_strand(next_io_context()),
      [this](beast::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void ServerState::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    if (stopping || connections.load() >= options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      try {
        std::uint64_t id = 0;
        {
          std::lock_guard lock(registry_mu);
          id = next_id++;
        }
        auto c = std::make_shared<Connection>(*this, std::move(socket), id);
        connections.fetch_add(1);  // only once built: its destructor gives it back
        {
          std::lock_guard lock(registry_mu);
          registry.emplace(id, c);
        }
        c->start();
      } catch (const std::exception& e) {
        log_event(LogLevel::error, "connection_failed", e.what());
      }
    }
  } else {
    // Out of descriptors, most likely: do not spin; try again shortly.
    log_event(LogLevel::warn, "accept_failed", ec.message());
    accept_retry.expires_after(kAcceptRetry);
    accept_retry.async_wait([this](beast::error_code e) {
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
  beast::error_code ec;
  asio::dispatch(acceptor.get_executor(), [this] {
    beast::error_code ignored;
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
  for (auto& c : live) c->shutdown_if_idle();
  live.clear();
  if (connections.load() == 0) return;
  drain_timer.expires_after(options.drain_timeout);
  drain_timer.async_wait([this](beast::error_code e) {
    if (e) return;  // cancelled: every connection is gone
    log_event(LogLevel::warn, "drain_timeout", "closing the remaining connections");
    stop_all();
  });
}

void ServerState::wait_signal() {
  signals.async_wait([this](beast::error_code ec, int sig) {
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

void ServerState::log_access(std::string_view method, const HttpResponse& res,
                             std::chrono::nanoseconds latency, std::string_view request_id,
                             std::string_view remote) {
  spdlog::info(
      R"({{"level":"info","event":"http_request","method":"{}","route":"{}","status":{},"code":"{}","latency_us":{},"request_id":"{}","remote":"{}"}})",
      json_escape(method), json_escape(res.route), res.status, json_escape(res.code),
      std::chrono::duration_cast<std::chrono::microseconds>(latency).count(),
      json_escape(request_id), json_escape(remote));
}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options, ServerDeps deps) {
  if (options.max_body_bytes == 0 || options.max_header_bytes < 512 ||
      options.max_connections == 0 || options.max_pipelined == 0) {
    return fail(ErrorCode::config_invalid,
                "max_body_bytes, max_connections and max_pipelined must be positive, "
                "max_header_bytes at least 512");
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
    beast::error_code ec;
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
