// What `tessera serve` (src/cli) hands the HTTP authority: its settings and
// the objects it serves with. No Boost type, so the command line and the
// routes compile without the network layer.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/client_view.hpp"
#include "server/rate_limits.hpp"
#include "tessera/clock.hpp"
#include "tessera/key_set.hpp"
#include "tessera/session.hpp"
#include "tessera/session_service.hpp"
#include "tessera/ssf.hpp"

namespace tessera::server {

class Metrics;
class SharedApiKeys;

struct CookieOptions {
  std::string name = "tessera_session";
  std::string domain;  // "" → host-only cookie
  std::string path = "/";
  bool secure = true;
  std::string same_site = "Lax";  // Strict | Lax | None
};

// Forward-auth (docs/api.md "Forward-auth").
struct AuthzOptions {
  std::string login_url;  // where a denied browser navigation is sent; "" → 401 only
  // Hosts a session is good for, beside public_url's: "app.example.com",
  // "app.example.com:8443", or ".example.com" for every host below it.
  std::vector<std::string> allowed_hosts;
  // Further headers that carry the subject on an allow (e.g. Remote-User).
  std::vector<std::string> subject_headers;
  // The mounts then need an API key with the `authz` scope, in
  // X-Tessera-Api-Key (Authorization carries the user's access token).
  bool require_api_key = false;
  // An allow carries `Authorization: Bearer <at+jwt>` for the upstream,
  // one per session, replaced this long before it expires (or when the
  // subject's epoch moves).
  bool upstream_token = false;
  std::chrono::seconds upstream_token_renew_before{std::chrono::minutes{2}};
};

// TLS on the listener (docs/http.md "TLS"): PEM files, read at
// Server::create() and again on every SIGHUP. cert_file empty → plain HTTP.
struct TlsOptions {
  std::string cert_file;       // certificate chain, leaf first
  std::string key_file;        // its private key (unencrypted PEM)
  std::string client_ca_file;  // "" → no client certificates; else required and verified
  [[nodiscard]] bool enabled() const noexcept { return !cert_file.empty(); }
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 → any free port; see Server::port()
  unsigned threads = 0;       // io threads; 0 → one per core
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  // The request head (request line and headers), from the connection's
  // start or the first byte of a keep-alive request; also the TLS handshake.
  std::chrono::seconds header_timeout{5};
  std::chrono::seconds read_timeout{10};   // the body, after the head; writing an answer
  std::chrono::seconds idle_timeout{60};   // keep-alive connection with no request
  std::chrono::seconds drain_timeout{30};  // stop(): in-flight requests get this long
  std::size_t max_connections = 4096;
  // Connections beyond max_connections that may ask only /healthz, /readyz
  // and /metrics, one request each: a load balancer still sees the state of
  // an authority whose connections are all taken.
  std::size_t health_connections = 16;
  // Connections one client address may hold (0: no limit); peers in
  // trusted_proxies are not limited (they carry many clients).
  std::size_t max_connections_per_client = 512;
  // Store workers (docs/http.md "Store workers"): threads that run the
  // handlers which touch the store, off the io threads. 0 → every handler
  // runs on its io thread. At most store_queue requests wait for one; more
  // are answered 503 `overloaded`.
  std::size_t store_workers = 32;
  std::size_t store_queue = 4096;
  // Reads (validate, introspect, /readyz) stay on the io thread: right for
  // an in-process store (memory, SQLite), whose read is cheaper than the
  // hop to a worker and back; wrong for a store across a network.
  bool inline_reads = false;
  // SHA-256 of API keys accepted with every scope (admin); compared in
  // constant time. Scoped keys come from ServerDeps::api_keys.
  std::vector<std::array<std::uint8_t, 32>> api_key_hashes;
  bool metrics_public = true;  // false: /metrics needs an API key
  std::chrono::seconds jwks_max_age{300};
  CookieOptions cookie;
  // The host (and port, when not the scheme's default) of public_url: the
  // authority's own address as browsers reach it. "" → none known.
  std::string public_host;
  std::string public_scheme;  // "http" or "https": public_url's; "" with no public_url
  // public_url itself without a trailing slash ("" with none), and its path
  // ("" or "/auth"), for the addresses the metadata publishes.
  std::string public_base;
  std::string public_path;
  // Dev mode on a port chosen at start: public_url's port is unknown, and
  // the metadata names the Host the client used instead.
  bool public_base_from_host = false;
  // Origins (lower case, "https://app.example.com[:port]") whose pages may
  // call the public endpoints with credentials (docs/api.md §3.12).
  std::vector<std::string> cors_allowed_origins;
  // Peers whose X-Forwarded-* / X-Original-* headers are believed.
  TrustedProxies trusted_proxies;
  // Failed authentication attempts, and optionally every request, per
  // client address (docs/http.md "Rate limits").
  RateLimitOptions rate_limits;
  AuthzOptions authz;
  TlsOptions tls;              // every connection speaks TLS when tls.enabled()
  bool access_log = true;      // one JSON line per request (spdlog default logger), no secret
  bool handle_signals = true;  // SIGINT/SIGTERM → stop(); SIGHUP → on_reload, TLS files
};

// Borrowed, not owned: every referent must outlive the Server (or Api).
// The upstream identity providers whose back-channel logout tokens the
// authority takes (docs/upstream.md): each one's client id (the `aud` its
// logout tokens carry) and signing keys. Thread-safe.
class UpstreamKeys {
 public:
  virtual ~UpstreamKeys() = default;
  // nullopt: `issuer` is not a configured provider.
  [[nodiscard]] virtual std::optional<std::string> client_id(std::string_view issuer) const = 0;
  // Its current keys; `refresh`: look again (a token named a kid the set
  // lacks). upstream_unavailable when its JWKS cannot be had.
  [[nodiscard]] virtual Result<std::shared_ptr<const KeySet>> keys(std::string_view issuer,
                                                                   bool refresh) = 0;
};

// Where SSF streams are kept (the CLI: a file in the data dir). Thread-safe.
class SsfStreamStore {
 public:
  virtual ~SsfStreamStore() = default;
  [[nodiscard]] virtual std::shared_ptr<const std::vector<SsfStream>> list() const = 0;
  // Assigns stream_id and created_at; the stream as stored.
  [[nodiscard]] virtual Result<SsfStream> create(SsfStream stream) = 0;
  // false: no such stream.
  [[nodiscard]] virtual Result<bool> remove(std::string_view stream_id) = 0;
};

struct ServerDeps {
  SessionService& service;
  const SharedKeySet& keys;  // read per request: rotation shows at once
  SessionStore& store;       // /readyz asks it
  const Clock& clock;
  Metrics& metrics;
  std::function<void()> on_reload;  // SIGHUP; may be empty
  // Scoped API keys (the api_keys file), beside ServerOptions::api_key_hashes;
  // read per request, so a revoked key stops at once. May be null.
  const SharedApiKeys* api_keys = nullptr;
  // Failure counts shared with the other instances (Redis); may be null.
  SharedCounts* shared_limits = nullptr;
  // The upstream providers of back-channel logout; null: none configured.
  UpstreamKeys* upstream = nullptr;
  // SSF streams; null: the transmitter is off (its routes answer 404).
  SsfStreamStore* ssf = nullptr;
};

}  // namespace tessera::server
