// The routes without a network: Api::handle over a memory store behind a
// fault-injecting wrapper and a manual clock, so expiry is tested by moving
// time and store outages by asking for them.
#include "server/routes.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "forwarding_store.hpp"
#include "server/api_keys.hpp"
#include "server/client_view.hpp"
#include "server/handlers.hpp"
#include "server/http_text.hpp"
#include "server/json_views.hpp"
#include "server/metrics.hpp"
#include "tessera/digest.hpp"
#include "tessera/memory_store.hpp"

namespace tessera::server {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr std::string_view kApiKey = "test-api-key";

KeySet make_keys() {
  KeySet keys;
  (void)keys.add(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance()),
                 KeyState::active);
  return keys;
}

// A store whose find() alone can fail: the epoch still answers, the
// liveness check of a session id cannot.
class FindFailingStore final : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_find{false};
  Result<std::optional<Session>> find(std::string_view id) override {
    if (fail_find) return fail(ErrorCode::store_unavailable, "injected find fault");
    return ForwardingStore::find(id);
  }
};

class RoutesTest : public ::testing::Test {
 protected:
  RoutesTest()
      : lookup(*LookupKeyRing::create({{1, SecretString(std::string(32, 'a'))}})),
        cipher(*TokenCipher::create({{1, SecretString(std::string(32, 'c'))}},
                                    CsprngRandom::instance())),
        keys(make_keys()),
        raw(make_memory_store()),
        store(*raw) {
    SessionPolicy policy;
    policy.idle_timeout = 10min;
    policy.session_ttl = 1h;
    service = *SessionService::create(
        {store, lookup, cipher, keys, clock, CsprngRandom::instance(), &metrics}, policy);
    options.api_key_hashes.push_back(sha256(kApiKey));
    deps = std::make_unique<ServerDeps>(ServerDeps{*service, keys, store, clock, metrics, nullptr});
    api = std::make_unique<Api>(options, *deps);
  }

  HttpResponse call(std::string method, std::string target, std::string body = {}, bool auth = true,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    r.headers = std::move(headers);
    if (auth) r.headers.emplace_back("Authorization", fmt::format("Bearer {}", kApiKey));
    return api->handle(r);
  }

  static json::object body_of(const HttpResponse& r) { return json::parse(r.body).as_object(); }

  json::object issue(std::string_view mode, std::string_view subject = "alice") {
    auto r = call("POST", "/v1/sessions",
                  fmt::format(R"({{"subject":"{}","mode":"{}"}})", subject, mode));
    EXPECT_EQ(r.status, 201u) << r.body;
    return body_of(r);
  }

  ManualClock clock;
  LookupKeyRing lookup;
  TokenCipher cipher;
  SharedKeySet keys;
  std::unique_ptr<SessionStore> raw;
  FindFailingStore store;
  Metrics metrics;
  std::unique_ptr<SessionService> service;
  ServerOptions options;
  std::unique_ptr<ServerDeps> deps;
  std::unique_ptr<Api> api;
};

TEST(HttpStatus, EveryCodeMapsToAContractStatus) {
  const std::set<unsigned> allowed = {400, 401, 403, 404, 413, 429, 500, 503};
  for (ErrorCode c : kAllErrorCodes) EXPECT_TRUE(allowed.contains(http_status(c))) << c;
  EXPECT_EQ(http_status(ErrorCode::invalid_request), 400u);
  EXPECT_EQ(http_status(ErrorCode::refresh_token_reused), 401u);
  EXPECT_EQ(http_status(ErrorCode::unauthorized), 401u);
  EXPECT_EQ(http_status(ErrorCode::host_not_allowed), 403u);
  EXPECT_EQ(http_status(ErrorCode::session_not_found), 404u);
  EXPECT_EQ(http_status(ErrorCode::payload_too_large), 413u);
  EXPECT_EQ(http_status(ErrorCode::rate_limited), 429u);
  EXPECT_EQ(http_status(ErrorCode::store_unavailable), 503u);
  EXPECT_EQ(http_status(ErrorCode::liveness_unavailable), 503u);
  EXPECT_EQ(http_status(ErrorCode::epoch_unavailable), 503u);
  EXPECT_EQ(http_status(ErrorCode::internal), 500u);
}

TEST(Problem, CarriesTheFiveMembersAndTheCode) {
  auto r = problem(ErrorCode::session_revoked, "revoked");
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto o = json::parse(r.body).as_object();
  EXPECT_EQ(o.at("status").as_int64(), 401);
  EXPECT_EQ(o.at("code").as_string(), "session_revoked");
  EXPECT_TRUE(o.contains("type") && o.contains("title") && o.contains("detail"));
}

TEST_F(RoutesTest, IdleTimeoutShowsAsItsCodeWithoutSleeping) {
  auto issued = issue("cookie");
  const std::string token(issued.at("session_token").as_string());
  const std::string body = fmt::format(R"({{"session_token":"{}"}})", token);
  EXPECT_EQ(call("POST", "/v1/sessions/validate", body).status, 200u);
  clock.advance(11min);
  auto r = call("POST", "/v1/sessions/validate", body);
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.code, ErrorCode::session_idle_timeout);
}

TEST_F(RoutesTest, AbsoluteExpiryShowsAsSessionExpired) {
  auto issued = issue("token");
  std::string refresh(issued.at("refresh_token").as_string());
  for (int i = 0; i < 6; ++i) {  // active every 9 minutes: never idle
    clock.advance(9min);
    auto r = call("POST", "/v1/tokens/refresh", fmt::format(R"({{"refresh_token":"{}"}})", refresh),
                  false);
    ASSERT_EQ(r.status, 200u) << r.body;
    refresh = std::string(body_of(r).at("refresh_token").as_string());
  }
  clock.advance(9min);  // 63 minutes after issue
  auto r = call("POST", "/v1/tokens/refresh", fmt::format(R"({{"refresh_token":"{}"}})", refresh),
                false);
  EXPECT_EQ(r.code, ErrorCode::session_expired);
}

TEST_F(RoutesTest, StoreOutageIs503WithRetryAfterAndReadyzFails) {
  store.fail_reads = true;
  store.fail_writes = true;
  auto r = call("POST", "/v1/sessions", R"({"subject":"alice","mode":"token"})");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.code, ErrorCode::store_unavailable);
  bool retry_after = false;
  for (const auto& [k, v] : r.headers) retry_after |= k == "Retry-After";
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 503u);
  EXPECT_EQ(call("GET", "/healthz", {}, false).status, 200u);
}

