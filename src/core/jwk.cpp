#include "tessera/jwk.hpp"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

#include <boost/json.hpp>

#include "jose_json.hpp"
#include "jwk_internal.hpp"
#include "openssl.hpp"
#include "tessera/digest.hpp"
#include "tessera/encoding.hpp"
#include "tessera/secret.hpp"

namespace tessera {

namespace json = boost::json;

std::string_view to_string(Algorithm alg) noexcept {
  switch (alg) {
    case Algorithm::EdDSA:
      return "EdDSA";
    case Algorithm::ES256:
      return "ES256";
    case Algorithm::HS256:
      return "HS256";
    case Algorithm::RS256:
      return "RS256";
  }
  return "";
}

std::optional<Algorithm> algorithm_from_string(std::string_view name) noexcept {
  for (Algorithm alg : kAllAlgorithms) {
    if (to_string(alg) == name) return alg;
  }
  return std::nullopt;
}

struct Key::Impl {
  std::string kid;
  Algorithm alg = Algorithm::EdDSA;
  bool has_private = false;
  ossl::PkeyPtr pkey;                      // EdDSA, ES256, RS256
  std::string x, y, d;                     // raw public/private members (d secret)
  std::string n, e;                        // RS256 public members (big-endian)
  std::string p, q, dp, dq, qi;            // RS256 private members (secret)
  std::size_t sig_size = 0;                // RS256: the modulus size in bytes
  bool client = false;                     // a key a client brings (from_public_jwk)
  std::unique_ptr<ossl::HmacSha256> hmac;  // HS256
  ~Impl() {
    for (std::string* s : {&d, &p, &q, &dp, &dq, &qi}) {
      if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
    }
  }
};

namespace {

using ImplPtr = std::shared_ptr<Key::Impl>;

constexpr std::size_t kEcCoord = 32;
constexpr std::size_t kEdKey = 32;
constexpr std::size_t kMinHmacKey = 32;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 8192;  // bounds the cost of one verification
constexpr std::size_t kRsaGenBits = 2048;

struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

BnPtr bn_from(const std::string& bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                         static_cast<int>(bytes.size()), nullptr));
}

// Big-endian, no leading zero bytes: the base64urlUInt of RFC 7518 §2.
std::string bn_bytes(const BIGNUM* bn) {
  std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

// RSASSA-PKCS1-v1_5 for every RS256 sign and verify (the provider's default,
// stated so that it cannot drift).
const OSSL_PARAM* rsa_pkcs1_params() {
  static const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                       const_cast<char*>(OSSL_PKEY_RSA_PAD_MODE_PKCSV15), 0),
      OSSL_PARAM_construct_end()};
  return params;
}

Result<void> load_ed25519(Key::Impl& k) {
  if (!k.d.empty()) {
    k.pkey.reset(EVP_PKEY_new_raw_private_key_ex(nullptr, "ED25519", nullptr,
                                                 reinterpret_cast<const unsigned char*>(k.d.data()),
                                                 k.d.size()));
    if (!k.pkey) return fail(ErrorCode::key_invalid, "Ed25519 private key rejected");
    unsigned char pub[kEdKey];
    std::size_t len = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(k.pkey.get(), pub, &len) != 1 || len != kEdKey) {
      return fail(ErrorCode::key_invalid, "Ed25519 public key not derivable");
    }
    if (!k.x.empty() &&
        !constant_time_equal(as_bytes(k.x), std::span<const std::uint8_t>(pub, len))) {
      return fail(ErrorCode::key_invalid, "Ed25519 x does not match d");
    }
    k.x.assign(reinterpret_cast<const char*>(pub), len);
    k.has_private = true;
    return {};
  }
  k.pkey.reset(EVP_PKEY_new_raw_public_key_ex(
      nullptr, "ED25519", nullptr, reinterpret_cast<const unsigned char*>(k.x.data()), k.x.size()));
  if (!k.pkey) return fail(ErrorCode::key_invalid, "Ed25519 public key rejected");
  return {};
}

