// AccessVerifier and its ports (docs/design.md §5). The epoch and liveness
// fakes stand for answers a real source cannot give on cue (a transient
// failure at a chosen moment); the store-backed liveness check runs on the
// real memory store.
#include "tessera/verify.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "dpop_client.hpp"
#include "result_matchers.hpp"
#include "tessera/encoding.hpp"
#include "tessera/memory_store.hpp"
#include "tessera/random.hpp"

namespace tessera::verify {
namespace {

using std::chrono::seconds;
using tessera::testing::FailsWith;
using tessera::testing::Succeeds;

class FakeEpochs final : public EpochSource {
 public:
  Result<std::uint64_t> current(std::string_view) override {
    ++calls;
    if (transient) return fail(ErrorCode::epoch_unavailable, "redis down");
    return epoch.load();
  }
  std::atomic<std::uint64_t> epoch{0};
  std::atomic<bool> transient{false};
  std::atomic<int> calls{0};
};

class FakeLiveness final : public LivenessCheck {
 public:
  Result<Liveness> check(const LivenessQuery& q) override {
    ++calls;
    last_sid = std::string(q.session_id);
    if (transient) return fail(ErrorCode::liveness_unavailable, "authority down");
    return revoked ? Liveness::revoked : Liveness::live;
  }
  bool revoked = false;
  bool transient = false;
  int calls = 0;
  std::string last_sid;
};

// A key source whose set can be swapped, counting refreshes.
class RotatingKeySource final : public KeySource {
 public:
  explicit RotatingKeySource(KeySet k) : current_(std::make_shared<const KeySet>(std::move(k))) {}
  std::shared_ptr<const KeySet> keys() override { return current_; }
  Result<std::shared_ptr<const KeySet>> refresh_for_unknown_kid() override {
    ++refreshes;
    if (unreachable) return fail(ErrorCode::jwks_unavailable, "authority down");
    if (!next_) return nullptr;
    current_ = next_;
    return current_;
  }
  void publish_on_refresh(KeySet k) { next_ = std::make_shared<const KeySet>(std::move(k)); }
  int refreshes = 0;
  bool unreachable = false;

 private:
  std::shared_ptr<const KeySet> current_;
  std::shared_ptr<const KeySet> next_;
};

struct Fixture {
  Fixture() : key(*Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance())) {
    KeySet pub;
    EXPECT_TRUE(pub.add(key, KeyState::active));
    keys = std::make_unique<StaticKeySource>(std::move(pub));
  }
  std::string mint(std::optional<std::uint64_t> sv = 0,
                   std::optional<std::string> sid = std::string("01JSESSION"),
                   seconds ttl = seconds{900}, const Key* with = nullptr,
                   std::optional<std::string> cnf_jkt = std::nullopt) {
    JwtClaims c;
    c.cnf_jkt = std::move(cnf_jkt);
    c.iss = "https://auth.example";
    c.sub = "alice";
    c.aud = {"api"};
    c.iat = clock.now();
    c.exp = clock.now() + ttl;
    c.jti = std::to_string(++serial);
    c.sid = std::move(sid);
    c.sv = sv;
    return *sign_jwt(with ? *with : key, c);
  }
  VerifierOptions options(std::size_t cache = 1000) {
    return {.issuer = "https://auth.example", .audiences = {"api"}, .cache_entries = cache};
  }

  ManualClock clock;
  Key key;
  std::unique_ptr<StaticKeySource> keys;
  FakeEpochs epochs;
  FakeLiveness liveness;
  int serial = 0;
};

TEST(AccessVerifier, AcceptsAValidTokenAndReturnsItsClaims) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  auto r = v.verify(f.mint());
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->claims().sub, "alice");
  EXPECT_EQ(r->kid(), "k1");
  EXPECT_FALSE(r->from_cache);
  EXPECT_EQ(f.liveness.last_sid, "01JSESSION");
}

TEST(AccessVerifier, TokenChecksComeBeforeEpochAndLiveness) {
  Fixture f;
  f.epochs.epoch = 5;
  f.liveness.revoked = true;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  const auto t = f.mint(0);
  f.clock.advance(seconds{900 + 31});
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::token_expired));
  EXPECT_EQ(f.epochs.calls, 0);
  EXPECT_EQ(f.liveness.calls, 0);
  EXPECT_THAT(v.verify(std::string(9000, 'a')), FailsWith(ErrorCode::token_too_large));
  EXPECT_THAT(v.verify("garbage"), FailsWith(ErrorCode::invalid_token));
}