// A public 503 says the store is down, never where it runs (a store's own
// error text names hosts and ports); the specifics stay for the log.
TEST_F(RoutesTest, PublicOutagesShowAGenericDetailAndKeepTheSpecificsForTheLog) {
  auto issued = issue("token");
  const std::string refresh(issued.at("refresh_token").as_string());
  store.fail_reads = true;
  store.fail_writes = true;
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  for (auto r :
       {call("POST", "/v1/tokens/refresh", fmt::format(R"({{"refresh_token":"{}"}})", refresh),
             false),
        call("POST", "/v1/logout", fmt::format(R"({{"refresh_token":"{}"}})", refresh), false),
        call("POST", "/oauth2/revoke", "token=" + refresh, false, form)}) {
    EXPECT_EQ(r.status, 503u) << r.body;
    EXPECT_EQ(body_of(r).at("detail").as_string(), "the authority cannot answer now; retry later");
    EXPECT_EQ(r.body.find("injected"), std::string::npos) << r.body;
    EXPECT_NE(r.log_detail.find("injected"), std::string::npos) << r.log_detail;
  }
  // A service (with its API key) still reads what went wrong.
  auto service = call("POST", "/v1/sessions", R"({"subject":"alice","mode":"token"})");
  EXPECT_EQ(service.status, 503u);
  EXPECT_NE(body_of(service).at("detail").as_string().find("injected"), std::string::npos);
}

// Disk full: reads work, writes fail. /readyz says so, for a while or until
// a write goes through again.
TEST_F(RoutesTest, ReadyzReflectsARecentWriteFailureAndRecovers) {
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 200u);
  store.fail_writes = true;
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"subject":"alice","mode":"token"})").status, 503u);
  auto r = call("GET", "/readyz", {}, false);
  EXPECT_EQ(r.status, 503u);
  EXPECT_NE(r.log_detail.find("last write failed"), std::string::npos) << "for the log";
  // A refusal says nothing about writes: still not ready.
  EXPECT_EQ(call("POST", "/v1/tokens/refresh", R"({"refresh_token":"x"})", false).status, 401u);
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 503u);
  // Past the window it is ready again by itself (a load balancer that took
  // it out sends traffic again); the next failed write takes it out again.
  clock.advance(WriteHealth::kWriteFailureWindow);
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 200u);
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"subject":"alice","mode":"token"})").status, 503u);
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 503u);
  // A write that goes through: ready at once.
  store.fail_writes = false;
  EXPECT_EQ(call("POST", "/v1/sessions", R"({"subject":"alice","mode":"token"})").status, 201u);
  EXPECT_EQ(call("GET", "/readyz", {}, false).status, 200u);
}

TEST_F(RoutesTest, IntrospectionFailsClosedOnAnOutageInsteadOfSayingInactive) {
  auto issued = issue("token");
  const std::string access(issued.at("access_token").as_string());
  store.fail_reads = true;
  auto r = call("POST", "/oauth2/introspect", "token=" + access, true,
                {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(r.status, 503u);
  store.fail_reads = false;
  r = call("POST", "/oauth2/introspect", "token=" + access, true,
           {{"Content-Type", "application/x-www-form-urlencoded"}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(body_of(r).at("active").as_bool());
}

TEST_F(RoutesTest, RevocationIs200ForAnyTokenBut503WhenItCouldNotHappen) {
  auto issued = issue("token");
  const std::string refresh(issued.at("refresh_token").as_string());
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  EXPECT_EQ(call("POST", "/oauth2/revoke", "token=garbage", false, form).status, 200u);
  store.fail_reads = true;
  auto r = call("POST", "/oauth2/revoke", "token=" + refresh, false, form);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.code, ErrorCode::store_unavailable);
  store.fail_reads = false;
  EXPECT_EQ(call("POST", "/oauth2/revoke", "token=" + refresh, false, form).status, 200u);
  EXPECT_EQ(call("POST", "/oauth2/revoke", "", false, form).status, 400u);
}

TEST_F(RoutesTest, RoutesAreTemplatesNeverRawPaths) {
  auto r = call("GET", "/v1/subjects/secret-subject/sessions");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.route, RouteId::subject_sessions);
  metrics.observe_request(r.route, r.status, r.code, 1ms);
  const std::string text = metrics.render();
  EXPECT_EQ(text.find("secret-subject"), std::string::npos);
  EXPECT_NE(text.find(R"(route="/v1/subjects/{subject}/sessions",status="200"} 1)"),
            std::string::npos);
  EXPECT_EQ(call("GET", "/nope").route, RouteId::unmatched);
}

TEST_F(RoutesTest, UnknownRouteAndWrongMethodAreProblems) {
  auto r = call("GET", "/nope");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.code, ErrorCode::invalid_request);
  r = call("PUT", "/v1/subjects/a/epoch");
  EXPECT_EQ(r.status, 405u);
  bool allow = false;
  for (const auto& [k, v] : r.headers) allow |= k == "Allow" && v == "GET, HEAD, POST";
  EXPECT_TRUE(allow);
}

TEST_F(RoutesTest, LifecycleEventsAreCountedThroughTheAuditSink) {
  issue("cookie");
  EXPECT_NE(metrics.render().find(R"(tessera_lifecycle_events_total{event="issued"} 1)"),
            std::string::npos);
}

TEST_F(RoutesTest, ResponsesCarryTheirRouteAndCodeTypedAndMetricsCountThem) {
  auto refused = call("GET", "/v1/subjects/a/sessions", {}, false);
  EXPECT_EQ(refused.route, RouteId::subject_sessions);
  EXPECT_EQ(refused.code, ErrorCode::unauthorized);
  auto ok = call("GET", "/healthz", {}, false);
  EXPECT_EQ(ok.route, RouteId::healthz);
  EXPECT_EQ(ok.code, std::nullopt);
  metrics.observe_request(refused.route, refused.status, refused.code, 1ms);
  metrics.observe_request(ok.route, ok.status, ok.code, 1ms);
  const std::string text = metrics.render();
  EXPECT_NE(text.find(R"(tessera_errors_total{code="unauthorized"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(tessera_errors_total{code="internal"} 0)"), std::string::npos);
  EXPECT_NE(text.find(R"(route="/v1/subjects/{subject}/sessions",status="401"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(route="/healthz",status="200"} 1)"), std::string::npos);
}

TEST(SessionJson, HasEveryMemberOfTheSessionSchemaAndDataIsAlwaysAnObject) {
  Session s;
  s.id = "01J00000000000000000000000";
  s.subject = "alice";
  s.family_id = "01J00000000000000000000001";
  s.mode = SessionMode::token;
  s.created_at = UnixSeconds{std::chrono::seconds{100}};
  s.last_seen_at = UnixSeconds{std::chrono::seconds{200}};
  s.expires_at = UnixSeconds{std::chrono::seconds{300}};
  s.revoked_at = UnixSeconds{std::chrono::seconds{250}};
  s.revoke_reason = RevokeReason::logout;
  s.metadata.ip = "192.0.2.1";
  s.data = "[1, 2]";  // not an object: the schema says object
  const json::object o = session_json(s);
  std::vector<std::string> keys;
  for (const auto& kv : o) keys.emplace_back(kv.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"id", "subject", "family_id", "mode", "created_at",
                                      "last_seen_at", "expires_at", "idle_expires_at", "revoked_at",
                                      "revoke_reason", "generation", "metadata", "data"}));
  EXPECT_EQ(o.at("mode").as_string(), "token");
  EXPECT_EQ(o.at("created_at").as_int64(), 100);
  EXPECT_TRUE(o.at("idle_expires_at").is_null());
  EXPECT_EQ(o.at("revoked_at").as_int64(), 250);
  EXPECT_EQ(o.at("revoke_reason").as_string(), "logout");
  EXPECT_EQ(o.at("metadata").at("ip").as_string(), "192.0.2.1");
  EXPECT_EQ(o.at("data"), json::object{});
  s.data = R"({"plan":"pro"})";
  s.revoke_reason.reset();
  const json::object kept = session_json(s);
  EXPECT_EQ(kept.at("data").at("plan").as_string(), "pro");
  EXPECT_TRUE(kept.at("revoke_reason").is_null());
}

