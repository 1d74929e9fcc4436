// The upstream identity providers over HTTP (docs/upstream.md): their
// metadata (OpenID Connect Discovery or RFC 8414), and the liveness
// refresh's port, UpstreamTokenEndpoint, as RFC 6749 §6 refresh grants.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/error.hpp"
#include "tessera/secret.hpp"
#include "tessera/upstream.hpp"
#include "tessera/verify_http.hpp"

namespace tessera {

// One provider this authority accepts logins of.
struct UpstreamProvider {
  std::string issuer;          // its `iss`, exactly
  std::string client_id;       // ours at the provider: the `aud` of its logout tokens
  SecretString client_secret;  // "" for a public client (client_id in the body)
  std::string token_endpoint;  // "" → discovered
  std::string jwks_uri;        // "" → discovered
};

// Fills token_endpoint and jwks_uri that are empty from the provider's
// metadata: <issuer>/.well-known/openid-configuration, else
// <issuer>/.well-known/oauth-authorization-server, whose `issuer` must be
// the issuer itself. upstream_unavailable when neither answers usefully.
[[nodiscard]] Status discover(UpstreamProvider& provider, const verify::HttpOptions& http);

// The refresh grant at each provider's token endpoint, authenticated with
// client_secret_basic when the provider has a secret. 200 with an
// access_token is fresh (its refresh_token, if any, the rotated one); 400
// or 401 with "error": "invalid_grant" is revoked; anything else —
// another error (our registration is wrong, which must not log everyone
// out), 5xx, 429, no answer — is transient.
class HttpUpstreamTokenEndpoint final : public UpstreamTokenEndpoint {
 public:
  HttpUpstreamTokenEndpoint(std::vector<UpstreamProvider> providers, verify::HttpOptions http);
  [[nodiscard]] UpstreamRefresh refresh(std::string_view issuer,
                                        const SecretString& refresh_token) override;

 private:
  std::map<std::string, UpstreamProvider, std::less<>> providers_;
  verify::HttpOptions http_;
};

}  // namespace tessera
