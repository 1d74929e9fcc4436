// One Connection object per socket owns its stream, buffer and parser, and
// runs on its own strand. A request is read whole (bounded header and body,
// header_timeout for the head, read_timeout for the body), handed to the
// Api, and answered before the next is parsed: pipelined requests wait in
// the bounded read buffer, so at most one request per connection is ever in
// flight and reading pauses while it is handled.
//
// The stream is plain TCP, or TLS over it when the server has a TLS context
// (docs/http.md "TLS"): one class template over the stream type,
// instantiated for both here. A TLS connection first completes its
// handshake under header_timeout, so a client that connects and says nothing
// is dropped like one that sends no request, then reads requests as a plain
// one does.
//
// This is the only file of the server that includes Beast's HTTP and its
// TLS stream (http_framing.hpp, its framing checks, is shared with the HTTP
// fuzz target).
#include <fmt/format.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <type_traits>

#include "server/access_log.hpp"
#include "server/http_framing.hpp"
#include "server/http_text.hpp"
#include "server/metrics.hpp"
#include "server/server_state.hpp"

namespace tessera::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

namespace {

constexpr std::size_t kReadChunk = 4096;
constexpr std::chrono::seconds kLinger{1};
constexpr std::size_t kMaxLingerBytes = 1024 * 1024;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

}  // namespace

// What the listener needs of a connection, whatever its stream.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void start() = 0;
  virtual void shutdown_if_idle() = 0;
};

namespace {

template <class Stream>
class HttpConnection final : public Connection,
                             public std::enable_shared_from_this<HttpConnection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<HttpConnection>::shared_from_this;