TEST_F(RoutesTest, GlobalEpochBumpEndsOlderAccessTokensAndRaisesEverySubjectsEpoch) {
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  auto active = [&](const std::string& token) {
    auto r = call("POST", "/oauth2/introspect", "token=" + token, true, form);
    EXPECT_EQ(r.status, 200u) << r.body;
    return body_of(r).at("active").as_bool();
  };
  auto epoch_of = [&](const HttpResponse& r) {
    EXPECT_EQ(r.status, 200u) << r.body;
    return body_of(r).at("epoch").to_number<std::uint64_t>();
  };
  auto issued = issue("token");
  const std::string access(issued.at("access_token").as_string());
  const std::string refresh(issued.at("refresh_token").as_string());
  ASSERT_TRUE(active(access));

  auto before = call("GET", "/v1/epoch");
  EXPECT_EQ(before.route, RouteId::global_epoch);
  const std::uint64_t n = epoch_of(before);
  EXPECT_EQ(epoch_of(call("POST", "/v1/epoch")), n + 1);
  EXPECT_EQ(epoch_of(call("GET", "/v1/epoch")), n + 1);
  EXPECT_FALSE(active(access));
  EXPECT_GE(epoch_of(call("GET", "/v1/subjects/alice/epoch")), n + 1);
  EXPECT_GE(epoch_of(call("GET", "/v1/subjects/never-seen/epoch")), n + 1);

  // It revoked nothing: the session renews and its fresh token is active.
  auto renewed = call("POST", "/v1/tokens/refresh",
                      fmt::format(R"({{"refresh_token":"{}"}})", refresh), false);
  ASSERT_EQ(renewed.status, 200u) << renewed.body;
  EXPECT_TRUE(active(std::string(body_of(renewed).at("access_token").as_string())));

  EXPECT_EQ(call("POST", "/v1/epoch", {}, false).code, ErrorCode::unauthorized);
  EXPECT_EQ(epoch_of(call("GET", "/v1/epoch")), n + 1);
  store.fail_reads = true;
  EXPECT_EQ(call("GET", "/v1/epoch").code, ErrorCode::store_unavailable);
}

TEST_F(RoutesTest, IntrospectionTellsEpochOutageFromLivenessOutageAndNeverSaysInactive) {
  auto issued = issue("token");
  const std::string access(issued.at("access_token").as_string());
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  store.fail_find = true;
  auto r = call("POST", "/oauth2/introspect", "token=" + access, true, form);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.code, ErrorCode::liveness_unavailable);
  store.fail_find = false;
  store.fail_reads = true;
  r = call("POST", "/oauth2/introspect", "token=" + access, true, form);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.code, ErrorCode::epoch_unavailable);
  EXPECT_EQ(body_of(r).at("detail").as_string(), "the subject's epoch is unavailable");
  store.fail_reads = false;
  r = call("POST", "/oauth2/introspect", "token=" + access, true, form);
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto o = body_of(r);
  EXPECT_TRUE(o.at("active").as_bool());
  EXPECT_EQ(o.at("token_type").as_string(), "access_token");
  EXPECT_EQ(o.at("sid"), issued.at("session").at("id"));
  EXPECT_EQ(o.at("aud").as_string(), "tessera");
}

TEST_F(RoutesTest, IntrospectionSeesARotatedKeySetAtOnce) {
  const std::vector<std::pair<std::string, std::string>> form = {
      {"Content-Type", "application/x-www-form-urlencoded"}};
  auto active = [&](const std::string& token) {
    auto r = call("POST", "/oauth2/introspect", "token=" + token, true, form);
    EXPECT_EQ(r.status, 200u) << r.body;
    return body_of(r).at("active").as_bool();
  };
  auto issued = issue("token");
  const std::string old_access(issued.at("access_token").as_string());
  ASSERT_TRUE(active(old_access));

  // Rotated: the old key retired but still published, so its tokens still
  // verify; new ones are signed with the new key and verify at once.
  KeySet rotated = *keys.get();
  ASSERT_TRUE(rotated.add(*Key::generate(Algorithm::EdDSA, "k2", CsprngRandom::instance()),
                          KeyState::next));
  ASSERT_TRUE(rotated.activate("k2", clock.now()));
  keys.set(rotated);
  auto fresh = issue("token");
  EXPECT_TRUE(active(old_access));
  EXPECT_TRUE(active(std::string(fresh.at("access_token").as_string())));

  // The old key gone from the set: its tokens are inactive at the next request.
  KeySet only_new;
  ASSERT_TRUE(only_new.add(*Key::generate(Algorithm::EdDSA, "k3", CsprngRandom::instance()),
                           KeyState::active));
  keys.set(only_new);
  EXPECT_FALSE(active(old_access));
}

