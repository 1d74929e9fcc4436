// Runs the real `tessera` binary in a temporary directory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/key_files.hpp"
#include "cli/runtime.hpp"
#include "cli_test_support.hpp"
#include "result_matchers.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/redis_epochs.hpp"
#include "tessera/session_service.hpp"
#include "tessera/sqlite_store.hpp"

namespace tessera::cli {
namespace {

using tessera::testing::Succeeds;

using testing::file_mode;
using testing::run_tessera;
using testing::slurp;
using testing::TempDir;
using testing::write_text;

boost::json::value json_of(const std::string& text) {
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

// The one-line error contract: exactly one line "tessera: <code>: <detail>".
void expect_error_line(const std::string& err, std::string_view code) {
  EXPECT_TRUE(err.starts_with("tessera: " + std::string(code) + ": ")) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST(TesseraBinary, HelpListsSubcommandsAndSettings) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* word : {"serve", "keys", "sessions", "epoch", "migrate", "cleanup", "version",
                           "--session-ttl", "TESSERA_SESSION_TTL", "--config", "Exit codes"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word;
  }
  auto sub = run_tessera(dir.path(), {"keys", "--help"});
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_NE(sub.out.find("rotate"), std::string::npos);
}

TEST(TesseraBinary, HelpListsTheSubcommandsBeforeTheLongSettingsGroup) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"--help"});
  EXPECT_EQ(r.exit_code, 0);
  const auto subcommands = r.out.find("\nSubcommands:\n");
  const auto options = r.out.find("\nOptions:\n");
  const auto settings = r.out.find("\nSettings:\n");
  ASSERT_NE(subcommands, std::string::npos) << r.out;
  ASSERT_NE(options, std::string::npos) << r.out;
  ASSERT_NE(settings, std::string::npos) << r.out;
  EXPECT_LT(subcommands, options) << r.out;
  EXPECT_LT(subcommands, settings) << r.out;
  // Right after the usage line.
  EXPECT_NE(r.out.find("Usage: tessera [OPTIONS] SUBCOMMAND\n\nSubcommands:\n  serve "),
            std::string::npos)
      << r.out;
}

TEST(TesseraBinary, UnknownSubcommandIsNamedInTheError) {
  TempDir dir;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"frobnicate"}, {"--log-level", "info", "frobnicate"}}) {
    auto r = run_tessera(dir.path(), args);
    EXPECT_EQ(r.exit_code, kExitUsage);
    EXPECT_EQ(r.err,
              "tessera: invalid_request: unknown subcommand \"frobnicate\" (see tessera --help)\n");
  }
  auto nested = run_tessera(dir.path(), {"keys", "frobnicate"});
  EXPECT_EQ(nested.exit_code, kExitUsage);
  EXPECT_EQ(nested.err,
            "tessera: invalid_request: unknown subcommand \"frobnicate\" of keys (see tessera "
            "keys --help)\n");
  // No word at all: nothing to name.
  auto none = run_tessera(dir.path(), {});
  EXPECT_EQ(none.err, "tessera: invalid_request: A subcommand is required (see tessera --help)\n");
}

TEST(JsonLineFormatter, PutsAMillisecondUtcTimeFirstAndPassesOtherLinesAsTheyAre) {
  auto formatter = json_line_formatter();
  // 2026-12-02T07:10:00.123456Z
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::microseconds(1796195400123456));
  auto line = [&](std::string_view payload) {
    spdlog::details::log_msg msg(at, {}, "tessera", spdlog::level::info, payload);
    spdlog::memory_buf_t out;
    formatter->format(msg, out);
    return fmt::to_string(out);
  };
  EXPECT_EQ(line(R"({"level":"info","event":"x"})"),
            "{\"time\":\"2026-12-02T07:10:00.123Z\",\"level\":\"info\",\"event\":\"x\"}\n");
  EXPECT_EQ(line("{}"), "{\"time\":\"2026-12-02T07:10:00.123Z\"}\n");
  EXPECT_EQ(line("not json"), "not json\n");
}

TEST(TesseraBinary, VersionPrintsTheVersion) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.out.starts_with("tessera ")) << r.out;
  EXPECT_TRUE(r.err.empty());
}

