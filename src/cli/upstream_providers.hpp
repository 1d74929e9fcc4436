// The upstream identity providers of `serve` (docs/upstream.md): read from
// the upstream_providers JSON file, their metadata discovered, their keys
// fetched for back-channel logout and their token endpoints called by the
// liveness refresh.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "server/options.hpp"
#include "tessera/upstream.hpp"
#include "tessera/upstream_http.hpp"
#include "tessera/verify_http.hpp"

namespace tessera::cli {

// [{"issuer", "client_id", "client_secret"?, "token_endpoint"?, "jwks_uri"?}].
// config_invalid naming the file and the entry for anything off; never
// repeats a client secret.
[[nodiscard]] Result<std::vector<UpstreamProvider>> parse_upstream_providers(
    std::string_view json_text, std::string_view where);
[[nodiscard]] Result<std::vector<UpstreamProvider>> load_upstream_providers(
    const std::filesystem::path& file);

// Each provider's metadata discovered when first needed (and again, at most
// every kRetryDiscovery, while it fails), its JWKS through
// verify::HttpJwksSource. Thread-safe.
class ProviderDirectory final : public server::UpstreamKeys, public UpstreamTokenEndpoint {
 public:
  static constexpr std::chrono::seconds kRetryDiscovery{30};

  ProviderDirectory(std::vector<UpstreamProvider> providers, const Clock& clock,
                    verify::HttpOptions http = {});
  ~ProviderDirectory() override;

  // Discovers every provider now; the ones that fail are retried on use.
  // Returns the errors (for the log).
  std::vector<Error> discover_all();

  std::optional<std::string> client_id(std::string_view issuer) const override;
  Result<std::shared_ptr<const KeySet>> keys(std::string_view issuer, bool refresh) override;
  UpstreamRefresh refresh(std::string_view issuer, const SecretString& refresh_token) override;

 private:
  struct Entry;
  Entry* find(std::string_view issuer) const;
  Status ready(Entry& e);  // under e.mu

  const Clock& clock_;
  verify::HttpOptions http_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

}  // namespace tessera::cli