// ---- forward-auth -----------------------------------------------------------

std::optional<std::string> header_of(const HttpResponse& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

class AuthzTest : public RoutesTest {
 protected:
  AuthzTest() {
    options.public_host = "auth.test";
    options.authz.allowed_hosts = {"app.test", ".apps.test"};
    options.authz.login_url = "https://auth.test/login";
    options.authz.subject_headers = {"Remote-User"};
    options.trusted_proxies.networks = {*Cidr::parse("10.0.0.0/8")};
    cookie = std::string(issue("cookie").at("session_token").as_string());
  }

  // A forward-auth sub-request from `peer` (the proxy), unauthenticated
  // towards the API (the mounts need no key).
  HttpResponse ask(std::string target, Headers headers, std::string peer = "10.1.2.3",
                   std::string method = "GET") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.headers = std::move(headers);
    r.peer = std::move(peer);
    return api->handle(r);
  }
  Headers with_cookie(Headers h) const {
    h.emplace_back("Cookie", "other=1; tessera_session=" + cookie);
    return h;
  }

  std::string cookie;
};

TEST(Cidr, ParsesNetworksAndAddressesAndRefusesHostBits) {
  auto net = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains("10.200.3.4"));
  EXPECT_FALSE(net->contains("11.0.0.1"));
  EXPECT_TRUE(net->contains("::ffff:10.0.0.7")) << "an IPv4-mapped peer is its IPv4 address";
  EXPECT_FALSE(net->contains("::1"));
  EXPECT_FALSE(net->contains("not an address"));
  auto one = Cidr::parse(" 192.168.1.5 ");
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains("192.168.1.5"));
  EXPECT_FALSE(one->contains("192.168.1.6"));
  auto v6 = Cidr::parse("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fd12::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  auto odd = Cidr::parse("172.16.0.0/12");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("172.31.255.255"));
  EXPECT_FALSE(odd->contains("172.32.0.0"));
  for (std::string_view bad : {"10.0.0.1/8", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x",
                               "example.com", "", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
}

TEST(OriginalRequest, ForwardedHeadersCountOnlyFromATrustedProxy) {
  TrustedProxies proxies{{*Cidr::parse("10.0.0.0/8")}};
  const Headers h = {{"Host", "auth.test"},
                     {"X-Forwarded-Method", "POST"},
                     {"X-Forwarded-Proto", "https, http"},
                     {"X-Forwarded-Host", "app.test"},
                     {"X-Forwarded-Uri", "/cart?id=7"},
                     {"X-Original-URL", "https://shop.test:8443/pay?x=1"},
                     {"X-Original-Method", "PUT"}};
  auto r = original_request(ForwardStyle::forwarded, h, "GET", "10.9.9.9", proxies, "", "http");
  EXPECT_EQ(r.url(), "https://app.test/cart?id=7");
  EXPECT_EQ(r.method, "POST");
  r = original_request(ForwardStyle::nginx, h, "GET", "10.9.9.9", proxies, "", "http");
  EXPECT_EQ(r.url(), "https://shop.test:8443/pay?x=1");
  EXPECT_EQ(r.method, "PUT");
  r = original_request(ForwardStyle::envoy, h, "DELETE", "10.9.9.9", proxies, "/items/3", "http");
  EXPECT_EQ(r.url(), "https://auth.test/items/3");
  EXPECT_EQ(r.method, "DELETE");
  for (auto style : {ForwardStyle::nginx, ForwardStyle::forwarded, ForwardStyle::envoy}) {
    r = original_request(style, h, "GET", "192.0.2.1", proxies, "", "http");
    EXPECT_EQ(r.host, "auth.test") << "an untrusted peer's forwarding headers are ignored";
    EXPECT_EQ(r.scheme, "http");
    EXPECT_EQ(r.method, "GET");
  }
}

TEST_F(AuthzTest, AllowIsExactly200WithAnEmptyBodyAndTheIdentityInHeaders) {
  for (const std::string target : {"/v1/authz/auth-request", "/v1/authz/forward-auth"}) {
    auto r = ask(target, with_cookie({{"Host", "app.test"}}));
    ASSERT_EQ(r.status, 200u) << target << ": " << r.body;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header_of(r, "X-Tessera-Subject"), "alice");
    EXPECT_EQ(header_of(r, "Remote-User"), "alice");
    EXPECT_TRUE(header_of(r, "X-Tessera-Session-Id").has_value());
    EXPECT_EQ(header_of(r, "Cache-Control"), "no-store");
  }
  auto r = ask("/v1/authz/ext-authz/some/page?q=1", with_cookie({{"Host", "x.apps.test"}}),
               "10.1.1.1", "PUT");
  EXPECT_EQ(r.status, 200u) << "ext-authz takes any method, and .apps.test covers x.apps.test";
  EXPECT_EQ(r.route, RouteId::authz_ext_authz);
}

TEST_F(AuthzTest, NoCredentialIs401WithAChallengeAndForNginxALocation) {
  auto r = ask("/v1/authz/auth-request", {{"Host", "app.test"}, {"Accept", "text/html"}});
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
  EXPECT_EQ(header_of(r, "Location"), "https://auth.test/login?rd=http%3A%2F%2Fapp.test%2F");
  // An API call through Traefik/Caddy: 401, never a redirect.
  r = ask("/v1/authz/forward-auth",
          {{"X-Forwarded-Host", "app.test"}, {"Accept", "application/json"}});
  EXPECT_EQ(r.status, 401u);
  EXPECT_TRUE(header_of(r, "WWW-Authenticate").has_value());
  r = ask("/v1/authz/forward-auth",
          {{"X-Forwarded-Host", "app.test"}, {"Accept", "text/html"}, {"Sec-Fetch-Mode", "cors"}});
  EXPECT_EQ(r.status, 401u) << "fetch() asking for HTML is still a script";
}

TEST_F(AuthzTest, BrowserNavigationsAreRedirectedToLoginWithTheOriginalUrl) {
  const Headers nav = {{"Host", "auth.test"},
                       {"X-Forwarded-Proto", "https"},
                       {"X-Forwarded-Host", "app.test"},
                       {"X-Forwarded-Uri", "/cart?id=7&x=a%20b"},
                       {"Accept", "text/html,application/xhtml+xml;q=0.9"}};
  Headers get = nav;
  get.emplace_back("X-Forwarded-Method", "GET");
  auto r = ask("/v1/authz/forward-auth", get);
  EXPECT_EQ(r.status, 302u);
  EXPECT_EQ(header_of(r, "Location"),
            "https://auth.test/login?rd=https%3A%2F%2Fapp.test%2Fcart%3Fid%3D7%26x%3Da%2520b");
  Headers post = nav;
  post.emplace_back("X-Forwarded-Method", "POST");
  EXPECT_EQ(ask("/v1/authz/forward-auth", post).status, 303u);
  auto envoy = ask("/v1/authz/ext-authz/orders", {{"Host", "app.test"}, {"Accept", "text/html"}},
                   "10.0.0.1", "DELETE");
  EXPECT_EQ(envoy.status, 303u);
  EXPECT_EQ(header_of(envoy, "Location"),
            "https://auth.test/login?rd=http%3A%2F%2Fapp.test%2Forders");
}

TEST_F(AuthzTest, NoOpenRedirectAndNoTrustInAnUntrustedPeer) {
  // A trusted proxy names a host that is not allowed: the login page, but no rd.
  auto r =
      ask("/v1/authz/forward-auth",
          {{"X-Forwarded-Host", "evil.test"}, {"X-Forwarded-Uri", "/"}, {"Accept", "text/html"}});
  EXPECT_EQ(r.status, 302u);
  EXPECT_EQ(header_of(r, "Location"), "https://auth.test/login");
  // The same headers from a peer that is no proxy are not believed: the
  // original is the sub-request itself, on its own Host.
  r = ask("/v1/authz/forward-auth",
          with_cookie({{"Host", "app.test"}, {"X-Forwarded-Host", "evil.test"}}), "192.0.2.7");
  EXPECT_EQ(r.status, 200u) << "the Host header, not the untrusted X-Forwarded-Host";
  r = ask("/v1/authz/forward-auth",
          with_cookie({{"Host", "evil.test"}, {"X-Forwarded-Host", "app.test"}}), "192.0.2.7");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.code, ErrorCode::host_not_allowed);
}