TEST(TesseraBinary, UsageErrorsExitTwoWithOneLine) {
  TempDir dir;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{},
        {"frobnicate"},
        {"keys"},
        {"sessions", "list"},
        {"migrate", "--no-such-flag"},
        {"sessions", "revoke", "alice", "ID", "--except", "X"}}) {
    auto r = run_tessera(dir.path(), args);
    EXPECT_EQ(r.exit_code, kExitUsage) << (args.empty() ? "" : args[0]);
    expect_error_line(r.err, "invalid_request");
  }
}

TEST(TesseraBinary, BadConfigExitsTwoNamingTheSetting) {
  TempDir dir;
  auto flag = run_tessera(dir.path(), {"migrate", "--refresh-grace", "90s"});
  EXPECT_EQ(flag.exit_code, kExitUsage);
  EXPECT_EQ(flag.err,
            "tessera: config_invalid: refresh_grace: must be between 0s and 60s (got 90s)\n");

  auto env = run_tessera(dir.path(), {"migrate"}, {"TESSERA_MAX_SESSIONS_PER_SUBJECT=0"});
  EXPECT_EQ(env.exit_code, kExitUsage);
  expect_error_line(env.err, "config_invalid");
  EXPECT_NE(env.err.find("max_sessions_per_subject: "), std::string::npos);

  write_text(dir / "t.conf", "cookie_same_site = None\ncookie_secure = false\n");
  auto file = run_tessera(dir.path(), {"--config", "t.conf", "migrate"});
  EXPECT_EQ(file.exit_code, kExitUsage);
  expect_error_line(file.err, "config_invalid");
  EXPECT_NE(file.err.find("cookie_same_site: "), std::string::npos);

  auto store = run_tessera(dir.path(), {"migrate", "--store", "mysql://x"});
  EXPECT_EQ(store.exit_code, kExitUsage);
  EXPECT_NE(store.err.find("store: "), std::string::npos);
  // Nothing was created for a refused configuration.
  EXPECT_FALSE(std::filesystem::exists(dir / "var"));
}

TEST(TesseraBinary, MisspelledEnvironmentVariableIsWarnedAbout) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"migrate", "--store", "memory:"}, {"TESSERA_SESION_TTL=1h"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "tessera: warning: TESSERA_SESION_TTL names no setting; ignored\n");
}

TEST(TesseraBinary, FlagBeatsEnvironmentBeatsFile) {
  TempDir dir;
  write_text(dir / "t.conf", "store = sqlite://file.db\n");
  auto file = run_tessera(dir.path(), {"migrate"}, {"TESSERA_CONFIG=t.conf"});
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_EQ(json_of(file.out).at("store"), "sqlite://file.db");
  auto env =
      run_tessera(dir.path(), {"migrate", "--config", "t.conf"}, {"TESSERA_STORE=sqlite://env.db"});
  ASSERT_EQ(env.exit_code, 0) << env.err;
  EXPECT_EQ(json_of(env.out).at("store"), "sqlite://env.db");
  auto flag =
      run_tessera(dir.path(), {"migrate", "--config", "t.conf", "--store", "sqlite://flag.db"},
                  {"TESSERA_STORE=sqlite://env.db"});
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  EXPECT_EQ(json_of(flag.out).at("store"), "sqlite://flag.db");
  EXPECT_TRUE(std::filesystem::exists(dir / "flag.db"));
}