Result<void> load_p256(Key::Impl& k) {
  std::string point = "\x04" + k.x + k.y;
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                      OSSL_PARAM_BLD_free);
  BnPtr priv;
  if (!k.d.empty())
    priv.reset(BN_bin2bn(reinterpret_cast<const unsigned char*>(k.d.data()),
                         static_cast<int>(k.d.size()), nullptr));
  bool ok =
      bld &&
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) == 1 &&
      (k.d.empty() ||
       (priv && OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, priv.get()) == 1));
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(
      ok ? OSSL_PARAM_BLD_to_param(bld.get()) : nullptr, OSSL_PARAM_free);
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  ok = ok && params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
       EVP_PKEY_fromdata(ctx.get(), &raw, k.d.empty() ? EVP_PKEY_PUBLIC_KEY : EVP_PKEY_KEYPAIR,
                         params.get()) == 1;
  k.pkey.reset(raw);
  if (!ok) {
    (void)ossl::drain_errors();
    return fail(ErrorCode::key_invalid, "P-256 key rejected");
  }
  // fromdata does not check that the point is on the curve, nor that d
  // belongs to it: an off-curve point is the door to invalid-curve attacks.
  // A client's key (public, checked on every DPoP proof, before its
  // signature) takes the quick check: the point is on the curve, which for
  // P-256 (cofactor 1) is all that matters, without the full check's
  // scalar multiplication by the order.
  ossl::PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, k.pkey.get(), nullptr));
  const bool point_ok = check && (k.client ? EVP_PKEY_public_check_quick(check.get())
                                           : EVP_PKEY_public_check(check.get())) == 1;
  if (!point_ok || (!k.d.empty() && EVP_PKEY_pairwise_check(check.get()) != 1)) {
    (void)ossl::drain_errors();
    return fail(ErrorCode::key_invalid, "P-256 point is not on the curve or does not match d");
  }
  k.has_private = !k.d.empty();
  return {};
}

// The RSA members of an RS256 key, in the order OpenSSL's RSA keymgmt names them.
// The public ones first; the private ones are all present or all absent.
struct RsaMember {
  const char* param;  // OpenSSL's name
  std::string_view jwk;
  std::string Key::Impl::*member;
  bool secret;
};
constexpr RsaMember kRsaMembers[] = {
    {OSSL_PKEY_PARAM_RSA_N, "n", &Key::Impl::n, false},
    {OSSL_PKEY_PARAM_RSA_E, "e", &Key::Impl::e, false},
    {OSSL_PKEY_PARAM_RSA_D, "d", &Key::Impl::d, true},
    {OSSL_PKEY_PARAM_RSA_FACTOR1, "p", &Key::Impl::p, true},
    {OSSL_PKEY_PARAM_RSA_FACTOR2, "q", &Key::Impl::q, true},
    {OSSL_PKEY_PARAM_RSA_EXPONENT1, "dp", &Key::Impl::dp, true},
    {OSSL_PKEY_PARAM_RSA_EXPONENT2, "dq", &Key::Impl::dq, true},
    {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "qi", &Key::Impl::qi, true},
};

Result<void> load_rsa(Key::Impl& k) {
  const bool priv = !k.d.empty();
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(),
                                                                      OSSL_PARAM_BLD_free);
  BnPtr bns[std::size(kRsaMembers)];
  bool ok = static_cast<bool>(bld);
  for (std::size_t i = 0; ok && i < std::size(kRsaMembers); ++i) {
    const RsaMember& m = kRsaMembers[i];
    if (m.secret && !priv) break;
    bns[i] = bn_from(k.*m.member);
    ok = bns[i] && OSSL_PARAM_BLD_push_BN(bld.get(), m.param, bns[i].get()) == 1;
  }
  if (!ok) return fail(ErrorCode::internal, "cannot build RSA parameters");
  const int bits = BN_num_bits(bns[0].get());
  if (bits < kMinRsaBits)
    return fail(ErrorCode::key_invalid, "RSA modulus is shorter than 2048 bits");
  if (bits > kMaxRsaBits)
    return fail(ErrorCode::key_invalid, "RSA modulus is longer than 8192 bits");
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()),
                                                                 OSSL_PARAM_free);
  ossl::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* raw = nullptr;
  ok = params && ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
       EVP_PKEY_fromdata(ctx.get(), &raw, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                         params.get()) == 1;
  k.pkey.reset(raw);
  if (!ok) {
    (void)ossl::drain_errors();
    return fail(ErrorCode::key_invalid, "RSA key rejected");
  }
  // fromdata takes any numbers. Every RSA key gets the cheap, exact checks:
  // n odd, e odd and 3 <= e < n. A private key also takes OpenSSL's
  // pairwise check: p and q prime, n = p·q, d, dp, dq and qi consistent.
  // OpenSSL's public check is not used: its Miller-Rabin test that n is
  // composite costs some 3 ms for 2048 bits (150 signature verifications;
  // a DPoP proof's jwk is anyone's), and its answer on a bogus modulus
  // depends on random bases, so the same JWK could parse once and be
  // refused the next time (the JWK fuzzer found one). A bogus public
  // modulus can only make its own signatures verify or not.
  {
    const BIGNUM* n = bns[0].get();
    const BIGNUM* e = bns[1].get();
    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_num_bits(e) < 2 || BN_cmp(e, n) >= 0) {
      return fail(ErrorCode::key_invalid, "RSA public key is not a valid key");
    }
  }
  if (priv) {
    ossl::PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, k.pkey.get(), nullptr));
    if (!check || EVP_PKEY_pairwise_check(check.get()) != 1) {
      (void)ossl::drain_errors();
      return fail(ErrorCode::key_invalid, "RSA key is not a valid key pair");
    }
  }
  // Publish the members as base64urlUInt: no leading zero bytes.
  for (std::size_t i = 0; i < std::size(kRsaMembers) && bns[i]; ++i) {
    std::string& member = k.*kRsaMembers[i].member;
    std::string minimal = bn_bytes(bns[i].get());
    if (!member.empty()) OPENSSL_cleanse(member.data(), member.size());
    member = std::move(minimal);
  }
  k.sig_size = static_cast<std::size_t>(EVP_PKEY_get_size(k.pkey.get()));
  k.has_private = priv;
  return {};
}

