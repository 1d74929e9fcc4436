// HttpJwksSource and HttpEpochSource against a real (if tiny) HTTP server in
// the test: a loopback socket that answers canned responses and counts the
// requests, so the refetch rules can be checked with a manual clock.
#include "tessera/verify_http.hpp"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "result_matchers.hpp"
#include "tessera/encoding.hpp"
#include "tessera/random.hpp"

namespace tessera::verify {
namespace {

using namespace std::chrono_literals;
using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

// Answers every request with `status` and `body` (and Cache-Control), one
// request per connection.
class CannedServer {
 public:
  CannedServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot listen");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  void answer(int status, std::string body, std::string cache_control = "") {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
    cache_control_ = std::move(cache_control);
  }
  [[nodiscard]] std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  [[nodiscard]] int requests() const { return requests_.load(); }
  [[nodiscard]] std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const auto n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      std::string res;
      {
        std::lock_guard lock(mu_);
        last_ = req;
        res = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Type: application/json\r\n";
        if (!cache_control_.empty()) res += "Cache-Control: " + cache_control_ + "\r\n";
        res += "Content-Length: " + std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n";
        res += body_;
      }
      ++requests_;
      (void)write(c, res.data(), res.size());
      close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  int status_ = 200;
  std::string body_;
  std::string cache_control_;
  std::string last_;
  std::thread thread_;
};

std::string jwks_of(std::initializer_list<const char*> kids) {
  KeySet set;
  for (const char* kid : kids) {
    EXPECT_TRUE(
        set.add(*Key::generate(Algorithm::EdDSA, kid, CsprngRandom::instance()), KeyState::next));
  }
  return set.public_jwks();
}

TEST(HttpJwksSource, NoKeysNoSourceAndAStartWithoutTheAuthorityIsJwksUnavailable) {
  ManualClock clock;
  CannedServer server;
  server.answer(503, "{}");
  EXPECT_THAT(HttpJwksSource::create(server.url("/jwks"), clock),
              FailsWith(ErrorCode::jwks_unavailable));
  server.answer(200, R"({"keys":[]})");
  EXPECT_THAT(HttpJwksSource::create(server.url("/jwks"), clock),
              FailsWith(ErrorCode::jwks_unavailable));
  server.answer(200, "<html>not a key set</html>");
  EXPECT_THAT(HttpJwksSource::create(server.url("/jwks"), clock),
              FailsWith(ErrorCode::jwks_unavailable));
  EXPECT_THAT(HttpJwksSource::create("http://127.0.0.1:1/jwks", clock, {.timeout = 500ms}),
              FailsWith(ErrorCode::jwks_unavailable));
  EXPECT_THAT(HttpJwksSource::create("ftp://127.0.0.1/jwks", clock),
              FailsWith(ErrorCode::config_invalid));
}

TEST(HttpJwksSource, KeepsTheSetForItsMaxAgeAndRefetchesBeforeItEnds) {
  ManualClock clock;
  CannedServer server;
  server.answer(200, jwks_of({"k1"}), "public, max-age=120");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock);
  ASSERT_THAT(source, Succeeds());
  EXPECT_NE((*source)->keys()->find("k1"), nullptr);
  EXPECT_EQ(server.requests(), 1);
  clock.advance(100s);  // inside max-age minus kRefetchBeforeExpiry
  (void)(*source)->keys();
  EXPECT_EQ(server.requests(), 1);
  server.answer(200, jwks_of({"k2"}), "max-age=120");
  clock.advance(11s);  // 111 s: within 10 s of the end → refetch
  EXPECT_NE((*source)->keys()->find("k2"), nullptr);
  EXPECT_EQ(server.requests(), 2);
}

TEST(HttpJwksSource, AFailedRefetchKeepsTheKeysAndRetriesLater) {
  ManualClock clock;
  CannedServer server;
  server.answer(200, jwks_of({"k1"}), "max-age=60");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock);
  ASSERT_TRUE(source);
  server.answer(500, "oops");
  clock.advance(55s);
  EXPECT_NE((*source)->keys()->find("k1"), nullptr);
  EXPECT_EQ(server.requests(), 2);
  (void)(*source)->keys();  // inside the retry pause
  EXPECT_EQ(server.requests(), 2);
  clock.advance(HttpJwksSource::kRetryAfterFailure);
  (void)(*source)->keys();
  EXPECT_EQ(server.requests(), 3);
}