TEST_F(AuthzTest, AValidSessionForAHostNotAllowedIs403) {
  auto r = ask("/v1/authz/auth-request", with_cookie({{"Host", "elsewhere.test"}}));
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.code, ErrorCode::host_not_allowed);
  EXPECT_FALSE(header_of(r, "X-Tessera-Subject").has_value());
  EXPECT_EQ(ask("/v1/authz/auth-request", with_cookie({{"Host", "apps.test"}})).status, 403u)
      << ".apps.test is the hosts below it, not apps.test itself";
}

TEST_F(AuthzTest, TwoSessionCookiesAreRefusedNotAnsweredWithTheFirst) {
  Headers h = with_cookie({{"Host", "app.test"}});
  h.emplace_back("Cookie", "tessera_session=tss_planted");
  auto r = ask("/v1/authz/auth-request", h);
  EXPECT_EQ(r.status, 401u);
  EXPECT_FALSE(header_of(r, "X-Tessera-Subject").has_value());
}

TEST_F(AuthzTest, ARevokedOrUnknownSessionIsDenied) {
  EXPECT_EQ(
      call("POST", "/v1/logout", fmt::format(R"({{"session_token":"{}"}})", cookie), false).status,
      200u);
  auto r = ask("/v1/authz/auth-request", with_cookie({{"Host", "app.test"}}));
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.code, ErrorCode::unauthorized);
  r = ask("/v1/authz/auth-request", {{"Host", "app.test"}, {"Cookie", "tessera_session=tss_x"}});
  EXPECT_EQ(r.status, 401u);
}

TEST_F(AuthzTest, AStoreOutageFailsClosedWith503) {
  store.fail_reads = true;
  auto r =
      ask("/v1/authz/forward-auth", with_cookie({{"Host", "app.test"}, {"Accept", "text/html"}}));
  EXPECT_EQ(r.status, 503u);
  EXPECT_TRUE(header_of(r, "Retry-After").has_value());
  EXPECT_FALSE(header_of(r, "Location").has_value()) << "an outage is not a reason to log in";
}

