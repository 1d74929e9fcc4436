// The routes without a network: Api::handle over a memory store behind a
// fault-injecting wrapper and a manual clock, so expiry is tested by moving
// time and store outages by asking for them.
#include "server/routes.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "forwarding_store.hpp"
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
  const std::set<unsigned> allowed = {400, 401, 404, 413, 429, 500, 503};
  for (ErrorCode c : kAllErrorCodes) EXPECT_TRUE(allowed.contains(http_status(c))) << c;
  EXPECT_EQ(http_status(ErrorCode::invalid_request), 400u);
  EXPECT_EQ(http_status(ErrorCode::refresh_token_reused), 401u);
  EXPECT_EQ(http_status(ErrorCode::unauthorized), 401u);
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
  for (const auto& [k, v] : r.headers) allow |= k == "Allow" && v == "GET, POST";
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

}  // namespace
}  // namespace tessera::server
