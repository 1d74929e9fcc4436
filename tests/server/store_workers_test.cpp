// The store workers over a real socket: a Server on loopback whose store
// stalls every call (the forwarding store), spoken to by a real HTTP client
// (Beast, one connection per request). With the store work off the io
// threads, JWKS, /healthz and /metrics answer at their normal pace while
// every stalled request is still answered; a full queue is 503 `overloaded`
// at once; a drain waits for a request that is on a worker.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <future>
#include <thread>
#include <vector>

#include "forwarding_store.hpp"
#include "server/server.hpp"
#include "tessera/digest.hpp"
#include "tessera/memory_store.hpp"

namespace tessera::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kApiKey = "store-workers-test-key";
constexpr auto kStall = 200ms;

struct Answer {
  unsigned status = 0;
  std::string body;
  std::string retry_after;
  std::string connection;
  Clock::duration took{};
};

// One request on a fresh connection, answered whole.
Answer request(std::uint16_t port, http::verb method, std::string target, std::string body = {}) {
  const auto started = Clock::now();
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req(method, target, 11);
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, fmt::format("Bearer {}", kApiKey));
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  Answer a;
  a.status = res.result_int();
  a.body = res.body();
  a.retry_after = std::string(res[http::field::retry_after]);
  a.connection = std::string(res[http::field::connection]);
  a.took = Clock::now() - started;
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return a;
}

KeySet make_keys() {
  KeySet keys;
  (void)keys.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()),
                 KeyState::active);
  return keys;
}

class StoreWorkersTest : public ::testing::Test {
 protected:
  StoreWorkersTest()
      : lookup(*LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}})),
        cipher(*TokenCipher::create({{1, SecretString(std::string(32, 'c'))}},
                                    CsprngRandom::instance())),
        keys(make_keys()),
        raw(make_memory_store()),
        store(*raw) {
    service = *SessionService::create(
        {store, lookup, cipher, keys, clock, CsprngRandom::instance(), &metrics}, SessionPolicy{});
  }

  ~StoreWorkersTest() override {
    if (server) server->stop();
    if (runner.joinable()) runner.join();
  }

  void start(std::size_t workers, std::size_t queue) {
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.store_workers = workers;
    options.store_queue = queue;
    options.access_log = false;
    options.handle_signals = false;
    options.api_key_hashes.push_back(sha256(kApiKey));
    auto created =
        Server::create(options, ServerDeps{*service, keys, store, clock, metrics, nullptr});
    ASSERT_TRUE(created) << created.error();
    server = std::move(*created);
    port = server->port();
    runner = std::thread([this] { server->run(); });
  }

  std::string issue_cookie() {
    auto a =
        request(port, http::verb::post, "/v1/sessions", R"({"subject":"alice","mode":"cookie"})");
    EXPECT_EQ(a.status, 201u) << a.body;
    return std::string(json::parse(a.body).at("session_token").as_string());
  }

  SystemClock clock;
  LookupKeyRing lookup;
  TokenCipher cipher;
  SharedKeySet keys;
  std::unique_ptr<SessionStore> raw;
  testing::ForwardingStore store;
  Metrics metrics;
  std::unique_ptr<SessionService> service;
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;
  std::thread runner;
};

TEST_F(StoreWorkersTest, AStalledStoreLeavesTheLoopRoutesAtTheirPaceAndAnswersEveryRequest) {
  start(32, 4096);
  const std::string token = issue_cookie();
  const std::string body = fmt::format(R"({{"session_token":"{}"}})", token);

  // Their normal latency, before the stall.
  Clock::duration normal{};
  for (const char* path : {"/.well-known/jwks.json", "/healthz", "/metrics"}) {
    const auto a = request(port, http::verb::get, path);
    ASSERT_EQ(a.status, 200u) << path;
    normal = std::max(normal, a.took);
  }

  store.delay_all(kStall);
  // More stalled requests than io threads and than the stall could serve
  // in series within the test's bound.
  constexpr int kStalled = 16;
  std::vector<std::future<Answer>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(std::async(std::launch::async, [&] {
      return request(port, http::verb::post, "/v1/sessions/validate", body);
    }));
  }
  std::this_thread::sleep_for(50ms);  // the stalled requests are in

  for (const char* path : {"/.well-known/jwks.json", "/healthz", "/metrics"}) {
    const auto a = request(port, http::verb::get, path);
    EXPECT_EQ(a.status, 200u) << path;
    // Normal pace: well under one stall (inline, it would wait for 8).
    EXPECT_LT(a.took, normal + kStall / 2)
        << path << " took " << std::chrono::duration_cast<std::chrono::milliseconds>(a.took).count()
        << " ms";
  }
  for (auto& f : stalled) {
    const auto a = f.get();
    EXPECT_EQ(a.status, 200u) << a.body;
    EXPECT_GE(a.took, kStall);
  }
}

TEST_F(StoreWorkersTest, AFullQueueIsAnsweredOverloadedAtOnceAndNothingIsDone) {
  start(1, 1);
  store.delay_all(300ms);
  auto submit = [&](std::string subject) {
    return std::async(std::launch::async, [this, subject] {
      return request(port, http::verb::post, "/v1/sessions",
                     fmt::format(R"({{"subject":"{}","mode":"cookie"}})", subject));
    });
  };
  auto running = submit("first");  // taken by the one worker
  std::this_thread::sleep_for(50ms);
  auto queued = submit("second");  // waits in the one queue slot
  std::this_thread::sleep_for(50ms);
  const auto refused =
      request(port, http::verb::post, "/v1/sessions", R"({"subject":"third","mode":"cookie"})");
  EXPECT_EQ(refused.status, 503u);
  EXPECT_EQ(json::parse(refused.body).at("code").as_string(), "overloaded");
  EXPECT_EQ(refused.retry_after, "1");
  EXPECT_LT(refused.took, 150ms);  // at once, not after the stall

  EXPECT_EQ(running.get().status, 201u);
  EXPECT_EQ(queued.get().status, 201u);
  store.delay_all(0ns);
  // Nothing was done for the refused one.
  auto third = raw->list_live("third", clock.now());
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->empty());
  auto second = raw->list_live("second", clock.now());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->size(), 1u);
}

TEST_F(StoreWorkersTest, StoppingWaitsForARequestOnAWorker) {
  start(4, 16);
  store.delay_all(kStall);
  auto pending = std::async(std::launch::async, [&] {
    return request(port, http::verb::post, "/v1/sessions", R"({"subject":"bob","mode":"cookie"})");
  });
  std::this_thread::sleep_for(50ms);
  server->stop();
  runner.join();  // run() returns only once the request is answered
  const auto a = pending.get();
  EXPECT_EQ(a.status, 201u) << a.body;
  EXPECT_EQ(a.connection, "close");
}

}  // namespace
}  // namespace tessera::server
