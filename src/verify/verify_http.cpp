// The only translation unit of the verifier that compiles Beast.
#include "tessera/verify_http.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <charconv>

namespace tessera::verify {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using HttpReply = HttpAnswer;
using Headers = std::vector<std::pair<std::string, std::string>>;

// Runs the io_context until the pending operation completes, then readies
// it for the next one.
void run_one(asio::io_context& io) {
  io.run();
  io.restart();
}

// Writes the request and reads the answer on an open (plain or TLS) stream.
template <class Stream>
Result<HttpReply> exchange(asio::io_context& io, Stream& stream,
                           const http::request<http::string_body>& req, const HttpOptions& o,
                           const std::string& host, ErrorCode transient) {
  beast::error_code ec;
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(io);
  if (ec) return fail(transient, fmt::format("{}: write: {}", host, ec.message()));
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(o.max_response_bytes);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(io);
  if (ec) return fail(transient, fmt::format("{}: read: {}", host, ec.message()));
  auto res = parser.release();
  HttpReply out;
  out.status = res.result_int();
  out.body = std::move(res.body());
  auto field = [&res](http::field f) {
    auto it = res.find(f);
    return it != res.end() ? std::string(it->value()) : std::string();
  };
  out.cache_control = field(http::field::cache_control);
  out.content_type = field(http::field::content_type);
  out.retry_after = field(http::field::retry_after);
  return out;
}

// One request on a fresh connection (http:// or https://), every step under
// one deadline. TLS verifies the peer against the system's CAs (or
// HttpOptions::ca_file) and the URL's host name, with SNI. Errors are
// `transient` (the caller's unavailable code) and never carry the body or
// the Authorization header.
Result<HttpReply> request(http::verb method, const std::string& url, std::string_view bearer,
                          std::string_view content_type, std::string body, const HttpOptions& o,
                          ErrorCode transient, const Headers& headers = {}) {
  auto parsed = boost::urls::parse_uri(url);
  const bool tls = parsed && parsed->scheme() == "https";
  if (!parsed || (!tls && parsed->scheme() != "http") || parsed->host().empty()) {
    return fail(ErrorCode::config_invalid, fmt::format("not an http(s):// URL: {}", url));
  }
  const std::string host = parsed->host();
  const std::string port =
      parsed->has_port() ? std::string(parsed->port()) : std::string(tls ? "443" : "80");
  std::string target = std::string(parsed->encoded_path());
  if (target.empty()) target = "/";
  if (parsed->has_query()) target += "?" + std::string(parsed->encoded_query());

  http::request<http::string_body> req{method, target, 11};
  // RFC 9110 §7.2: the port too, unless it is the scheme's default.
  req.set(http::field::host, parsed->has_port() ? fmt::format("{}:{}", host, port) : host);
  req.set(http::field::user_agent, "tessera-verify");
  if (!bearer.empty()) req.set(http::field::authorization, fmt::format("Bearer {}", bearer));
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  for (const auto& [name, value] : headers) req.set(name, value);
  if (method != http::verb::get) {
    req.body() = std::move(body);
    req.prepare_payload();
  }

  try {
    asio::io_context io;
    beast::tcp_stream tcp(io);
    tcp.expires_after(o.timeout);
    asio::ip::tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return fail(transient, fmt::format("{}: resolve: {}", host, ec.message()));
    tcp.async_connect(endpoints, [&](beast::error_code e, auto) { ec = e; });
    run_one(io);
    if (ec) return fail(transient, fmt::format("{}:{}: connect: {}", host, port, ec.message()));
    if (!tls) {
      auto reply = exchange(io, tcp, req, o, host, transient);
      beast::error_code ignored;
      tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      return reply;
    }

    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    if (o.ca_file.empty()) {
      ctx.set_default_verify_paths(ec);
    } else {
      ctx.load_verify_file(o.ca_file, ec);
    }
    if (ec)
      return fail(ErrorCode::config_invalid, fmt::format("TLS trust store: {}", ec.message()));
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), ctx);
    stream.set_verify_callback(asio::ssl::host_name_verification(host));
    if (SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()) != 1) {
      return fail(transient, fmt::format("{}: cannot set SNI", host));
    }
    stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    run_one(io);
    if (ec) return fail(transient, fmt::format("{}: TLS handshake: {}", host, ec.message()));
    auto reply = exchange(io, stream, req, o, host, transient);
    beast::get_lowest_layer(stream).socket().close(ec);  // no close_notify wait: one request
    return reply;
  } catch (const std::exception& e) {
    return fail(transient, fmt::format("{}: {}", host, e.what()));
  }
}