TEST(TesseraBinary, KeysGenerateWritesPrivateFilesAndRefusesToOverwrite) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"keys", "generate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_of(r.out).at("created").as_array().size(), 2u);
  EXPECT_EQ(file_mode(dir / "var"), 0700u);
  EXPECT_EQ(file_mode(dir / "var/keys"), 0700u);
  EXPECT_EQ(file_mode(dir / "var/keys/signing.jwks"), 0600u);
  EXPECT_EQ(file_mode(dir / "var/keys/secrets.json"), 0600u);
  // The output names files, never key material.
  const std::string signing = slurp(dir / "var/keys/signing.jwks");
  EXPECT_EQ(r.out.find("\"d\""), std::string::npos);

  auto again = run_tessera(dir.path(), {"keys", "generate"});
  EXPECT_EQ(again.exit_code, kExitRefused);
  expect_error_line(again.err, "invalid_request");
  EXPECT_NE(again.err.find("--force"), std::string::npos);
  EXPECT_EQ(slurp(dir / "var/keys/signing.jwks"), signing);

  auto forced = run_tessera(dir.path(), {"keys", "generate", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(slurp(dir / "var/keys/signing.jwks"), signing);
  EXPECT_EQ(file_mode(dir / "var/keys/signing.jwks"), 0600u);
}

TEST(TesseraBinary, KeysGenerateFillsInOnlyTheMissingFile) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate"}).exit_code, 0);
  const std::string secrets = slurp(dir / "var/keys/secrets.json");
  std::filesystem::remove(dir / "var/keys/signing.jwks");
  auto r = run_tessera(dir.path(), {"keys", "generate"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_of(r.out).at("kept").as_array().size(), 1u);
  EXPECT_EQ(slurp(dir / "var/keys/secrets.json"), secrets);
  EXPECT_TRUE(std::filesystem::exists(dir / "var/keys/signing.jwks"));
}

TEST(TesseraBinary, KeysRotateRetiresActiveAndPromotesNext) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate", "--signing-alg", "ES256"}).exit_code, 0);
  auto before = run_tessera(dir.path(), {"keys", "list"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  std::string active;
  std::string next;
  const auto before_json = json_of(before.out);
  for (const auto& k : before_json.at("keys").as_array()) {
    EXPECT_EQ(k.at("alg"), "ES256");
    if (k.at("state") == "active") active = k.at("kid").as_string().c_str();
    if (k.at("state") == "next") next = k.at("kid").as_string().c_str();
  }
  ASSERT_FALSE(active.empty());
  ASSERT_FALSE(next.empty());

  // Without signing_alg, rotation keeps the set's algorithm.
  auto rot = run_tessera(dir.path(), {"keys", "rotate"});
  ASSERT_EQ(rot.exit_code, 0) << rot.err;
  const auto result = json_of(rot.out);
  EXPECT_EQ(result.at("retired"), active.c_str());
  EXPECT_EQ(result.at("active"), next.c_str());
  EXPECT_EQ(file_mode(dir / "var/keys/signing.jwks"), 0600u);

  auto after = run_tessera(dir.path(), {"keys", "list"});
  ASSERT_EQ(after.exit_code, 0);
  int actives = 0;
  int nexts = 0;
  const auto after_json = json_of(after.out);
  for (const auto& k : after_json.at("keys").as_array()) {
    const std::string kid = k.at("kid").as_string().c_str();
    if (kid == active) {
      EXPECT_EQ(k.at("state"), "retired");
      EXPECT_TRUE(k.at("retired_at").is_int64());
    }
    if (k.at("state") == "active") {
      ++actives;
      EXPECT_EQ(kid, next);
      EXPECT_NE(kid, active);
    }
    EXPECT_EQ(k.at("alg"), "ES256");
    if (k.at("state") == "next") {
      ++nexts;
      EXPECT_NE(kid, next);
    }
  }
  EXPECT_EQ(actives, 1);
  EXPECT_EQ(nexts, 1);
  EXPECT_NE(slurp(dir / "var/audit.jsonl").find("\"key_rotated\""), std::string::npos);
}

TEST(TesseraBinary, KeysRotateToAnotherAlgorithmPrePublishesItFirst) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate"}).exit_code, 0);
  auto algs = [&] {
    std::map<std::string, std::string> by_state;
    const auto listed = json_of(run_tessera(dir.path(), {"keys", "list"}).out);
    for (const auto& k : listed.at("keys").as_array()) {
      if (k.at("state") != "retired")
        by_state[std::string(k.at("state").as_string())] = k.at("alg").as_string().c_str();
    }
    return by_state;
  };
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "rotate", "--signing-alg", "ES256"}).exit_code, 0);
  EXPECT_EQ(algs()["active"], "EdDSA");
  EXPECT_EQ(algs()["next"], "ES256");
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "rotate"}).exit_code, 0);
  EXPECT_EQ(algs()["active"], "ES256");
  EXPECT_EQ(algs()["next"], "ES256");
}