Result<void> load_hmac(Key::Impl& k) {
  if (k.d.size() < kMinHmacKey)
    return fail(ErrorCode::key_invalid, "HS256 key is shorter than 32 bytes");
  k.hmac = std::make_unique<ossl::HmacSha256>(as_bytes(k.d));
  k.has_private = true;
  return {};
}

Result<void> load(Key::Impl& k) {
  switch (k.alg) {
    case Algorithm::EdDSA:
      return load_ed25519(k);
    case Algorithm::ES256:
      return load_p256(k);
    case Algorithm::HS256:
      return load_hmac(k);
    case Algorithm::RS256:
      return load_rsa(k);
  }
  return fail(ErrorCode::internal, "unknown algorithm");
}

Result<std::string> get_b64(const json::object& o, std::string_view name, std::size_t want_size,
                            bool required) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) {
    if (required) return fail(ErrorCode::key_invalid, fmt::format("JWK lacks \"{}\"", name));
    return std::string();
  }
  const json::string* s = v->if_string();
  std::string out;
  if (s == nullptr || !base64url_decode_into(*s, out)) {
    return fail(ErrorCode::key_invalid, fmt::format("JWK \"{}\" is not base64url", name));
  }
  if (want_size != 0 && out.size() != want_size) {
    OPENSSL_cleanse(out.data(), out.size());
    return fail(ErrorCode::key_invalid, fmt::format("JWK \"{}\" has the wrong length", name));
  }
  return out;
}

std::string_view get_str(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return {};
  return v->get_string();
}

// DER ECDSA-Sig-Value → JOSE r||s (RFC 7518 §3.4).
bool der_to_jose(const unsigned char* der, std::size_t len, std::string& out) {
  const unsigned char* p = der;
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len)), ECDSA_SIG_free);
  if (!sig) return false;
  out.assign(2 * kEcCoord, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  return BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), o, kEcCoord) == kEcCoord &&
         BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), o + kEcCoord, kEcCoord) == kEcCoord;
}

// JOSE r||s → DER, for OpenSSL's verifier.
bool jose_to_der(std::span<const std::uint8_t> rs, unsigned char* der, int& der_len) {
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(rs.data(), kEcCoord, nullptr);
  BIGNUM* s = BN_bin2bn(rs.data() + kEcCoord, kEcCoord, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return false;
  }
  unsigned char* p = der;
  der_len = i2d_ECDSA_SIG(sig.get(), &p);
  return der_len > 0;
}

// One digest-sign/verify context per thread, reset after each use: no
// allocation of the context itself on the hot path.
EVP_MD_CTX* thread_md_ctx() {
  thread_local ossl::MdCtxPtr ctx(EVP_MD_CTX_new());
  return ctx.get();
}

}  // namespace

