#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "tessera/digest.hpp"
#include "tessera/verify.hpp"

namespace tessera::verify {

// ---- CachedEpochSource ------------------------------------------------------

CachedEpochSource::CachedEpochSource(EpochSource& inner, const Clock& clock,
                                     std::chrono::milliseconds ttl, std::size_t max_entries)
    : inner_(inner),
      clock_(clock),
      ttl_(ttl),
      max_entries_(std::max<std::size_t>(1, max_entries)) {}

Result<std::uint64_t> CachedEpochSource::current(std::string_view subject) {
  const UnixMillis now = clock_.now_ms();
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(std::string(subject));
    if (it != entries_.end() && now - it->second.fetched < ttl_) return it->second.epoch;
    generation = generation_;
  }
  auto fresh = inner_.current(subject);
  if (!fresh) return fresh;  // transient: not cached, the next call asks again
  std::lock_guard lock(mu_);
  // A bump published while we fetched may have invalidated everything; this
  // answer might predate it, so it is returned but not written back.
  if (generation != generation_) return fresh;
  if (entries_.size() >= max_entries_ && !entries_.contains(std::string(subject))) {
    // Drop the stalest entry. O(n) but only when full, and bounded by n.
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.fetched < oldest->second.fetched) oldest = it;
    }
    entries_.erase(oldest);
  }
  entries_.insert_or_assign(std::string(subject), Entry{*fresh, now});
  return fresh;
}

void CachedEpochSource::invalidate(std::string_view subject) {
  std::lock_guard lock(mu_);
  if (subject.empty()) {  // the global epoch moved: every subject's effective epoch did
    entries_.clear();
    ++generation_;
    return;
  }
  entries_.erase(std::string(subject));
  ++generation_;
}

void CachedEpochSource::invalidate_all() {
  std::lock_guard lock(mu_);
  entries_.clear();
  ++generation_;
}

// ---- StoreLivenessCheck -----------------------------------------------------

Result<Liveness> StoreLivenessCheck::check(const LivenessQuery& query) {
  auto s = store_.find(query.session_id);
  if (!s) return fail(ErrorCode::liveness_unavailable, s.error().detail);
  if (!*s || !(*s)->live_at(clock_.now())) return Liveness::revoked;
  return Liveness::live;
}

// ---- Verified-token cache ---------------------------------------------------

namespace {

using Digest = Sha256Digest;

struct DigestHash {
  std::size_t operator()(const Digest& d) const noexcept {
    std::size_t h;
    std::memcpy(&h, d.data(), sizeof h);
    return h;
  }
};

}  // namespace

// Sharded so that verifiers on many threads rarely meet on one lock.
struct AccessVerifier::Cache {
  static constexpr std::size_t kShards = 16;
  using Entry = std::shared_ptr<const VerifiedToken>;
  struct Shard {
    std::mutex mu;
    std::unordered_map<Digest, Entry, DigestHash> map;
  };
  explicit Cache(std::size_t entries) : per_shard(std::max<std::size_t>(1, entries / kShards)) {}

  Entry find(const Digest& d, UnixSeconds now) {
    Shard& s = shards[d[31] % kShards];
    std::lock_guard lock(s.mu);
    auto it = s.map.find(d);
    if (it == s.map.end()) return nullptr;
    if (now >= it->second->claims.exp) {  // an entry ends at the token's exp
      s.map.erase(it);
      return nullptr;
    }
    return it->second;
  }

  void put(const Digest& d, Entry entry, UnixSeconds now) {
    Shard& s = shards[d[31] % kShards];
    std::lock_guard lock(s.mu);
    if (s.map.size() >= per_shard) {
      std::erase_if(s.map, [&](const auto& kv) { return now >= kv.second->claims.exp; });
      if (s.map.size() >= per_shard) s.map.erase(s.map.begin());
    }
    s.map.insert_or_assign(d, std::move(entry));
  }

  std::size_t per_shard;
  std::array<Shard, kShards> shards;
};

// ---- AccessVerifier ---------------------------------------------------------

AccessVerifier::AccessVerifier(VerifierOptions options, KeySource& keys, const Clock& clock,
                               EpochSource* epochs, LivenessCheck* liveness)
    : options_(std::move(options)),
      jwt_options_{.issuer = options_.issuer,
                   .audiences = options_.audiences,
                   .leeway = options_.leeway,
                   .max_token_bytes = options_.max_token_bytes,
                   .require_at_jwt_typ = true},
      keys_(keys),
      clock_(clock),
      epochs_(epochs),
      liveness_(liveness),
      cache_(options_.cache_entries > 0 ? std::make_unique<Cache>(options_.cache_entries)
                                        : nullptr),
      dpop_(options_.dpop) {}

AccessVerifier::~AccessVerifier() = default;

