// Who the client is and what it asked for (docs/http.md "Trusted proxies"):
// the one place that reads the socket's peer address and, only when that
// peer is in `trusted_proxies`, the forwarding headers a proxy adds
// (X-Forwarded-*, X-Original-*). Forward-auth asks it for the original
// request; the features that follow (CSRF origin checks, rate limits, DPoP
// `htu`, the access log) ask it too. Pure functions over std types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_text.hpp"

namespace tessera::server {

// An IPv4 or IPv6 network: "10.0.0.0/8", "::1/128", or one address ("/32"
// or "/128" implied). An IPv4-mapped IPv6 peer (::ffff:a.b.c.d) matches
// the IPv4 networks.
struct Cidr {
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4
  unsigned prefix = 0;
  bool v4 = true;

  // Parses the text; nullopt when it is not an address with an optional
  // prefix length in range, or has host bits set ("10.0.0.1/8").
  [[nodiscard]] static std::optional<Cidr> parse(std::string_view text);
  [[nodiscard]] bool contains(std::string_view address) const noexcept;
};

struct TrustedProxies {
  std::vector<Cidr> networks;
  [[nodiscard]] bool trusts(std::string_view peer) const noexcept;
};

// An address as bytes: IPv4 in the first 4 (also when written IPv4-mapped).
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = true;
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text) noexcept;
};

// The client's address: the socket's peer, or, when the peer is a trusted
// proxy, the address X-Forwarded-For names for it, read from the right
// (each proxy appends the address it heard from) past every trusted hop.
// An item that is not an address ends the walk at the hop that added it.
// Several X-Forwarded-For headers read as one list, in order.
[[nodiscard]] std::string client_address(const Headers& headers, std::string_view peer,
                                         const TrustedProxies& proxies);

// The request the client sent to the proxy, as forward-auth needs it.
struct OriginalRequest {
  std::string method;  // "GET"
  std::string scheme;  // "https"
  std::string host;    // "app.example.com" (with ":port" when not the default)
  std::string uri;     // "/path?query", still percent-encoded
  // scheme://host/uri; "" when the host is unknown.
  [[nodiscard]] std::string url() const;
};

// How the proxy tells it: nginx auth_request (X-Original-URL,
// X-Original-Method), Traefik/Caddy forward auth (X-Forwarded-Method,
// -Proto, -Host, -Uri), Envoy ext_authz (the request line itself, below the
// mount prefix, with Host and X-Forwarded-Proto).
enum class ForwardStyle : std::uint8_t { nginx, forwarded, envoy };

// The original request of a forward-auth sub-request. `peer` is the
// socket's address; the forwarding headers count only when it is trusted,
// otherwise the sub-request itself is taken as the original (its method,
// its Host, `fallback_uri`) with the scheme `fallback_scheme`.
[[nodiscard]] OriginalRequest original_request(ForwardStyle style, const Headers& headers,
                                               std::string_view method, std::string_view peer,
                                               const TrustedProxies& proxies,
                                               std::string_view fallback_uri,
                                               std::string_view fallback_scheme);

}  // namespace tessera::server
