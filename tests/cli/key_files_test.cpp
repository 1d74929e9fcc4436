#include "cli/key_files.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/runtime.hpp"
#include "cli_test_support.hpp"
#include "result_matchers.hpp"
#include "tessera/encoding.hpp"

namespace tessera::cli {
namespace {

using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

using std::chrono::seconds;
using testing::file_mode;
using testing::slurp;
using testing::TempDir;
using testing::write_text;

TEST(WritePrivateFile, CreatesFile0600InDirectories0700) {
  TempDir dir;
  const auto file = dir / "a/b/keys.json";
  ASSERT_TRUE(write_private_file(file, "{}"));
  EXPECT_EQ(slurp(file), "{}");
  EXPECT_EQ(file_mode(file), 0600u);
  EXPECT_EQ(file_mode(dir / "a"), 0700u);
  EXPECT_EQ(file_mode(dir / "a/b"), 0700u);
}

TEST(WritePrivateFile, ReplacesAtomicallyAndTightensAnExistingFile) {
  TempDir dir;
  const auto file = dir / "k";
  write_text(file, "old");
  ::chmod(file.c_str(), 0644);
  const auto before = file_stamp(file);
  ASSERT_TRUE(write_private_file(file, "new"));
  EXPECT_EQ(slurp(file), "new");
  EXPECT_EQ(file_mode(file), 0600u);
  // A new inode: readers see the old file or the new one, never a mix.
  EXPECT_NE(file_stamp(file)->inode, before->inode);
  // No temp file is left behind.
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(SecretKeys, RoundTripThroughJson) {
  DeterministicRandom random(7);
  const SecretKeys keys = generate_secret_keys(random);
  ASSERT_EQ(keys.lookup.size(), 1u);
  ASSERT_EQ(keys.cipher.size(), 1u);
  EXPECT_EQ(keys.lookup[0].key.reveal().size(), 32u);
  EXPECT_NE(keys.lookup[0].key.reveal(), keys.cipher[0].key.reveal());
  auto parsed = parse_secret_keys(secret_keys_json(keys));
  ASSERT_THAT(parsed, Succeeds());
  EXPECT_EQ(parsed->lookup[0].version, 1u);
  EXPECT_EQ(parsed->lookup[0].key, keys.lookup[0].key);
  EXPECT_EQ(parsed->cipher[0].key, keys.cipher[0].key);
  // And they build the engine's key holders.
  EXPECT_TRUE(LookupKeyRing::create(std::move(parsed->lookup)).has_value());
  EXPECT_TRUE(TokenCipher::create(std::move(parsed->cipher), random).has_value());
}

TEST(SecretKeys, MalformedFilesAreRefusedWithoutEchoingContent) {
  const std::string short_key = base64url_encode(std::string(16, 'x'));
  const std::string good = base64url_encode(std::string(32, 'y'));
  for (const std::string& bad : std::vector<std::string>{
           std::string("not json ") + good,
           std::string("[]"),
           R"({"lookup_keys":[]})",
           R"({"lookup_keys":[{"version":1,"key":")" + short_key +
               R"("}],"cipher_keys":[{"version":1,"key":")" + good + R"("}]})",
           R"({"lookup_keys":[{"version":0,"key":")" + good +
               R"("}],"cipher_keys":[{"version":1,"key":")" + good + R"("}]})",
           R"({"lookup_keys":[{"version":1,"key":")" + good + R"("},{"version":1,"key":")" + good +
               R"("}],"cipher_keys":[{"version":1,"key":")" + good + R"("}]})",
       }) {
    auto r = parse_secret_keys(bad);
    ASSERT_THAT(r, FailsWith(ErrorCode::key_invalid)) << bad;
    EXPECT_EQ(r.error().detail.find(good), std::string::npos);
    EXPECT_EQ(r.error().detail.find(short_key), std::string::npos);
  }
}

TEST(SecretKeys, AddingVersionsKeepsTheOldOnesAndMakesTheNewActive) {
  DeterministicRandom random(13);
  SecretKeys keys = generate_secret_keys(random);
  const SecretString old_lookup = keys.lookup[0].key;
  add_secret_key_versions(keys, random);
  ASSERT_EQ(keys.lookup.size(), 2u);
  ASSERT_EQ(keys.cipher.size(), 2u);
  EXPECT_EQ(keys.lookup[0].key, old_lookup);
  EXPECT_EQ(keys.lookup[1].version, 2u);
  EXPECT_EQ(keys.cipher[1].version, 2u);
  auto parsed = parse_secret_keys(secret_keys_json(keys));
  ASSERT_THAT(parsed, Succeeds());
  auto ring = LookupKeyRing::create(std::move(parsed->lookup));
  ASSERT_TRUE(ring.has_value());
  EXPECT_EQ(ring->active_version(), 2u);
  EXPECT_EQ(ring->versions().size(), 2u);
}

