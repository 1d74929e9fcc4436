// Embedding the engine: sessions on a SQLite file, keys kept on disk with
// the same files the `tessera` command uses, so sessions survive a restart.
//
//   embedded_sessions DIR
//
// issues a cookie session and a token session, restarts the engine from the
// files in DIR, validates the cookie session and renews the token session
// with the reloaded keys, verifies the access token the way a resource
// service would, revokes everything, and checks the revocation holds. Exits
// 0 when every step behaved, 1 (naming the step) otherwise.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <tessera/key_files.hpp>
#include <tessera/session_service.hpp>
#include <tessera/sqlite_store.hpp>
#include <tessera/verify.hpp>
#include <tessera/version.hpp>

namespace fs = std::filesystem;
using namespace tessera;

namespace {

[[noreturn]] void die(std::string_view step, const Error& e) {
  std::cerr << "embedded_sessions: " << step << ": " << e << '\n';
  std::exit(1);
}

template <class T>
T need(Result<T> r, std::string_view step) {
  if (!r) die(step, r.error());
  return std::move(*r);
}

// The engine and what it stands on, loaded from (or first written to) DIR.
struct Engine {
  explicit Engine(const fs::path& dir) {
    const fs::path secrets = dir / "secrets.json";
    const fs::path signing = dir / "signing.jwks";
    if (!fs::exists(secrets)) {
      auto fresh = generate_secret_keys(CsprngRandom::instance());
      if (auto st = write_private_file(secrets, secret_keys_json(fresh)); !st)
        die("write secrets", st.error());
    }
    if (!fs::exists(signing)) {
      auto fresh = need(generate_signing_keys(Algorithm::EdDSA, CsprngRandom::instance(), clock),
                        "generate signing keys");
      if (auto st = write_private_file(signing, fresh.private_jwks()); !st)
        die("write signing keys", st.error());
    }
    auto material = need(load_secret_keys(secrets), "load secrets");
    lookup = std::make_unique<LookupKeyRing>(
        need(LookupKeyRing::create(std::move(material.lookup)), "lookup keys"));
    cipher = std::make_unique<TokenCipher>(
        need(TokenCipher::create(std::move(material.cipher), CsprngRandom::instance()), "cipher"));
    keys = std::make_unique<SharedKeySet>(need(load_signing_keys(signing), "load signing keys"));
    store = need(open_sqlite_store(dir / "sessions.db"), "open SQLite");
    SessionPolicy policy;
    policy.issuer = "https://auth.example";
    policy.audience = {"api"};
    service = need(SessionService::create(
                       {*store, *lookup, *cipher, *keys, clock, CsprngRandom::instance()}, policy),
                   "create service");
  }

  SystemClock clock;
  std::unique_ptr<LookupKeyRing> lookup;
  std::unique_ptr<TokenCipher> cipher;
  std::unique_ptr<SharedKeySet> keys;
  std::unique_ptr<SessionStore> store;
  std::unique_ptr<SessionService> service;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: embedded_sessions DIR\n";
    return 2;
  }
  const fs::path dir = argv[1];
  std::cout << "tessera " << kVersion << '\n';

  std::string cookie_token, refresh_token;
  {
    Engine engine(dir);
    IssueRequest cookie{.subject = "alice", .mode = SessionMode::cookie};
    auto c = need(engine.service->issue(cookie), "issue cookie session");
    cookie_token = std::string(c.session_token.reveal());
    IssueRequest token{.subject = "alice", .mode = SessionMode::token};
    auto t = need(engine.service->issue(token), "issue token session");
    refresh_token = std::string(t.tokens->refresh_token.reveal());
    std::cout << "issued " << c.session.id << " (cookie) and " << t.session.id << " (token)\n";
  }  // the engine goes: a restart

  Engine engine(dir);
  auto s = need(engine.service->validate(cookie_token), "validate after restart");
  std::cout << "validated " << s.id << " after a restart\n";
  auto renewed = need(engine.service->renew(refresh_token), "renew after restart");
  std::cout << "renewed " << renewed.session.id << " to generation " << renewed.session.generation
            << '\n';

  // What a resource service does with the access token: public keys only.
  KeySet public_keys = need(KeySet::from_jwks(engine.keys->get()->public_jwks()), "public JWKS");
  verify::StaticKeySource key_source(std::move(public_keys));
  verify::AccessVerifier verifier({.issuer = "https://auth.example", .audiences = {"api"}},
                                  key_source, engine.clock);
  auto access = need(verifier.verify(renewed.tokens.access_token.reveal()), "verify access token");
  std::cout << "access token verified for " << access.claims().sub << '\n';

  auto revoked = need(engine.service->revoke_all("alice"), "revoke all");
  std::cout << "revoked " << revoked << " sessions\n";
  if (engine.service->validate(cookie_token)) {
    std::cerr << "embedded_sessions: a revoked session still validates\n";
    return 1;
  }
  std::cout << "ok\n";
  return 0;
}
