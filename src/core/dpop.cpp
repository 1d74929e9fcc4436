#include "tessera/dpop.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "jose_json.hpp"
#include "jwk_internal.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/jwk.hpp"

namespace tessera {

namespace json = boost::json;

namespace {

constexpr std::string_view kDpopTyp = "dpop+jwt";

std::unexpected<Error> invalid(std::string detail) {
  return fail(ErrorCode::dpop_proof_invalid, std::move(detail));
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s.size(), '\0');
  std::transform(s.begin(), s.end(), out.begin(), ascii_lower);
  return out;
}

std::optional<UnixSeconds> numeric_date(const json::value& v) {
  if (v.is_int64()) return UnixSeconds{std::chrono::seconds{v.get_int64()}};
  if (v.is_uint64()) {
    if (v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return UnixSeconds{std::chrono::seconds{static_cast<std::int64_t>(v.get_uint64())}};
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18) return std::nullopt;
    return UnixSeconds{std::chrono::seconds{static_cast<std::int64_t>(std::floor(d))}};
  }
  return std::nullopt;
}

// A string member, or nullptr when absent; `bad` is set when present but
// not a string.
const json::string* string_member(const json::object& o, std::string_view name, bool& bad) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return nullptr;
  if (!v->is_string()) bad = true;
  return v->if_string();
}

// The replay cache's key: the first 128 bits of SHA-256(jkt ‖ 0 ‖ jti), so
// an entry has a fixed size whatever the jti, and one client's jti cannot
// collide with (or block) another client's.
struct ReplayKey {
  std::uint64_t hi = 0, lo = 0;
  friend bool operator==(const ReplayKey&, const ReplayKey&) = default;
};
struct ReplayKeyHash {
  std::size_t operator()(const ReplayKey& k) const noexcept {
    return static_cast<std::size_t>(k.hi ^ (k.lo * 0x9E3779B97F4A7C15ull));
  }
};

ReplayKey replay_key(std::string_view jkt, std::string_view jti) {
  std::string input;
  input.reserve(jkt.size() + 1 + jti.size());
  input.append(jkt);
  input.push_back('\0');
  input.append(jti);
  const Sha256Digest d = sha256(input);
  ReplayKey k;
  std::memcpy(&k.hi, d.data(), sizeof k.hi);
  std::memcpy(&k.lo, d.data() + sizeof k.hi, sizeof k.lo);
  return k;
}

// A client key as a proof's header names it, with what step 3 found.
struct ClientKey {
  Key key;
  std::string jkt;
};

// The key cache: headers that passed step 3 and a signature check, by their
// exact base64url text, oldest out first.
struct KeyCache {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const ClientKey>> by_header;
  std::deque<std::string> order;

  std::shared_ptr<const ClientKey> find(std::string_view header) {
    std::lock_guard lock(mu);
    auto it = by_header.find(std::string(header));
    return it == by_header.end() ? nullptr : it->second;
  }
  void put(std::string_view header, std::shared_ptr<const ClientKey> key, std::size_t capacity) {
    std::lock_guard lock(mu);
    if (by_header.contains(std::string(header))) return;
    while (order.size() >= capacity) {
      by_header.erase(order.front());
      order.pop_front();
    }
    order.emplace_back(header);
    by_header.emplace(std::string(header), std::move(key));
  }
};

// Step 3 of verify: the header of a proof, made into its client key.
Result<std::shared_ptr<const ClientKey>> parse_header(std::string_view header_b64) {
  std::string header_text;
  if (!base64url_decode_into(header_b64, header_text))
    return invalid("DPoP header is not base64url");
  unsigned char header_buf[2048];
  json::monotonic_resource header_mr(header_buf, sizeof header_buf);
  auto header = detail::parse_json_object(header_text, ErrorCode::dpop_proof_invalid, "DPoP header",
                                          &header_mr);
  if (!header) return std::unexpected(header.error());
  if (header->contains("crit")) return invalid("DPoP header has crit parameters");
  const json::value* typ = header->if_contains("typ");
  if (typ == nullptr || !typ->is_string() || typ->get_string() != kDpopTyp)
    return invalid("DPoP header typ is not \"dpop+jwt\"");
  const json::value* alg_v = header->if_contains("alg");
  if (alg_v == nullptr || !alg_v->is_string()) return invalid("DPoP header lacks alg");
  // "Ed25519" is RFC 9864's fully-specified name for EdDSA over Ed25519,
  // which newer clients (npm's dpop) send; it means the same key and
  // signature here, the only EdDSA curve accepted.
  const std::string_view alg_name = alg_v->get_string();
  const std::optional<Algorithm> alg =
      alg_name == "Ed25519" ? std::optional(Algorithm::EdDSA) : algorithm_from_string(alg_name);
  if (!alg || *alg == Algorithm::HS256)
    return invalid("DPoP header alg is not ES256, EdDSA (Ed25519) or RS256");
  const json::value* jwk_v = header->if_contains("jwk");
  if (jwk_v == nullptr || !jwk_v->is_object()) return invalid("DPoP header lacks a jwk object");
  auto key = detail::public_key_from_jwk_object(jwk_v->get_object());
  if (!key) return invalid("DPoP header jwk is refused: " + key.error().detail);
  if (key->algorithm() != *alg) return invalid("DPoP header jwk does not fit its alg");

  auto jkt = key->thumbprint();
  if (!jkt) return fail(ErrorCode::internal, "no thumbprint for an asymmetric key");
  return std::make_shared<const ClientKey>(ClientKey{std::move(*key), std::move(*jkt)});
}

}  // namespace