TEST(HttpJwksSource, AnUnknownKidLooksAgainAtMostOncePerInterval) {
  ManualClock clock;
  CannedServer server;
  server.answer(200, jwks_of({"k1"}), "max-age=3600");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock, {}, 30s);
  ASSERT_TRUE(source);
  server.answer(200, jwks_of({"k1", "k2"}), "max-age=3600");
  auto fresh = (*source)->refresh_for_unknown_kid();
  ASSERT_THAT(fresh, Succeeds());
  ASSERT_NE(*fresh, nullptr);
  EXPECT_NE((*fresh)->find("k2"), nullptr);
  // A flood of bad kids: no refetch, the set of the latest look.
  EXPECT_THAT((*source)->refresh_for_unknown_kid(), Succeeds());
  EXPECT_EQ(server.requests(), 2);
  clock.advance(30s);
  EXPECT_THAT((*source)->refresh_for_unknown_kid(), Succeeds());
  EXPECT_EQ(server.requests(), 3);
}

// The authority's side of a rotation: keys by kid, published as a JWKS.
struct Authority {
  Authority() {
    for (const char* kid : {"k1", "k2"}) {
      keys.emplace(kid, *Key::generate(Algorithm::EdDSA, kid, CsprngRandom::instance()));
    }
  }
  std::string jwks(std::initializer_list<const char*> kids) const {
    KeySet set;
    for (const char* kid : kids) EXPECT_TRUE(set.add(keys.at(kid), KeyState::next));
    return set.public_jwks();
  }
  std::string mint(const char* kid, const Clock& clock) const {
    JwtClaims c;
    c.iss = "https://auth.example";
    c.sub = "alice";
    c.aud = {"api"};
    c.iat = clock.now();
    c.exp = clock.now() + 900s;
    return *sign_jwt(keys.at(kid), c);
  }
  std::map<std::string, Key> keys;
};

VerifierOptions verifier_options() {
  return {.issuer = "https://auth.example", .audiences = {"api"}, .cache_entries = 0};
}

// Right after a rotation, a token signed with the new key meets a verifier
// whose cached set predates it. If the JWKS cannot be fetched then, the
// answer is "try again" (503), not "log in again" (401 key_not_found).
TEST(HttpJwksSource, AnUnknownKidWhileTheAuthorityIsDownOrBrokenIsJwksUnavailable) {
  struct Outage {
    const char* name;
    int status;  // 0: nothing listens
    const char* body;
  };
  for (const Outage& outage :
       {Outage{"down", 0, ""}, Outage{"HTTP 500", 500, "oops"}, Outage{"garbage", 200, "not json"},
        Outage{"an empty set", 200, R"({"keys":[]})"}}) {
    SCOPED_TRACE(outage.name);
    ManualClock clock;
    Authority authority;
    auto server = std::make_optional<CannedServer>();
    server->answer(200, authority.jwks({"k1"}), "max-age=3600");
    const std::string url = server->url("/jwks");
    auto source = HttpJwksSource::create(url, clock, {.timeout = 500ms}, 30s);
    ASSERT_THAT(source, Succeeds());
    AccessVerifier verifier(verifier_options(), **source, clock);
    if (outage.status == 0) {
      server.reset();
    } else {
      server->answer(outage.status, outage.body);
    }
    const auto r = verifier.verify(authority.mint("k2", clock));
    EXPECT_THAT(r, FailsWith(ErrorCode::jwks_unavailable));
    if (!r) {
      const auto http = to_http(r.error());
      EXPECT_EQ(http.status, 503u);
      EXPECT_EQ(http.www_authenticate, "") << "a 503 must not ask the client to log in again";
    }
    // The keys it holds still verify.
    EXPECT_THAT(verifier.verify(authority.mint("k1", clock)), Succeeds());
    // A token that names no kid is refused as it is: the outage is not asked.
    const std::string no_kid =
        base64url_encode(std::string_view(R"({"alg":"EdDSA","typ":"at+jwt"})")) + "." +
        base64url_encode(std::string_view(R"({"sub":"alice","exp":9999999999,"iat":1})")) + ".c2ln";
    EXPECT_THAT(verifier.verify(no_kid), FailsWith(ErrorCode::key_not_found));
  }
}