TEST(AccessVerifier, AnOlderEpochIsStaleAndEpochComesBeforeLiveness) {
  Fixture f;
  f.liveness.revoked = true;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  const auto t = f.mint(0);
  f.epochs.epoch = 1;
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::epoch_stale));
  EXPECT_EQ(f.liveness.calls, 0);
  f.epochs.epoch = 0;
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::session_revoked));
}

TEST(AccessVerifier, TransientSourcesFailClosedWithTheirOwnCodes) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  const auto t = f.mint();
  f.epochs.transient = true;
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::epoch_unavailable));
  f.epochs.transient = false;
  f.liveness.transient = true;
  const auto r = v.verify(t);
  ASSERT_THAT(r, FailsWith(ErrorCode::liveness_unavailable));
  EXPECT_EQ(to_http(r.error()).status, 503u);
}

TEST(AccessVerifier, TokensWithoutSvSkipL1AndWithoutSidSkipL2) {
  Fixture f;
  f.epochs.transient = true;
  f.liveness.transient = true;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  auto r = v.verify(f.mint(std::nullopt, std::nullopt));
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(f.epochs.calls, 0);
  EXPECT_EQ(f.liveness.calls, 0);
}

TEST(AccessVerifier, CacheHitsSkipTheSignatureButStillRunEpochAndLiveness) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  const auto t = f.mint(0);
  const auto first = v.verify(t);
  ASSERT_THAT(first, Succeeds());
  ASSERT_FALSE(first->from_cache);
  auto again = v.verify(t);
  ASSERT_THAT(again, Succeeds());
  EXPECT_TRUE(again->from_cache);
  EXPECT_EQ(again->claims().sub, "alice");
  EXPECT_EQ(again->token.get(), first->token.get()) << "a hit hands back the cached claims";
  f.epochs.epoch = 1;
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::epoch_stale));
  f.epochs.epoch = 0;
  f.liveness.revoked = true;
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::session_revoked));
}

TEST(AccessVerifier, ACachedEntryEndsAtTheTokensExp) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock);
  const auto t = f.mint(0, "s", seconds{60});
  ASSERT_TRUE(v.verify(t));
  f.clock.advance(seconds{60});
  // Past exp but inside the leeway: verified again from scratch, not served
  // from the cache (an entry never outlives exp).
  auto r = v.verify(t);
  ASSERT_THAT(r, Succeeds());
  EXPECT_FALSE(r->from_cache);
  f.clock.advance(seconds{31});
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::token_expired));
}

TEST(AccessVerifier, TheCacheIsBounded) {
  Fixture f;
  AccessVerifier v(f.options(16), *f.keys, f.clock);
  const auto first = f.mint();
  ASSERT_TRUE(v.verify(first));
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(v.verify(f.mint()));
  auto r = v.verify(first);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->from_cache) << "an entry survived 300 others in a 16-entry cache";
}

TEST(AccessVerifier, CacheOffVerifiesEveryTime) {
  Fixture f;
  AccessVerifier v(f.options(0), *f.keys, f.clock);
  const auto t = f.mint();
  ASSERT_TRUE(v.verify(t));
  EXPECT_FALSE(v.verify(t)->from_cache);
}

TEST(AccessVerifier, AnUnknownKidRefreshesTheKeySourceOnce) {
  Fixture f;
  const Key k2 = *Key::generate(Algorithm::EdDSA, "k2", CsprngRandom::instance());
  KeySet only_k1;
  ASSERT_TRUE(only_k1.add(f.key, KeyState::active));
  RotatingKeySource source(std::move(only_k1));
  AccessVerifier v(f.options(), source, f.clock);
  const auto t = f.mint(0, "s", seconds{900}, &k2);
  EXPECT_THAT(v.verify(t), FailsWith(ErrorCode::key_not_found));
  EXPECT_EQ(source.refreshes, 1);
  KeySet both;
  ASSERT_TRUE(both.add(f.key, KeyState::retired, f.clock.now()));
  ASSERT_TRUE(both.add(k2, KeyState::active));
  source.publish_on_refresh(std::move(both));
  auto r = v.verify(t);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->kid(), "k2");
  EXPECT_EQ(source.refreshes, 2);
  ASSERT_TRUE(v.verify(f.mint()));  // the old key still verifies
}