// The replay cache: every accepted proof's key until the proof could no
// longer pass the iat check (iat + window: at most 2 × window after it was
// accepted), bounded by replay_capacity.
struct DpopVerifier::State {
  KeyCache keys;
  std::mutex mu;
  std::multimap<UnixSeconds, ReplayKey> by_expiry;
  std::unordered_map<ReplayKey, std::multimap<UnixSeconds, ReplayKey>::iterator, ReplayKeyHash>
      by_key;

  void erase_first() {
    by_key.erase(by_expiry.begin()->second);
    by_expiry.erase(by_expiry.begin());
  }

  // False if `key` is held (a replay); otherwise records it.
  bool insert(const ReplayKey& key, UnixSeconds expires, UnixSeconds now, std::size_t capacity) {
    std::lock_guard lock(mu);
    while (!by_expiry.empty() && by_expiry.begin()->first < now) erase_first();
    if (by_key.contains(key)) return false;
    while (by_expiry.size() >= capacity) erase_first();
    auto it = by_expiry.emplace(expires, key);
    by_key.emplace(key, it);
    return true;
  }
};

DpopVerifier::DpopVerifier(DpopOptions options)
    : options_(options), state_(std::make_unique<State>()) {
  options_.iat_window = std::max(options_.iat_window, std::chrono::seconds{0});
  options_.replay_capacity = std::max<std::size_t>(options_.replay_capacity, 1);
}

DpopVerifier::~DpopVerifier() = default;

std::size_t DpopVerifier::key_cache_size() const {
  std::lock_guard lock(state_->keys.mu);
  return state_->keys.order.size();
}

std::size_t DpopVerifier::replay_cache_size() const {
  std::lock_guard lock(state_->mu);
  return state_->by_expiry.size();
}