TEST(SigningKeys, GenerateMakesOneActiveAndOneNextKey) {
  DeterministicRandom random(1);
  ManualClock clock;
  for (const Algorithm alg : kAllAlgorithms) {
    auto keys = generate_signing_keys(alg, random, clock);
    ASSERT_THAT(keys, Succeeds());
    ASSERT_EQ(keys->entries().size(), 2u);
    EXPECT_EQ(keys->entries()[0].state, KeyState::active);
    EXPECT_EQ(keys->entries()[1].state, KeyState::next);
    EXPECT_NE(keys->entries()[0].key.kid(), keys->entries()[1].key.kid());
    EXPECT_EQ(keys->active()->algorithm(), alg);
  }
}

TEST(SigningKeys, FileRoundTripKeepsStatesAndPrivateHalves) {
  TempDir dir;
  DeterministicRandom random(2);
  ManualClock clock;
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_TRUE(keys.has_value());
  ASSERT_TRUE(write_private_file(dir / "s.jwks", keys->private_jwks()));
  auto loaded = load_signing_keys(dir / "s.jwks");
  ASSERT_THAT(loaded, Succeeds());
  EXPECT_EQ(loaded->active()->kid(), keys->active()->kid());
  EXPECT_TRUE(loaded->active()->has_private());
}

TEST(SigningKeys, LoadRefusesAPublicSetOrOneWithoutActiveKey) {
  TempDir dir;
  DeterministicRandom random(3);
  ManualClock clock;
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  write_text(dir / "public.jwks", keys->public_jwks());
  auto pub = load_signing_keys(dir / "public.jwks");
  ASSERT_THAT(pub, FailsWith(ErrorCode::key_invalid));
  write_text(dir / "garbage.jwks", "{\"keys\": 7}");
  EXPECT_FALSE(load_signing_keys(dir / "garbage.jwks").has_value());
  EXPECT_FALSE(load_signing_keys(dir / "missing.jwks").has_value());
}

TEST(SigningKeys, RotatePromotesNextRetiresActiveAndAddsANewNext) {
  DeterministicRandom random(4);
  ManualClock clock;
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  const std::string old_active = keys->entries()[0].key.kid();
  const std::string old_next = keys->entries()[1].key.kid();
  clock.advance(std::chrono::hours{1});
  auto r = rotate_signing_keys(*keys, Algorithm::EdDSA, random, clock, std::chrono::minutes{15});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->retired_kid, old_active);
  EXPECT_EQ(r->active_kid, old_next);
  EXPECT_EQ(r->keys.active()->kid(), old_next);
  ASSERT_EQ(r->keys.entries().size(), 3u);
  for (const auto& e : r->keys.entries()) {
    if (e.key.kid() == old_active) {
      EXPECT_EQ(e.state, KeyState::retired);
      EXPECT_EQ(e.retired_at, clock.now());
    } else if (e.key.kid() == r->next_kid) {
      EXPECT_EQ(e.state, KeyState::next);
    }
  }
  EXPECT_EQ(r->pruned, 0u);
}

TEST(SigningKeys, RotatePrunesRetiredKeysOnceTheirTokensExpired) {
  DeterministicRandom random(5);
  ManualClock clock;
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  auto first =
      rotate_signing_keys(*keys, Algorithm::EdDSA, random, clock, std::chrono::minutes{15});
  ASSERT_TRUE(first.has_value());
  // Within access_ttl + leeway the retired key must stay published.
  clock.advance(std::chrono::minutes{15});
  auto second =
      rotate_signing_keys(first->keys, Algorithm::EdDSA, random, clock, std::chrono::minutes{15});
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->pruned, 0u);
  EXPECT_NE(second->keys.find(first->retired_kid), nullptr);
  clock.advance(kVerifierLeeway);
  auto third =
      rotate_signing_keys(second->keys, Algorithm::EdDSA, random, clock, std::chrono::minutes{15});
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->pruned, 1u);
  EXPECT_EQ(third->keys.find(first->retired_kid), nullptr);
  EXPECT_NE(third->keys.find(second->retired_kid), nullptr);
}