TEST_F(AuthzTest, ABearerAccessTokenIsVerifiedWithEpochAndLiveness) {
  auto issued = issue("token", "bob");
  const std::string access(issued.at("access_token").as_string());
  const std::string sid(issued.at("session").as_object().at("id").as_string());
  auto r =
      ask("/v1/authz/auth-request", {{"Host", "app.test"}, {"Authorization", "Bearer " + access}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(header_of(r, "X-Tessera-Subject"), "bob");
  EXPECT_EQ(header_of(r, "X-Tessera-Session-Id"), sid);
  EXPECT_EQ(call("DELETE", fmt::format("/v1/subjects/bob/sessions/{}", sid)).status, 204u);
  r = ask("/v1/authz/auth-request", {{"Host", "app.test"}, {"Authorization", "Bearer " + access}});
  EXPECT_EQ(r.status, 401u) << "the liveness check sees the revocation";
  r = ask("/v1/authz/auth-request", {{"Host", "app.test"}, {"Authorization", "Bearer nope"}});
  EXPECT_EQ(r.status, 401u);
}

TEST_F(AuthzTest, AnUpstreamTokenIsKeptPerSessionAndReplacedBeforeItExpiresOrWhenTheEpochMoves) {
  const Headers original = {{"Host", "app.test"}};
  auto plain = ask("/v1/authz/auth-request", with_cookie(original));
  ASSERT_EQ(plain.status, 200u);
  EXPECT_FALSE(header_of(plain, "Authorization")) << "off by default";

  options.authz.upstream_token = true;
  api = std::make_unique<Api>(options, *deps);
  auto first = ask("/v1/authz/auth-request", with_cookie(original));
  ASSERT_EQ(first.status, 200u) << first.body;
  const std::string token = header_of(first, "Authorization").value_or("");
  ASSERT_TRUE(token.starts_with("Bearer ey")) << token;
  for (const auto& [k, v] : first.headers) EXPECT_NE(lower(k), "set-cookie");
  // The resource side's own chain takes it: the same subject and session.
  auto as_bearer =
      ask("/v1/authz/forward-auth", {{"X-Forwarded-Host", "app.test"}, {"Authorization", token}});
  ASSERT_EQ(as_bearer.status, 200u) << as_bearer.body;
  EXPECT_EQ(header_of(as_bearer, "X-Tessera-Subject"), "alice");
  EXPECT_EQ(header_of(as_bearer, "X-Tessera-Session-Id"), header_of(first, "X-Tessera-Session-Id"));
  EXPECT_EQ(header_of(as_bearer, "Authorization"), token) << "a Bearer credential is passed on";

  // Kept while it is outside the renewal window (access_ttl 15 min, 2 min before).
  clock.advance(6min);
  EXPECT_EQ(header_of(ask("/v1/authz/auth-request", with_cookie(original)), "Authorization"),
            token);
  clock.advance(6min);
  EXPECT_EQ(header_of(ask("/v1/authz/auth-request", with_cookie(original)), "Authorization"),
            token);
  clock.advance(90s);  // 13.5 min: inside the window
  const auto renewed =
      header_of(ask("/v1/authz/auth-request", with_cookie(original)), "Authorization");
  ASSERT_TRUE(renewed);
  EXPECT_NE(*renewed, token);
  EXPECT_EQ(header_of(ask("/v1/authz/auth-request", with_cookie(original)), "Authorization"),
            renewed);

  // An epoch bump ends the kept token: the next check mints one that verifies.
  ASSERT_EQ(call("POST", "/v1/subjects/alice/epoch").status, 200u);
  EXPECT_EQ(
      ask("/v1/authz/forward-auth", {{"X-Forwarded-Host", "app.test"}, {"Authorization", *renewed}})
          .status,
      401u);
  const auto after_bump =
      header_of(ask("/v1/authz/auth-request", with_cookie(original)), "Authorization");
  ASSERT_TRUE(after_bump);
  EXPECT_NE(*after_bump, *renewed);
  EXPECT_EQ(ask("/v1/authz/forward-auth",
                {{"X-Forwarded-Host", "app.test"}, {"Authorization", *after_bump}})
                .status,
            200u);
}

TEST_F(AuthzTest, AnUpstreamTokenThatCannotBeMintedFailsClosed) {
  options.authz.upstream_token = true;
  api = std::make_unique<Api>(options, *deps);
  store.fail_always(testing::StoreMethod::epochs);
  auto r = ask("/v1/authz/auth-request", with_cookie({{"Host", "app.test"}}));
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_TRUE(header_of(r, "Retry-After"));
  EXPECT_FALSE(header_of(r, "Authorization"));
}

TEST(HttpStatus, EveryContractStatusHasItsOwnReasonPhrase) {
  for (ErrorCode c : kAllErrorCodes) {
    const unsigned status = http_status(c);
    if (status != 500) {
      EXPECT_NE(reason_phrase(status), "Internal Server Error") << c;
    }
  }
  EXPECT_EQ(reason_phrase(403), "Forbidden");
}

TEST(ApiKeyFile, ParsesScopedAndBareLinesAndWritesThemBack) {
  const std::string h(64, 'a');
  auto keys =
      parse_api_keys("# comment\n\nsha256:" + h + "\nsha256:" + std::string(64, 'b') +
                         " name=proxy scopes=authz,sessions:read created_at=2026-12-03T18:00:00Z\n",
                     "api_keys");
  ASSERT_TRUE(keys.has_value()) << keys.error().detail;
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].scopes, kAdminScopes);
  EXPECT_EQ((*keys)[0].name, "");
  EXPECT_EQ((*keys)[1].name, "proxy");
  EXPECT_EQ((*keys)[1].scopes,
            static_cast<Scopes>(Scope::authz) | static_cast<Scopes>(Scope::sessions_read));
  EXPECT_EQ(api_key_line((*keys)[1]),
            "sha256:" + std::string(64, 'b') +
                " name=proxy scopes=sessions:read,authz created_at=2026-12-03T18:00:00Z");
  auto again = parse_api_keys(api_key_line((*keys)[1]), "api_keys");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->at(0).scopes, (*keys)[1].scopes);
  EXPECT_EQ(api_key_line((*keys)[0]), "sha256:" + h + " scopes=admin");
}

TEST(ApiKeyFile, RefusesJunkNamingTheLineButNeverEchoingIt) {
  const std::string h = "sha256:" + std::string(64, '0');
  for (const std::string& bad : {
           std::string("tsk_pasted_secret_key"),
           h + " name=ok",  // a named key that lost its scopes is not admin
           h + " name=ok scopes=bogus",
           h + " name=bad/name scopes=admin",
           h + " colour=blue",
           h + " stray",
           "sha256:" + std::string(63, '0'),
       }) {
    auto keys = parse_api_keys("# first\n" + bad + "\n", "api_keys");
    ASSERT_FALSE(keys.has_value()) << bad;
    EXPECT_EQ(keys.error().code, ErrorCode::config_invalid);
    EXPECT_NE(keys.error().detail.find("api_keys: line 2"), std::string::npos)
        << keys.error().detail;
    EXPECT_EQ(keys.error().detail.find("tsk_pasted"), std::string::npos);
  }
}

TEST(ApiKeyScopes, ParseNamesAndRefuseTheUnknown) {
  EXPECT_EQ(*parse_scopes("admin"), kAdminScopes);
  EXPECT_EQ(*parse_scopes(" epochs:read , epochs:write "),
            static_cast<Scopes>(Scope::epochs_read) | static_cast<Scopes>(Scope::epochs_write));
  EXPECT_EQ(scope_names(*parse_scopes("introspect,metrics")),
            (std::vector<std::string>{"introspect", "metrics"}));
  EXPECT_EQ(scope_names(kAdminScopes), std::vector<std::string>{"admin"});
  EXPECT_FALSE(parse_scopes("").has_value());
  EXPECT_FALSE(parse_scopes(" , ").has_value());
  EXPECT_FALSE(parse_scopes("sessions:write").has_value());
  EXPECT_FALSE(parse_scopes("Admin").has_value());
}