Result<VerifiedAccess> AccessVerifier::verify(std::string_view token) {
  return verify(token, nullptr);
}

Result<VerifiedAccess> AccessVerifier::verify(std::string_view token, const DpopPresented* dpop) {
  const UnixSeconds now = clock_.now();
  if (token.size() > options_.max_token_bytes) {
    return fail(ErrorCode::token_too_large, "token exceeds the size limit");
  }
  VerifiedAccess out;
  std::optional<Digest> digest;
  if (cache_) {
    digest = sha256(token);
    if (digest) out.token = cache_->find(*digest, now);
  }
  if (out.token) {
    out.from_cache = true;
  } else {
    auto keys = keys_.keys();
    auto v = verify_jwt(token, *keys, jwt_options_, now);
    if (!v && v.error().code == ErrorCode::key_not_found && peek_kid(token)) {
      // A kid we do not hold: the authority may have rotated. The source
      // decides whether to look again (at most once per its interval); one
      // it cannot reach is jwks_unavailable, not a verdict on the token.
      // A token naming no kid at all is refused as it is: no new key helps.
      auto fresh = keys_.refresh_for_unknown_kid();
      if (!fresh) return std::unexpected(fresh.error());
      if (*fresh) v = verify_jwt(token, **fresh, jwt_options_, now);
    }
    if (!v) return std::unexpected(v.error());
    out.token = std::make_shared<const VerifiedToken>(
        VerifiedToken{.claims = std::move(v->claims), .kid = std::move(v->kid)});
    if (digest) cache_->put(*digest, out.token, now);
  }
  const JwtClaims& claims = out.claims();

  // Possession of the key a bound token names, for this request.
  if (claims.cnf_jkt && options_.require_dpop_proof) {
    if (dpop == nullptr || !dpop->proof)
      return fail(ErrorCode::dpop_proof_invalid,
                  "this access token is bound to a DPoP key: it needs the DPoP scheme and a proof");
    const DpopCheck check{.method = dpop->method,
                          .url = dpop->url,
                          .access_token = token,
                          .nonce = dpop->nonce,
                          .previous_nonce = dpop->previous_nonce,
                          .expected_jkt = *claims.cnf_jkt};
    if (auto proof = dpop_.verify(*dpop->proof, check, now); !proof)
      return std::unexpected(proof.error());
  }

  // L1: the subject's epoch.
  if (epochs_ != nullptr && claims.sv) {
    auto current = epochs_->current(claims.sub);
    if (!current) {
      return fail(ErrorCode::epoch_unavailable, "epoch unavailable: " + current.error().detail);
    }
    if (*claims.sv < *current) {
      return fail(ErrorCode::epoch_stale, "the subject's sessions were ended after this token");
    }
  }
  // L2: the session's liveness.
  if (liveness_ != nullptr && claims.sid) {
    auto live = liveness_->check({.session_id = *claims.sid, .token = token});
    if (!live) {
      return fail(ErrorCode::liveness_unavailable, "liveness unavailable: " + live.error().detail);
    }
    if (*live == Liveness::revoked) return fail(ErrorCode::session_revoked, "session is not live");
  }
  return out;
}

std::optional<PresentedToken> parse_authorization(std::string_view header) {
  const auto space = header.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = header.substr(0, space);
  std::string_view token = header.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty() || token.find(' ') != std::string_view::npos) return std::nullopt;
  auto is = [&](std::string_view name) {
    return scheme.size() == name.size() &&
           std::equal(scheme.begin(), scheme.end(), name.begin(), [](char a, char b) {
             return (a >= 'A' && a <= 'Z' ? a + 32 : a) == (b >= 'A' && b <= 'Z' ? b + 32 : b);
           });
  };
  if (is("bearer")) return PresentedToken{token, false};
  if (is("dpop")) return PresentedToken{token, true};
  return std::nullopt;
}

HttpRejection to_http(const Error& error) {
  const unsigned status = http_status(error.code);
  if (status != 401) return {status, ""};
  if (error.code == ErrorCode::dpop_proof_invalid || error.code == ErrorCode::dpop_key_mismatch ||
      error.code == ErrorCode::use_dpop_nonce) {
    return {401, fmt::format("DPoP error=\"{}\", algs=\"{}\", error_description=\"{}\"",
                             error.code == ErrorCode::use_dpop_nonce ? "use_dpop_nonce"
                                                                     : "invalid_dpop_proof",
                             kDpopAlgorithms, to_string(error.code))};
  }
  // RFC 6750 §3: error="invalid_token" is the standard's word for every
  // token problem; the description is our stable code.
  return {401, fmt::format("Bearer error=\"invalid_token\", error_description=\"{}\"",
                           to_string(error.code))};
}

}  // namespace tessera::verify
