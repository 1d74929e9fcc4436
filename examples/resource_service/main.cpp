// A resource service protected by tessera::verify: it never sees a private
// key or a session table. It fetches the authority's JWKS, checks the
// subject's epoch (Redis in front of the authority when --redis is given)
// and, with --liveness, the session's liveness by introspection.
//
//   resource_service --listen 127.0.0.1:9090 --authority http://127.0.0.1:8080
//                    --issuer tessera --audience tessera [--redis redis://127.0.0.1:6379]
//   (API key for the epoch and introspection calls: TESSERA_API_KEY)
//
//   GET /hello   Authorization: Bearer <access token>
//                (a DPoP-bound token: Authorization: DPoP <token> and its DPoP
//                proof, whose htu is --public-url + /hello)
//     200 {"hello": "<sub>", "session": "<sid>"} | 401 + WWW-Authenticate | 503
#include <CLI/CLI.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "tessera/redis_epochs.hpp"
#include "tessera/verify.hpp"
#include "tessera/verify_http.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tessera::verify::AccessVerifier;

namespace {

http::response<http::string_body> answer(const http::request<http::string_body>& req,
                                         AccessVerifier& verifier, const std::string& public_url) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  if (req.target() != "/hello") {
    res.result(http::status::not_found);
    res.body() = R"({"error":"not_found"})";
  } else if (req.method() != http::verb::get) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET");
    res.body() = R"({"error":"method_not_allowed"})";
  } else {
    const auto presented = tessera::verify::parse_authorization(req[http::field::authorization]);
    const std::string_view token = presented ? presented->token : "";
    // The DPoP scheme brings its proof (one DPoP header); the Bearer scheme
    // brings none, so that a bound token sent as a bearer is refused.
    const std::string url = public_url + "/hello";
    tessera::DpopPresented dpop{.method = "GET", .url = url};
    if (presented && presented->dpop_scheme && req.count("dpop") == 1)
      dpop.proof = std::string_view(req["dpop"]);
    auto v = verifier.verify(token, &dpop);
    if (v) {
      boost::json::object body{{"hello", v->claims().sub},
                               {"session", v->claims().sid.value_or("")}};
      res.body() = boost::json::serialize(body);
    } else {
      const auto r = tessera::verify::to_http(v.error());
      res.result(r.status);
      if (!r.www_authenticate.empty()) res.set(http::field::www_authenticate, r.www_authenticate);
      res.body() = boost::json::serialize(
          boost::json::object{{"error", tessera::to_string(v.error().code)}});
    }
  }
  res.prepare_payload();
  return res;
}

void serve_connection(asio::ip::tcp::socket socket, AccessVerifier& verifier,
                      const std::string& public_url) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  for (;;) {
    stream.expires_after(std::chrono::seconds{30});
    http::request_parser<http::string_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(16 * 1024);
    http::read(stream, buffer, parser, ec);
    if (ec) break;
    auto res = answer(parser.get(), verifier, public_url);
    http::write(stream, res, ec);
    if (ec || !res.keep_alive()) break;
  }
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Example resource service protected by tessera::verify"};
  std::string listen = "127.0.0.1:9090", authority = "http://127.0.0.1:8080", redis;
  std::string issuer = "tessera", audience = "tessera", ready_file, public_url;
  bool liveness = false;
  app.add_option("--listen", listen, "host:port (port 0: any free port)");
  app.add_option("--authority", authority, "base URL of tessera serve");
  app.add_option("--issuer", issuer);
  app.add_option("--audience", audience);
  app.add_option("--redis", redis, "redis://host:port for epochs and bump fan-out");
  app.add_option("--ready-file", ready_file, "write the bound port here once listening");
  app.add_flag("--liveness", liveness, "check session liveness by introspection (L2)");
  app.add_option("--public-url", public_url,
                 "this service's URL as clients call it, the base of a DPoP proof's htu "
                 "(default http://<listen address>)");
  CLI11_PARSE(app, argc, argv);

  const char* key = std::getenv("TESSERA_API_KEY");
  tessera::SecretString api_key(key ? key : "");
  auto& clock = tessera::SystemClock::instance();

  auto jwks = tessera::verify::HttpJwksSource::create(authority + "/.well-known/jwks.json", clock);
  if (!jwks) {  // fail closed: no keys, no service
    std::cerr << "resource_service: " << jwks.error() << "\n";
    return 1;
  }
  tessera::verify::HttpEpochSource fetcher(authority, api_key);
  std::unique_ptr<tessera::RedisEpochSource> redis_source;
  tessera::verify::EpochSource* behind_cache = &fetcher;
  if (!redis.empty()) {
    auto o = tessera::parse_redis_url(redis);
    if (!o) {
      std::cerr << "resource_service: " << o.error() << "\n";
      return 2;
    }
    redis_source = std::make_unique<tessera::RedisEpochSource>(*o, &fetcher);
    behind_cache = redis_source.get();
  }
  // Without Redis there is no push: a bump shows after the cache's TTL.
  // With it the TTL still bounds a lost publish (docs/distributed.md), so
  // it stays short.
  tessera::verify::CachedEpochSource epochs(
      *behind_cache, clock,
      redis.empty() ? std::chrono::milliseconds{1000} : std::chrono::milliseconds{5'000});
  std::unique_ptr<tessera::RedisEpochSubscriber> subscriber;
  if (!redis.empty()) {
    subscriber = std::make_unique<tessera::RedisEpochSubscriber>(
        *tessera::parse_redis_url(redis), [&](std::string_view s) { epochs.invalidate(s); },
        [&] { epochs.invalidate_all(); });
  }
  tessera::verify::IntrospectionLivenessCheck live(authority, api_key, clock);
  AccessVerifier verifier({.issuer = issuer, .audiences = {audience}}, **jwks, clock, &epochs,
                          liveness ? &live : nullptr);

  asio::io_context io;
  const auto colon = listen.rfind(':');
  asio::ip::tcp::acceptor acceptor(
      io, {asio::ip::make_address(listen.substr(0, colon)),
           static_cast<unsigned short>(std::stoi(listen.substr(colon + 1)))});
  const auto port = acceptor.local_endpoint().port();
  if (!ready_file.empty()) {
    const std::string tmp = ready_file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return 1;
    std::fprintf(f, "%u\n", port);
    std::fclose(f);
    std::rename(tmp.c_str(), ready_file.c_str());
  }
  if (public_url.empty())
    public_url = "http://" + listen.substr(0, colon) + ":" + std::to_string(port);
  while (public_url.ends_with('/')) public_url.pop_back();
  std::cout << "resource_service: listening on " << listen.substr(0, colon) << ":" << port
            << std::endl;
  for (;;) {
    asio::ip::tcp::socket socket(io);
    beast::error_code ec;
    acceptor.accept(socket, ec);
    if (ec) continue;
    std::thread(serve_connection, std::move(socket), std::ref(verifier), std::cref(public_url))
        .detach();
  }
}