// Every route that takes a key names its scope; the open ones none.
TEST(ApiKeyScopes, EveryKeyedRouteNeedsAScope) {
  for (const RouteSpec& spec : kRouteTable) {
    const bool keyed = spec.access != Access::open || spec.id == RouteId::authz_auth_request ||
                       spec.id == RouteId::authz_forward_auth ||
                       spec.id == RouteId::authz_ext_authz;
    EXPECT_EQ(required_scope(spec.id, "POST").has_value(), keyed) << spec.path;
    EXPECT_EQ(required_scope(spec.id, "GET").has_value(), keyed) << spec.path;
  }
  EXPECT_EQ(required_scope(RouteId::subject_sessions, "GET"), Scope::sessions_read);
  EXPECT_EQ(required_scope(RouteId::subject_sessions, "HEAD"), Scope::sessions_read);
  EXPECT_EQ(required_scope(RouteId::subject_sessions, "DELETE"), Scope::sessions_revoke);
  EXPECT_EQ(required_scope(RouteId::global_epoch, "HEAD"), Scope::epochs_read);
  EXPECT_EQ(required_scope(RouteId::global_epoch, "POST"), Scope::epochs_write);
}

class ScopedKeysTest : public RoutesTest {
 protected:
  ScopedKeysTest() {
    deps->api_keys = &scoped;
    scoped.set(ApiKeyTable({{.hash = sha256("reader-key"),
                             .name = "reader",
                             .scopes = static_cast<Scopes>(Scope::sessions_read)},
                            {.hash = sha256("proxy-key"),
                             .name = "proxy",
                             .scopes = static_cast<Scopes>(Scope::authz)}}));
  }
  HttpResponse with_key(std::string method, std::string target, std::string_view key,
                        std::string body = {}) {
    return call(std::move(method), std::move(target), std::move(body), false,
                {{"Authorization", fmt::format("Bearer {}", key)}});
  }
  SharedApiKeys scoped;
};

TEST_F(ScopedKeysTest, AKeyDoesWhatItsScopesAllowAndNothingElse) {
  const auto cookie = issue("cookie");  // the full-scope key of api_key_hashes
  const std::string token(cookie.at("session_token").as_string());
  auto ok = with_key("POST", "/v1/sessions/validate", "reader-key",
                     fmt::format(R"({{"session_token":"{}"}})", token));
  EXPECT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(with_key("GET", "/v1/subjects/alice/sessions", "reader-key").status, 200u);

  for (const auto& [method, target, scope] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/v1/sessions", "sessions:issue"},
           {"POST", "/v1/sessions/rotate", "sessions:issue"},
           {"DELETE", "/v1/subjects/alice/sessions", "sessions:revoke"},
           {"GET", "/v1/subjects/alice/epoch", "epochs:read"},
           {"POST", "/v1/epoch", "epochs:write"},
           {"POST", "/oauth2/introspect", "introspect"},
       }) {
    auto r = with_key(method, target, "reader-key", R"({"subject":"mallory","mode":"token"})");
    EXPECT_EQ(r.status, 403u) << target << " " << r.body;
    EXPECT_EQ(body_of(r).at("code").as_string(), "insufficient_scope") << target;
    EXPECT_EQ(body_of(r).at("title").as_string(), "Forbidden");
    EXPECT_EQ(header_of(r, "WWW-Authenticate").value_or(""),
              fmt::format(R"(Bearer error="insufficient_scope", scope="{}")", scope));
  }
  // Nothing was done: alice's session lives, mallory has none.
  EXPECT_EQ(service->list("mallory")->size(), 0u);
  EXPECT_EQ(service->list("alice")->size(), 1u);

  // A key out of the table is unknown at once (a revoke reloaded).
  scoped.set(ApiKeyTable{});
  EXPECT_EQ(with_key("GET", "/v1/subjects/alice/sessions", "reader-key").status, 401u);
  // The forward-auth key in Authorization is no service key either way.
  EXPECT_EQ(with_key("GET", "/v1/subjects/alice/sessions", "proxy-key").status, 401u);
}

TEST_F(AuthzTest, ForwardAuthNeedsAnAuthzKeyInItsOwnHeaderWhenRequired) {
  SharedApiKeys scoped(ApiKeyTable({{.hash = sha256("reader-key"),
                                     .name = "reader",
                                     .scopes = static_cast<Scopes>(Scope::sessions_read)},
                                    {.hash = sha256("proxy-key"),
                                     .name = "proxy",
                                     .scopes = static_cast<Scopes>(Scope::authz)}}));
  deps->api_keys = &scoped;
  const Headers original = {{"X-Forwarded-Host", "app.test"}, {"X-Forwarded-Uri", "/"}};
  // Off by default: the cookie alone is enough.
  EXPECT_EQ(ask("/v1/authz/forward-auth", with_cookie(original)).status, 200u);

  options.authz.require_api_key = true;
  api = std::make_unique<Api>(options, *deps);
  auto none = ask("/v1/authz/forward-auth", with_cookie(original));
  EXPECT_EQ(none.status, 401u);
  EXPECT_NE(body_of(none).at("detail").as_string().find("X-Tessera-Api-Key"), std::string::npos);
  // A service key in Authorization is the user's bearer there, not the proxy's key.
  Headers in_authorization = with_cookie(original);
  in_authorization.emplace_back("Authorization", fmt::format("Bearer {}", kApiKey));
  EXPECT_EQ(ask("/v1/authz/forward-auth", in_authorization).status, 401u);

  Headers reader = with_cookie(original);
  reader.emplace_back("X-Tessera-Api-Key", "reader-key");
  auto lacking = ask("/v1/authz/forward-auth", reader);
  EXPECT_EQ(lacking.status, 403u);
  EXPECT_EQ(body_of(lacking).at("code").as_string(), "insufficient_scope");

  Headers proxy = with_cookie(original);
  proxy.emplace_back("X-Tessera-Api-Key", "proxy-key");
  auto allowed = ask("/v1/authz/forward-auth", proxy);
  EXPECT_EQ(allowed.status, 200u) << allowed.body;
  EXPECT_EQ(header_of(allowed, "X-Tessera-Subject"), "alice");
  // The full-scope key of api_key_hashes is an authz key too.
  Headers admin = with_cookie(original);
  admin.emplace_back("X-Tessera-Api-Key", std::string(kApiKey));
  EXPECT_EQ(ask("/v1/authz/forward-auth", admin).status, 200u);
}

