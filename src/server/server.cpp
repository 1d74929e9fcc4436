// The listener and the server's lifecycle: bind, accept (spreading
// connections over the io contexts), signals, stop and drain. The
// connections themselves are connection.cpp's.
//
// Stopping: the acceptor closes, connections waiting for a request close at
// once, a connection inside a request finishes it (answered with
// `Connection: close`); run() returns when the last connection is gone or
// drain_timeout has passed.
//
// TLS: the context is built here, at create() and on SIGHUP, and handed to
// each new connection (connection.cpp) through ServerState::tls.
#include "server/server.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include "core/try.hpp"
#include "server/server_state.hpp"

namespace tessera::server {

namespace {

constexpr std::chrono::milliseconds kAcceptRetry{50};

// The peer's address as trusted_proxies and the limits compare it: an
// IPv4-mapped IPv6 peer is its IPv4 address; "" when the socket has none.
std::string peer_address(const tcp::socket& socket) {
  error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return {};
  const auto a = ep.address();
  return a.is_v6() && a.to_v6().is_v4_mapped()
             ? asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string()
             : a.to_string();
}

namespace ssl = asio::ssl;

// TLS 1.2: ECDHE key exchange and AEAD ciphers only, in the server's order.
// TLS 1.3's suites are all AEAD and stay OpenSSL's, in its order.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Opened first, so that a missing or unreadable file is said plainly
// rather than as OpenSSL's "system lib".
Status readable(std::string_view setting, const std::string& path) {
  if (path.empty()) return fail(ErrorCode::config_invalid, fmt::format("{}: must be set", setting));
  std::ifstream in(path);
  if (!in) {
    return fail(ErrorCode::config_invalid,
                fmt::format("{}: cannot read \"{}\": {}", setting, path, std::strerror(errno)));
  }
  return {};
}

// OpenSSL's reasons name the library and the check that failed, never the
// file's content.
Error unusable(std::string_view setting, const std::string& path, const error_code& ec) {
  ERR_clear_error();
  return Error{ErrorCode::config_invalid,
               fmt::format("{}: cannot use \"{}\": {}", setting, path, ec.message())};
}

// A fresh context from the files of `tls`; config_invalid naming the
// setting whose file is at fault. Reads the files (blocking).
Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsOptions& tls) {
  TESSERA_TRY(readable("tls_cert", tls.cert_file));
  TESSERA_TRY(readable("tls_key", tls.key_file));
  if (!tls.client_ca_file.empty()) TESSERA_TRY(readable("tls_client_ca", tls.client_ca_file));
  try {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    // TLS 1.2 at least; the highest both sides speak wins (1.3 first).
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
      ERR_clear_error();
      return fail(ErrorCode::internal, "tls: OpenSSL refused the protocol or cipher settings");
    }
    SSL_CTX_set_options(
        native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // An encrypted key is refused, never prompted for on the terminal.
    ctx->set_password_callback(
        [](std::size_t, ssl::context::password_purpose) { return std::string(); });
    error_code ec;
    ctx->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) return std::unexpected(unusable("tls_cert", tls.cert_file, ec));
    // After the certificate: OpenSSL then refuses a key that is not its own
    // ("key values mismatch").
    ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    if (ec) return std::unexpected(unusable("tls_key", tls.key_file, ec));
    if (!tls.client_ca_file.empty()) {
      ctx->load_verify_file(tls.client_ca_file, ec);
      if (ec) return std::unexpected(unusable("tls_client_ca", tls.client_ca_file, ec));
      // Named in the CertificateRequest, so a client holding several
      // certificates picks one these CAs issued.
      if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str())) {
        SSL_CTX_set_client_CA_list(native, names);
      }
      ERR_clear_error();
      ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    // Resumed sessions are tied to this server (OpenSSL refuses to resume
    // with client verification on and no id context).
    static constexpr unsigned char kSessionContext[] = "tessera";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    return ctx;
  } catch (const std::exception& e) {
    ERR_clear_error();
    return fail(ErrorCode::internal, fmt::format("tls: {}", e.what()));
  }
}

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
      accept_retry(acceptor.get_executor()),
      store_workers(options.store_workers, options.store_queue) {
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
    const std::size_t open = connections.load();
    Admission admission{.peer = peer_address(socket),
                        .health_only = open >= options.max_connections};
    bool admitted = !stopping && open < options.max_connections + options.health_connections;
    std::uint64_t id = 0;
    if (admitted) {
      std::lock_guard lock(registry_mu);
      id = next_id++;
      // A client that holds its share is refused, not queued; a proxy
      // (trusted) carries many clients and is not counted.
      if (options.max_connections_per_client > 0 && !admission.peer.empty() &&
          !options.trusted_proxies.trusts(admission.peer)) {
        std::size_t& held = per_client[admission.peer];
        admitted = held < options.max_connections_per_client;
        if (admitted) {
          ++held;
          admission.counted = true;
        } else if (held == 0) {
          per_client.erase(admission.peer);
        }
      }
    }
    if (!admitted) {
      error_code ignored;
      socket.close(ignored);
    } else {
      const std::string counted_peer = admission.counted ? admission.peer : std::string();
      try {
        auto c = make_connection(*this, std::move(socket), id, std::move(admission));
        connections.fetch_add(1);  // only once built: its destructor gives it back
        {
          std::lock_guard lock(registry_mu);
          registry.emplace(id, c);
        }
        start(*c);
      } catch (const std::exception& e) {
        log_event(LogLevel::error, "connection_failed", e.what());
        if (!counted_peer.empty()) {
          std::lock_guard lock(registry_mu);
          if (auto it = per_client.find(counted_peer); it != per_client.end() && --it->second == 0)
            per_client.erase(it);
        }
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

void ServerState::connection_gone(std::uint64_t id, const std::string& counted_peer) {
  std::lock_guard lock(registry_mu);
  registry.erase(id);
  if (!counted_peer.empty()) {
    if (auto it = per_client.find(counted_peer); it != per_client.end() && --it->second == 0)
      per_client.erase(it);
  }
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

void ServerState::reload_tls() {
  if (!options.tls.enabled()) return;
  auto fresh = make_tls_context(options.tls);
  if (!fresh) {
    log_event(
        LogLevel::error, "tls_reload_failed",
        fmt::format("{}; new connections keep the previous certificate", fresh.error().detail));
    return;
  }
  tls.set(std::move(*fresh));
  log_event(LogLevel::info, "tls_reloaded");
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
      reload_tls();
      return wait_signal();
    }
    do_stop();
  });
}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options, ServerDeps deps) {
  if (options.max_body_bytes == 0 || options.max_header_bytes < 512 ||
      options.max_connections == 0 || (options.store_workers > 0 && options.store_queue == 0)) {
    return fail(ErrorCode::config_invalid,
                "max_body_bytes, max_connections and store_queue must be positive, "
                "max_header_bytes at least 512");
  }
  if (options.read_timeout.count() <= 0 || options.idle_timeout.count() <= 0 ||
      options.header_timeout.count() <= 0) {
    return fail(ErrorCode::config_invalid,
                "header_timeout, read_timeout and idle_connection_timeout must be > 0");
  }
  const CookieOptions& c = options.cookie;
  if (c.same_site != "Strict" && c.same_site != "Lax" && c.same_site != "None") {
    return fail(ErrorCode::config_invalid, "cookie_same_site: must be Strict, Lax or None");
  }
  if (c.same_site == "None" && !c.secure) {
    return fail(ErrorCode::config_invalid, "cookie_same_site: None needs cookie_secure");
  }
  if (c.name.empty()) return fail(ErrorCode::config_invalid, "cookie_name: must not be empty");
  std::shared_ptr<ssl::context> tls;
  if (options.tls.enabled()) {
    auto built = make_tls_context(options.tls);
    if (!built) return std::unexpected(built.error());
    tls = std::move(*built);
  } else if (!options.tls.key_file.empty() || !options.tls.client_ca_file.empty()) {
    return fail(ErrorCode::config_invalid, "tls_cert: must be set with tls_key or tls_client_ca");
  }
  unsigned threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  options.threads = threads;
  try {
    auto impl = std::make_unique<Impl>(std::move(options), std::move(deps), threads);
    impl->tls.set(std::move(tls));
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
  s.store_workers.stop();
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