TEST(HttpJwksSource, AnUnknownKidTheAuthorityAnswersWithoutIsKeyNotFound) {
  ManualClock clock;
  Authority authority;
  CannedServer server;
  server.answer(200, authority.jwks({"k1"}), "max-age=3600");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock, {}, 30s);
  ASSERT_THAT(source, Succeeds());
  AccessVerifier verifier(verifier_options(), **source, clock);
  EXPECT_THAT(verifier.verify(authority.mint("k2", clock)), FailsWith(ErrorCode::key_not_found));
  EXPECT_EQ(server.requests(), 2) << "the unknown kid looked again";
  EXPECT_EQ(to_http({ErrorCode::key_not_found, ""}).status, 401u);
}

// Inside the unknown-kid interval nothing is fetched; the answer follows the
// latest fetch: a 200 without the kid is final, a failure is not.
TEST(HttpJwksSource, InsideTheUnknownKidIntervalTheLatestFetchDecidesTheCode) {
  ManualClock clock;
  Authority authority;
  CannedServer server;
  server.answer(200, authority.jwks({"k1"}), "max-age=3600");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock, {}, 30s);
  ASSERT_THAT(source, Succeeds());
  AccessVerifier verifier(verifier_options(), **source, clock);
  const auto k2_token = authority.mint("k2", clock);

  // A successful answer without k2, then k2 again inside the interval.
  EXPECT_THAT(verifier.verify(k2_token), FailsWith(ErrorCode::key_not_found));
  clock.advance(10s);
  EXPECT_THAT(verifier.verify(k2_token), FailsWith(ErrorCode::key_not_found));
  EXPECT_EQ(server.requests(), 2);

  // The next look fails; inside the interval after it, still unavailable.
  clock.advance(20s);
  server.answer(500, "oops");
  EXPECT_THAT(verifier.verify(k2_token), FailsWith(ErrorCode::jwks_unavailable));
  EXPECT_EQ(server.requests(), 3);
  server.answer(200, authority.jwks({"k1", "k2"}), "max-age=3600");
  clock.advance(10s);
  EXPECT_THAT(verifier.verify(k2_token), FailsWith(ErrorCode::jwks_unavailable));
  EXPECT_EQ(server.requests(), 3) << "a flood of unknown kids must not refetch";

  // The interval over, the authority answers with k2: the token verifies.
  clock.advance(20s);
  EXPECT_THAT(verifier.verify(k2_token), Succeeds());
  EXPECT_EQ(server.requests(), 4);
}

TEST(HttpJwksSource, AFailedBackgroundRefetchKeepsKnownKidsVerifying) {
  ManualClock clock;
  Authority authority;
  CannedServer server;
  server.answer(200, authority.jwks({"k1"}), "max-age=60");
  auto source = HttpJwksSource::create(server.url("/jwks"), clock, {}, 30s);
  ASSERT_THAT(source, Succeeds());
  AccessVerifier verifier(verifier_options(), **source, clock);
  server.answer(500, "oops");
  clock.advance(55s);  // due: keys() refetches and fails
  EXPECT_THAT(verifier.verify(authority.mint("k1", clock)), Succeeds());
  clock.advance(1h);  // long past max-age: the set is kept, not dropped
  EXPECT_THAT(verifier.verify(authority.mint("k1", clock)), Succeeds());
  EXPECT_GE(server.requests(), 3);
  // A kid it lacks while the authority keeps failing: unavailable.
  EXPECT_THAT(verifier.verify(authority.mint("k2", clock)), FailsWith(ErrorCode::jwks_unavailable));
}

TEST(HttpEpochSource, ReadsTheEpochWithTheApiKeyAndFailsClosed) {
  CannedServer server;
  server.answer(200, R"({"epoch": 4})");
  HttpEpochSource source(server.url(""), SecretString("tsk_test"));
  auto e = source.current("al ice/é");
  ASSERT_THAT(e, Succeeds());
  EXPECT_EQ(*e, 4u);
  const auto req = server.last_request();
  EXPECT_NE(req.find("GET /v1/subjects/al%20ice%2F%C3%A9/epoch "), std::string::npos) << req;
  EXPECT_NE(req.find("Authorization: Bearer tsk_test"), std::string::npos);
  server.answer(401, R"({"code":"unauthorized"})");
  EXPECT_THAT(source.current("alice"), FailsWith(ErrorCode::epoch_unavailable));
  server.answer(200, "not json");
  EXPECT_THAT(source.current("alice"), FailsWith(ErrorCode::epoch_unavailable));
  HttpEpochSource down("http://127.0.0.1:1", SecretString("k"), {.timeout = 500ms});
  EXPECT_THAT(down.current("alice"), FailsWith(ErrorCode::epoch_unavailable));
}