Result<Key> Key::generate(Algorithm alg, std::string kid, Random& random) {
  if (kid.empty()) return fail(ErrorCode::invalid_request, "a key needs a kid");
  auto impl = std::make_shared<Impl>();
  impl->kid = std::move(kid);
  impl->alg = alg;
  switch (alg) {
    case Algorithm::EdDSA:
    case Algorithm::ES256: {
      EVP_PKEY* raw = alg == Algorithm::EdDSA ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                              : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      ossl::PkeyPtr pkey(raw);
      if (!pkey) return fail(ErrorCode::internal, "key generation failed: " + ossl::drain_errors());
      if (alg == Algorithm::EdDSA) {
        unsigned char buf[kEdKey];
        std::size_t len = sizeof buf;
        if (EVP_PKEY_get_raw_private_key(pkey.get(), buf, &len) != 1)
          return fail(ErrorCode::internal, "no raw key");
        impl->d.assign(reinterpret_cast<char*>(buf), len);
        OPENSSL_cleanse(buf, sizeof buf);
      } else {
        BIGNUM* x = nullptr;
        BIGNUM* y = nullptr;
        BIGNUM* d = nullptr;
        const bool ok = EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
                        EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
                        EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1;
        BnPtr bx(x), by(y), bd(d);
        if (!ok) return fail(ErrorCode::internal, "cannot export P-256 key");
        for (auto [bn, out] : {std::pair{bx.get(), &impl->x}, std::pair{by.get(), &impl->y},
                               std::pair{bd.get(), &impl->d}}) {
          out->assign(kEcCoord, '\0');
          BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out->data()), kEcCoord);
        }
      }
      break;
    }
    case Algorithm::HS256:
      impl->d.assign(32, '\0');
      random.fill(std::span(reinterpret_cast<std::uint8_t*>(impl->d.data()), impl->d.size()));
      break;
    case Algorithm::RS256: {
      ossl::PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", kRsaGenBits));
      if (!pkey) return fail(ErrorCode::internal, "key generation failed: " + ossl::drain_errors());
      for (const RsaMember& m : kRsaMembers) {
        BIGNUM* raw = nullptr;
        if (EVP_PKEY_get_bn_param(pkey.get(), m.param, &raw) != 1)
          return fail(ErrorCode::internal, "cannot export RSA key");
        BnPtr bn(raw);
        (*impl).*m.member = bn_bytes(bn.get());
      }
      break;
    }
  }
  if (auto st = load(*impl); !st) return std::unexpected(st.error());
  return Key(std::move(impl));
}

namespace {

// The members that only a private (or symmetric) JWK has.
constexpr std::string_view kPrivateMembers[] = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"};

// A JWK object → a loaded key. `client`: a key a client brings (DPoP): no
// kid needed, public members only, never oct, and RSA's n and e in their
// one canonical form (no leading zero byte), so that its RFC 7638 thumbprint
// is the one the client computes from the same members.
Result<ImplPtr> parse_jwk_object(const json::object& o, bool client) {
  auto impl = std::make_shared<Key::Impl>();
  impl->client = client;
  const std::string_view kty = get_str(o, "kty");
  const std::string_view crv = get_str(o, "crv");
  impl->kid = std::string(get_str(o, "kid"));
  if (!client && impl->kid.empty()) return fail(ErrorCode::key_invalid, "JWK lacks a kid");
  if (client) {
    if (kty == "oct") return fail(ErrorCode::key_invalid, "a client JWK cannot be symmetric");
    for (std::string_view name : kPrivateMembers) {
      if (o.contains(name))
        return fail(ErrorCode::key_invalid,
                    fmt::format("a client JWK has the private member \"{}\"", name));
    }
  }
  if (o.contains("use") && get_str(o, "use") != "sig") {
    return fail(ErrorCode::key_invalid, "JWK \"use\" is not \"sig\"");
  }
  if (kty == "OKP" && crv == "Ed25519") {
    impl->alg = Algorithm::EdDSA;
    auto x = get_b64(o, "x", kEdKey, true);
    auto d = get_b64(o, "d", kEdKey, false);
    if (!x) return std::unexpected(x.error());
    if (!d) return std::unexpected(d.error());
    impl->x = std::move(*x);
    impl->d = std::move(*d);
  } else if (kty == "EC" && crv == "P-256") {
    impl->alg = Algorithm::ES256;
    auto x = get_b64(o, "x", kEcCoord, true);
    auto y = get_b64(o, "y", kEcCoord, true);
    auto d = get_b64(o, "d", kEcCoord, false);
    if (!x) return std::unexpected(x.error());
    if (!y) return std::unexpected(y.error());
    if (!d) return std::unexpected(d.error());
    impl->x = std::move(*x);
    impl->y = std::move(*y);
    impl->d = std::move(*d);
  } else if (kty == "oct") {
    impl->alg = Algorithm::HS256;
    auto k = get_b64(o, "k", 0, true);
    if (!k) return std::unexpected(k.error());
    impl->d = std::move(*k);
  } else if (kty == "RSA") {
    impl->alg = Algorithm::RS256;
    if (o.contains("oth"))
      return fail(ErrorCode::key_invalid, "multi-prime RSA JWKs are not supported");
    // A private key carries every private member: d alone (no CRT values) is
    // refused rather than half-supported, and so are CRT values without d.
    const bool priv = o.contains("d");
    for (const RsaMember& m : kRsaMembers) {
      const std::string_view name = m.jwk;
      if (m.secret && !priv) {
        if (o.contains(name))
          return fail(ErrorCode::key_invalid, fmt::format("RSA JWK has \"{}\" but no \"d\"", name));
        continue;
      }
      auto v = get_b64(o, name, 0, true);
      if (!v) return std::unexpected(v.error());
      if (client && (v->empty() || (*v)[0] == '\0'))
        return fail(ErrorCode::key_invalid,
                    fmt::format("RSA JWK \"{}\" is not a minimal base64urlUInt", name));
      (*impl).*m.member = std::move(*v);
    }
  } else {
    return fail(ErrorCode::key_invalid,
                client ? "unsupported client JWK type (want EC/P-256, OKP/Ed25519 or RSA)"
                       : "unsupported JWK type (want OKP/Ed25519, EC/P-256, oct or RSA)");
  }
  if (o.contains("alg")) {
    if (get_str(o, "alg") != to_string(impl->alg)) {
      return fail(ErrorCode::key_invalid,
                  fmt::format("JWK \"alg\" does not fit a {} key", to_string(impl->alg)));
    }
  }
  if (auto st = load(*impl); !st) return std::unexpected(st.error());
  return impl;
}

}  // namespace