TEST(SigningKeys, RevokeRemovesAKeyAtOnceWhateverItsState) {
  DeterministicRandom random(5);
  ManualClock clock;
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  const std::string active = keys->entries()[0].key.kid();
  const std::string next = keys->entries()[1].key.kid();
  const auto ttl = std::chrono::minutes{15};

  // The active key: rotated out first, then gone; its next key signs.
  auto r = revoke_signing_key(*keys, active, Algorithm::EdDSA, random, clock, ttl);
  ASSERT_THAT(r, Succeeds());
  EXPECT_TRUE(r->rotated);
  EXPECT_EQ(r->active_kid, next);
  EXPECT_EQ(r->keys.find(active), nullptr) << "not even kept as retired";
  ASSERT_NE(r->keys.find(r->next_kid), nullptr);
  EXPECT_EQ(r->keys.entries().size(), 2u);

  // The next key: replaced by a fresh one; the active key stays.
  auto n = revoke_signing_key(r->keys, r->next_kid, Algorithm::EdDSA, random, clock, ttl);
  ASSERT_THAT(n, Succeeds());
  EXPECT_FALSE(n->rotated);
  EXPECT_EQ(n->active_kid, next);
  EXPECT_NE(n->next_kid, r->next_kid);
  EXPECT_EQ(n->keys.find(r->next_kid), nullptr);

  // A retired key: just gone.
  auto rotated = rotate_signing_keys(n->keys, Algorithm::EdDSA, random, clock, ttl);
  ASSERT_THAT(rotated, Succeeds());
  auto gone =
      revoke_signing_key(rotated->keys, rotated->retired_kid, Algorithm::EdDSA, random, clock, ttl);
  ASSERT_THAT(gone, Succeeds());
  EXPECT_EQ(gone->keys.find(rotated->retired_kid), nullptr);
  EXPECT_EQ(gone->active_kid, rotated->active_kid);
  EXPECT_EQ(gone->keys.entries().size(), 2u);

  EXPECT_THAT(revoke_signing_key(*keys, "no-such-kid", Algorithm::EdDSA, random, clock, ttl),
              FailsWith(ErrorCode::key_not_found));
}

TEST(SigningKeys, ListShowsNoKeyMaterial) {
  DeterministicRandom random(6);
  ManualClock clock;
  for (const Algorithm alg : kAllAlgorithms) {
    auto keys = generate_signing_keys(alg, random, clock);
    const std::string list = key_list_json(*keys);
    EXPECT_EQ(list.find("\"d\""), std::string::npos) << list;
    EXPECT_EQ(list.find("\"k\""), std::string::npos) << list;
    EXPECT_EQ(list.find("\"x\""), std::string::npos) << list;
    EXPECT_NE(list.find(keys->active()->kid()), std::string::npos);
    EXPECT_NE(list.find("\"state\":\"next\""), std::string::npos);
  }
}

TEST(ApiKeys, GeneratedKeyHasPrefixAndItsHashParses) {
  DeterministicRandom random(8);
  const ApiKey key = generate_api_key(random);
  EXPECT_TRUE(key.key.reveal().starts_with("tsk_"));
  EXPECT_EQ(key.key.reveal().size(), 4u + 43u);
  EXPECT_EQ(key.hash, sha256(key.key.reveal()));
  const std::string text = key_hash_text(key.hash);
  EXPECT_TRUE(text.starts_with("sha256:"));
  EXPECT_EQ(text.size(), 7u + 64u);
  auto c = build_config({{"api_key_hashes", text}});
  ASSERT_THAT(c, Succeeds());
  EXPECT_EQ(c->server.api_key_hashes.at(0), key.hash);
}