TEST(IntrospectionLivenessCheck, ActiveIsLiveInactiveIsRevokedAnswersAreCachedBriefly) {
  ManualClock clock;
  CannedServer server;
  server.answer(200, R"({"active": true})");
  IntrospectionLivenessCheck check(server.url(""), SecretString("tsk_test"), clock, 1s);
  EXPECT_EQ(*check.check({.session_id = "s1", .token = "t"}), Liveness::live);
  EXPECT_NE(server.last_request().find("POST /oauth2/introspect "), std::string::npos);
  server.answer(200, R"({"active": false})");
  EXPECT_EQ(*check.check({.session_id = "s1", .token = "t"}), Liveness::live);  // cached
  clock.advance(1s);
  EXPECT_EQ(*check.check({.session_id = "s1", .token = "t"}), Liveness::revoked);
  server.answer(503, "{}");
  clock.advance(1s);
  EXPECT_THAT(check.check({.session_id = "s1", .token = "t"}),
              FailsWith(ErrorCode::liveness_unavailable));
}

// An HTTPS peer: Python's http.server behind ssl, serving a JWKS file with a
// self-signed certificate for 127.0.0.1 made by the openssl command.
class TlsJwksServer {
 public:
  explicit TlsJwksServer(const std::string& jwks) {
    char tmpl[] = "/tmp/tessera-tls-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    write(dir_ + "/jwks.json", jwks);
    write(dir_ + "/server.py",
          "import http.server, os, ssl\n"
          "class H(http.server.SimpleHTTPRequestHandler):\n"
          "    def log_message(self, *a): pass\n"
          "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
          "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
          "c.load_cert_chain('cert.pem', 'key.pem')\n"
          "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
          "open('port.tmp', 'w').write(str(s.server_address[1]))\n"
          "os.rename('port.tmp', 'port')\n"
          "s.serve_forever()\n");
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
       "-keyout key.pem -out cert.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
       ">/dev/null 2>&1");
    sh("(/usr/bin/python3 server.py >/dev/null 2>&1 & echo $! > pid)");
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream f(dir_ + "/port");
      f >> port_;
      if (port_ == 0) std::this_thread::sleep_for(25ms);
    }
    if (port_ == 0) throw std::runtime_error("the TLS server did not start");
  }
  ~TlsJwksServer() {
    (void)std::system(("kill $(cat " + dir_ + "/pid) 2>/dev/null").c_str());
    std::filesystem::remove_all(dir_);
  }
  [[nodiscard]] std::string url(std::string_view host) const {
    return "https://" + std::string(host) + ":" + std::to_string(port_) + "/jwks.json";
  }
  [[nodiscard]] std::string ca() const { return dir_ + "/cert.pem"; }

 private:
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }
  void sh(const std::string& cmd) const {
    if (std::system(("cd " + dir_ + " && " + cmd).c_str()) != 0) {
      throw std::runtime_error("failed: " + cmd);
    }
  }
  std::string dir_;
  int port_ = 0;
};

TEST(HttpJwksSource, FetchesOverTlsAndVerifiesThePeerAndItsName) {
  ManualClock clock;
  TlsJwksServer server(jwks_of({"k1"}));
  auto ok = HttpJwksSource::create(server.url("127.0.0.1"), clock, {.ca_file = server.ca()});
  ASSERT_THAT(ok, Succeeds());
  EXPECT_NE((*ok)->keys()->find("k1"), nullptr);
  // An untrusted certificate (not in the system's store) is refused...
  EXPECT_FALSE(HttpJwksSource::create(server.url("127.0.0.1"), clock));
  // ...and so is a trusted one for another name.
  auto wrong_name =
      HttpJwksSource::create(server.url("localhost"), clock, {.ca_file = server.ca()});
  ASSERT_FALSE(wrong_name);
  EXPECT_NE(wrong_name.error().detail.find("TLS handshake"), std::string::npos)
      << wrong_name.error().detail;
}

}  // namespace
}  // namespace tessera::verify
