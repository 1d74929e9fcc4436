#include "cli/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "cli_test_support.hpp"
#include "result_matchers.hpp"

namespace tessera::cli {
namespace {

using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

using std::chrono::seconds;
using testing::TempDir;
using testing::write_text;

// Parses `args` (after the program name) through a SettingsBinder.
Result<RawSettings> parse(const std::string& args) {
  CLI::App app;
  SettingsBinder binder(app);
  app.parse(args, false);
  return binder.resolve();
}

Result<Config> config_from(const std::string& args) {
  auto raw = parse(args);
  if (!raw) return std::unexpected(raw.error());
  return build_config(*raw);
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(parse_duration("90s"), seconds{90});
  EXPECT_EQ(parse_duration("15m"), seconds{900});
  EXPECT_EQ(parse_duration("1h"), seconds{3600});
  EXPECT_EQ(parse_duration("30d"), seconds{30 * 86400});
  EXPECT_EQ(parse_duration("42"), seconds{42});
  EXPECT_EQ(parse_duration("0"), seconds{0});
}

TEST(ParseDuration, RefusesAnythingElse) {
  for (const char* bad : {"", "s", "-5s", "1.5h", "10 s", "10ms", "1w", "h1", "+3", "1e3",
                          "99999999999999999999d", "36500000d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(FormatDuration, UsesTheLargestExactUnit) {
  EXPECT_EQ(format_duration(seconds{90}), "90s");
  EXPECT_EQ(format_duration(seconds{900}), "15m");
  EXPECT_EQ(format_duration(seconds{86400}), "1d");
  EXPECT_EQ(format_duration(seconds{0}), "0s");
}

TEST(BuildConfig, DefaultsMatchTheDocumentation) {
  auto c = build_config({});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->mode, Mode::dev);
  EXPECT_EQ(c->data_dir, "./var");
  EXPECT_EQ(c->server.host, "127.0.0.1");
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_EQ(c->server.threads, 0u);
  EXPECT_EQ(c->store_kind, StoreKind::sqlite);
  EXPECT_EQ(c->sqlite_path, "./var/tessera.db");
  EXPECT_EQ(c->sqlite.synchronous, SqliteSync::full);
  EXPECT_EQ(c->signing_keys, "./var/keys/signing.jwks");
  EXPECT_FALSE(c->signing_keys_given);
  EXPECT_EQ(c->secret_keys, "./var/keys/secrets.json");
  EXPECT_FALSE(c->secret_keys_given);
  EXPECT_EQ(c->signing_alg, Algorithm::EdDSA);
  EXPECT_EQ(c->key_reload_interval, seconds{5});
  EXPECT_TRUE(c->server.api_key_hashes.empty());
  EXPECT_EQ(c->policy.issuer, "tessera");
  EXPECT_EQ(c->policy.audience, std::vector<std::string>{"tessera"});
  EXPECT_EQ(c->policy.session_ttl, std::chrono::days{30});
  EXPECT_EQ(c->policy.idle_timeout, seconds{0});
  EXPECT_FALSE(c->policy.touch_interval.has_value());
  EXPECT_EQ(c->policy.access_ttl, std::chrono::minutes{15});
  EXPECT_EQ(c->policy.refresh_grace, seconds{10});
  EXPECT_EQ(c->policy.max_sessions_per_subject, 10u);
  EXPECT_EQ(c->policy.max_data_bytes, 4096u);
  EXPECT_FALSE(c->policy.bind_fingerprint);
  EXPECT_EQ(c->policy.cleanup_retention, std::chrono::days{7});
  EXPECT_EQ(c->cleanup_interval, std::chrono::hours{1});
  EXPECT_EQ(c->server.cookie.name, "__Host-tessera_session")
      << "Secure, host-only and Path=/: the __Host- prefix by default";
  EXPECT_EQ(c->server.cookie.domain, "");
  EXPECT_EQ(c->server.cookie.path, "/");
  EXPECT_TRUE(c->server.cookie.secure);
  EXPECT_EQ(c->server.cookie.same_site, "Lax");
  EXPECT_EQ(c->server.max_body_bytes, 65536u);
  EXPECT_EQ(c->server.max_header_bytes, 8192u);
  EXPECT_EQ(c->server.header_timeout, seconds{5});
  EXPECT_EQ(c->server.read_timeout, seconds{10});
  EXPECT_EQ(c->server.idle_timeout, seconds{60});
  EXPECT_EQ(c->server.drain_timeout, seconds{30});
  EXPECT_EQ(c->server.max_connections, 4096u);
  EXPECT_EQ(c->server.health_connections, 16u);
  EXPECT_EQ(c->server.max_connections_per_client, 512u);
  EXPECT_EQ(c->server.rate_limits.auth_failures.per_second, 5.0);
  EXPECT_EQ(c->server.rate_limits.auth_failures.burst, 50.0);
  EXPECT_FALSE(c->server.rate_limits.requests.enabled());
  EXPECT_TRUE(c->rate_limit_shared);
  EXPECT_EQ(c->server.jwks_max_age, seconds{300});
  EXPECT_TRUE(c->server.metrics_public);
  EXPECT_TRUE(c->server.access_log);
  EXPECT_EQ(c->audit, AuditTarget::file);
  EXPECT_EQ(c->audit_path, "./var/audit.jsonl");
  EXPECT_EQ(c->log_level, "info");
}

TEST(BuildConfig, DataDirMovesEveryDefaultPathWithIt) {
  auto c = build_config({{"data_dir", "/srv/t"}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->sqlite_path, "/srv/t/tessera.db");
  EXPECT_EQ(c->store_url, "sqlite:///srv/t/tessera.db");
  EXPECT_EQ(c->signing_keys, "/srv/t/keys/signing.jwks");
  EXPECT_EQ(c->secret_keys, "/srv/t/keys/secrets.json");
  EXPECT_EQ(c->audit_path, "/srv/t/audit.jsonl");
  EXPECT_EQ(c->api_keys_file(), "/srv/t/api_keys");
}

TEST(BuildConfig, MapsValuesOntoPolicyAndServerOptions) {
  const std::string hash = "sha256:" + std::string(64, 'a');
  auto c = build_config({{"listen", "[::1]:0"},
                         {"store", "memory:"},
                         {"sqlite_synchronous", "normal"},
                         {"signing_alg", "ES256"},
                         {"api_key_hashes", hash + ", sha256:" + std::string(64, 'B')},
                         {"audience", "api, web"},
                         {"idle_timeout", "1h"},
                         {"touch_interval", "2m"},
                         {"refresh_grace", "0"},
                         {"max_sessions_per_subject", "1"},
                         {"bind_fingerprint", "true"},
                         {"cookie_same_site", "None"},
                         {"audit_log", "-"},
                         {"cleanup_interval", "0"}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->server.host, "::1");
  EXPECT_EQ(c->server.port, 0);
  EXPECT_EQ(c->store_kind, StoreKind::memory);
  EXPECT_EQ(c->sqlite.synchronous, SqliteSync::normal);
  EXPECT_EQ(c->signing_alg, Algorithm::ES256);
  ASSERT_EQ(c->server.api_key_hashes.size(), 2u);
  EXPECT_EQ(c->server.api_key_hashes[0][0], 0xaa);
  EXPECT_EQ(c->server.api_key_hashes[1][31], 0xbb);
  EXPECT_TRUE(c->api_key_hashes_given);
  EXPECT_EQ(c->policy.audience, (std::vector<std::string>{"api", "web"}));
  EXPECT_EQ(c->policy.idle_timeout, seconds{3600});
  EXPECT_EQ(c->policy.touch_interval, seconds{120});
  EXPECT_EQ(c->policy.refresh_grace, seconds{0});
  EXPECT_EQ(c->policy.max_sessions_per_subject, 1u);
  EXPECT_TRUE(c->policy.bind_fingerprint);
  EXPECT_EQ(c->server.cookie.same_site, "None");
  EXPECT_EQ(c->audit, AuditTarget::stdout_lines);
  EXPECT_EQ(c->cleanup_interval, seconds{0});
}

TEST(BuildConfig, ListenTakesLocalhostAsLoopback) {
  auto c = build_config({{"listen", "localhost:9090"}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->server.host, "127.0.0.1");
  EXPECT_EQ(c->server.port, 9090);
}

TEST(BuildConfig, TheCookieNameTakesTheHostPrefixOnlyWhereItCan) {
  auto name = [](const RawSettings& raw) {
    auto c = build_config(raw);
    return c ? c->server.cookie.name : "refused: " + c.error().detail;
  };
  EXPECT_EQ(name({}), "__Host-tessera_session");
  EXPECT_EQ(name({{"cookie_secure", "false"}}), "tessera_session");
  EXPECT_EQ(name({{"cookie_domain", "example.com"}}), "tessera_session");
  EXPECT_EQ(name({{"cookie_path", "/app"}}), "tessera_session");
  EXPECT_EQ(name({{"cookie_name", "sid"}}), "sid");
  EXPECT_EQ(name({{"cookie_name", "__Host-sid"}}), "__Host-sid");
  EXPECT_EQ(name({{"cookie_name", "__Secure-sid"}, {"cookie_domain", "example.com"}}),
            "__Secure-sid");
  for (const auto& raw :
       std::vector<RawSettings>{{{"cookie_name", "__Host-sid"}, {"cookie_domain", "example.com"}},
                                {{"cookie_name", "__Host-sid"}, {"cookie_path", "/app"}},
                                {{"cookie_name", "__Host-sid"}, {"cookie_secure", "false"}},
                                {{"cookie_name", "__Secure-sid"}, {"cookie_secure", "false"}}}) {
    const std::string got = name(raw);
    EXPECT_TRUE(got.starts_with("refused: ") && got.find("cookie_name") != std::string::npos)
        << got;
  }
}

TEST(BuildConfig, PublicUrlAndTheForwardAuthSettings) {
  auto c =
      build_config({{"public_url", "https://Auth.example.com:443/base"},
                    {"trusted_proxies", "10.0.0.0/8, ::1"},
                    {"authz_login_url", "/login"},
                    {"authz_allowed_hosts", "app.example.com, .apps.example.com"},
                    {"authz_subject_headers", "Remote-User"},
                    {"cors_allowed_origins", "https://App.example.com, http://localhost:5173"}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->server.public_scheme, "https");
  EXPECT_EQ(c->server.cors_allowed_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:5173"}))
      << "origins are kept in lower case, as browsers send them";
  EXPECT_EQ(c->public_url, "https://Auth.example.com:443/base");
  EXPECT_EQ(c->server.public_host, "Auth.example.com") << "the scheme's default port is left out";
  ASSERT_EQ(c->server.trusted_proxies.networks.size(), 2u);
  EXPECT_TRUE(c->server.trusted_proxies.trusts("10.9.8.7"));
  EXPECT_TRUE(c->server.trusted_proxies.trusts("::1"));
  EXPECT_FALSE(c->server.trusted_proxies.trusts("192.0.2.1"));
  EXPECT_EQ(c->server.authz.login_url, "/login");
  EXPECT_EQ(c->server.authz.allowed_hosts,
            (std::vector<std::string>{"app.example.com", ".apps.example.com"}));
  EXPECT_EQ(c->server.authz.subject_headers, std::vector<std::string>{"Remote-User"});
  // Dev mode knows its own address; port 0 is not known yet, so the host alone.
  auto dev = build_config({{"listen", "127.0.0.1:9090"}});
  ASSERT_THAT(dev, Succeeds());
  EXPECT_EQ(dev->public_url, "http://127.0.0.1:9090");
  dev = build_config({{"listen", "127.0.0.1:0"}});
  ASSERT_THAT(dev, Succeeds());
  EXPECT_EQ(dev->server.public_host, "127.0.0.1");
  auto prod = build_config({{"mode", "production"}});
  ASSERT_THAT(prod, Succeeds());
  EXPECT_EQ(prod->public_url, "") << "production is never guessed";
}

TEST(BuildConfig, RateLimitsTakeARatePerSecondMinuteOrHour) {
  auto c = build_config({{"rate_limit_auth_failures", "300/min"},
                         {"rate_limit_auth_burst", "20"},
                         {"rate_limit_requests", "7200/h"},
                         {"rate_limit_requests_burst", "4"}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_DOUBLE_EQ(c->server.rate_limits.auth_failures.per_second, 5.0);
  EXPECT_DOUBLE_EQ(c->server.rate_limits.auth_failures.burst, 20.0);
  EXPECT_DOUBLE_EQ(c->server.rate_limits.requests.per_second, 2.0);
  EXPECT_DOUBLE_EQ(c->server.rate_limits.requests.burst, 4.0);
  auto off = build_config({{"rate_limit_auth_failures", "0"}});
  ASSERT_THAT(off, Succeeds());
  EXPECT_FALSE(off->server.rate_limits.auth_failures.enabled());
}

TEST(BuildConfig, StoreUrlForms) {
  auto abs = build_config({{"store", "sqlite:///tmp/x.db"}});
  ASSERT_TRUE(abs.has_value());
  EXPECT_EQ(abs->sqlite_path, "/tmp/x.db");
  auto rel = build_config({{"store", "sqlite://rel/x.db"}});
  ASSERT_TRUE(rel.has_value());
  EXPECT_EQ(rel->sqlite_path, "rel/x.db");
  auto none = build_config({{"audit_log", "none"}});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->audit, AuditTarget::none);
  auto pg = build_config({{"store", "postgresql://tessera:s3cret@db:5432/auth?sslmode=require"},
                          {"postgres_schema", "auth"},
                          {"postgres_pool_size", "4"}});
  ASSERT_THAT(pg, Succeeds());
  EXPECT_EQ(pg->store_kind, StoreKind::postgresql);
  EXPECT_EQ(pg->postgres.url, "postgresql://tessera:s3cret@db:5432/auth?sslmode=require");
  EXPECT_EQ(pg->postgres.schema, "auth");
  EXPECT_EQ(pg->postgres.pool_size, 4u);
  EXPECT_EQ(build_config({{"store", "postgres://db/x"}})->store_kind, StoreKind::postgresql);
  auto redis = build_config({{"redis_url", "redis://10.0.0.9:6380"}});
  ASSERT_THAT(redis, Succeeds());
  ASSERT_TRUE(redis->redis.has_value());
  EXPECT_EQ(redis->redis->host, "10.0.0.9");
  EXPECT_EQ(redis->redis->port, 6380);
  EXPECT_FALSE(build_config({})->redis.has_value());
}

TEST(BuildConfig, StorePasswordsNeverReachLogsOrErrors) {
  auto pg = build_config({{"store", "postgresql://tessera:s3cret@db:5432/auth"}});
  ASSERT_TRUE(pg.has_value());
  EXPECT_EQ(pg->store_url_for_logs(), "postgresql://tessera:***@db:5432/auth");
  auto query = build_config({{"store", "postgresql://db/auth?user=t&password=s3cret&x=1"}});
  EXPECT_EQ(query->store_url_for_logs(), "postgresql://db/auth?user=t&password=***&x=1");
  auto bad = build_config({{"store", "mysql://root:s3cret@db/x"}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().detail.find("s3cret"), std::string::npos) << bad.error().detail;
}

struct BadSetting {
  const char* key;
  const char* value;
};

class BuildConfigRefuses : public ::testing::TestWithParam<BadSetting> {};

TEST_P(BuildConfigRefuses, WithOneLineNamingTheSetting) {
  const auto& [key, value] = GetParam();
  auto c = build_config({{key, value}});
  ASSERT_THAT(c, FailsWith(ErrorCode::config_invalid)) << key << "=" << value;
  EXPECT_TRUE(c.error().detail.starts_with(std::string(key) + ": ")) << c.error().detail;
  EXPECT_EQ(c.error().detail.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    EverySetting, BuildConfigRefuses,
    ::testing::Values(
        BadSetting{"mode", "staging"}, BadSetting{"data_dir", ""}, BadSetting{"listen", "8080"},
        BadSetting{"listen", "localhost:http"}, BadSetting{"listen", ":8080"},
        BadSetting{"listen", "127.0.0.1:65536"}, BadSetting{"threads", "-1"},
        BadSetting{"threads", "many"}, BadSetting{"store", "mysql://db"},
        BadSetting{"postgres_pool_size", "0"}, BadSetting{"redis_url", "http://cache"},
        BadSetting{"redis_url", "redis://cache:0"}, BadSetting{"store", "sqlite://"},
        BadSetting{"store", "memory"}, BadSetting{"sqlite_synchronous", "off"},
        BadSetting{"signing_keys", ""}, BadSetting{"secret_keys", ""},
        BadSetting{"signing_alg", "none"}, BadSetting{"signing_alg", "RS512"},
        BadSetting{"key_reload_interval", "0"}, BadSetting{"key_reload_interval", "5x"},
        BadSetting{"api_key_hashes", "tsk_notahash"}, BadSetting{"api_key_hashes", "sha256:abcd"},
        BadSetting{"api_key_hashes", "sha1:0000000000000000000000000000000000000000"},
        BadSetting{"issuer", ""}, BadSetting{"audience", " , "}, BadSetting{"session_ttl", "0"},
        BadSetting{"session_ttl", "forever"}, BadSetting{"idle_timeout", "-1"},
        BadSetting{"idle_timeout", "31d"}, BadSetting{"touch_interval", "0"},
        BadSetting{"access_ttl", "0s"}, BadSetting{"refresh_grace", "90s"},
        BadSetting{"refresh_grace", "2m"}, BadSetting{"max_sessions_per_subject", "0"},
        BadSetting{"max_data_bytes", "0"}, BadSetting{"bind_fingerprint", "yes"},
        BadSetting{"cleanup_retention", "7 days"}, BadSetting{"cleanup_interval", "-1h"},
        BadSetting{"cookie_name", "a b"}, BadSetting{"cookie_path", "api"},
        BadSetting{"cookie_secure", "1"}, BadSetting{"cookie_same_site", "lax"},
        BadSetting{"max_body_bytes", "0"}, BadSetting{"max_header_bytes", "10"},
        BadSetting{"read_timeout", "0"}, BadSetting{"idle_connection_timeout", "0"},
        BadSetting{"header_timeout", "0"}, BadSetting{"health_connections", "10001"},
        BadSetting{"rate_limit_auth_failures", "5"}, BadSetting{"rate_limit_auth_failures", "5/d"},
        BadSetting{"rate_limit_requests", "-1/s"}, BadSetting{"rate_limit_auth_burst", "0"},
        BadSetting{"drain_timeout", "soon"}, BadSetting{"max_connections", "0"},
        BadSetting{"max_connections", "1000001"}, BadSetting{"jwks_max_age", "1y"},
        BadSetting{"metrics_public", "TRUE"}, BadSetting{"access_log", "on"},
        BadSetting{"log_level", "verbose"}, BadSetting{"tls_client_ca", "callers.pem"},
        BadSetting{"public_url", "auth.example.com"},
        BadSetting{"public_url", "ftp://auth.example.com"}, BadSetting{"cors_allowed_origins", "*"},
        BadSetting{"cors_allowed_origins", "null"},
        BadSetting{"cors_allowed_origins", "app.example.com"},
        BadSetting{"cors_allowed_origins", "https://app.example.com/"},
        BadSetting{"cors_allowed_origins", "https://*.example.com"},
        BadSetting{"public_url", "https://user@auth.example.com"},
        BadSetting{"trusted_proxies", "10.0.0.1/8"}, BadSetting{"trusted_proxies", "10.0.0.0/33"},
        BadSetting{"trusted_proxies", "proxy.internal"},
        BadSetting{"authz_login_url", "//evil.example/login"},
        BadSetting{"authz_login_url", "login"}, BadSetting{"authz_subject_headers", "Set-Cookie"},
        BadSetting{"authz_subject_headers", "Remote User"}, BadSetting{"no_such_setting", "1"}),
    [](const ::testing::TestParamInfo<BadSetting>& info) {
      return std::string(info.param.key) + "_" + std::to_string(info.index);
    });

TEST(BuildConfig, RefreshGraceMessageMatchesTheDocumentation) {
  auto c = build_config({{"refresh_grace", "90s"}});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().detail, "refresh_grace: must be between 0s and 60s (got 90s)");
}

TEST(BuildConfig, SigningAlgTakesEveryAlgorithmAndNamesThemWhenWrong) {
  for (const Algorithm alg : kAllAlgorithms) {
    auto c = build_config({{"signing_alg", std::string(to_string(alg))}});
    ASSERT_THAT(c, Succeeds()) << to_string(alg);
    EXPECT_EQ(c->signing_alg, alg);
    EXPECT_TRUE(c->signing_alg_given);
  }
  auto c = build_config({{"signing_alg", "RS512"}});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().detail, "signing_alg: must be EdDSA, ES256, HS256 or RS256 (got \"RS512\")");
}

TEST(BuildConfig, SameSiteNoneNeedsSecure) {
  auto c = build_config({{"cookie_same_site", "None"}, {"cookie_secure", "false"}});
  ASSERT_FALSE(c.has_value());
  EXPECT_TRUE(c.error().detail.starts_with("cookie_same_site: ")) << c.error().detail;
}

TEST(BuildConfig, TlsCertAndKeyComeTogetherAndTheMissingOneIsNamed) {
  auto cert_only = build_config({{"tls_cert", "server.pem"}});
  ASSERT_THAT(cert_only, FailsWith(ErrorCode::config_invalid));
  EXPECT_TRUE(cert_only.error().detail.starts_with("tls_key: ")) << cert_only.error().detail;
  auto key_only = build_config({{"tls_key", "server.key"}});
  ASSERT_THAT(key_only, FailsWith(ErrorCode::config_invalid));
  EXPECT_TRUE(key_only.error().detail.starts_with("tls_cert: ")) << key_only.error().detail;

  auto both = build_config({{"tls_cert", "server.pem"}, {"tls_key", "server.key"}});
  ASSERT_THAT(both, Succeeds());
  EXPECT_TRUE(both->server.tls.enabled());
  EXPECT_EQ(both->server.tls.cert_file, "server.pem");
  EXPECT_EQ(both->server.tls.key_file, "server.key");
  EXPECT_TRUE(both->server.tls.client_ca_file.empty());
  auto neither = build_config({});
  ASSERT_THAT(neither, Succeeds());
  EXPECT_FALSE(neither->server.tls.enabled());
}

TEST(BuildConfig, TlsClientCaWithoutTlsCertIsRefused) {
  auto c = build_config({{"tls_client_ca", "callers.pem"}});
  ASSERT_THAT(c, FailsWith(ErrorCode::config_invalid));
  EXPECT_TRUE(c.error().detail.starts_with("tls_client_ca: ")) << c.error().detail;
  auto with_cert = build_config(
      {{"tls_cert", "server.pem"}, {"tls_key", "server.key"}, {"tls_client_ca", "callers.pem"}});
  ASSERT_THAT(with_cert, Succeeds());
  EXPECT_EQ(with_cert->server.tls.client_ca_file, "callers.pem");
}

TEST(PlaintextListenerWarning, NamesTheSettingInProductionOnANonLoopbackAddress) {
  auto c = build_config({{"mode", "production"}, {"listen", "0.0.0.0:8080"}});
  ASSERT_THAT(c, Succeeds());
  const auto warning = plaintext_listener_warning(*c, 8080);
  ASSERT_TRUE(warning.has_value());
  EXPECT_TRUE(warning->starts_with("listen 0.0.0.0:8080 is not loopback and tls_cert is not set"))
      << *warning;
  auto v6 = build_config({{"mode", "production"}, {"listen", "[::]:0"}});
  ASSERT_THAT(v6, Succeeds());
  const auto v6_warning = plaintext_listener_warning(*v6, 4443);
  ASSERT_TRUE(v6_warning.has_value());
  EXPECT_TRUE(v6_warning->starts_with("listen [::]:4443 ")) << *v6_warning;
}

TEST(PlaintextListenerWarning, NoneOnLoopbackWithTlsOrInDevMode) {
  for (const char* listen : {"127.0.0.1:8080", "127.10.0.1:8080", "[::1]:8080", "localhost:8080",
                             "[::ffff:127.0.0.1]:8080"}) {
    auto c = build_config({{"mode", "production"}, {"listen", listen}});
    ASSERT_THAT(c, Succeeds()) << listen;
    EXPECT_EQ(plaintext_listener_warning(*c, 8080), std::nullopt) << listen;
  }
  auto tls = build_config({{"mode", "production"},
                           {"listen", "0.0.0.0:8443"},
                           {"tls_cert", "server.pem"},
                           {"tls_key", "server.key"}});
  ASSERT_THAT(tls, Succeeds());
  EXPECT_EQ(plaintext_listener_warning(*tls, 8443), std::nullopt);
  auto dev = build_config({{"mode", "dev"}, {"listen", "0.0.0.0:8080"}});
  ASSERT_THAT(dev, Succeeds());
  EXPECT_EQ(plaintext_listener_warning(*dev, 8080), std::nullopt);
}

// The server reads one request at a time per connection, so a pipelining
// depth had nothing to bound: the setting is gone, and a stale one is named.
TEST(BuildConfig, MaxPipelinedIsNoLongerASetting) {
  auto c = build_config({{"max_pipelined", "16"}});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().detail, "max_pipelined: unknown setting");
}

TEST(BuildConfig, BadApiKeyHashIsNotEchoed) {
  // A key pasted where its hash belongs must not end up in a terminal or log.
  const std::string pasted = "tsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  auto c = build_config({{"api_key_hashes", pasted}});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().detail.find(pasted), std::string::npos);
  EXPECT_EQ(c.error().detail.find("tsk_"), std::string::npos);
}

TEST(BuildConfig, EverySettingIsDocumentedInTheTable) {
  // Each key of the table is accepted by build_config (no orphan rows).
  for (const auto& s : settings()) {
    RawSettings raw;
    if (!s.default_text.empty() && s.default_text.find('<') == std::string_view::npos &&
        s.default_text != "auto")
      raw[std::string(s.key)] = std::string(s.default_text);
    auto c = build_config(raw);
    EXPECT_TRUE(c.has_value()) << s.key << ": " << (c ? "" : c.error().detail);
  }
}

// The rows of docs/configuration.md's settings table: key and default as
// written there ("" for "—"), backticks removed.
std::vector<std::pair<std::string, std::string>> documented_settings() {
  std::vector<std::pair<std::string, std::string>> rows;
  std::istringstream doc(testing::slurp(TESSERA_CONFIGURATION_MD));
  bool in_table = false;
  for (std::string line; std::getline(doc, line);) {
    if (line.starts_with("## ")) in_table = line == "## Settings";
    if (!in_table || !line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    for (std::size_t at = 1, bar; (bar = line.find('|', at)) != std::string::npos; at = bar + 1) {
      std::string cell = line.substr(at, bar - at);
      std::erase(cell, '`');
      const auto first = cell.find_first_not_of(' ');
      cells.push_back(first == std::string::npos
                          ? ""
                          : cell.substr(first, cell.find_last_not_of(' ') - first + 1));
    }
    if (cells.size() < 2) continue;
    rows.emplace_back(cells[0], cells[1] == "—" ? "" : cells[1]);
  }
  return rows;
}

TEST(Settings, DocumentedTableListsExactlyTheSettingsInOrderWithTheirDefaults) {
  const auto documented = documented_settings();
  ASSERT_FALSE(documented.empty()) << "no settings table in " << TESSERA_CONFIGURATION_MD;
  std::vector<std::pair<std::string, std::string>> code;
  for (const auto& s : settings()) code.emplace_back(s.key, s.default_text);
  for (const auto& [key, default_text] : documented) {
    EXPECT_TRUE(
        std::any_of(code.begin(), code.end(), [&](const auto& c) { return c.first == key; }))
        << "docs/configuration.md documents \"" << key << "\", which is no setting";
  }
  for (const auto& [key, default_text] : code) {
    const auto doc = std::find_if(documented.begin(), documented.end(),
                                  [&](const auto& d) { return d.first == key; });
    if (doc == documented.end()) {
      ADD_FAILURE() << "setting \"" << key << "\" is missing from docs/configuration.md";
    } else {
      EXPECT_EQ(doc->second, default_text) << "documented default of " << key;
    }
  }
  EXPECT_EQ(documented, code) << "docs/configuration.md lists the settings in another order";
}

TEST(Settings, FlagsUseDashesAndReachTheSetting) {
  auto c = config_from("--session-ttl 1h --listen 0.0.0.0:9000 --cookie-secure false");
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->policy.session_ttl, seconds{3600});
  EXPECT_EQ(c->server.port, 9000);
  EXPECT_FALSE(c->server.cookie.secure);
}

TEST(Settings, EnvironmentOverridesFileAndFlagsOverrideEnvironment) {
  TempDir dir;
  write_text(dir / "t.conf",
             "# comment\n"
             "session_ttl = 2h\n"
             "access_ttl = 5m\n"
             "issuer = \"https://file.example\"\n"
             "refresh_grace = 20s\n");
  const std::string file = (dir / "t.conf").string();
  {
    auto c = config_from("--config " + file);
    ASSERT_THAT(c, Succeeds());
    EXPECT_EQ(c->policy.session_ttl, seconds{7200});
    EXPECT_EQ(c->policy.access_ttl, seconds{300});
    EXPECT_EQ(c->policy.issuer, "https://file.example");
    EXPECT_EQ(c->policy.refresh_grace, seconds{20});
  }
  ScopedEnv e1("TESSERA_SESSION_TTL", "3h");
  ScopedEnv e2("TESSERA_ACCESS_TTL", "6m");
  {
    auto c = config_from("--config " + file + " --access-ttl 7m");
    ASSERT_THAT(c, Succeeds());
    EXPECT_EQ(c->policy.session_ttl, seconds{3 * 3600});  // env beats file
    EXPECT_EQ(c->policy.access_ttl, seconds{420});        // flag beats env
    EXPECT_EQ(c->policy.issuer, "https://file.example");  // file beats default
    EXPECT_EQ(c->policy.refresh_grace, seconds{20});
  }
}

TEST(Settings, ConfigFileMayComeFromTheEnvironment) {
  TempDir dir;
  write_text(dir / "t.conf", "max_sessions_per_subject = 3\n");
  ScopedEnv env("TESSERA_CONFIG", (dir / "t.conf").c_str());
  auto c = config_from("");
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->policy.max_sessions_per_subject, 3u);
}

TEST(Settings, FileAcceptsDashedKeysAndListValues) {
  TempDir dir;
  write_text(dir / "t.conf", "cookie-name = sid\naudience = [\"a\", \"b\"]\n");
  auto c = config_from("--config " + (dir / "t.conf").string());
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->server.cookie.name, "sid");
  EXPECT_EQ(c->policy.audience, (std::vector<std::string>{"a", "b"}));
}

TEST(Settings, UnknownKeyInFileIsNamed) {
  TempDir dir;
  write_text(dir / "t.conf", "sesion_ttl = 1h\n");
  auto raw = parse("--config " + (dir / "t.conf").string());
  ASSERT_THAT(raw, FailsWith(ErrorCode::config_invalid));
  EXPECT_TRUE(raw.error().detail.starts_with("sesion_ttl: unknown setting")) << raw.error().detail;
}

TEST(Settings, SectionsInFileAreRefused) {
  TempDir dir;
  write_text(dir / "t.conf", "[server]\nlisten = 1.2.3.4:80\n");
  auto raw = parse("--config " + (dir / "t.conf").string());
  ASSERT_FALSE(raw.has_value());
  EXPECT_TRUE(raw.error().detail.starts_with("server.listen: ")) << raw.error().detail;
}

TEST(Settings, MissingConfigFileIsNamed) {
  auto raw = parse("--config /nonexistent/tessera.conf");
  ASSERT_FALSE(raw.has_value());
  EXPECT_TRUE(raw.error().detail.starts_with("config: ")) << raw.error().detail;
}

TEST(Settings, InvalidValueFromEnvironmentIsNamedBySetting) {
  ScopedEnv env("TESSERA_REFRESH_GRACE", "61s");
  auto c = config_from("");
  ASSERT_FALSE(c.has_value());
  EXPECT_TRUE(c.error().detail.starts_with("refresh_grace: ")) << c.error().detail;
}

}  // namespace
}  // namespace tessera::cli