struct detail::KeyAccess {
  static Key make(std::shared_ptr<const Key::Impl> impl) { return Key(std::move(impl)); }
};

Result<Key> detail::public_key_from_jwk_object(const boost::json::object& o) {
  auto impl = parse_jwk_object(o, true);
  if (!impl) return std::unexpected(impl.error());
  return KeyAccess::make(std::move(*impl));
}

Result<Key> Key::from_jwk(std::string_view text) {
  auto parsed = detail::parse_json_object(text, ErrorCode::key_invalid, "JWK");
  if (!parsed) return std::unexpected(parsed.error());
  auto impl = parse_jwk_object(*parsed, false);
  if (!impl) return std::unexpected(impl.error());
  return Key(std::move(*impl));
}

Result<Key> Key::from_public_jwk(std::string_view text) {
  auto parsed = detail::parse_json_object(text, ErrorCode::key_invalid, "JWK");
  if (!parsed) return std::unexpected(parsed.error());
  return detail::public_key_from_jwk_object(*parsed);
}

std::optional<std::string> Key::thumbprint() const {
  const Impl& k = *impl_;
  // RFC 7638 §3.2: the required members only, in lexicographic order, no
  // whitespace. Every value is base64url without padding (no escaping needed).
  std::string text;
  switch (k.alg) {
    case Algorithm::EdDSA:
      text = fmt::format(R"({{"crv":"Ed25519","kty":"OKP","x":"{}"}})", base64url_encode(k.x));
      break;
    case Algorithm::ES256:
      text = fmt::format(R"({{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}})", base64url_encode(k.x),
                         base64url_encode(k.y));
      break;
    case Algorithm::RS256:
      text = fmt::format(R"({{"e":"{}","kty":"RSA","n":"{}"}})", base64url_encode(k.e),
                         base64url_encode(k.n));
      break;
    case Algorithm::HS256:
      return std::nullopt;
  }
  const Sha256Digest digest = sha256(text);
  return base64url_encode(digest);
}

const std::string& Key::kid() const noexcept {
  return impl_->kid;
}
Algorithm Key::algorithm() const noexcept {
  return impl_->alg;
}
bool Key::has_private() const noexcept {
  return impl_->has_private;
}

