// Sessions bound to a DPoP key (docs/bound-sessions.md), run through
// SessionService against every store adapter: the binding survives the
// store, every renewal proves the key, and a proof by another key ends the
// family.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "dpop_client.hpp"
#include "harness.hpp"
#include "result_matchers.hpp"
#include "tessera/jwt.hpp"

namespace tessera::testing {
namespace {

using ::tessera::testing::FailsWith;
using ::tessera::testing::Succeeds;

constexpr std::string_view kUrl = "https://auth.example/v1/tokens/refresh";

IssuedSession issue_bound(Harness& h, const DpopClient& client) {
  IssueRequest r{.subject = "dora", .mode = SessionMode::token};
  r.dpop_jkt = client.jkt;
  auto out = h.service->issue(r);
  if (!out) throw std::runtime_error("issue: " + out.error().detail);
  return std::move(*out);
}

JwtClaims access_claims(Harness& h, const TokenPair& pair) {
  VerifyOptions o{.issuer = h.policy.issuer, .audiences = h.policy.audience};
  auto v = verify_jwt(pair.access_token.reveal(), *h.keys.get(), o, h.clock.now());
  if (!v) throw std::runtime_error("verify: " + v.error().detail);
  return v->claims;
}

TEST_P(StoreConformance, ABoundSessionKeepsItsKeyAndItsAccessTokensNameIt) {
  Harness h(GetParam());
  const DpopClient client = DpopClient::make();
  const IssuedSession issued = issue_bound(h, client);
  EXPECT_EQ(issued.session.bound_jkt, client.jkt);
  EXPECT_EQ(access_claims(h, *issued.tokens).cnf_jkt, client.jkt);
  auto stored = h.store.find(issued.session.id);
  ASSERT_THAT(stored, Succeeds());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->bound_jkt, client.jkt);

  // An unbound session stays unbound, and its tokens carry no cnf.
  const IssuedSession plain = h.issue("erin", SessionMode::token);
  EXPECT_EQ(plain.session.bound_jkt, "");
  EXPECT_EQ(access_claims(h, *plain.tokens).cnf_jkt, std::nullopt);
}

TEST_P(StoreConformance, IssueRefusesADpopJktForCookiesOrThatIsNoThumbprint) {
  Harness h(GetParam());
  const std::string jkt = DpopClient::make().jkt;
  std::string wrong_tail = jkt;
  wrong_tail.back() = wrong_tail.back() == 'B' ? 'C' : 'B';  // sets the 2 padding bits
  for (auto [mode, value] :
       {std::pair{SessionMode::cookie, jkt}, std::pair{SessionMode::token, jkt.substr(1)},
        std::pair{SessionMode::token, jkt + "A"}, std::pair{SessionMode::token, wrong_tail},
        std::pair{SessionMode::token, std::string(43, '=')}}) {
    IssueRequest r{.subject = "dora", .mode = mode};
    r.dpop_jkt = value;
    EXPECT_THAT(h.service->issue(r), FailsWith(ErrorCode::invalid_request)) << value;
  }
}

TEST_P(StoreConformance, ABoundRenewalNeedsAValidProofByTheBoundKey) {
  Harness h(GetParam());
  const DpopClient client = DpopClient::make();
  const IssuedSession issued = issue_bound(h, client);
  const std::string refresh(issued.tokens->refresh_token.reveal());
  const auto now = h.clock.now();

  // No proof, a proof for another URL, method or time: refused, nothing revoked.
  EXPECT_THAT(h.service->renew(refresh), FailsWith(ErrorCode::dpop_proof_invalid));
  const DpopPresented none{.method = "POST", .url = kUrl};
  EXPECT_THAT(h.service->renew(refresh, &none), FailsWith(ErrorCode::dpop_proof_invalid));
  for (const std::string& bad :
       {client.proof("POST", "https://auth.example/oauth2/token", now),
        client.proof("GET", kUrl, now), client.proof("POST", kUrl, now - std::chrono::hours{1}),
        std::string("not.a.proof")}) {
    const DpopPresented p{.proof = bad, .method = "POST", .url = kUrl};
    EXPECT_THAT(h.service->renew(refresh, &p), FailsWith(ErrorCode::dpop_proof_invalid));
  }
  auto stored = h.store.find(issued.session.id);
  ASSERT_THAT(stored, Succeeds());
  EXPECT_FALSE((*stored)->revoked());

  // The key's proof renews; the new access token names the key.
  const std::string good = client.proof("POST", kUrl, now);
  const DpopPresented p{.proof = good, .method = "POST", .url = kUrl};
  auto renewed = h.service->renew(refresh, &p);
  ASSERT_THAT(renewed, Succeeds());
  EXPECT_EQ(renewed->session.generation, 1u);
  EXPECT_EQ(access_claims(h, renewed->tokens).cnf_jkt, client.jkt);

  // The same proof again (its jti is spent): refused before the grace rule.
  EXPECT_THAT(h.service->renew(refresh, &p), FailsWith(ErrorCode::dpop_proof_invalid));
  // A fresh proof inside the grace window: the same successor.
  const std::string again = client.proof("POST", kUrl, now);
  const DpopPresented q{.proof = again, .method = "POST", .url = kUrl};
  auto retried = h.service->renew(refresh, &q);
  ASSERT_THAT(retried, Succeeds());
  EXPECT_EQ(retried->tokens.refresh_token.reveal(), renewed->tokens.refresh_token.reveal());
}

TEST_P(StoreConformance, AProofByAnotherKeyRevokesTheFamily) {
  Harness h(GetParam());
  const DpopClient owner = DpopClient::make();
  const DpopClient thief = DpopClient::make(Algorithm::EdDSA);
  const IssuedSession issued = issue_bound(h, owner);
  const std::string refresh(issued.tokens->refresh_token.reveal());

  const std::string stolen = thief.proof("POST", kUrl, h.clock.now());
  const DpopPresented p{.proof = stolen, .method = "POST", .url = kUrl};
  EXPECT_THAT(h.service->renew(refresh, &p), FailsWith(ErrorCode::dpop_key_mismatch));
  auto stored = h.store.find(issued.session.id);
  ASSERT_THAT(stored, Succeeds());
  ASSERT_TRUE((*stored)->revoked());
  EXPECT_EQ((*stored)->revoke_reason, RevokeReason::dpop_key_mismatch);
  const auto lines = h.audit.lines();
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("dpop_key_mismatch") != std::string::npos;
  }));

  // The owner's next renewal finds the session ended.
  const std::string mine = owner.proof("POST", kUrl, h.clock.now());
  const DpopPresented q{.proof = mine, .method = "POST", .url = kUrl};
  EXPECT_THAT(h.service->renew(refresh, &q), FailsWith(ErrorCode::session_revoked));
}

