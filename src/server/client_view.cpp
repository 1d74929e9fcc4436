#include "server/client_view.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tessera::server {

namespace {

std::optional<std::pair<std::array<std::uint8_t, 16>, bool>> address_bytes(std::string_view text) {
  const auto a = IpAddress::parse(text);
  if (!a) return std::nullopt;
  return std::pair{a->bytes, a->v4};
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                  unsigned prefix) noexcept {
  const unsigned whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

// Visible ASCII, and spaces too when `spaces` (a list such as "https, http").
bool sane_header_text(std::string_view s, bool spaces = false) noexcept {
  return std::all_of(s.begin(), s.end(), [&](unsigned char c) {
    return (c > 0x20 || (spaces && c == 0x20)) && c < 0x7f;
  });
}

// "https://host[:port]/path?q" → scheme, host, uri ("/" when empty).
std::optional<OriginalRequest> split_url(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || !sane_header_text(url)) return std::nullopt;
  OriginalRequest r;
  r.scheme = std::string(url.substr(0, sep));
  std::transform(r.scheme.begin(), r.scheme.end(), r.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (r.scheme != "http" && r.scheme != "https") return std::nullopt;
  const std::string_view rest = url.substr(sep + 3);
  const auto path = rest.find_first_of("/?");
  r.host = std::string(rest.substr(0, path));
  if (r.host.empty() || r.host.find('@') != std::string::npos) return std::nullopt;
  r.uri = path == std::string_view::npos ? "/" : std::string(rest.substr(path));
  if (r.uri.front() == '?') r.uri.insert(r.uri.begin(), '/');
  return r;
}

// The header's value when it is visible ASCII (spaces allowed only in a
// `list`), else the fallback.
std::string header_or(const Headers& headers, std::string_view name, std::string_view fallback,
                      bool list = false) {
  const auto v = find_header(headers, name);
  const std::string_view t = v ? trim(*v) : std::string_view{};
  return std::string(!t.empty() && sane_header_text(t, list) ? t : fallback);
}

// The first of a comma-separated list ("https, http" from a proxy chain:
// the client's is the first), which has no space in it.
std::string first_item(std::string s, std::string_view fallback) {
  const auto comma = s.find(',');
  if (comma != std::string::npos) s = std::string(trim(std::string_view(s).substr(0, comma)));
  return sane_header_text(s) && !s.empty() ? s : std::string(fallback);
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) noexcept {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress out;
  if (inet_pton(AF_INET, buf, out.bytes.data()) == 1) return out;
  if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return std::nullopt;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out.bytes.data(), kMapped, 12) == 0) {
    std::array<std::uint8_t, 16> v4{};
    std::memcpy(v4.data(), out.bytes.data() + 12, 4);
    out.bytes = v4;
    return out;
  }
  out.v4 = false;
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  text = trim(text);
  const auto slash = text.find('/');
  const auto addr = address_bytes(text.substr(0, slash));
  if (!addr) return std::nullopt;
  Cidr c;
  c.bytes = addr->first;
  c.v4 = addr->second;
  const unsigned max = c.v4 ? 32 : 128;
  c.prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v > max)
      return std::nullopt;
    c.prefix = v;
  }
  // No host bits: "10.0.0.1/8" is a mistake, not a network.
  std::array<std::uint8_t, 16> masked{};
  for (unsigned i = 0; i < c.prefix / 8; ++i) masked[i] = c.bytes[i];
  if (c.prefix % 8 != 0)
    masked[c.prefix / 8] =
        static_cast<std::uint8_t>(c.bytes[c.prefix / 8] & (0xff << (8 - c.prefix % 8)));
  if (masked != c.bytes) return std::nullopt;
  return c;
}

bool Cidr::contains(std::string_view address) const noexcept {
  const auto addr = address_bytes(address);
  return addr && addr->second == v4 && prefix_equal(addr->first, bytes, prefix);
}

bool TrustedProxies::trusts(std::string_view peer) const noexcept {
  return std::any_of(networks.begin(), networks.end(),
                     [&](const Cidr& c) { return c.contains(peer); });
}

std::string client_address(const Headers& headers, std::string_view peer,
                           const TrustedProxies& proxies) {
  if (proxies.networks.empty() || !proxies.trusts(peer)) return std::string(peer);
  std::vector<std::string_view> hops;  // every X-Forwarded-For item, in order
  for (const auto& [name, value] : headers) {
    if (!iequals(name, "x-forwarded-for")) continue;
    std::string_view rest = value, hop;
    while (next_list_item(rest, hop)) hops.push_back(hop);
  }
  std::string_view client = peer;  // trusted: may speak for the hop before it
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (!IpAddress::parse(*it)) break;
    client = *it;
    if (!proxies.trusts(client)) break;
  }
  return std::string(client);
}

std::string OriginalRequest::url() const {
  if (host.empty()) return {};
  return scheme + "://" + host + uri;
}

OriginalRequest original_request(ForwardStyle style, const Headers& headers,
                                 std::string_view method, std::string_view peer,
                                 const TrustedProxies& proxies, std::string_view fallback_uri,
                                 std::string_view fallback_scheme) {
  OriginalRequest own{.method = std::string(method),
                      .scheme = std::string(fallback_scheme),
                      .host = header_or(headers, "host", ""),
                      .uri = std::string(fallback_uri.empty() ? "/" : fallback_uri)};
  if (!proxies.trusts(peer)) return own;
  switch (style) {
    case ForwardStyle::nginx: {
      OriginalRequest r = own;
      if (const auto url = find_header(headers, "x-original-url")) {
        if (auto split = split_url(trim(*url))) r = std::move(*split);
      }
      r.method = header_or(headers, "x-original-method", own.method);
      return r;
    }
    case ForwardStyle::forwarded:
      return {.method = header_or(headers, "x-forwarded-method", own.method),
              .scheme = first_item(header_or(headers, "x-forwarded-proto", "", true), own.scheme),
              .host = first_item(header_or(headers, "x-forwarded-host", "", true), own.host),
              .uri = header_or(headers, "x-forwarded-uri", own.uri)};
    case ForwardStyle::envoy:
      own.scheme = first_item(header_or(headers, "x-forwarded-proto", "", true), own.scheme);
      return own;
  }
  return own;
}

}  // namespace tessera::server
