// `tessera serve` as a process: dev first start, key rotation while serving
// (polling and SIGHUP), graceful SIGTERM.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/json.hpp>
#include <cctype>
#include <ctime>
#include <optional>
#include <set>
#include <sstream>

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

// The key in a first start's banner (tsk_ + 43 base64url characters), or "".
std::string banner_key(const std::string& out) {
  const auto at = out.find("tsk_");
  return at == std::string::npos ? std::string() : out.substr(at, 4 + 43);
}

// Regression: with the port taken, a dev first start stored the new API
// key's hash, failed to listen and never showed the key; every later start
// found the hash, showed nothing, and nobody had a key.
TEST_F(Serve, DevFirstStartOnATakenPortStoresNoApiKeyAndTheNextStartShowsAWorkingOne) {
  TempDir dir;
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string port = std::to_string(ntohs(addr.sin_port));

  auto refused = testing::run_tessera(dir.path(), {"serve", "--listen", "127.0.0.1:" + port});
  ::close(taken);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_TRUE(refused.err.starts_with("tessera: config_invalid: listen: ")) << refused.err;
  EXPECT_EQ(refused.out.find("tsk_"), std::string::npos) << refused.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "var/api_keys"));

  ServeProcess serve(dir, {});
  ASSERT_TRUE(serve.ready()) << serve.out() << serve.err();
  const std::string key = banner_key(serve.out());
  ASSERT_EQ(key.size(), 47u) << serve.out();
  const auto issued =
      http(serve.port(), "POST", "/v1/sessions",
           "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n",
           R"({"subject":"alice","mode":"token"})");
  EXPECT_EQ(issued.status, 201) << issued.body;
  EXPECT_EQ(serve.terminate(), 0);
}

// Restores the umask on every path out of a test.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

TEST_F(Serve, SqliteDatabaseAndItsWalAndShmFilesAre0600UnderAPermissiveUmask) {
  TempDir dir;
  const ScopedUmask umask(022);  // the child inherits it: SQLite alone would make 0644
  ServeProcess serve(dir, {});
  ASSERT_TRUE(serve.ready()) << serve.err();
  const auto issued = http(
      serve.port(), "POST", "/v1/sessions",
      "Authorization: Bearer " + banner_key(serve.out()) + "\r\nContent-Type: application/json\r\n",
      R"({"subject":"erin","mode":"token"})");
  ASSERT_EQ(issued.status, 201) << issued.body;
  for (const char* file : {"var/tessera.db", "var/tessera.db-wal", "var/tessera.db-shm"}) {
    ASSERT_TRUE(std::filesystem::exists(dir / file)) << file;
    EXPECT_EQ(file_mode(dir / file), 0600u) << file;
  }
  EXPECT_EQ(serve.terminate(), 0);
}

TEST_F(Serve, DevKeyFileOpenToOthersStartsButLogsKeyFilePermissions) {
  TempDir dir;
  ASSERT_EQ(testing::run_tessera(dir.path(), {"keys", "generate"}).exit_code, 0);
  ASSERT_EQ(::chmod((dir / "var/keys/secrets.json").c_str(), 0644), 0);
  ServeProcess serve(dir, {"--store", "memory:"});
  ASSERT_TRUE(serve.ready()) << serve.err();
  bool warned = false;
  std::istringstream lines(serve.out());
  for (std::string line; std::getline(lines, line);) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object() || v.as_object().if_contains("event") == nullptr ||
        v.at("event") != "key_file_permissions")
      continue;
    warned = true;
    EXPECT_EQ(v.at("level"), "warn") << line;
    EXPECT_EQ(v.at("setting"), "secret_keys") << line;
    EXPECT_EQ(v.at("mode"), "0644") << line;
  }
  EXPECT_TRUE(warned) << serve.out();
  EXPECT_EQ(serve.terminate(), 0);
}

// "2026-12-02T07:10:00.123Z" → time point; nullopt unless exactly that shape.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339_utc_ms(std::string_view s) {
  static constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != shape.size()) return std::nullopt;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool ok =
        shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(s[i])) != 0 : s[i] == shape[i];
    if (!ok) return std::nullopt;
  }
  auto num = [&](std::size_t at, std::size_t n) { return std::stoi(std::string(s.substr(at, n))); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return std::nullopt;
  return std::chrono::system_clock::from_time_t(::timegm(&tm)) +
         std::chrono::milliseconds(num(20, 3));
}

TEST_F(Serve, EveryLogLineCarriesAMillisecondUtcTimeOfNow) {
  TempDir dir;
  const auto before = std::chrono::system_clock::now();
  ServeProcess serve(dir, {"--store", "memory:"});
  ASSERT_TRUE(serve.ready()) << serve.err();
  EXPECT_EQ(http(serve.port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(serve.terminate(), 0);
  const auto after = std::chrono::system_clock::now();

  std::set<std::string> events;
  std::istringstream lines(serve.out());
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with('{')) continue;  // the first start's banner
    boost::system::error_code ec;
    const auto v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << line;
    const auto* time = v.as_object().if_contains("time");
    ASSERT_NE(time, nullptr) << line;
    ASSERT_TRUE(time->is_string()) << line;
    const auto at = parse_rfc3339_utc_ms(time->as_string());
    ASSERT_TRUE(at.has_value()) << line;
    // Between the start and the end of this test (the time is cut to ms).
    EXPECT_GE(*at, before - 1s) << line;
    EXPECT_LE(*at, after + 1s) << line;
    events.emplace(v.at("event").as_string());
  }
  // The command's own lines and the server's access log alike.
  for (const char* event : {"listening", "http_request", "stopped"}) {
    EXPECT_TRUE(events.contains(event)) << event << "\n" << serve.out();
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