TEST(TesseraBinary, KeysRotateToRs256PublishesTheRsaPublicKey) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate"}).exit_code, 0);
  auto r = run_tessera(dir.path(), {"keys", "rotate", "--signing-alg", "RS256"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_tessera(dir.path(), {"keys", "rotate"});  // keeps RS256: the next key's
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto keys = KeySet::from_jwks(slurp(dir / "var/keys/signing.jwks"));
  ASSERT_THAT(keys, Succeeds());
  ASSERT_NE(keys->active(), nullptr);
  EXPECT_EQ(keys->active()->algorithm(), Algorithm::RS256);
  EXPECT_TRUE(keys->active()->has_private());
  const auto published = json_of(keys->public_jwks());
  int rsa = 0;
  for (const auto& k : published.at("keys").as_array()) {
    if (k.at("kty") != "RSA") continue;
    ++rsa;
    EXPECT_EQ(k.at("alg"), "RS256");
    EXPECT_TRUE(k.as_object().contains("n"));
    EXPECT_EQ(k.at("e"), "AQAB");
    for (const char* member : {"d", "p", "q", "dp", "dq", "qi"}) {
      EXPECT_FALSE(k.as_object().contains(member)) << member;
    }
  }
  EXPECT_EQ(rsa, 2) << "the active and the next key";
}

TEST(TesseraBinary, KeysRotateSecretsAddsAVersionAndKeepsSessionsReachable) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate"}).exit_code, 0);
  const std::string before = slurp(dir / "var/keys/secrets.json");
  auto r = run_tessera(dir.path(), {"keys", "rotate-secrets"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"lookup_key_version\":2,\"cipher_key_version\":2}\n");
  EXPECT_EQ(file_mode(dir / "var/keys/secrets.json"), 0600u);
  auto keys = load_secret_keys(dir / "var/keys/secrets.json");
  ASSERT_THAT(keys, Succeeds());
  EXPECT_EQ(keys->lookup.size(), 2u);
  // Version 1 is unchanged: tokens stored under it are still found.
  auto old = parse_secret_keys(before);
  EXPECT_EQ(keys->lookup[0].key, old->lookup[0].key);
  EXPECT_EQ(keys->cipher[0].key, old->cipher[0].key);
}

TEST(TesseraBinary, KeysListShowsNoPrivateMember) {
  TempDir dir;
  for (const char* alg : {"EdDSA", "ES256", "HS256", "RS256"}) {
    ASSERT_EQ(
        run_tessera(dir.path(), {"keys", "generate", "--force", "--signing-alg", alg}).exit_code,
        0);
    auto r = run_tessera(dir.path(), {"keys", "list"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const char* member : {"\"d\"", "\"k\"", "\"p\"", "\"q\"", "\"n\""}) {
      EXPECT_EQ(r.out.find(member), std::string::npos) << r.out;
    }
    const auto listed = json_of(r.out);
    for (const auto& k : listed.at("keys").as_array()) {
      EXPECT_EQ(k.as_object().size(), 4u);  // kid, alg, state, retired_at
    }
  }
}

TEST(TesseraBinary, KeysCommandsWithoutKeyFilesExitTwo) {
  TempDir dir;
  for (const char* sub : {"list", "rotate"}) {
    auto r = run_tessera(dir.path(), {"keys", sub});
    EXPECT_EQ(r.exit_code, kExitUsage);
    expect_error_line(r.err, "config_invalid");
    EXPECT_NE(r.err.find("signing_keys: "), std::string::npos);
  }
}

TEST(TesseraBinary, MigrateCreatesTheDatabaseAndReportsItsSchema) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"migrate", "--store", "sqlite://db/t.db"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto v = json_of(r.out);
  EXPECT_EQ(v.at("schema_version"), kSqliteSchemaVersion);
  EXPECT_TRUE(std::filesystem::exists(dir / "db/t.db"));
  // Idempotent.
  EXPECT_EQ(run_tessera(dir.path(), {"migrate", "--store", "sqlite://db/t.db"}).exit_code, 0);
}

TEST(TesseraBinary, UnopenableStoreExitsOne) {
  TempDir dir;
  write_text(dir / "junk.db", std::string(8192, 'x'));
  auto r = run_tessera(dir.path(), {"migrate", "--store", "sqlite://junk.db"});
  EXPECT_EQ(r.exit_code, kExitFailure);
  expect_error_line(r.err, "store_unavailable");
}

// Issues sessions straight into the SQLite file, as a running authority would.
std::vector<std::string> issue_sessions(const std::filesystem::path& db, const std::string& subject,
                                        int n) {
  auto store = open_sqlite_store(db);
  EXPECT_TRUE(store.has_value());
  CsprngRandom& random = CsprngRandom::instance();
  SecretKeys secrets = generate_secret_keys(random);
  auto lookup = LookupKeyRing::create(std::move(secrets.lookup));
  auto cipher = TokenCipher::create(std::move(secrets.cipher), random);
  SharedKeySet keys(*generate_signing_keys(Algorithm::EdDSA, random, SystemClock::instance()));
  auto service = SessionService::create({.store = **store,
                                         .lookup = *lookup,
                                         .cipher = *cipher,
                                         .keys = keys,
                                         .clock = SystemClock::instance(),
                                         .random = random},
                                        SessionPolicy{});
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    IssueRequest req;
    req.subject = subject;
    req.mode = SessionMode::cookie;
    req.metadata.device = "device " + std::to_string(i);
    auto issued = (*service)->issue(req);
    if (!issued) {
      ADD_FAILURE() << issued.error();
      break;
    }
    ids.push_back(issued->session.id);
  }
  return ids;
}

