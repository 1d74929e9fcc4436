// The request path in process, from raw bytes to an answer: Beast's parser
// with the server's limits, the framing checks of the connection, the
// router, the handlers, a memory store. No socket. Each input meets a fresh
// authority (memory store, deterministic randomness, a fixed clock) that
// holds one cookie session and one token session; a seed may name their
// credentials with the markers below, which stand for them at equal
// length, so Content-Length stays right.
//
// It aborts on a 500 (every 500 is our bug), a problem answer without its
// code or type, or an answer that shows the API key the request presented
// only as a credential.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/http_framing.hpp"
#include "server/metrics.hpp"
#include "server/routes.hpp"
#include "tessera/digest.hpp"
#include "tessera/lookup_key.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/random.hpp"
#include "tessera/session_service.hpp"
#include "tessera/token_cipher.hpp"

namespace {

namespace http = boost::beast::http;
using namespace tessera;

constexpr std::string_view kApiKey = "fuzz-api-key-0123456789";

// A 47-character marker per credential (kTokenTextSize).
std::string marker(std::string_view name) {
  std::string m = "@" + std::string(name) + "@";
  m.resize(kTokenTextSize, '~');
  return m;
}

KeySet fuzz_keys() {
  DeterministicRandom random(7);
  KeySet keys;
  (void)keys.add(*Key::generate(Algorithm::EdDSA, "fuzz-k1", random), KeyState::active);
  return keys;
}

// What does not change between inputs, made once (a signing key costs more
// than a whole request).
struct Fixed {
  LookupKeyRing lookup = *LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}});
  TokenCipher cipher =
      *TokenCipher::create({{1, SecretString(std::string(32, 'c'))}}, CsprngRandom::instance());
  SharedKeySet keys{fuzz_keys()};
};

struct Authority {
  static Fixed& fixed() {
    static Fixed f;
    return f;
  }
  DeterministicRandom random{11};
  ManualClock clock;
  LookupKeyRing& lookup = fixed().lookup;
  TokenCipher& cipher = fixed().cipher;
  SharedKeySet& keys = fixed().keys;
  std::unique_ptr<SessionStore> store = make_memory_store();
  server::Metrics metrics;
  std::unique_ptr<SessionService> service;
  server::ServerOptions options;
  std::unique_ptr<server::ServerDeps> deps;
  std::unique_ptr<server::Api> api;
  std::string cookie, refresh;

  Authority() {
    service = *SessionService::create({*store, lookup, cipher, keys, clock, random, &metrics},
                                      SessionPolicy{});
    options.api_key_hashes.push_back(sha256(kApiKey));
    options.trusted_proxies.networks = {*server::Cidr::parse("10.0.0.0/8")};
    options.cors_allowed_origins = {"https://app.test"};
    options.public_host = "auth.test";
    options.public_scheme = "https";
    options.authz.allowed_hosts = {"app.test"};
    options.authz.login_url = "https://auth.test/login";
    options.cookie.secure = false;
    deps = std::make_unique<server::ServerDeps>(
        server::ServerDeps{*service, keys, *store, clock, metrics, nullptr});
    api = std::make_unique<server::Api>(options, *deps);
    if (auto c = service->issue({.subject = "alice", .mode = SessionMode::cookie}))
      cookie = std::string(c->session_token.reveal());
    if (auto t = service->issue({.subject = "bob", .mode = SessionMode::token}); t && t->tokens)
      refresh = std::string(t->tokens->refresh_token.reveal());
  }
};

void replace_all(std::string& text, const std::string& from, std::string_view to) {
  if (to.size() != from.size()) return;
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Authority a;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  static const std::string kSession = marker("session"), kRefresh = marker("refresh");
  replace_all(bytes, kSession, a.cookie);
  replace_all(bytes, kRefresh, a.refresh);

  // As the connection reads: the head under max_header_bytes, the body
  // under max_body_bytes, pipelined requests one after another.
  std::string_view rest = bytes;
  for (int n = 0; n < 4 && !rest.empty(); ++n) {
    // The head is scanned raw first, as the connection does.
    if (const auto end = rest.find("\r\n\r\n");
        end != std::string_view::npos && server::has_obs_fold(rest.substr(0, end + 2)))
      return 0;  // 400 and closed
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(a.options.max_header_bytes));
    parser.body_limit(a.options.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used = parser.put(boost::asio::buffer(rest.data(), rest.size()), ec);
    if (ec || !parser.is_header_done()) return 0;       // answered 4xx and closed, or waiting
    if (server::framing_error(parser.get())) return 0;  // 400 and closed
    if (!parser.is_done()) return 0;                    // the body is still to come
    rest.remove_prefix(used);

    const auto& msg = parser.get();
    server::HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), f.value());
    req.body = msg.body();
    req.peer = n % 2 == 0 ? "10.0.0.1" : "192.0.2.9";

    const server::HttpResponse r = a.api->handle(req);
    static const bool trace = std::getenv("TESSERA_FUZZ_TRACE") != nullptr;
    if (trace) {
      std::fprintf(stderr, "%s %s -> %u %s\n", req.method.c_str(), req.target.c_str(), r.status,
                   r.code ? std::string(to_string(*r.code)).c_str() : "");
    }
    if (r.status >= 500 && r.status != 503) std::abort();
    if (r.status >= 400 && r.status != 405 && !r.code) std::abort();
    if (!r.body.empty() && r.content_type.empty()) std::abort();
    // The key may come back only where the request carried it outside the
    // credential headers (a forward-auth redirect names the original URL).
    const auto outside_credentials = [&] {
      if (req.target.find(kApiKey) != std::string::npos) return true;
      if (req.body.find(kApiKey) != std::string::npos) return true;
      for (const auto& [name, value] : req.headers) {
        const bool credential = boost::beast::iequals(name, "authorization") ||
                                boost::beast::iequals(name, "x-tessera-api-key");
        if (!credential && value.find(kApiKey) != std::string::npos) return true;
      }
      return false;
    };
    bool shown = r.body.find(kApiKey) != std::string::npos;
    for (const auto& [name, value] : r.headers)
      shown = shown || value.find(kApiKey) != std::string::npos;
    if (shown && !outside_credentials()) std::abort();
    if (!msg.keep_alive()) break;
  }
  return 0;
}