// max-age from a Cache-Control value, clamped; 300 s when absent.
std::chrono::seconds max_age(std::string_view cc) {
  constexpr std::chrono::seconds kDefault{300}, kMin{30}, kMax{86'400};
  const auto at = cc.find("max-age=");
  if (at == std::string_view::npos) return kDefault;
  const auto digits = cc.substr(at + 8);
  long long v = 0;
  const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{}) return kDefault;
  return std::clamp(std::chrono::seconds{v}, kMin, kMax);
}

// One member of the authority's JSON answer, which must be a 200; anything
// else is `unavailable` (the caller's fail-closed code).
Result<boost::json::value> member_of_answer(const Result<HttpReply>& r, std::string_view name,
                                            ErrorCode unavailable) {
  if (!r) return std::unexpected(r.error());
  if (r->status != 200) return fail(unavailable, fmt::format("authority: HTTP {}", r->status));
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  const auto* obj = ec ? nullptr : v.if_object();
  const auto* member = obj ? obj->if_contains(name) : nullptr;
  if (member == nullptr) return fail(unavailable, fmt::format("authority: no \"{}\"", name));
  return *member;
}

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

// ---- HttpJwksSource ---------------------------------------------------------

HttpJwksSource::HttpJwksSource(std::string url, const Clock& clock, HttpOptions http,
                               std::chrono::seconds unknown_kid_interval)
    : url_(std::move(url)),
      clock_(clock),
      http_(http),
      unknown_kid_interval_(unknown_kid_interval) {}

Result<std::unique_ptr<HttpJwksSource>> HttpJwksSource::create(
    std::string url, const Clock& clock, HttpOptions http,
    std::chrono::seconds unknown_kid_interval) {
  std::unique_ptr<HttpJwksSource> s(
      new HttpJwksSource(std::move(url), clock, http, unknown_kid_interval));
  if (auto st = s->fetch(clock.now()); !st) return std::unexpected(st.error());
  return s;
}

// Every way of not getting a usable set is jwks_unavailable: whether a kid
// exists is then unknown, which must not read as "it does not" (a 401 that
// logs users out during an outage right after a rotation). An empty set is
// not believed either: the current keys stay.
Status HttpJwksSource::fetch(UnixSeconds now) {
  auto st = [&]() -> Result<std::pair<KeySet, std::chrono::seconds>> {
    auto r = request(http::verb::get, url_, {}, {}, {}, http_, ErrorCode::jwks_unavailable);
    if (!r) return std::unexpected(r.error());
    if (r->status != 200) {
      return fail(ErrorCode::jwks_unavailable, fmt::format("JWKS {}: HTTP {}", url_, r->status));
    }
    auto set = KeySet::from_jwks(r->body);
    if (!set) return fail(ErrorCode::jwks_unavailable, "JWKS: " + set.error().detail);
    if (set->entries().empty()) {
      return fail(ErrorCode::jwks_unavailable, "JWKS holds no usable key");
    }
    return std::pair{std::move(*set), max_age(r->cache_control)};
  }();
  std::lock_guard lock(mu_);
  if (!st) {
    last_fetch_ = std::unexpected(st.error());
    return last_fetch_;
  }
  keys_ = std::make_shared<const KeySet>(std::move(st->first));
  refresh_at_ = now + std::max(st->second - kRefetchBeforeExpiry, std::chrono::seconds{1});
  last_fetch_ = {};
  ++fetches_;
  return {};
}

std::shared_ptr<const KeySet> HttpJwksSource::keys() {
  const UnixSeconds now = clock_.now();
  {
    std::lock_guard lock(mu_);
    if (now < refresh_at_) return keys_;
  }
  // Due: one caller refetches, the others go on with the current set.
  std::unique_lock fetching(fetch_mu_, std::try_to_lock);
  if (fetching.owns_lock()) {
    if (!fetch(now)) {
      std::lock_guard lock(mu_);
      refresh_at_ = now + kRetryAfterFailure;
    }
  }
  std::lock_guard lock(mu_);
  return keys_;
}