TEST(AccessVerifier, AnUnknownKidTheKeySourceCannotLookUpIsJwksUnavailable) {
  Fixture f;
  const Key k2 = *Key::generate(Algorithm::EdDSA, "k2", CsprngRandom::instance());
  KeySet only_k1;
  ASSERT_TRUE(only_k1.add(f.key, KeyState::active));
  RotatingKeySource source(std::move(only_k1));
  source.unreachable = true;
  AccessVerifier v(f.options(), source, f.clock);
  const auto r = v.verify(f.mint(0, "s", seconds{900}, &k2));
  EXPECT_THAT(r, FailsWith(ErrorCode::jwks_unavailable));
  EXPECT_EQ(source.refreshes, 1);
  EXPECT_THAT(v.verify(f.mint()), Succeeds()) << "a known kid needs no look";
  EXPECT_EQ(source.refreshes, 1);
}

TEST(AccessVerifier, ForgedOrMisdirectedTokensAreRefused) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock);
  // Signed by a key with the right kid but other material.
  const Key impostor = *Key::generate(Algorithm::EdDSA, "k1", CsprngRandom::instance());
  EXPECT_THAT(v.verify(f.mint(0, "s", seconds{900}, &impostor)),
              FailsWith(ErrorCode::signature_invalid));
  AccessVerifier other_aud({.issuer = "https://auth.example", .audiences = {"billing"}}, *f.keys,
                           f.clock);
  EXPECT_THAT(other_aud.verify(f.mint()), FailsWith(ErrorCode::audience_mismatch));
  AccessVerifier other_iss({.issuer = "https://evil.example", .audiences = {"api"}}, *f.keys,
                           f.clock);
  EXPECT_THAT(other_iss.verify(f.mint()), FailsWith(ErrorCode::issuer_mismatch));
}

TEST(AccessVerifier, Rs256TokensVerifyAgainstThePublishedRsaKeyAndNoOther) {
  Fixture f;
  const Key rs = *Key::generate(Algorithm::RS256, "rs", CsprngRandom::instance());
  KeySet authority;
  ASSERT_TRUE(authority.add(f.key, KeyState::retired, f.clock.now()));
  ASSERT_TRUE(authority.add(rs, KeyState::active));
  // What a resource service holds: the authority's public JWKS, parsed.
  auto published = KeySet::from_jwks(authority.public_jwks());
  ASSERT_THAT(published, Succeeds());
  ASSERT_NE(published->find("rs"), nullptr);
  EXPECT_FALSE(published->find("rs")->has_private());
  StaticKeySource source(std::move(*published));
  AccessVerifier v(f.options(), source, f.clock);
  const auto t = f.mint(0, "s", seconds{900}, &rs);
  auto r = v.verify(t);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->kid(), "rs");
  EXPECT_TRUE(v.verify(t)->from_cache);
  // The same claims under another header, signed by `signer`.
  const std::string payload = t.substr(t.find('.') + 1, t.rfind('.') - t.find('.') - 1);
  auto reheader = [&](const Key& signer, std::string_view header) {
    const std::string input = base64url_encode(header) + "." + payload;
    return input + "." + base64url_encode(*signer.sign(input));
  };
  EXPECT_THAT(v.verify(reheader(rs, R"({"alg":"RS256","kid":"k1","typ":"at+jwt"})")),
              FailsWith(ErrorCode::algorithm_mismatch));
  EXPECT_THAT(v.verify(reheader(f.key, R"({"alg":"EdDSA","kid":"rs","typ":"at+jwt"})")),
              FailsWith(ErrorCode::algorithm_mismatch));
  const Key impostor = *Key::generate(Algorithm::RS256, "rs", CsprngRandom::instance());
  EXPECT_THAT(v.verify(reheader(impostor, R"({"alg":"RS256","kid":"rs","typ":"at+jwt"})")),
              FailsWith(ErrorCode::signature_invalid));
}

// ---- DPoP-bound tokens (RFC 9449 §7) -----------------------------------------

constexpr std::string_view kResource = "https://api.example/hello";

