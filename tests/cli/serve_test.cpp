// `tessera serve` as a process: dev first start, key rotation while serving
// (polling and SIGHUP), graceful SIGTERM.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/json.hpp>
#include <cctype>

#include "cli_test_support.hpp"

namespace tessera::cli {
namespace {

using namespace std::chrono_literals;
using testing::file_mode;
using testing::slurp;
using testing::TempDir;

struct HttpReply {
  int status = 0;
  std::string body;
};

// One request on a fresh connection, read until the server closes it.
HttpReply http(std::uint16_t port, const std::string& method, const std::string& path,
               const std::string& headers = "", const std::string& body = "") {
  HttpReply reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return reply;
  }
  const std::string req = method + " " + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers +
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string in;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (in.size() > 12) reply.status = std::stoi(in.substr(9, 3));
  if (const auto p = in.find("\r\n\r\n"); p != std::string::npos) reply.body = in.substr(p + 4);
  return reply;
}

std::vector<std::string> jwks_kids(std::uint16_t port) {
  std::vector<std::string> kids;
  const auto reply = http(port, "GET", "/.well-known/jwks.json");
  boost::system::error_code ec;
  const auto v = boost::json::parse(reply.body, ec);
  if (ec || !v.is_object()) return kids;
  for (const auto& k : v.at("keys").as_array()) kids.emplace_back(k.at("kid").as_string());
  return kids;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// A running `tessera serve`, stopped with SIGTERM at the end.
class ServeProcess {
 public:
  ServeProcess(const TempDir& dir, std::vector<std::string> args) : dir_(dir) {
    std::filesystem::remove(dir / "ready");
    std::vector<std::string> all{"serve", "--listen", "127.0.0.1:0", "--ready-file", "ready"};
    all.insert(all.end(), args.begin(), args.end());
    pid_ = testing::spawn_tessera(dir.path(), all, {}, dir / "serve.out", dir / "serve.err");
    ready_ = eventually([&] { return std::filesystem::exists(dir / "ready"); }, 20s);
    if (ready_) port_ = static_cast<std::uint16_t>(std::stoi(slurp(dir / "ready")));
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      testing::wait_exit(pid_);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  [[nodiscard]] bool ready() const { return ready_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string out() const { return slurp(dir_ / "serve.out"); }
  [[nodiscard]] std::string err() const { return slurp(dir_ / "serve.err"); }
  void forget() { pid_ = -1; }  // reaped by the test
  int terminate() {
    ::kill(pid_, SIGTERM);
    const int code = testing::wait_exit(pid_);
    pid_ = -1;
    return code;
  }

 private:
  const TempDir& dir_;
  pid_t pid_ = -1;
  bool ready_ = false;
  std::uint16_t port_ = 0;
};

class Serve : public ::testing::Test {};

TEST_F(Serve, DevFirstStartPrintsAWorkingCurlLineOnceAndStopsCleanlyOnSigterm) {
  TempDir dir;
  std::string key;
  {
    ServeProcess serve(dir, {});
    ASSERT_TRUE(serve.ready()) << serve.out() << serve.err();
    const std::string out = serve.out();
    // tsk_ + 43 base64url characters. (Not std::regex: GCC 12 warns
    // -Wmaybe-uninitialized inside it under ASan, and -Werror stops the build.)
    const auto at = out.find("tsk_");
    ASSERT_NE(at, std::string::npos) << out;
    key = out.substr(at, 4 + 43);
    ASSERT_EQ(key.size(), 47u) << out;
    for (const char c : std::string_view(key).substr(4)) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << out;
    }
    EXPECT_NE(out.find("curl -s -X POST http://127.0.0.1:" + std::to_string(serve.port()) +
                       "/v1/sessions -H 'Authorization: Bearer " + key + "'"),
              std::string::npos)
        << out;
    // Only the hash is kept.
    EXPECT_EQ(file_mode(dir / "var/api_keys"), 0600u);
    EXPECT_EQ(slurp(dir / "var/api_keys").find(key), std::string::npos);
    EXPECT_EQ(file_mode(dir / "var/keys/signing.jwks"), 0600u);
    EXPECT_EQ(file_mode(dir / "var/keys/secrets.json"), 0600u);
    // The key appears in the banner only, exactly twice (the key and the curl line).
    std::size_t count = 0;
    for (auto p = out.find(key); p != std::string::npos; p = out.find(key, p + 1)) ++count;
    EXPECT_EQ(count, 2u);

    const auto issued =
        http(serve.port(), "POST", "/v1/sessions",
             "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n",
             R"({"subject":"alice","mode":"token"})");
    EXPECT_EQ(issued.status, 201) << issued.body;
    const auto refused =
        http(serve.port(), "POST", "/v1/sessions",
             "Authorization: Bearer tsk_wrong\r\nContent-Type: application/json\r\n",
             R"({"subject":"alice","mode":"token"})");
    EXPECT_EQ(refused.status, 401);
    EXPECT_EQ(serve.terminate(), 0) << serve.err();
    EXPECT_EQ(serve.err().find(key), std::string::npos);
  }
  // The session issued over HTTP is in the SQLite file.
  auto list = testing::run_tessera(dir.path(), {"sessions", "list", "alice"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("\"subject\":\"alice\""), std::string::npos);
  {
    // A later start prints no key and accepts the stored one.
    ServeProcess again(dir, {});
    ASSERT_TRUE(again.ready()) << again.err();
    EXPECT_EQ(again.out().find("tsk_"), std::string::npos);
    const auto issued =
        http(again.port(), "POST", "/v1/sessions",
             "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n",
             R"({"subject":"bob","mode":"cookie"})");
    EXPECT_EQ(issued.status, 201) << issued.body;
    EXPECT_EQ(again.terminate(), 0);
  }
}

TEST_F(Serve, KeysRotateWhileServingIsPickedUpByPolling) {
  TempDir dir;
  ServeProcess serve(dir, {"--key-reload-interval", "1s", "--store", "memory:"});
  ASSERT_TRUE(serve.ready()) << serve.err();
  const auto before = jwks_kids(serve.port());
  ASSERT_EQ(before.size(), 2u);  // active + pre-published next
  auto rot = testing::run_tessera(dir.path(), {"keys", "rotate"});
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  boost::json::value r = boost::json::parse(rot.out);
  const std::string next(r.at("next").as_string());
  EXPECT_TRUE(has(before, std::string(r.at("active").as_string())));
  EXPECT_TRUE(eventually([&] { return has(jwks_kids(serve.port()), next); }))
      << serve.out() << serve.err();
  // The retired key stays published: its tokens still verify.
  EXPECT_TRUE(has(jwks_kids(serve.port()), std::string(r.at("retired").as_string())));
  EXPECT_EQ(serve.terminate(), 0);
}

TEST_F(Serve, SighupReloadsAtOnceAndABadFileKeepsTheOldKeys) {
  TempDir dir;
  ServeProcess serve(dir, {"--key-reload-interval", "1h", "--store", "memory:"});
  ASSERT_TRUE(serve.ready()) << serve.err();
  auto rot = testing::run_tessera(dir.path(), {"keys", "rotate"});
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  const std::string next(boost::json::parse(rot.out).at("next").as_string());
  EXPECT_FALSE(has(jwks_kids(serve.port()), next));
  ::kill(serve.pid(), SIGHUP);
  EXPECT_TRUE(eventually([&] { return has(jwks_kids(serve.port()), next); }))
      << serve.out() << serve.err();

  testing::write_text(dir / "var/keys/signing.jwks", "{broken");
  ::kill(serve.pid(), SIGHUP);
  EXPECT_TRUE(
      eventually([&] { return serve.out().find("key_reload_failed") != std::string::npos; }));
  EXPECT_TRUE(has(jwks_kids(serve.port()), next));
  EXPECT_EQ(serve.terminate(), 0);
}

TEST_F(Serve, RunsCleanupEveryCleanupInterval) {
  TempDir dir;
  const std::string hash =
      "--api-key-hashes=sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  ServeProcess serve(dir, {hash, "--cleanup-interval", "1s", "--cleanup-retention", "0"});
  ASSERT_TRUE(serve.ready()) << serve.err();
  const auto issued = http(serve.port(), "POST", "/v1/sessions",
                           "Authorization: Bearer test\r\nContent-Type: application/json\r\n",
                           R"({"subject":"dave","mode":"cookie"})");
  ASSERT_EQ(issued.status, 201) << issued.body;
  auto revoked = testing::run_tessera(dir.path(), {"sessions", "revoke", "dave"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  EXPECT_TRUE(eventually([&] {
    return serve.out().find(R"("event":"cleanup","deleted":1)") != std::string::npos;
  })) << serve.out();
  EXPECT_EQ(serve.terminate(), 0);
}

// Regression: a supervisor that repeats SIGTERM while the process is already
// shutting down (server gone, store closing) killed it with status -15.
TEST_F(Serve, RepeatedSigtermDuringShutdownStillExitsZero) {
  TempDir dir;
  ServeProcess serve(dir, {});
  ASSERT_TRUE(serve.ready()) << serve.err();
  const pid_t pid = serve.pid();
  int status = 0;
  pid_t done = 0;
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (done == 0 && std::chrono::steady_clock::now() < end) {
    ::kill(pid, SIGTERM);
    done = ::waitpid(pid, &status, WNOHANG);
    std::this_thread::sleep_for(200us);
  }
  ASSERT_EQ(done, pid);
  EXPECT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  serve.forget();
}

TEST_F(Serve, RotatedSecretKeysKeepEarlierRefreshTokensWorkingAfterRestart) {
  TempDir dir;
  const std::string hash_setting =
      "--api-key-hashes=sha256:" +
      std::string("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");  // "test"
  std::string refresh;
  {
    ServeProcess serve(dir, {hash_setting});
    ASSERT_TRUE(serve.ready()) << serve.err();
    const auto issued = http(serve.port(), "POST", "/v1/sessions",
                             "Authorization: Bearer test\r\nContent-Type: application/json\r\n",
                             R"({"subject":"carol","mode":"token"})");
    ASSERT_EQ(issued.status, 201) << issued.body;
    refresh = std::string(boost::json::parse(issued.body).at("refresh_token").as_string());
    EXPECT_EQ(serve.terminate(), 0);
  }
  auto rot = testing::run_tessera(dir.path(), {"keys", "rotate-secrets"});
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  ServeProcess serve(dir, {hash_setting});
  ASSERT_TRUE(serve.ready()) << serve.err();
  const auto renewed =
      http(serve.port(), "POST", "/v1/tokens/refresh", "Content-Type: application/json\r\n",
           R"({"refresh_token":")" + refresh + R"("})");
  EXPECT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_EQ(serve.terminate(), 0);
}

}  // namespace
}  // namespace tessera::cli