Result<std::shared_ptr<const KeySet>> HttpJwksSource::refresh_for_unknown_kid() {
  const UnixSeconds now = clock_.now();
  bool look = false;
  {
    std::lock_guard lock(mu_);
    if (now - last_unknown_kid_fetch_ >= unknown_kid_interval_) {
      last_unknown_kid_fetch_ = now;
      look = true;
    }
  }
  // Inside the interval this waits for a fetch under way (another caller's
  // look may be bringing the kid) and answers with what the latest fetch
  // left; the caller's retry with an unchanged set is a cheap kid lookup.
  std::lock_guard fetching(fetch_mu_);
  if (look) {
    if (auto st = fetch(now); !st) return std::unexpected(st.error());
  }
  std::lock_guard lock(mu_);
  if (!last_fetch_) return std::unexpected(last_fetch_.error());
  return keys_;
}

std::uint64_t HttpJwksSource::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

// ---- HttpEpochSource --------------------------------------------------------

HttpEpochSource::HttpEpochSource(std::string base_url, SecretString api_key, HttpOptions http)
    : base_(trim_slash(std::move(base_url))), api_key_(std::move(api_key)), http_(http) {}

Result<std::uint64_t> HttpEpochSource::current(std::string_view subject) {
  boost::urls::url u(base_ + "/v1/subjects");
  u.segments().push_back(subject);  // percent-encodes as needed
  u.segments().push_back("epoch");
  const auto epoch =
      member_of_answer(request(http::verb::get, std::string(u.buffer()), api_key_.reveal(), {}, {},
                               http_, ErrorCode::epoch_unavailable),
                       "epoch", ErrorCode::epoch_unavailable);
  if (!epoch) return std::unexpected(epoch.error());
  if (const auto* u64 = epoch->if_uint64()) return *u64;
  if (const auto* i64 = epoch->if_int64(); i64 && *i64 >= 0) {
    return static_cast<std::uint64_t>(*i64);
  }
  return fail(ErrorCode::epoch_unavailable, "authority: epoch is not a count");
}

// ---- IntrospectionLivenessCheck ---------------------------------------------

IntrospectionLivenessCheck::IntrospectionLivenessCheck(std::string base_url, SecretString api_key,
                                                       const Clock& clock,
                                                       std::chrono::milliseconds ttl,
                                                       HttpOptions http)
    : base_(trim_slash(std::move(base_url))),
      api_key_(std::move(api_key)),
      clock_(clock),
      ttl_(ttl),
      http_(http) {}

Result<Liveness> IntrospectionLivenessCheck::check(const LivenessQuery& q) {
  const UnixMillis now = clock_.now_ms();
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(std::string(q.session_id));
        it != cache_.end() && now - it->second.at < ttl_) {
      return it->second.answer;
    }
  }
  boost::urls::url form;
  form.params().append({"token", q.token});
  const auto active = member_of_answer(
      request(http::verb::post, base_ + "/oauth2/introspect", api_key_.reveal(),
              "application/x-www-form-urlencoded", std::string(form.encoded_query()), http_,
              ErrorCode::liveness_unavailable),
      "active", ErrorCode::liveness_unavailable);
  if (!active) return std::unexpected(active.error());
  if (!active->is_bool()) {
    return fail(ErrorCode::liveness_unavailable, "authority: no \"active\" in the answer");
  }
  const Liveness answer = active->as_bool() ? Liveness::live : Liveness::revoked;
  std::lock_guard lock(mu_);
  if (cache_.size() > 100'000) cache_.clear();  // bounded; entries live a second anyway
  cache_.insert_or_assign(std::string(q.session_id), Entry{answer, now});
  return answer;
}

// ---- send -------------------------------------------------------------------

Result<HttpAnswer> send(HttpCall call, const HttpOptions& http, ErrorCode unavailable) {
  http::verb verb = http::verb::post;
  if (call.method == "GET") {
    verb = http::verb::get;
  } else if (call.method != "POST") {
    return fail(ErrorCode::config_invalid,
                fmt::format("send: method {} is not GET or POST", call.method));
  }
  return request(verb, call.url, {}, {}, std::move(call.body), http, unavailable, call.headers);
}

}  // namespace tessera::verify