TEST_P(StoreConformance, AnUnboundRenewalIgnoresAProof) {
  Harness h(GetParam());
  const IssuedSession plain = h.issue("erin", SessionMode::token);
  const std::string proof = DpopClient::make().proof("POST", kUrl, h.clock.now());
  const DpopPresented p{.proof = proof, .method = "POST", .url = kUrl};
  auto renewed = h.service->renew(plain.tokens->refresh_token.reveal(), &p);
  ASSERT_THAT(renewed, Succeeds());
  EXPECT_EQ(renewed->session.bound_jkt, "");
  EXPECT_EQ(access_claims(h, renewed->tokens).cnf_jkt, std::nullopt);
}

TEST_P(StoreConformance, WithServerNoncesARenewalNeedsTheCurrentOrThePreviousOne) {
  SessionPolicy policy;
  policy.dpop_nonce = true;
  Harness h(GetParam(), policy);
  EXPECT_EQ(
      SessionService::create(
          {h.store, h.lookup, h.cipher, h.keys, h.clock, CsprngRandom::instance()}, SessionPolicy{})
          .value()
          ->current_dpop_nonce(),
      std::nullopt)
      << "off by default";
  const DpopClient client = DpopClient::make();
  const IssuedSession issued = issue_bound(h, client);
  std::string refresh(issued.tokens->refresh_token.reveal());
  auto renew = [&](std::optional<std::string_view> nonce) {
    const std::string proof = client.proof("POST", kUrl, h.clock.now(), std::nullopt, nonce);
    const DpopPresented p{.proof = proof, .method = "POST", .url = kUrl};
    return h.service->renew(refresh, &p);
  };

  EXPECT_THAT(renew(std::nullopt), FailsWith(ErrorCode::use_dpop_nonce));
  EXPECT_THAT(renew("not-the-nonce"), FailsWith(ErrorCode::use_dpop_nonce));
  const std::string nonce = *h.service->current_dpop_nonce();
  EXPECT_EQ(nonce.size(), 32u);
  auto r = renew(nonce);
  ASSERT_THAT(r, Succeeds());
  refresh = std::string(r->tokens.refresh_token.reveal());

  // One window later the nonce has moved, and the old one still counts.
  h.clock.advance(policy.dpop.iat_window);
  EXPECT_NE(*h.service->current_dpop_nonce(), nonce);
  r = renew(nonce);
  ASSERT_THAT(r, Succeeds());
  refresh = std::string(r->tokens.refresh_token.reveal());
  // Two windows later it is stale: the client is told to use the new one.
  h.clock.advance(policy.dpop.iat_window);
  EXPECT_THAT(renew(nonce), FailsWith(ErrorCode::use_dpop_nonce));
  EXPECT_THAT(renew(*h.service->current_dpop_nonce()), Succeeds());

  // Another lookup key (another deployment) makes other nonces.
  const LookupKeyRing other = make_ring({{1, 'z'}});
  EXPECT_NE(*h.with_ring(other)->current_dpop_nonce(), *h.service->current_dpop_nonce());
}

}  // namespace
}  // namespace tessera::testing