TEST(TesseraBinary, SessionsAndEpochRoundTripOnSqlite) {
  TempDir dir;
  ASSERT_EQ(run_tessera(dir.path(), {"migrate", "--store", "sqlite://t.db"}).exit_code, 0);
  const auto ids = issue_sessions(dir / "t.db", "alice", 3);
  issue_sessions(dir / "t.db", "bob", 1);
  const std::vector<std::string> env{"TESSERA_STORE=sqlite://t.db",
                                     "TESSERA_AUDIT_LOG=audit.jsonl"};

  auto list = run_tessera(dir.path(), {"sessions", "list", "alice"}, env);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto sessions = json_of(list.out).at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 3u);
  EXPECT_EQ(sessions[0].at("subject"), "alice");
  EXPECT_TRUE(sessions[0].at("revoked_at").is_null());
  EXPECT_TRUE(sessions[0].at("data").is_object());

  // Another subject's id is not found (exit 3), never revoked.
  auto wrong = run_tessera(dir.path(), {"sessions", "revoke", "bob", ids[0]}, env);
  EXPECT_EQ(wrong.exit_code, kExitNotFound);
  expect_error_line(wrong.err, "session_not_found");

  auto one = run_tessera(dir.path(), {"sessions", "revoke", "alice", ids[0]}, env);
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(json_of(one.out).at("revoked"), 1);

  auto others = run_tessera(dir.path(), {"sessions", "revoke", "alice", "--except", ids[2]}, env);
  ASSERT_EQ(others.exit_code, 0) << others.err;
  EXPECT_EQ(json_of(others.out).at("revoked"), 1);

  auto left = run_tessera(dir.path(), {"sessions", "list", "alice"}, env);
  auto remaining = json_of(left.out).at("sessions").as_array();
  ASSERT_EQ(remaining.size(), 1u);
  EXPECT_EQ(remaining[0].at("id"), ids[2].c_str());

  auto get = run_tessera(dir.path(), {"epoch", "get", "alice"}, env);
  ASSERT_EQ(get.exit_code, 0) << get.err;
  const auto before = json_of(get.out).at("epoch").as_int64();
  auto bump = run_tessera(dir.path(), {"epoch", "bump", "alice"}, env);
  ASSERT_EQ(bump.exit_code, 0) << bump.err;
  EXPECT_EQ(json_of(bump.out).at("epoch").as_int64(), before + 1);
  auto get2 = run_tessera(dir.path(), {"epoch", "get", "alice"}, env);
  EXPECT_EQ(json_of(get2.out).at("epoch").as_int64(), before + 1);
  EXPECT_EQ(json_of(run_tessera(dir.path(), {"epoch", "get", "bob"}, env).out).at("epoch"), 0);

  auto bob = run_tessera(dir.path(), {"sessions", "list", "bob"}, env);
  EXPECT_EQ(json_of(bob.out).at("sessions").as_array().size(), 1u);

  auto cleanup = run_tessera(dir.path(), {"cleanup"}, env);
  ASSERT_EQ(cleanup.exit_code, 0) << cleanup.err;
  EXPECT_EQ(json_of(cleanup.out).at("deleted"), 0);  // revoked just now: within retention
  auto cleanup0 = run_tessera(dir.path(), {"cleanup", "--cleanup-retention", "0"}, env);
  ASSERT_EQ(cleanup0.exit_code, 0) << cleanup0.err;

  const std::string audit = slurp(dir / "audit.jsonl");
  EXPECT_NE(audit.find("\"revoked\""), std::string::npos);
  EXPECT_NE(audit.find("\"epoch_bumped\""), std::string::npos);
}