TEST(AccessVerifier, ABoundTokenNeedsAProofByItsKeyForThisRequestAndThisToken) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock, &f.epochs, &f.liveness);
  const auto client = tessera::testing::DpopClient::make();
  const std::string token = f.mint(0, std::string("01JSESSION"), seconds{900}, nullptr, client.jkt);
  const auto now = f.clock.now();

  // As a bearer (no proof), or with a proof that is not for this request.
  EXPECT_THAT(v.verify(token), FailsWith(ErrorCode::dpop_proof_invalid));
  const DpopPresented none{.method = "GET", .url = kResource};
  EXPECT_THAT(v.verify(token, &none), FailsWith(ErrorCode::dpop_proof_invalid));
  const std::string other_token =
      f.mint(0, std::string("01JSESSION"), seconds{900}, nullptr, client.jkt);
  for (const std::string& bad : {client.proof("GET", kResource, now),  // no ath
                                 client.proof("GET", kResource, now, other_token),
                                 client.proof("POST", kResource, now, token),
                                 client.proof("GET", "https://api.example/other", now, token)}) {
    const DpopPresented p{.proof = bad, .method = "GET", .url = kResource};
    EXPECT_THAT(v.verify(token, &p), FailsWith(ErrorCode::dpop_proof_invalid));
  }
  EXPECT_EQ(f.liveness.calls, 0) << "a refused proof ends the checks before L2";

  const std::string good = client.proof("GET", kResource, now, token);
  const DpopPresented p{.proof = good, .method = "GET", .url = kResource};
  auto r = v.verify(token, &p);
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(r->claims().cnf_jkt, client.jkt);

  // A cache hit skips the token's signature, never the proof: the same
  // proof again is a replay, a fresh one passes.
  EXPECT_THAT(v.verify(token, &p), FailsWith(ErrorCode::dpop_proof_invalid));
  const std::string fresh = client.proof("GET", kResource, now, token);
  const DpopPresented q{.proof = fresh, .method = "GET", .url = kResource};
  auto hit = v.verify(token, &q);
  ASSERT_THAT(hit, Succeeds());
  EXPECT_TRUE(hit->from_cache);

  // A valid proof by another key: the token is in the wrong hands.
  const auto thief = tessera::testing::DpopClient::make(Algorithm::EdDSA);
  const std::string stolen = thief.proof("GET", kResource, now, token);
  const DpopPresented t{.proof = stolen, .method = "GET", .url = kResource};
  EXPECT_THAT(v.verify(token, &t), FailsWith(ErrorCode::dpop_key_mismatch));
}

TEST(AccessVerifier, AResourceNonceCountsAndSoDoesThePreviousOne) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock);
  const auto client = tessera::testing::DpopClient::make();
  const std::string token = f.mint(0, std::string("01JSESSION"), seconds{900}, nullptr, client.jkt);
  const auto now = f.clock.now();
  for (auto [given, ok] : {std::pair{"n2", true}, std::pair{"n1", true}, std::pair{"n0", false}}) {
    const std::string proof = client.proof("GET", kResource, now, token, given);
    const DpopPresented p{
        .proof = proof, .method = "GET", .url = kResource, .nonce = "n2", .previous_nonce = "n1"};
    if (ok) {
      EXPECT_THAT(v.verify(token, &p), Succeeds()) << given;
    } else {
      EXPECT_THAT(v.verify(token, &p), FailsWith(ErrorCode::use_dpop_nonce)) << given;
    }
  }
}

TEST(AccessVerifier, AnUnboundTokenIgnoresTheProof) {
  Fixture f;
  AccessVerifier v(f.options(), *f.keys, f.clock);
  const DpopPresented p{.proof = "not.a.proof", .method = "GET", .url = kResource};
  EXPECT_THAT(v.verify(f.mint(), &p), Succeeds());
}

TEST(ParseAuthorization, BearerAndDpopSchemesInAnyCase) {
  auto b = parse_authorization("Bearer abc.def.ghi");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->token, "abc.def.ghi");
  EXPECT_FALSE(b->dpop_scheme);
  auto d = parse_authorization("dpop abc");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->token, "abc");
  EXPECT_TRUE(d->dpop_scheme);
  for (std::string_view bad : {"", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "DPoPabc"})
    EXPECT_FALSE(parse_authorization(bad)) << bad;
}