TEST(ApiKeys, KeyFileSkipsCommentsRefusesJunkAndRoundTrips) {
  TempDir dir;
  const std::string h = "sha256:" + std::string(64, '0');
  write_text(dir / "api_keys", "# comment\n\n" + h + "\n");
  auto ok = load_api_keys(dir / "api_keys");
  ASSERT_THAT(ok, Succeeds());
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ(ok->at(0).scopes, server::kAdminScopes);  // a bare hash: full scope, as before
  write_text(dir / "bad", "tsk_secret\n");
  auto bad = load_api_keys(dir / "bad");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().detail.find("tsk_secret"), std::string::npos);
  // A missing file holds no key.
  auto none = load_api_keys(dir / "absent");
  ASSERT_THAT(none, Succeeds());
  EXPECT_TRUE(none->empty());

  ok->push_back({.hash = sha256("k"),
                 .name = "ci",
                 .scopes = static_cast<server::Scopes>(server::Scope::introspect),
                 .created_at = "2026-12-03T00:00:00Z"});
  ASSERT_THAT(write_api_keys(dir / "out", *ok), Succeeds());
  EXPECT_EQ(file_mode(dir / "out"), 0600u);
  auto back = load_api_keys(dir / "out");
  ASSERT_THAT(back, Succeeds());
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(back->at(1).name, "ci");
  EXPECT_EQ(back->at(1).hash, sha256("k"));
  EXPECT_EQ(back->at(1).scopes, static_cast<server::Scopes>(server::Scope::introspect));
  EXPECT_EQ(back->at(1).created_at, "2026-12-03T00:00:00Z");
}

Config dev_config(const TempDir& dir) {
  auto c = build_config({{"data_dir", (dir / "var").string()}});
  if (!c) std::abort();
  return *c;
}

TEST(PrepareServe, DevFirstStartGeneratesKeysAndAnApiKeyStoredOnlyAsItsHashOnRequest) {
  TempDir dir;
  DeterministicRandom random(9);
  ManualClock clock;
  Config c = dev_config(dir);
  auto key = prepare_serve(c, random, clock);
  ASSERT_THAT(key, Succeeds());
  ASSERT_TRUE(key->has_value());
  EXPECT_EQ(file_mode(dir / "var"), 0700u);
  EXPECT_EQ(file_mode(c.signing_keys), 0600u);
  EXPECT_EQ(file_mode(c.secret_keys), 0600u);
  EXPECT_EQ((*key)->hash, sha256((*key)->key.reveal()));
  EXPECT_TRUE(c.server.api_key_hashes.empty());  // served as a scoped entry, revocable
  // Nothing about the API key is written until serve has bound its port.
  EXPECT_FALSE(std::filesystem::exists(c.api_keys_file()));

  ASSERT_THAT(store_new_api_key(c, **key, clock), Succeeds());
  EXPECT_EQ(file_mode(c.api_keys_file()), 0600u);
  const std::string stored = slurp(c.api_keys_file());
  EXPECT_EQ(stored.find((*key)->key.reveal()), std::string::npos);
  EXPECT_NE(stored.find(key_hash_text(sha256((*key)->key.reveal()))), std::string::npos);
  auto entries = load_api_keys(c.api_keys_file());
  ASSERT_THAT(entries, Succeeds());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ(entries->at(0).name, "dev");
  EXPECT_EQ(entries->at(0).scopes, server::kAdminScopes);
  EXPECT_EQ(entries->at(0).created_at, "2023-11-14T22:13:20Z");  // the ManualClock's start

  // A later start reads the hash and prints no key; the keys stay the same.
  const std::string signing = slurp(c.signing_keys);
  Config again = dev_config(dir);
  auto second = prepare_serve(again, random, clock);
  ASSERT_THAT(second, Succeeds());
  EXPECT_FALSE(second->has_value());
  EXPECT_EQ(slurp(c.signing_keys), signing);
}

// Regression: a first start that failed after prepare_serve (the port
// taken) had stored the hash of a key it never showed; every later start
// then found the hash, showed nothing, and nobody had the key.
TEST(PrepareServe, DevFirstStartNotCarriedThroughLeavesTheNextStartToGenerateAKey) {
  TempDir dir;
  DeterministicRandom random(13);
  ManualClock clock;
  Config c = dev_config(dir);
  auto first = prepare_serve(c, random, clock);
  ASSERT_THAT(first, Succeeds());
  ASSERT_TRUE(first->has_value());
  Config again = dev_config(dir);
  auto second = prepare_serve(again, random, clock);
  ASSERT_THAT(second, Succeeds());
  ASSERT_TRUE(second->has_value());
  EXPECT_NE((*second)->key.reveal(), (*first)->key.reveal());
}

TEST(PrepareServe, DevWithConfiguredHashesGeneratesNoApiKey) {
  TempDir dir;
  DeterministicRandom random(10);
  ManualClock clock;
  auto c = build_config(
      {{"data_dir", (dir / "var").string()}, {"api_key_hashes", "sha256:" + std::string(64, 'f')}});
  ASSERT_TRUE(c.has_value());
  auto key = prepare_serve(*c, random, clock);
  ASSERT_THAT(key, Succeeds());
  EXPECT_FALSE(key->has_value());
  EXPECT_FALSE(std::filesystem::exists(c->api_keys_file()));
}