// The rate limits at the Api: guessed credentials from one client address.
class RateLimitedRoutes : public RoutesTest {
 protected:
  RateLimitedRoutes() {
    options.rate_limits.auth_failures = {.per_second = 1, .burst = 3};
    options.trusted_proxies.networks = {*Cidr::parse("10.0.0.0/8")};
    api = std::make_unique<Api>(options, *deps);
  }
  HttpResponse from(std::string peer, std::string target, std::string body, Headers headers = {},
                    std::string method = "POST") {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    r.headers = std::move(headers);
    r.peer = std::move(peer);
    return api->handle(r);
  }
  static std::string refresh_body(std::string_view token) {
    return fmt::format(R"({{"refresh_token":"{}"}})", token);
  }
};

TEST_F(RateLimitedRoutes, GuessedRefreshTokensFromOneAddressAre429WithRetryAfterBeforeAnyWork) {
  const std::string good(issue("token").at("refresh_token").as_string());
  for (int i = 0; i < 3; ++i) {
    auto r = from("192.0.2.10", "/v1/tokens/refresh", refresh_body(fmt::format("guess-{}", i)));
    EXPECT_EQ(r.status, 401u) << r.body;
  }
  auto limited = from("192.0.2.10", "/v1/tokens/refresh", refresh_body("guess-3"));
  EXPECT_EQ(limited.status, 429u) << limited.body;
  EXPECT_EQ(limited.code, ErrorCode::rate_limited);
  EXPECT_EQ(body_of(limited).at("code").as_string(), "rate_limited");
  EXPECT_EQ(header_of(limited, "Retry-After"), "1");
  EXPECT_EQ(limited.route, RouteId::refresh);
  // No work while the bucket is empty, not even for a good token: an
  // answer would tell a guess from a hit.
  EXPECT_EQ(from("192.0.2.10", "/v1/tokens/refresh", refresh_body(good)).status, 429u);
  // Another address is not affected, nor another kind of credential.
  auto other = from("192.0.2.11", "/v1/tokens/refresh", refresh_body(good));
  EXPECT_EQ(other.status, 200u) << other.body;
  const std::string next(body_of(other).at("refresh_token").as_string());
  clock.advance(1s);
  EXPECT_EQ(from("192.0.2.10", "/v1/tokens/refresh", refresh_body(next)).status, 200u);
}

TEST_F(RateLimitedRoutes, A429CarriesTheCorsHeadersOfAnAllowedOrigin) {
  options.cors_allowed_origins = {"https://app.test"};
  api = std::make_unique<Api>(options, *deps);
  const Headers page = {{"Origin", "https://app.test"}};
  for (int i = 0; i < 3; ++i)
    (void)from("192.0.2.12", "/v1/tokens/refresh", refresh_body("x"), page);
  auto limited = from("192.0.2.12", "/v1/tokens/refresh", refresh_body("x"), page);
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(header_of(limited, "Access-Control-Allow-Origin"), "https://app.test");
}

TEST_F(RateLimitedRoutes, CredentialsThatEndedAreNotGuessesAndNeverCount) {
  const std::string refresh(issue("token").at("refresh_token").as_string());
  clock.advance(11min);  // idle timeout: a genuine credential, ended
  for (int i = 0; i < 10; ++i) {
    auto r = from("192.0.2.20", "/v1/tokens/refresh", refresh_body(refresh));
    EXPECT_EQ(r.status, 401u) << i << r.body;
    EXPECT_EQ(r.code, ErrorCode::session_idle_timeout);
  }
}

TEST_F(RateLimitedRoutes, WrongApiKeysAreLimitedAndTheRightKeyAlwaysPasses) {
  const Headers wrong = {{"Authorization", "Bearer not-the-key"}};
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(from("192.0.2.30", "/v1/epoch", "", wrong, "GET").status, 401u);
  auto limited = from("192.0.2.30", "/v1/epoch", "", wrong, "GET");
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.route, RouteId::global_epoch);
  const Headers right = {{"Authorization", fmt::format("Bearer {}", kApiKey)}};
  EXPECT_EQ(from("192.0.2.30", "/v1/epoch", "", right, "GET").status, 200u)
      << "a service sharing the address with a guesser keeps working";
  // Guessed session tokens at a service route are the service's users',
  // relayed: they never lock the service out.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(
        from("192.0.2.30", "/v1/sessions/validate", R"({"session_token":"forged"})", right).status,
        401u);
  }
}

TEST_F(RateLimitedRoutes, ForwardAuthCountsForgedCookiesPerClientBehindATrustedProxy) {
  const auto via = [](std::string client) {
    return Headers{{"Host", "app.test"},
                   {"Cookie", "tessera_session=forged"},
                   {"X-Forwarded-For", std::move(client)}};
  };
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(from("10.1.2.3", "/v1/authz/forward-auth", "", via("198.51.100.7"), "GET").status,
              401u);
  }
  auto limited = from("10.1.2.3", "/v1/authz/forward-auth", "", via("198.51.100.7"), "GET");
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(from("10.1.2.3", "/v1/authz/forward-auth", "", via("198.51.100.8"), "GET").status, 401u)
      << "the proxy's other clients are not limited with the guesser";
}

TEST_F(RateLimitedRoutes, TheGeneralLimitCountsEveryRequestWhenConfigured) {
  options.rate_limits.requests = {.per_second = 1, .burst = 2};
  api = std::make_unique<Api>(options, *deps);
  EXPECT_EQ(from("192.0.2.40", "/healthz", "", {}, "GET").status, 200u);
  EXPECT_EQ(from("192.0.2.40", "/healthz", "", {}, "GET").status, 200u);
  auto limited = from("192.0.2.40", "/healthz", "", {}, "GET");
  EXPECT_EQ(limited.status, 429u);
  EXPECT_EQ(limited.route, RouteId::healthz);
  EXPECT_EQ(from("192.0.2.41", "/healthz", "", {}, "GET").status, 200u);
}

}  // namespace
}  // namespace tessera::server