TEST(HttpMapping, ProofProblemsAre401WithADpopChallenge) {
  for (auto code : {ErrorCode::dpop_proof_invalid, ErrorCode::dpop_key_mismatch}) {
    const auto r = to_http({code, ""});
    EXPECT_EQ(r.status, 401u);
    EXPECT_TRUE(r.www_authenticate.starts_with("DPoP error=\"invalid_dpop_proof\", algs=\""))
        << r.www_authenticate;
  }
  EXPECT_TRUE(to_http({ErrorCode::use_dpop_nonce, ""})
                  .www_authenticate.starts_with("DPoP error=\"use_dpop_nonce\""));
}

TEST(HttpMapping, TokenProblemsAre401WithABearerChallengeTransientsAre503) {
  const auto expired = to_http({ErrorCode::token_expired, ""});
  EXPECT_EQ(expired.status, 401u);
  EXPECT_NE(expired.www_authenticate.find("token_expired"), std::string::npos);
  EXPECT_EQ(to_http({ErrorCode::epoch_stale, ""}).status, 401u);
  EXPECT_EQ(to_http({ErrorCode::epoch_unavailable, ""}).status, 503u);
  EXPECT_EQ(to_http({ErrorCode::liveness_unavailable, ""}).www_authenticate, "");
  const auto no_keys = to_http({ErrorCode::jwks_unavailable, ""});
  EXPECT_EQ(no_keys.status, 503u);
  EXPECT_EQ(no_keys.www_authenticate, "");
}

TEST(CachedEpochSource, AnswersFromMemoryForTheTtlThenAsksAgain) {
  ManualClock clock;
  FakeEpochs inner;
  CachedEpochSource cache(inner, clock, std::chrono::milliseconds{500});
  EXPECT_EQ(*cache.current("alice"), 0u);
  inner.epoch = 3;
  EXPECT_EQ(*cache.current("alice"), 0u);
  EXPECT_EQ(inner.calls, 1);
  clock.advance(std::chrono::milliseconds{500});
  EXPECT_EQ(*cache.current("alice"), 3u);
  EXPECT_EQ(inner.calls, 2);
}

TEST(CachedEpochSource, InvalidateDropsASubjectAndTheGlobalEpochDropsAll) {
  ManualClock clock;
  FakeEpochs inner;
  CachedEpochSource cache(inner, clock, std::chrono::seconds{60});
  (void)cache.current("alice");
  (void)cache.current("bob");
  inner.epoch = 1;
  cache.invalidate("alice");
  EXPECT_EQ(*cache.current("alice"), 1u);
  EXPECT_EQ(*cache.current("bob"), 0u);
  cache.invalidate("");
  EXPECT_EQ(*cache.current("bob"), 1u);
}

TEST(CachedEpochSource, TransientFailuresAreNotCached) {
  ManualClock clock;
  FakeEpochs inner;
  CachedEpochSource cache(inner, clock, std::chrono::seconds{60});
  inner.transient = true;
  EXPECT_THAT(cache.current("alice"), FailsWith(ErrorCode::epoch_unavailable));
  inner.transient = false;
  inner.epoch = 2;
  EXPECT_EQ(*cache.current("alice"), 2u);
}

TEST(CachedEpochSource, IsBounded) {
  ManualClock clock;
  FakeEpochs inner;
  CachedEpochSource cache(inner, clock, std::chrono::seconds{60}, 10);
  for (int i = 0; i < 100; ++i) {
    (void)cache.current("user" + std::to_string(i));
    clock.advance(std::chrono::milliseconds{1});
  }
  const int before = inner.calls;
  (void)cache.current("user0");  // long evicted
  EXPECT_EQ(inner.calls, before + 1);
}

TEST(StoreLivenessCheck, LiveRevokedAndUnknownSessions) {
  ManualClock clock;
  auto store = make_memory_store();
  Session s;
  s.id = "01JLIVE";
  s.subject = "alice";
  s.family_id = s.id;
  s.created_at = s.last_seen_at = clock.now();
  s.expires_at = clock.now() + seconds{60};
  LookupKey k{.version = 1};
  ASSERT_TRUE(store->create(s, TokenKind::session, k, 10, clock.now(), std::nullopt));
  StoreLivenessCheck check(*store, clock);
  EXPECT_EQ(*check.check({.session_id = "01JLIVE"}), Liveness::live);
  EXPECT_EQ(*check.check({.session_id = "01JNOPE"}), Liveness::revoked);
  clock.advance(seconds{60});
  EXPECT_EQ(*check.check({.session_id = "01JLIVE"}), Liveness::revoked);
}

}  // namespace
}  // namespace tessera::verify