 public:
  // `tls` is the context of a TLS connection (null for a plain one); the
  // connection keeps it alive, whatever a reload does meanwhile.
  HttpConnection(ServerState& server, tcp::socket socket, std::uint64_t id,
                 std::shared_ptr<ssl::context> tls, Admission admission)
      : server_(server),
        tls_(std::move(tls)),
        stream_(open(std::move(socket), tls_.get())),
        buffer_(server.options.max_header_bytes + server.options.max_body_bytes + kReadChunk),
        id_(id),
        peer_(std::move(admission.peer)),
        counted_(admission.counted),
        health_only_(admission.health_only) {
    beast::error_code ec;
    const auto ep = tcp().socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  ~HttpConnection() override {
    static const std::string kNone;
    server_.connection_gone(id_, counted_ ? peer_ : kNone);
  }

  void start() override {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if constexpr (kTls) {
        self->handshake();
      } else {
        self->wait_request();
      }
    });
  }

  void shutdown_if_idle() override {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->close();
    });
  }

 private:
  static Stream open(tcp::socket socket, [[maybe_unused]] ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *tls);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }
  tcp::socket& socket() { return tcp().socket(); }

  // TLS only: no request can be in flight yet, so stop() may close it.
  // Failures are the client's (a scanner, plain HTTP, an old protocol, no
  // client certificate): debug, with OpenSSL's reason, which holds nothing
  // secret.
  void handshake() {
    idle_ = true;
    tcp().expires_after(server_.options.header_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              self->idle_ = false;
                              if (ec) {
                                log_event(LogLevel::debug, "tls_handshake_failed",
                                          fmt::format("{}: {}", self->remote_, ec.message()));
                                return self->close();
                              }
                              self->wait_request();
                            });
  }

  // Waits for the first bytes of the next request (unless pipelined bytes
  // already wait in the buffer): idle_timeout between keep-alive requests,
  // read_timeout for a fresh connection.
  void wait_request() {
    if (buffer_.size() > 0) return read_request();
    if (server_.stopping) return close();
    idle_ = true;
    tcp().expires_after(first_ ? server_.options.header_timeout : server_.options.idle_timeout);
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
    const bool first_request = first_;
    first_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    // The head within header_timeout of its first byte (of the connection,
    // for a first request); the body then has read_timeout of its own.
    if (!first_request) tcp().expires_after(server_.options.header_timeout);
    read_head();
  }

  // The head whole in the buffer first (bounded by max_header_bytes): a
  // folded header line (obs-fold, RFC 9112 §5.2) shows only in the raw
  // bytes, since the parser unfolds it. Then the header is parsed from the
  // buffer: a body over the limit is refused on its declared length, and a
  // client waiting on `Expect: 100-continue` is told to go on.
  void read_head() {
    const std::string_view have(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const auto end = have.find("\r\n\r\n");
    if (end != std::string_view::npos || have.size() >= server_.options.max_header_bytes) {
      if (end != std::string_view::npos && has_obs_fold(have.substr(0, end + 2))) {
        return respond("-",
                       problem(ErrorCode::invalid_request,
                               "a header line is folded (obs-fold); send each field on one line"),
                       new_request_id(), false, 11, std::chrono::steady_clock::now());
      }
      // (Over the limit: the parser answers 431.)
      return http::async_read_header(
          stream_, buffer_, *parser_,
          [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
    }
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->on_read(ec);
                              self->buffer_.commit(n);
                              self->read_head();
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read(ec);
    // Framing the parser would accept but a proxy in front may read
    // otherwise (request smuggling): 400, and the connection closes.
    if (auto why = framing_error(parser_->get())) {
      HttpResponse res = problem(ErrorCode::invalid_request, *why);
      std::string request_id = new_request_id();
      if (const auto id = parser_->get()["X-Request-Id"]; sane_request_id(id))
        request_id = std::string(id);
      return respond(std::string(parser_->get().method_string()), std::move(res),
                     std::move(request_id), false, parser_->get().version(),
                     std::chrono::steady_clock::now());
    }
    // Forward-auth never reads a body, whatever Content-Length says: nginx
    // keeps the original request's on its body-less sub-request, and a
    // server that waited for those bytes would hang it. The connection is
    // closed after the answer when a body was declared (it cannot be framed).
    route_ = route_of(parser_->get().target());
    if (health_only_ && route_ != RouteId::healthz && route_ != RouteId::readyz &&
        route_ != RouteId::metrics) {
      HttpResponse res = problem(ErrorCode::overloaded,
                                 "every connection is taken; this one may ask only /healthz, "
                                 "/readyz or /metrics");
      res.route = route_;
      return respond(std::string(parser_->get().method_string()), std::move(res), new_request_id(),
                     false, parser_->get().version(), std::chrono::steady_clock::now());
    }
    if (is_forward_auth(route_)) {
      unframed_ = !parser_->is_done();
      return on_read(ec);
    }
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
    tcp().expires_after(server_.options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    const auto started = std::chrono::steady_clock::now();
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec.category() == asio::error::get_ssl_category() ||
        ec == ssl::error::stream_truncated) {
      return close();  // nothing to answer, or (TLS) no way left to answer it
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
    // A health connection answers once and closes: its slot is for the next check.
    const bool client_keep_alive = msg.keep_alive() && !unframed_ && !health_only_;
    const unsigned version = msg.version();
    req.body = std::move(parser_->get().body());
    req.peer = peer_;
    parser_.reset();
    unframed_ = false;
    std::string request_id;
    if (auto id = req.header("x-request-id"); id && sane_request_id(*id)) {
      request_id = std::string(*id);
    } else {
      request_id = new_request_id();
    }
    const RouteId route = route_;  // matched once, when the header arrived
    const Work work = route_spec(route).work;
    if (server_.store_workers.enabled() &&
        (work == Work::store_write ||
         (work == Work::store_read && !server_.options.inline_reads))) {
      return hand_to_store(route, std::move(req), std::move(request_id), client_keep_alive, version,
                           started);
    }
    HttpResponse res = server_.api.handle(req);
    const bool keep_alive = client_keep_alive && !server_.stopping;
    respond(req.method, std::move(res), std::move(request_id), keep_alive, version, started);
  }

  // Runs the request on a store worker and answers it back on this
  // connection's strand. The work guard keeps the connection's io_context
  // running meanwhile: during a drain the connection may be its only work,
  // with no operation pending. A full queue is answered at once: 503
  // `overloaded`, Retry-After, nothing done.
  void hand_to_store(RouteId route, HttpRequest req, std::string request_id, bool client_keep_alive,
                     unsigned version, std::chrono::steady_clock::time_point started) {
    std::string method = req.method;
    StoreWorkers::Job job = [self = shared_from_this(), req = std::move(req),
                             request_id = request_id, client_keep_alive, version, started,
                             guard = asio::make_work_guard(stream_.get_executor())]() mutable {
      HttpResponse res = self->server_.api.handle(req);
      asio::post(self->stream_.get_executor(), [self, method = std::move(req.method),
                                                res = std::move(res),
                                                request_id = std::move(request_id),
                                                client_keep_alive, version, started]() mutable {
        const bool keep_alive = client_keep_alive && !self->server_.stopping;
        self->respond(method, std::move(res), std::move(request_id), keep_alive, version, started);
      });
    };
    if (server_.store_workers.try_run(job)) return;
    HttpResponse res =
        problem(ErrorCode::overloaded, "the authority is busy; nothing was done, retry later");
    res.route = route;
    const bool keep_alive = client_keep_alive && !server_.stopping;
    respond(method, std::move(res), std::move(request_id), keep_alive, version, started);
  }

  void respond(std::string_view method, HttpResponse res, std::string request_id, bool keep_alive,
               unsigned version, std::chrono::steady_clock::time_point started) {
    try {
      auto out = std::make_shared<http::response<http::string_body>>(
          static_cast<http::status>(res.status), version);
      out->set(http::field::server, server_header());
      if (!res.content_type.empty()) out->set(http::field::content_type, res.content_type);
      for (const auto& [name, value] : res.headers) out->insert(name, value);
      out->set("X-Request-Id", request_id);
      out->body() = std::move(res.body);
      out->keep_alive(keep_alive);
      out->prepare_payload();
      // HEAD: the headers a GET would get, Content-Length included, no body.
      if (method == "HEAD") out->body().clear();
      res.body.clear();

      const auto latency = std::chrono::steady_clock::now() - started;
      server_.deps.metrics.observe_request(res.route, res.status, res.code, latency);
      if (server_.options.access_log) log_access(method, res, latency, request_id, remote_);
      if (!res.log_detail.empty()) log_unavailable(res, request_id);

      tcp().expires_after(server_.options.read_timeout);
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
  // Over TLS, close_notify goes first; waiting for the client's (or its
  // close) is bounded by the same linger.
  void linger_close() {
    idle_ = true;  // stop() need not wait for it
    tcp().expires_after(kLinger);
    if constexpr (kTls) {
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->close(); });
    } else {
      beast::error_code ec;
      socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return close();
      lingered_ = 0;
      drain();
    }
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
    socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp().close();
  }

  ServerState& server_;
  std::shared_ptr<ssl::context> tls_;  // before stream_, which refers to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::uint64_t id_;
  std::string peer_;    // the peer's address, as trusted_proxies compares it
  bool counted_;        // in server_.per_client under peer_
  bool health_only_;    // beyond max_connections: /healthz, /readyz, /metrics, once
  std::string remote_;  // address:port, for the logs
  std::size_t lingered_ = 0;
  RouteId route_ = RouteId::unmatched;  // of the request being read
  bool unframed_ = false;  // a forward-auth request declared a body it was not asked for
  bool first_ = true;
  bool idle_ = false;
};

}  // namespace

std::shared_ptr<Connection> make_connection(ServerState& server, tcp::socket socket,
                                            std::uint64_t id, Admission admission) {
  if (auto tls = server.tls.get()) {
    return std::make_shared<HttpConnection<TlsStream>>(server, std::move(socket), id,
                                                       std::move(tls), std::move(admission));
  }
  return std::make_shared<HttpConnection<PlainStream>>(server, std::move(socket), id, nullptr,
                                                       std::move(admission));
}

void start(Connection& connection) {
  connection.start();
}

void shutdown_if_idle(Connection& connection) {
  connection.shutdown_if_idle();
}

}  // namespace tessera::server
