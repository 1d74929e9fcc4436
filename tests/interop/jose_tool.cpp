// A small command-line face of tessera's JOSE code, for interop tests
// driven by independent implementations (PyJWT). Test-only.
//
//   jose_tool keygen ALG KID                     → private JWK on stdout
//   jose_tool sign JWK_FILE SUB ISS AUD IAT EXP  → compact JWT on stdout
//   jose_tool verify JWKS_FILE TOKEN ISS AUD NOW → "ok" + claims as lines, or
//                                                  the error code; exit 0/1
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "tessera/jwt.hpp"

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

tessera::UnixSeconds secs(const char* s) {
  return tessera::UnixSeconds{std::chrono::seconds{std::stoll(s)}};
}

int usage() {
  std::cerr << "usage: jose_tool keygen ALG KID | sign JWK SUB ISS AUD IAT EXP | verify JWKS TOKEN "
               "ISS AUD NOW\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tessera;
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  if (cmd == "keygen" && argc == 4) {
    auto alg = algorithm_from_string(argv[2]);
    if (!alg) return usage();
    auto key = Key::generate(*alg, argv[3], CsprngRandom::instance());
    if (!key) {
      std::cerr << key.error() << "\n";
      return 1;
    }
    std::cout << key->private_jwk() << "\n";
    return 0;
  }
  if (cmd == "sign" && argc == 8) {
    auto key = Key::from_jwk(read_file(argv[2]));
    if (!key) {
      std::cerr << key.error() << "\n";
      return 1;
    }
    JwtClaims c;
    c.sub = argv[3];
    c.iss = argv[4];
    c.aud = {argv[5]};
    c.iat = secs(argv[6]);
    c.exp = secs(argv[7]);
    c.jti = "jti-1";
    c.sid = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    c.sv = 7;
    c.custom = R"({"scope":"read write"})";
    auto token = sign_jwt(*key, c);
    if (!token) {
      std::cerr << token.error() << "\n";
      return 1;
    }
    std::cout << *token << "\n";
    return 0;
  }
  if (cmd == "verify" && argc == 7) {
    auto keys = KeySet::from_jwks(read_file(argv[2]));
    if (!keys) {
      std::cout << to_string(keys.error().code) << "\n";
      return 1;
    }
    VerifyOptions o;
    o.issuer = argv[4];
    o.audiences = {argv[5]};
    auto v = verify_jwt(argv[3], *keys, o, secs(argv[6]));
    if (!v) {
      std::cout << to_string(v.error().code) << "\n";
      return 1;
    }
    std::cout << "ok\nalg=" << to_string(v->alg) << "\nkid=" << v->kid << "\nsub=" << v->claims.sub
              << "\nexp=" << v->claims.exp.time_since_epoch().count()
              << "\nsid=" << v->claims.sid.value_or("")
              << "\nsv=" << (v->claims.sv ? std::to_string(*v->claims.sv) : "")
              << "\ncustom=" << v->claims.custom << "\n";
    return 0;
  }
  return usage();
}