TEST(TesseraBinary, GlobalEpochBumpRaisesEverySubjectsEffectiveEpoch) {
  TempDir dir;
  const std::vector<std::string> env{"TESSERA_STORE=sqlite://t.db",
                                     "TESSERA_AUDIT_LOG=audit.jsonl"};
  auto epoch_of = [&](const std::vector<std::string>& args) {
    auto r = run_tessera(dir.path(), args, env);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json_of(r.out).at("epoch").as_int64();
  };
  EXPECT_EQ(epoch_of({"epoch", "get", "--global"}), 0);
  EXPECT_EQ(epoch_of({"epoch", "bump", "alice"}), 1);
  // The global epoch goes past the highest epoch held (alice's 1).
  EXPECT_EQ(epoch_of({"epoch", "bump", "--global"}), 2);
  auto bumped = run_tessera(dir.path(), {"epoch", "bump", "--global"}, env);
  ASSERT_EQ(bumped.exit_code, 0) << bumped.err;
  EXPECT_EQ(json_of(bumped.out), boost::json::parse(R"({"global":true,"epoch":3})"));

  EXPECT_EQ(epoch_of({"epoch", "get", "--global"}), 3);
  EXPECT_EQ(epoch_of({"epoch", "get", "alice"}), 3);  // max(own 1, global 3)
  EXPECT_EQ(epoch_of({"epoch", "get", "bob"}), 3);    // never bumped itself
  // A subject bump still moves its effective epoch past the global one.
  EXPECT_EQ(epoch_of({"epoch", "bump", "bob"}), 4);
  EXPECT_EQ(epoch_of({"epoch", "get", "--global"}), 3);
  // Each global bump is audited, without a subject, with the new value.
  std::vector<std::int64_t> global_bumps;
  std::istringstream audit(slurp(dir / "audit.jsonl"));
  for (std::string line; std::getline(audit, line);) {
    const auto event = json_of(line).as_object();
    if (event.at("event") == "epoch_bumped" && !event.contains("subject"))
      global_bumps.push_back(event.at("count").as_int64());
  }
  EXPECT_EQ(global_bumps, (std::vector<std::int64_t>{2, 3}));
}