TEST(PrepareServe, ProductionRefusesEachMissingSettingByName) {
  TempDir dir;
  DeterministicRandom random(11);
  ManualClock clock;
  const std::string signing = (dir / "signing.jwks").string();
  const std::string secrets = (dir / "secrets.json").string();
  const std::string hash = "sha256:" + std::string(64, 'e');
  auto refusal = [&](RawSettings raw) {
    raw["mode"] = "production";
    raw["data_dir"] = (dir / "var").string();
    auto c = build_config(raw);
    EXPECT_TRUE(c.has_value());
    auto r = prepare_serve(*c, random, clock);
    EXPECT_FALSE(r.has_value());
    return r ? std::string("(started)") : r.error().detail;
  };
  EXPECT_TRUE(refusal({}).starts_with("signing_keys: "));
  EXPECT_TRUE(refusal({{"signing_keys", signing}}).starts_with("signing_keys: "));  // missing file
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_TRUE(write_private_file(signing, keys->private_jwks()));
  EXPECT_TRUE(refusal({{"signing_keys", signing}}).starts_with("secret_keys: "));
  EXPECT_TRUE(
      refusal({{"signing_keys", signing}, {"secret_keys", secrets}}).starts_with("secret_keys: "));
  ASSERT_TRUE(write_private_file(secrets, secret_keys_json(generate_secret_keys(random))));
  EXPECT_TRUE(refusal({{"signing_keys", signing}, {"secret_keys", secrets}})
                  .starts_with("api_key_hashes: "));
  // Production never generates anything.
  EXPECT_FALSE(std::filesystem::exists(dir / "var"));

  auto c = build_config({{"mode", "production"},
                         {"signing_keys", signing},
                         {"secret_keys", secrets},
                         {"api_key_hashes", hash}});
  ASSERT_TRUE(c.has_value());
  auto ok = prepare_serve(*c, random, clock);
  ASSERT_THAT(ok, Succeeds());
  EXPECT_FALSE(ok->has_value());
}

TEST(PrepareServe, ProductionStartsOnScopedKeysAloneAndRefusesABrokenKeyFile) {
  TempDir dir;
  DeterministicRandom random(15);
  ManualClock clock;
  const std::string signing = (dir / "signing.jwks").string();
  const std::string secrets = (dir / "secrets.json").string();
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_TRUE(write_private_file(signing, keys->private_jwks()));
  ASSERT_TRUE(write_private_file(secrets, secret_keys_json(generate_secret_keys(random))));
  auto c = build_config({{"mode", "production"},
                         {"signing_keys", signing},
                         {"secret_keys", secrets},
                         {"data_dir", (dir / "var").string()}});
  ASSERT_TRUE(c.has_value());
  ASSERT_THAT(
      write_api_keys(c->api_keys_file(),
                     {{.hash = sha256("k"),
                       .name = "svc",
                       .scopes = static_cast<server::Scopes>(server::Scope::sessions_read)}}),
      Succeeds());
  auto ok = prepare_serve(*c, random, clock);
  ASSERT_THAT(ok, Succeeds());
  EXPECT_FALSE(ok->has_value());
  write_text(c->api_keys_file(), "sha256:" + std::string(64, '1') + " name=svc\n");
  auto broken = prepare_serve(*c, random, clock);
  ASSERT_FALSE(broken.has_value());
  EXPECT_EQ(broken.error().code, ErrorCode::config_invalid);
}