namespace {
json::object jwk_object(const Key::Impl& k, bool with_private) {
  json::object o;
  switch (k.alg) {
    case Algorithm::EdDSA:
      o["kty"] = "OKP";
      o["crv"] = "Ed25519";
      o["x"] = base64url_encode(k.x);
      break;
    case Algorithm::ES256:
      o["kty"] = "EC";
      o["crv"] = "P-256";
      o["x"] = base64url_encode(k.x);
      o["y"] = base64url_encode(k.y);
      break;
    case Algorithm::HS256:
      o["kty"] = "oct";
      break;
    case Algorithm::RS256:
      o["kty"] = "RSA";
      o["n"] = base64url_encode(k.n);
      o["e"] = base64url_encode(k.e);
      break;
  }
  if (with_private && !k.d.empty())
    o[k.alg == Algorithm::HS256 ? "k" : "d"] = base64url_encode(k.d);
  if (with_private && k.alg == Algorithm::RS256 && !k.d.empty()) {
    for (const RsaMember& m : kRsaMembers) {
      if (m.secret && m.jwk != "d") o[m.jwk] = base64url_encode(k.*m.member);
    }
  }
  o["kid"] = k.kid;
  o["alg"] = to_string(k.alg);
  o["use"] = "sig";
  return o;
}
}  // namespace

std::optional<std::string> Key::public_jwk() const {
  if (is_symmetric()) return std::nullopt;
  return json::serialize(jwk_object(*impl_, false));
}

std::string Key::private_jwk() const {
  return json::serialize(jwk_object(*impl_, true));
}

Result<std::string> Key::sign(std::string_view input) const {
  const Impl& k = *impl_;
  if (!k.has_private) return fail(ErrorCode::key_invalid, "key has no private half");
  if (k.alg == Algorithm::HS256) {
    const auto mac = k.hmac->mac({input});
    return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
  }
  EVP_MD_CTX* ctx = thread_md_ctx();
  if (k.alg == Algorithm::RS256) {
    std::string out(k.sig_size, '\0');
    std::size_t len = out.size();
    const bool ok =
        EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, k.pkey.get(),
                              rsa_pkcs1_params()) == 1 &&
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1 &&
        len == out.size();
    EVP_MD_CTX_reset(ctx);
    if (!ok) return fail(ErrorCode::internal, "signing failed: " + ossl::drain_errors());
    return out;
  }
  unsigned char sig[80];
  std::size_t len = sizeof sig;
  const bool ok =
      EVP_DigestSignInit_ex(ctx, nullptr, k.alg == Algorithm::ES256 ? "SHA256" : nullptr, nullptr,
                            nullptr, k.pkey.get(), nullptr) == 1 &&
      EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) == 1;
  EVP_MD_CTX_reset(ctx);
  if (!ok) return fail(ErrorCode::internal, "signing failed: " + ossl::drain_errors());
  if (k.alg == Algorithm::EdDSA) return std::string(reinterpret_cast<const char*>(sig), len);
  std::string jose;
  if (!der_to_jose(sig, len, jose))
    return fail(ErrorCode::internal, "cannot convert ECDSA signature");
  return jose;
}

bool Key::verify(std::string_view input, std::span<const std::uint8_t> signature) const {
  const Impl& k = *impl_;
  switch (k.alg) {
    case Algorithm::HS256: {
      if (signature.size() != 32) return false;
      const auto mac = k.hmac->mac({input});
      return constant_time_equal(mac, signature);
    }
    case Algorithm::EdDSA:
    case Algorithm::ES256: {
      if (signature.size() != 64) return false;
      unsigned char der[80];
      const unsigned char* sig = signature.data();
      std::size_t sig_len = signature.size();
      if (k.alg == Algorithm::ES256) {
        int der_len = 0;
        if (!jose_to_der(signature, der, der_len)) return false;
        sig = der;
        sig_len = static_cast<std::size_t>(der_len);
      }
      EVP_MD_CTX* ctx = thread_md_ctx();
      const bool ok =
          EVP_DigestVerifyInit_ex(ctx, nullptr, k.alg == Algorithm::ES256 ? "SHA256" : nullptr,
                                  nullptr, nullptr, k.pkey.get(), nullptr) == 1 &&
          EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()) == 1;
      EVP_MD_CTX_reset(ctx);
      if (!ok) (void)ossl::drain_errors();
      return ok;
    }
    case Algorithm::RS256: {
      // Exactly the modulus size (RFC 7518 §3.3 and RFC 8017 §8.2.2 step 1):
      // no shorter, unpadded forms.
      if (signature.size() != k.sig_size) return false;
      EVP_MD_CTX* ctx = thread_md_ctx();
      const bool ok =
          EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, k.pkey.get(),
                                  rsa_pkcs1_params()) == 1 &&
          EVP_DigestVerify(ctx, signature.data(), signature.size(),
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
      EVP_MD_CTX_reset(ctx);
      if (!ok) (void)ossl::drain_errors();
      return ok;
    }
  }
  return false;
}

}  // namespace tessera