Result<DpopProof> DpopVerifier::verify(std::string_view proof, const DpopCheck& check,
                                       UnixSeconds now) {
  // 1. Size, before anything else.
  if (proof.empty()) return invalid("no DPoP proof");
  if (proof.size() > kMaxDpopProofBytes)
    return invalid(fmt::format("DPoP proof is over {} bytes", kMaxDpopProofBytes));

  // 2. Compact JWS: exactly three parts.
  const auto dot1 = proof.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : proof.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || proof.find('.', dot2 + 1) != std::string_view::npos)
    return invalid("DPoP proof is not a compact JWS of three parts");
  const std::string_view header_b64 = proof.substr(0, dot1);
  const std::string_view payload_b64 = proof.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view sig_b64 = proof.substr(dot2 + 1);
  if (header_b64.empty() || payload_b64.empty() || sig_b64.empty())
    return invalid("DPoP proof has an empty part");

  // 3. Header: typ, alg, jwk — or a header seen before, from the cache.
  const bool caching = options_.key_cache_entries > 0;
  std::shared_ptr<const ClientKey> client = caching ? state_->keys.find(header_b64) : nullptr;
  const bool cached = client != nullptr;
  if (!cached) {
    auto parsed = parse_header(header_b64);
    if (!parsed) return std::unexpected(parsed.error());
    client = std::move(*parsed);
  }
  const Key* key = &client->key;

  // 4. The signature, under the header's key.
  std::string signature;
  if (!base64url_decode_into(sig_b64, signature)) return invalid("DPoP signature is not base64url");
  if (!key->verify(proof.substr(0, dot2), as_bytes(signature)))
    return invalid("DPoP signature does not verify");
  if (caching && !cached) state_->keys.put(header_b64, client, options_.key_cache_entries);

  // 5. Claims.
  std::string payload_text;
  if (!base64url_decode_into(payload_b64, payload_text))
    return invalid("DPoP payload is not base64url");
  unsigned char payload_buf[4096];
  json::monotonic_resource payload_mr(payload_buf, sizeof payload_buf);
  auto claims = detail::parse_json_object(payload_text, ErrorCode::dpop_proof_invalid,
                                          "DPoP payload", &payload_mr);
  if (!claims) return std::unexpected(claims.error());
  bool bad_type = false;
  const json::string* jti = string_member(*claims, "jti", bad_type);
  const json::string* htm = string_member(*claims, "htm", bad_type);
  const json::string* htu = string_member(*claims, "htu", bad_type);
  const json::string* ath = string_member(*claims, "ath", bad_type);
  const json::string* nonce = string_member(*claims, "nonce", bad_type);
  if (bad_type) return invalid("DPoP claim jti, htm, htu, ath or nonce is not a string");
  if (jti == nullptr || htm == nullptr || htu == nullptr)
    return invalid("DPoP proof lacks jti, htm or htu");
  if (jti->empty() || jti->size() > kMaxDpopJtiBytes)
    return invalid(fmt::format("DPoP jti is empty or over {} bytes", kMaxDpopJtiBytes));
  const json::value* iat_v = claims->if_contains("iat");
  if (iat_v == nullptr) return invalid("DPoP proof lacks iat");
  const std::optional<UnixSeconds> iat = numeric_date(*iat_v);
  if (!iat) return invalid("DPoP iat is not a number");

  // 6. htm, exactly.
  if (std::string_view(*htm) != check.method)
    return invalid("DPoP htm does not match the request method");

  // 7. htu, both sides normalised.
  const std::optional<std::string> want_htu = normalize_htu(check.url);
  if (!want_htu)
    return fail(ErrorCode::invalid_request, "the request URL is not an absolute http(s) URL");
  const std::optional<std::string> got_htu = normalize_htu(*htu);
  if (!got_htu || *got_htu != *want_htu) return invalid("DPoP htu does not match the request URL");

  // 8. iat within the window, both ways (this also makes eviction from the
  // replay cache safe once an entry's proof is older than the window).
  const auto window = options_.iat_window;
  if (*iat < now - window) return invalid("DPoP proof is too old (iat)");
  if (*iat > now + window) return invalid("DPoP proof is issued in the future (iat)");

  // 9. ath, with an access token.
  if (check.access_token) {
    if (ath == nullptr) return invalid("DPoP proof lacks ath");
    if (!constant_time_equal(std::string_view(*ath), dpop_ath(*check.access_token)))
      return invalid("DPoP ath does not match the access token");
  }

  // 10. The key the token is bound to.
  const std::string& jkt = client->jkt;
  if (check.expected_jkt && !constant_time_equal(jkt, *check.expected_jkt))
    return fail(ErrorCode::dpop_key_mismatch,
                "DPoP proof is signed by another key than the one the token is bound to");

  // 11. The server's nonce.
  if (check.nonce) {
    if (nonce == nullptr) return fail(ErrorCode::use_dpop_nonce, "DPoP proof lacks the nonce");
    const std::string_view given(*nonce);
    if (!constant_time_equal(given, *check.nonce) &&
        !(check.previous_nonce && constant_time_equal(given, *check.previous_nonce)))
      return fail(ErrorCode::use_dpop_nonce, "DPoP nonce is not the current one");
  }

  // 12. Replay: last, so that only proofs that passed everything else take
  // room in the cache.
  if (!state_->insert(replay_key(jkt, *jti), *iat + window, now, options_.replay_capacity))
    return invalid("DPoP proof was used before (jti)");

  DpopProof out;
  out.jkt = jkt;
  out.jti = std::string(*jti);
  out.iat = *iat;
  out.htm = std::string(*htm);
  out.htu = std::string(*htu);
  out.has_nonce = nonce != nullptr;
  return out;
}

std::optional<std::string> normalize_htu(std::string_view url) {
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return std::nullopt;
  }
  if (const auto hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  if (const auto q = url.find('?'); q != std::string_view::npos) url = url.substr(0, q);
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const std::string_view rest = url.substr(sep + 3);
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host, port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty() || host == "[]") return std::nullopt;

  std::string out = scheme + "://" + lower(host);
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    unsigned value = 0;
    for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
    if (value == 0 || value > 65535) return std::nullopt;
    const unsigned default_port = scheme == "https" ? 443 : 80;
    if (value != default_port) out += fmt::format(":{}", value);
  }
  out.append(path);
  return out;
}

std::string dpop_ath(std::string_view access_token) {
  const Sha256Digest digest = sha256(access_token);
  return base64url_encode(digest);
}

}  // namespace tessera