TEST(PrepareServe, ProductionRefusesKeyFilesReadableByGroupOrOthers) {
  TempDir dir;
  DeterministicRandom random(14);
  ManualClock clock;
  const auto signing = dir / "signing.jwks";
  const auto secrets = dir / "secrets.json";
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_THAT(write_private_file(signing, keys->private_jwks()), Succeeds());
  ASSERT_THAT(write_private_file(secrets, secret_keys_json(generate_secret_keys(random))),
              Succeeds());
  auto start = [&] {
    auto c = build_config({{"mode", "production"},
                           {"signing_keys", signing.string()},
                           {"secret_keys", secrets.string()},
                           {"api_key_hashes", "sha256:" + std::string(64, 'e')}});
    EXPECT_TRUE(c.has_value());
    return prepare_serve(*c, random, clock);
  };
  ASSERT_EQ(::chmod(signing.c_str(), 0640), 0);
  auto group = start();
  EXPECT_THAT(group, FailsWith(ErrorCode::config_invalid));
  EXPECT_EQ(group.error().detail,
            "signing_keys: \"" + signing.string() +
                "\" is mode 0640; must not be accessible by group or others (chmod 600)");

  ASSERT_EQ(::chmod(signing.c_str(), 0600), 0);
  ASSERT_EQ(::chmod(secrets.c_str(), 0604), 0);
  auto others = start();
  EXPECT_THAT(others, FailsWith(ErrorCode::config_invalid));
  EXPECT_EQ(others.error().detail,
            "secret_keys: \"" + secrets.string() +
                "\" is mode 0604; must not be accessible by group or others (chmod 600)");

  // Writable is as bad as readable: whoever may write signing_keys mints tokens.
  ASSERT_EQ(::chmod(secrets.c_str(), 0620), 0);
  EXPECT_THAT(start(), FailsWith(ErrorCode::config_invalid));
  ASSERT_EQ(::chmod(secrets.c_str(), 0400), 0);
  EXPECT_THAT(start(), Succeeds());
}

TEST(DevBanner, HoldsACurlLineForTheBoundAddress) {
  Config c = *build_config({{"listen", "0.0.0.0:0"}});
  const SecretString key("tsk_KEY");
  const std::string banner = dev_banner(key, c, 41234);
  EXPECT_NE(banner.find("curl -s -X POST http://127.0.0.1:41234/v1/sessions -H 'Authorization: "
                        "Bearer tsk_KEY' -H 'Content-Type: application/json' -d "
                        "'{\"subject\":\"alice\",\"mode\":\"token\"}'"),
            std::string::npos)
      << banner;
  Config v6 = *build_config({{"listen", "[::1]:0"}});
  EXPECT_NE(dev_banner(key, v6, 80).find("http://[::1]:80/"), std::string::npos);
}

TEST(KeyReloader, SwapsInChangedKeysAndKeepsOldOnABadFile) {
  TempDir dir;
  DeterministicRandom random(12);
  ManualClock clock;
  const auto file = dir / "s.jwks";
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_TRUE(write_private_file(file, keys->private_jwks()));
  SharedKeySet shared(*keys);
  KeyReloader reloader(file, shared);
  EXPECT_FALSE(reloader.check());  // unchanged

  auto rotated = rotate_signing_keys(*keys, Algorithm::EdDSA, random, clock, seconds{900});
  ASSERT_TRUE(write_private_file(file, rotated->keys.private_jwks()));
  EXPECT_TRUE(reloader.check());
  EXPECT_EQ(shared.get()->active()->kid(), rotated->active_kid);

  write_text(file, "{ not a key set");
  EXPECT_FALSE(reloader.check());
  EXPECT_EQ(shared.get()->active()->kid(), rotated->active_kid);
  EXPECT_FALSE(reloader.check(true));  // forced (SIGHUP): still bad, still kept
  EXPECT_EQ(shared.get()->active()->kid(), rotated->active_kid);
}

TEST(KeyReloader, AuditsKeyRotatedOnlyWhenTheActiveKeyChanges) {
  TempDir dir;
  DeterministicRandom random(13);
  ManualClock clock;
  const auto file = dir / "s.jwks";
  auto keys = generate_signing_keys(Algorithm::EdDSA, random, clock);
  ASSERT_TRUE(write_private_file(file, keys->private_jwks()));
  SharedKeySet shared(*keys);
  MemoryAuditSink audit;
  KeyReloader reloader(file, shared, &audit, clock);
  EXPECT_TRUE(reloader.check(true));  // SIGHUP on an unchanged file: reloaded, not rotated
  EXPECT_TRUE(audit.lines().empty());

  auto rotated = rotate_signing_keys(*keys, Algorithm::EdDSA, random, clock, seconds{900});
  ASSERT_TRUE(write_private_file(file, rotated->keys.private_jwks()));
  EXPECT_TRUE(reloader.check());
  ASSERT_EQ(audit.lines().size(), 1u);
  const std::string line = audit.lines()[0];
  EXPECT_NE(line.find(R"("event":"key_rotated")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("reason":")" + rotated->active_kid + '"'), std::string::npos) << line;

  write_text(file, "{ not a key set");
  EXPECT_FALSE(reloader.check());
  EXPECT_EQ(audit.lines().size(), 1u);
}

}  // namespace
}  // namespace tessera::cli