TEST(TesseraBinary, EpochTakesExactlyOneOfSubjectAndGlobal) {
  TempDir dir;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"epoch", "get"},
                                               {"epoch", "bump"},
                                               {"epoch", "get", "alice", "--global"},
                                               {"epoch", "bump", "--global", "alice"},
                                               {"epoch", "bump", "", "--global"},
                                               {"epoch", "get", ""}}) {
    auto r = run_tessera(dir.path(), args, {"TESSERA_STORE=memory:"});
    EXPECT_EQ(r.exit_code, kExitUsage) << args[1] << " " << args.size();
    expect_error_line(r.err, "invalid_request");
    EXPECT_NE(r.err.find("epoch: "), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(TesseraBinary, EpochBumpWithRedisUrlIsWrittenToRedis) {
  const char* url = std::getenv("TESSERA_TEST_REDIS_URL");
  if (url == nullptr) {
    const char* required = std::getenv("TESSERA_REQUIRE_SERVERS");
    if (required != nullptr && std::string_view(required) == "1")
      FAIL() << "TESSERA_TEST_REDIS_URL is not set";
    GTEST_SKIP() << "no Redis server (run through scripts/with-servers.sh)";
  }
  TempDir dir;
  const std::string subject = dir.path().filename().string();  // unique in a shared Redis
  const std::vector<std::string> env{"TESSERA_STORE=sqlite://t.db", "TESSERA_AUDIT_LOG=none",
                                     std::string("TESSERA_REDIS_URL=") + url};
  for (int i = 0; i < 3; ++i) {
    auto r = run_tessera(dir.path(), {"epoch", "bump", subject}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  RedisEpochSource redis(*parse_redis_url(url), nullptr);
  auto seen = redis.current(subject);
  ASSERT_TRUE(seen.has_value()) << seen.error();
  EXPECT_EQ(*seen, 3u);
}

TEST(TesseraBinary, EpochBumpThatRedisDidNotTakeExitsOneAfterPrintingIt) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"epoch", "bump", "alice"},
                       {"TESSERA_STORE=sqlite://t.db", "TESSERA_REDIS_URL=redis://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, kExitFailure);
  expect_error_line(r.err, "epoch_unavailable");
  EXPECT_NE(r.err.find("redis_url: "), std::string::npos) << r.err;
  EXPECT_EQ(json_of(r.out).at("epoch"), 1);  // the store holds it
  auto get = run_tessera(dir.path(), {"epoch", "get", "alice"}, {"TESSERA_STORE=sqlite://t.db"});
  EXPECT_EQ(json_of(get.out).at("epoch"), 1);
}

TEST(TesseraBinary, ServeInProductionWithoutKeysRefusesNamingTheSetting) {
  TempDir dir;
  auto r = run_tessera(dir.path(), {"serve", "--mode", "production", "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  expect_error_line(r.err, "config_invalid");
  EXPECT_NE(r.err.find("signing_keys: "), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "var"));

  ASSERT_EQ(run_tessera(dir.path(), {"keys", "generate", "--data-dir", "k"}).exit_code, 0);
  auto no_hashes =
      run_tessera(dir.path(), {"serve", "--listen", "127.0.0.1:0"},
                  {"TESSERA_MODE=production", "TESSERA_SIGNING_KEYS=k/keys/signing.jwks",
                   "TESSERA_SECRET_KEYS=k/keys/secrets.json"});
  EXPECT_EQ(no_hashes.exit_code, kExitUsage);
  EXPECT_NE(no_hashes.err.find("api_key_hashes: "), std::string::npos) << no_hashes.err;
}

TEST(TesseraBinary, ApiKeysAreCreatedShownOnceListedAndRevokedByName) {
  TempDir dir;
  auto created = run_tessera(
      dir.path(), {"api-keys", "create", "--name", "proxy", "--scopes", "authz, sessions:read"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto key = json_of(created.out);
  const std::string secret(key.at("key").as_string());
  EXPECT_TRUE(secret.starts_with("tsk_"));
  EXPECT_EQ(key.at("scopes"), (boost::json::array{"sessions:read", "authz"}));

  // The file holds the hash, never the key; list shows neither key nor whole hash.
  const std::string file = slurp(dir / "var" / "api_keys");
  EXPECT_EQ(file.find(secret), std::string::npos);
  EXPECT_NE(file.find(key_hash_text(sha256(secret))), std::string::npos);
  auto list = run_tessera(dir.path(), {"api-keys", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find(secret), std::string::npos);
  EXPECT_EQ(list.out.find(key_hash_text(sha256(secret))), std::string::npos);
  EXPECT_EQ(json_of(list.out).at("api_keys").as_array().at(0).at("name"), "proxy");

  auto twice =
      run_tessera(dir.path(), {"api-keys", "create", "--name", "proxy", "--scopes", "admin"});
  EXPECT_EQ(twice.exit_code, kExitRefused);
  auto unknown_scope =
      run_tessera(dir.path(), {"api-keys", "create", "--name", "x", "--scopes", "sessions:write"});
  EXPECT_EQ(unknown_scope.exit_code, kExitUsage);
  expect_error_line(unknown_scope.err, "invalid_request");
  auto bad_name =
      run_tessera(dir.path(), {"api-keys", "create", "--name", "a b", "--scopes", "admin"});
  EXPECT_EQ(bad_name.exit_code, kExitUsage);

  ASSERT_EQ(run_tessera(dir.path(), {"api-keys", "revoke", "proxy"}).exit_code, 0);
  EXPECT_EQ(slurp(dir / "var" / "api_keys").find(key_hash_text(sha256(secret))), std::string::npos);
  EXPECT_EQ(run_tessera(dir.path(), {"api-keys", "revoke", "proxy"}).exit_code, kExitNotFound);
  EXPECT_TRUE(
      json_of(run_tessera(dir.path(), {"api-keys", "list"}).out).at("api_keys").as_array().empty());
}

}  // namespace
}  // namespace tessera::cli
