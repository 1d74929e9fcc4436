#include "tessera/jwt.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "jose_json.hpp"
#include "tessera/encoding.hpp"

namespace tessera {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 10> kRegistered = {"iss", "sub", "aud", "exp", "nbf",
                                                          "iat", "jti", "sid", "sv",  "cnf"};

bool is_registered(std::string_view name) {
  for (auto r : kRegistered) {
    if (r == name) return true;
  }
  return false;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// The parts of a JOSE header that verification uses.
struct Header {
  std::optional<Algorithm> alg;
  bool alg_present = false;
  std::string alg_name;  // for the error detail when not allowed
  std::string kid;
  bool kid_present = false;
  std::string typ;  // lower case, without "application/"; "" when absent
};

Result<Header> parse_header(std::string_view segment) {
  std::string text;
  if (!base64url_decode_into(segment, text))
    return fail(ErrorCode::invalid_token, "header is not base64url");
  unsigned char buf[1024];
  json::monotonic_resource mr(buf, sizeof buf);
  auto obj = detail::parse_json_object(text, ErrorCode::invalid_token, "header", &mr);
  if (!obj) return std::unexpected(obj.error());
  Header h;
  if (obj->contains("crit"))
    return fail(ErrorCode::invalid_token,
                "header has crit parameters, none of which are supported");
  if (const auto* alg = obj->if_contains("alg")) {
    if (!alg->is_string()) return fail(ErrorCode::invalid_token, "header alg is not a string");
    h.alg_present = true;
    h.alg = algorithm_from_string(alg->get_string());
    if (!h.alg)
      h.alg_name = std::string(
          alg->get_string().subview(0, std::min<std::size_t>(alg->get_string().size(), 32)));
  }
  if (const auto* kid = obj->if_contains("kid")) {
    if (!kid->is_string()) return fail(ErrorCode::invalid_token, "header kid is not a string");
    h.kid_present = true;
    h.kid = kid->get_string();
  }
  if (const auto* typ = obj->if_contains("typ")) {
    if (!typ->is_string()) return fail(ErrorCode::invalid_token, "header typ is not a string");
    std::string_view t = typ->get_string();
    if (t.size() > 64) return fail(ErrorCode::invalid_token, "header typ is too long");
    if (t.size() > 12 && ascii_iequal(t.substr(0, 12), "application/")) t.remove_prefix(12);
    h.typ.resize(t.size());
    std::transform(t.begin(), t.end(), h.typ.begin(), [](unsigned char ch) {
      return static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    });
  }
  return h;
}

// Header parsing is a pure function of the header segment, and the tokens a
// service sees come from a handful of keys: the last parse is kept per thread.
const Result<Header>& cached_header(std::string_view segment) {
  struct Slot {
    std::string segment;
    Result<Header> header = fail(ErrorCode::internal);
  };
  thread_local Slot slot;
  if (slot.segment != segment) {
    slot.header = parse_header(segment);
    slot.segment.assign(segment);
  }
  return slot.header;
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

// One pass over the members (a token's payload is small, and a lookup per
// claim would scan it again each time).
Result<JwtClaims> read_claims(const json::object& o, bool require_sub) {
  JwtClaims c;
  bool have_sub = false, have_exp = false, have_iat = false;
  json::object extra;
  auto bad = [](std::string_view name, std::string_view what) {
    return fail(ErrorCode::invalid_token, fmt::format("claim {} {}", name, what));
  };
  for (const auto& kv : o) {
    const std::string_view k = kv.key();
    const json::value& v = kv.value();
    if (k == "iss" || k == "sub" || k == "jti" || k == "sid") {
      if (!v.is_string()) return bad(k, "is not a string");
      const std::string_view text = v.get_string();
      if (k == "iss") {
        c.iss = text;
      } else if (k == "sub") {
        c.sub = text;
        have_sub = true;
      } else if (k == "jti") {
        c.jti = text;
      } else {
        c.sid = std::string(text);
      }
    } else if (k == "aud") {
      c.aud.clear();
      if (v.is_string()) {
        c.aud.emplace_back(v.get_string());
      } else if (v.is_array()) {
        for (const auto& a : v.get_array()) {
          if (!a.is_string()) return bad(k, "holds a non-string");
          c.aud.emplace_back(a.get_string());
        }
      } else {
        return bad(k, "is neither a string nor an array");
      }
    } else if (k == "exp" || k == "iat" || k == "nbf") {
      auto d = numeric_date(v);
      if (!d) return bad(k, "is not a NumericDate");
      if (k == "exp") {
        c.exp = *d;
        have_exp = true;
      } else if (k == "iat") {
        c.iat = *d;
        have_iat = true;
      } else {
        c.nbf = *d;
      }
    } else if (k == "sv") {
      if (v.is_uint64()) {
        c.sv = v.get_uint64();
      } else if (v.is_int64() && v.get_int64() >= 0) {
        c.sv = static_cast<std::uint64_t>(v.get_int64());
      } else {
        return bad(k, "is not a non-negative integer");
      }
    } else if (k == "cnf") {
      // Only the jkt confirmation is known here; any other method (x5t#S256,
      // jwk, ...) names a binding nobody could check: refused, not ignored.
      const json::object* cnf = v.if_object();
      const json::value* jkt = cnf != nullptr ? cnf->if_contains("jkt") : nullptr;
      if (jkt == nullptr || !jkt->is_string() || jkt->get_string().empty() || cnf->size() != 1)
        return bad(k, "is not {\"jkt\": <thumbprint>}");
      c.cnf_jkt = std::string(jkt->get_string());
    } else {
      extra.emplace(k, v);
    }
  }
  if (!have_sub && require_sub) return bad("sub", "is missing");
  if (!have_exp) return bad("exp", "is missing");
  if (!have_iat) return bad("iat", "is missing");
  if (!extra.empty()) c.custom = json::serialize(extra);
  return c;
}

}  // namespace

Result<std::string> sign_jwt(const Key& key, const JwtClaims& claims) {
  if (!key.has_private()) return fail(ErrorCode::key_invalid, "key has no private half");
  json::object payload;
  if (!claims.custom.empty()) {
    if (claims.custom.size() > kMaxCustomClaimsBytes) {
      return fail(ErrorCode::invalid_request,
                  fmt::format("custom claims exceed {} bytes", kMaxCustomClaimsBytes));
    }
    auto custom =
        detail::parse_json_object(claims.custom, ErrorCode::invalid_request, "custom claims");
    if (!custom) return std::unexpected(custom.error());
    for (const auto& kv : *custom) {
      if (is_registered(kv.key())) {
        return fail(ErrorCode::invalid_request,
                    fmt::format("custom claim '{}' shadows a registered claim",
                                std::string_view(kv.key())));
      }
    }
    payload = std::move(*custom);
  }
  if (!claims.iss.empty()) payload["iss"] = claims.iss;
  payload["sub"] = claims.sub;
  if (claims.aud.size() == 1) {
    payload["aud"] = claims.aud.front();
  } else if (!claims.aud.empty()) {
    json::array aud;
    for (const auto& a : claims.aud) aud.emplace_back(a);
    payload["aud"] = std::move(aud);
  }
  payload["exp"] = claims.exp.time_since_epoch().count();
  payload["iat"] = claims.iat.time_since_epoch().count();
  if (claims.nbf) payload["nbf"] = claims.nbf->time_since_epoch().count();
  if (!claims.jti.empty()) payload["jti"] = claims.jti;
  if (claims.sid) payload["sid"] = *claims.sid;
  if (claims.sv) payload["sv"] = *claims.sv;
  if (claims.cnf_jkt) payload["cnf"] = json::object{{"jkt", *claims.cnf_jkt}};

  return sign_jws(key, "at+jwt", json::serialize(payload));
}

Result<std::string> sign_jws(const Key& key, std::string_view typ, std::string_view payload) {
  if (!key.has_private()) return fail(ErrorCode::key_invalid, "key has no private half");
  json::object header;
  header["alg"] = to_string(key.algorithm());
  header["kid"] = key.kid();
  header["typ"] = typ;

  std::string token = base64url_encode(json::serialize(header));
  token += '.';
  token += base64url_encode(payload);
  auto sig = key.sign(token);
  if (!sig) return std::unexpected(sig.error());
  token += '.';
  token += base64url_encode(*sig);
  if (token.size() > kMaxTokenBytes) {
    return fail(ErrorCode::invalid_request,
                fmt::format("token would exceed {} bytes", kMaxTokenBytes));
  }
  return token;
}

Result<VerifiedJwt> verify_jwt(std::string_view token, const KeySet& keys,
                               const VerifyOptions& options, UnixSeconds now) {
  if (token.size() > options.max_token_bytes) {
    return fail(ErrorCode::token_too_large,
                fmt::format("token exceeds {} bytes", options.max_token_bytes));
  }
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return fail(ErrorCode::invalid_token, "token is not three dot-separated parts");
  }
  // An empty signature is structurally fine (alg "none" tokens have one):
  // it fails later with the code that says why.
  if (d1 == 0 || d2 == d1 + 1)
    return fail(ErrorCode::invalid_token, "token has an empty header or payload");
  const std::string_view header_seg = token.substr(0, d1);
  const std::string_view payload_seg = token.substr(d1 + 1, d2 - d1 - 1);
  const std::string_view sig_seg = token.substr(d2 + 1);

  const Result<Header>& header = cached_header(header_seg);
  if (!header) return std::unexpected(header.error());
  if (!header->alg_present) return fail(ErrorCode::invalid_token, "header lacks alg");
  if (!header->alg)
    return fail(ErrorCode::algorithm_not_allowed,
                fmt::format("algorithm '{}' is not allowed", header->alg_name));
  if (!header->kid_present) return fail(ErrorCode::key_not_found, "header lacks kid");
  const KeySet::Entry* entry = keys.find_entry(header->kid);
  if (entry == nullptr) return fail(ErrorCode::key_not_found, "no key with that kid");
  const Key* key = &entry->key;
  if (key->algorithm() != *header->alg) {
    return fail(ErrorCode::algorithm_mismatch,
                fmt::format("token says {} but the key is pinned to {}", to_string(*header->alg),
                            to_string(key->algorithm())));
  }
  thread_local std::string scratch;
  if (!base64url_decode_into(sig_seg, scratch))
    return fail(ErrorCode::invalid_token, "signature is not base64url");
  if (!key->verify(token.substr(0, d2), as_bytes(scratch)))
    return fail(ErrorCode::signature_invalid, "signature does not verify");
  if (options.require_at_jwt_typ && header->typ != options.typ)
    return fail(ErrorCode::token_type_invalid, fmt::format("typ is not {}", options.typ));

  if (!base64url_decode_into(payload_seg, scratch))
    return fail(ErrorCode::invalid_token, "payload is not base64url");
  unsigned char buf[4096];
  json::monotonic_resource mr(buf, sizeof buf);
  auto payload = detail::parse_json_object_fast(scratch, ErrorCode::invalid_token, "payload", mr);
  if (!payload) return std::unexpected(payload.error());
  auto claims = read_claims(*payload, options.require_sub);
  if (!claims) return std::unexpected(claims.error());

  if (!options.issuer.empty() && claims->iss != options.issuer)
    return fail(ErrorCode::issuer_mismatch, "iss is not the expected issuer");
  if (!options.audiences.empty()) {
    bool match = false;
    for (const auto& a : claims->aud) {
      for (const auto& want : options.audiences) match = match || a == want;
    }
    if (!match)
      return fail(ErrorCode::audience_mismatch, "aud names none of the expected audiences");
  }
  if (now >= claims->exp + options.leeway)
    return fail(ErrorCode::token_expired, "token has expired");
  if (claims->nbf && now + options.leeway < *claims->nbf)
    return fail(ErrorCode::token_not_yet_valid, "token is not valid yet (nbf)");
  if (now + options.leeway < claims->iat)
    return fail(ErrorCode::token_not_yet_valid, "token was issued in the future (iat)");
  if (entry->retired_at && claims->iat > *entry->retired_at + kRetiredKeyGrace)
    return fail(ErrorCode::key_retired, "token was signed after its key was retired");
  return VerifiedJwt{*header->alg, header->kid, std::move(*claims)};
}

std::optional<std::string> peek_kid(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto header = parse_header(token.substr(0, dot));
  if (!header || !header->kid_present) return std::nullopt;
  return std::move(header->kid);
}

}  // namespace tessera
