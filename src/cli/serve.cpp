#include "cli/serve.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/key_files.hpp"
#include "cli/runtime.hpp"
#include "cli/ssf_streams.hpp"
#include "cli/upstream_providers.hpp"
#include "server/server.hpp"
#include "tessera/clock.hpp"
#include "tessera/outbox.hpp"
#include "tessera/random.hpp"
#include "tessera/redis_counters.hpp"
#include "tessera/webhooks.hpp"

namespace tessera::cli {

namespace {

// The outbox's Redis consumer: each epoch_bumped event raises the key and
// publishes the subject (RedisEpochPublisher::publish, monotonic). A failure
// is logged as epoch_publish_failed and the event is tried again.
class RedisEpochConsumer final : public EventConsumer {
 public:
  explicit RedisEpochConsumer(RedisEpochPublisher& publisher) : publisher_(publisher) {}
  Status deliver(const Event& event) override {
    if (event.type != EventType::epoch_bumped) return {};
    auto s = publisher_.publish(event.subject, event.epoch);
    if (!s) {
      log_event(spdlog::level::warn, "epoch_publish_failed",
                {{"event_id", event.id()},
                 {"attempts", event.attempts + 1},
                 {"code", to_string(s.error().code)}});
    }
    return s;
  }

 private:
  RedisEpochPublisher& publisher_;
};

// A webhook endpoint as a consumer, logging what it refuses. The URL is
// logged as scheme://host only: some receivers put a token in the path.
class LoggedWebhook final : public EventConsumer {
 public:
  LoggedWebhook(WebhookEndpoint endpoint, const Clock& clock)
      : where_(origin_of(endpoint.url)), consumer_(std::move(endpoint), clock) {}
  Status deliver(const Event& event) override {
    auto s = consumer_.deliver(event);
    if (!s) {
      log_event(spdlog::level::warn, "webhook_delivery_failed",
                {{"endpoint", where_},
                 {"event_id", event.id()},
                 {"attempts", event.attempts + 1},
                 {"code", to_string(s.error().code)}});
    }
    return s;
  }

 private:
  static std::string origin_of(std::string_view url) {
    const auto scheme = url.find("://");
    const auto path = url.find_first_of("/?#", scheme == std::string_view::npos ? 0 : scheme + 3);
    return std::string(url.substr(0, path));
  }
  std::string where_;
  WebhookConsumer consumer_;
};

// In front of the metrics: wakes the dispatcher when a change wrote an
// event, and records a signing key the authority has just loaded.
class OutboxAudit final : public AuditSink {
 public:
  OutboxAudit(AuditSink& next, EventOutbox& outbox) : next_(next), outbox_(outbox) {}
  void attach(OutboxDispatcher* dispatcher) noexcept { dispatcher_ = dispatcher; }
  void emit(const AuditEvent& e) noexcept override {
    next_.emit(e);
    if (e.type == AuditEventType::key_rotated) {
      try {
        if (auto s = outbox_.append({.type = EventType::signing_key_rotated, .kid = e.kid}); !s)
          log_event(spdlog::level::warn, "event_append_failed",
                    {{"code", to_string(s.error().code)}});
      } catch (...) {
      }
    }
    if (dispatcher_ != nullptr &&
        (e.type == AuditEventType::revoked || e.type == AuditEventType::evicted ||
         e.type == AuditEventType::replay_detected || e.type == AuditEventType::epoch_bumped ||
         e.type == AuditEventType::key_rotated))
      dispatcher_->wake();
  }

 private:
  AuditSink& next_;
  EventOutbox& outbox_;
  OutboxDispatcher* dispatcher_ = nullptr;
};

// The rate limits' shared counts (server::SharedCounts) kept in Redis.
class RedisSharedCounts final : public server::SharedCounts {
 public:
  RedisSharedCounts(const RedisOptions& redis, const Clock& clock) : counters_(redis, {}, clock) {}
  void add(std::string_view key) noexcept override { counters_.add(key); }
  [[nodiscard]] std::optional<Total> total(std::string_view key) const noexcept override {
    const auto t = counters_.total(key);
    if (!t) return std::nullopt;
    return Total{t->count, t->window_end};
  }
  [[nodiscard]] std::chrono::seconds window() const noexcept override { return counters_.window(); }

 private:
  RedisWindowCounters counters_;
};

using std::chrono::seconds;

// The liveness refresh of sessions linked upstream (docs/upstream.md): a
// round every poll, one line in the log for each round that did anything.
class UpstreamLoop {
 public:
  UpstreamLoop(SessionStore& store, const TokenCipher& cipher, UpstreamTokenEndpoint& endpoint,
               const Clock& clock, UpstreamRefreshOptions options)
      : refresher_(store, cipher, endpoint, clock, options),
        poll_(std::clamp(std::min(options.interval, options.retry) / 2, seconds{1}, seconds{30})),
        thread_([this] { loop(); }) {}
  ~UpstreamLoop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, poll_, [this] { return stop_; })) {
      lock.unlock();
      const UpstreamReport r = refresher_.run_once();
      if (r.error)
        log_event(spdlog::level::warn, "upstream_refresh_failed",
                  {{"code", to_string(r.error->code)}});
      if (r.fresh + r.revoked + r.transient + r.failed_closed > 0)
        log_event(spdlog::level::info, "upstream_refresh",
                  {{"fresh", r.fresh},
                   {"revoked", r.revoked},
                   {"transient", r.transient},
                   {"failed_closed", r.failed_closed}});
      lock.lock();
    }
  }

  UpstreamRefresher refresher_;
  seconds poll_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last
};

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread. The housekeeping
// thread never takes them (the server's handlers run on any other thread),
// and once the server has returned, the main thread blocks them too: the
// server's handlers are gone by then, and a second SIGTERM (a supervisor
// repeating itself) must not kill a process that is already shutting down
// cleanly. A signal left pending is discarded at exit.
void block_stop_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Polls the key file and runs cleanup on their intervals, and reports
// epoch bumps that could not be published to Redis, until stopped.
class Housekeeper {
 public:
  Housekeeper(const Config& config, KeyReloader& reloader, ApiKeyReloader& api_keys,
              SessionService& service, const RedisEpochPublisher* publisher,
              FileSsfStreamStore* streams)
      : config_(config),
        reloader_(reloader),
        api_keys_(api_keys),
        service_(service),
        publisher_(publisher),
        streams_(streams),
        thread_([this] { loop(); }) {}
  ~Housekeeper() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void loop() {
    using clock = std::chrono::steady_clock;
    const bool cleans = config_.cleanup_interval > seconds{0};
    auto next_reload = clock::now() + config_.key_reload_interval;
    auto next_cleanup = clock::now() + config_.cleanup_interval;
    std::unique_lock lock(mu_);
    while (!stop_) {
      const auto wake = cleans ? std::min(next_reload, next_cleanup) : next_reload;
      if (cv_.wait_until(lock, wake, [this] { return stop_; })) break;
      lock.unlock();
      const auto now = clock::now();
      if (now >= next_reload) {
        reloader_.check();
        api_keys_.check();
        if (streams_ != nullptr) streams_->reload_if_changed();
        next_reload = now + config_.key_reload_interval;
        // Resource services then see the bump only after their epoch
        // cache's TTL: say so, once per new failure count.
        if (publisher_ != nullptr && publisher_->failures() > reported_failures_) {
          reported_failures_ = publisher_->failures();
          log_event(spdlog::level::warn, "epoch_publish_failed",
                    {{"failures_total", reported_failures_}});
        }
      }
      if (cleans && now >= next_cleanup) {
        if (auto n = service_.cleanup()) {
          log_event(spdlog::level::info, "cleanup", {{"deleted", *n}});
        } else {
          log_event(spdlog::level::warn, "cleanup_failed",
                    {{"code", to_string(n.error().code)}, {"detail", n.error().detail}});
        }
        next_cleanup = now + config_.cleanup_interval;
      }
      lock.lock();
    }
  }

  const Config& config_;
  KeyReloader& reloader_;
  ApiKeyReloader& api_keys_;
  SessionService& service_;
  const RedisEpochPublisher* publisher_;
  FileSsfStreamStore* streams_;
  std::uint64_t reported_failures_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above is built
};

}  // namespace

Status serve(const Config& config, std::optional<ApiKey> new_api_key) {
  auto& random = CsprngRandom::instance();
  const Clock& clock = SystemClock::instance();

  // One SQLite reader connection kept per thread that may read at once
  // (store workers and io threads): with fewer, a read beyond them opens
  // and closes a connection, schema parse included (measured: 10 % of the
  // CPU of a refresh over HTTP with 4 kept and 32 workers).
  Config opened = config;
  const std::size_t io_threads = config.server.threads
                                     ? config.server.threads
                                     : std::max(1u, std::thread::hardware_concurrency());
  opened.sqlite.readers = std::max(config.sqlite.readers, config.server.store_workers + io_threads);
  auto store = open_store(opened);
  if (!store) return std::unexpected(store.error());
  auto secrets = load_secret_keys(config.secret_keys);
  if (!secrets) return std::unexpected(secrets.error());
  auto lookup = LookupKeyRing::create(std::move(secrets->lookup));
  if (!lookup)
    return fail(ErrorCode::key_invalid,
                fmt::format("secret_keys: lookup keys: {}", lookup.error().detail));
  auto cipher = TokenCipher::create(std::move(secrets->cipher), random);
  if (!cipher)
    return fail(ErrorCode::key_invalid,
                fmt::format("secret_keys: cipher keys: {}", cipher.error().detail));
  auto signing = load_signing_keys(config.signing_keys);
  if (!signing) return std::unexpected(signing.error());
  SharedKeySet keys(std::move(*signing));

  auto audit = open_audit_sink(config);
  if (!audit) return std::unexpected(audit.error());
  server::Metrics metrics(audit->get());
  // Changes write events with them (the store's outbox, when it has one):
  // the dispatcher delivers them, and the audit path only wakes it.
  EventOutbox* outbox = (*store)->outbox();
  std::optional<OutboxAudit> outbox_audit;
  if (outbox != nullptr) outbox_audit.emplace(metrics, *outbox);
  AuditSink* front = outbox_audit ? static_cast<AuditSink*>(&*outbox_audit) : &metrics;
  // key_rotated goes to the metrics (counted, then to the audit sink).
  KeyReloader reloader(config.signing_keys, keys, front, clock);
  // Scoped API keys: the file as it is now, and the key just generated
  // (first start in dev mode) until the file holds it too.
  auto key_entries = load_api_keys(config.api_keys_file());
  if (!key_entries) return std::unexpected(key_entries.error());
  if (new_api_key) key_entries->push_back(dev_api_key_entry(*new_api_key, clock));
  server::SharedApiKeys api_keys(server::ApiKeyTable(std::move(*key_entries)));
  ApiKeyReloader api_key_reloader(config.api_keys_file(), api_keys);

  // With Redis, every epoch bump (and logout scope "all") is also written
  // there and published, so resource services drop the subject's cached
  // epoch at once.
  std::unique_ptr<RedisEpochPublisher> publisher;
  if (config.redis) publisher = std::make_unique<RedisEpochPublisher>(*config.redis);
  // With an outbox the bumps reach Redis through it (retried until Redis
  // takes them); without one (a store that has none), at once from the
  // service, and a failure is only logged.
  std::unique_ptr<RedisEpochConsumer> redis_consumer;
  std::vector<EventConsumer*> consumers;
  if (outbox != nullptr && publisher) {
    redis_consumer = std::make_unique<RedisEpochConsumer>(*publisher);
    consumers.push_back(redis_consumer.get());
  }
  // One consumer per webhook endpoint: each paced on its own.
  std::vector<std::unique_ptr<LoggedWebhook>> webhooks;
  if (!config.webhook_urls.empty() && outbox == nullptr)
    return fail(ErrorCode::config_invalid,
                "webhook_urls: the store has no outbox (events cannot be delivered)");
  for (const std::string& url : config.webhook_urls) {
    webhooks.push_back(std::make_unique<LoggedWebhook>(
        WebhookEndpoint{.url = url, .secret = *config.webhook_secret}, clock));
    consumers.push_back(webhooks.back().get());
  }

  std::unique_ptr<RedisSharedCounts> shared_limits;
  if (config.redis && config.rate_limit_shared && config.server.rate_limits.auth_failures.enabled())
    shared_limits = std::make_unique<RedisSharedCounts>(*config.redis, clock);

  auto service = SessionService::create({.store = **store,
                                         .lookup = *lookup,
                                         .cipher = *cipher,
                                         .keys = keys,
                                         .clock = clock,
                                         .random = random,
                                         .audit = front,
                                         .epochs = outbox != nullptr ? nullptr : publisher.get()},
                                        config.policy);
  if (!service) return std::unexpected(service.error());

  // Upstream identity providers: back-channel logout and the liveness refresh.
  std::unique_ptr<ProviderDirectory> providers;
  if (!config.upstream_providers.empty()) {
    if (!(*store)->keeps_upstream_links())
      return fail(ErrorCode::config_invalid,
                  "upstream_providers: the store keeps no upstream links");
    auto list = load_upstream_providers(config.upstream_providers);
    if (!list) return std::unexpected(list.error());
    providers = std::make_unique<ProviderDirectory>(std::move(*list), clock);
    for (const Error& e : providers->discover_all())
      log_event(spdlog::level::warn, "upstream_discovery_failed",
                {{"code", to_string(e.code)}, {"detail", e.detail}});
  }

  // The SSF transmitter: streams in the data dir, SETs through the outbox.
  SsfStreams ssf_live;
  std::unique_ptr<FileSsfStreamStore> ssf_streams;
  if (config.ssf) {
    if (keys.get()->active()->is_symmetric())
      return fail(ErrorCode::config_invalid,
                  "ssf: the active signing key is HS256; receivers verify SETs through the JWKS, "
                  "which holds only asymmetric keys (signing_alg = RS256, then keys rotate)");
    if (outbox == nullptr)
      return fail(ErrorCode::config_invalid,
                  "ssf: the store has no outbox (events cannot be sent)");
    auto opened_streams =
        FileSsfStreamStore::open(config.ssf_streams_file(), ssf_live, clock, random);
    if (!opened_streams) return std::unexpected(opened_streams.error());
    ssf_streams = std::move(*opened_streams);
  }

  auto server =
      server::Server::create(config.server, server::ServerDeps{.service = **service,
                                                               .keys = keys,
                                                               .store = **store,
                                                               .clock = clock,
                                                               .metrics = metrics,
                                                               .on_reload =
                                                                   [&reloader, &api_key_reloader] {
                                                                     reloader.check(true);
                                                                     api_key_reloader.check(true);
                                                                   },
                                                               .api_keys = &api_keys,
                                                               .shared_limits = shared_limits.get(),
                                                               .upstream = providers.get(),
                                                               .ssf = ssf_streams.get()});
  if (!server) return std::unexpected(server.error());
  const std::uint16_t port = (*server)->port();

  if (new_api_key) {
    // Stored only now that the port is ours: a start that failed earlier
    // (the port taken) left no hash of a key nobody saw, so the next start
    // generates and shows one.
    if (auto s = store_new_api_key(config, *new_api_key, clock); !s)
      return std::unexpected(s.error());
    // The one place a secret is printed: the dev mode's first start.
    std::cout << dev_banner(new_api_key->key, config, port) << std::endl;
  }
  // After the banner: whoever waits for the ready file may read it at once.
  if (config.ready_file) {
    if (auto s = write_private_file(*config.ready_file, fmt::format("{}\n", port)); !s)
      return fail(ErrorCode::config_invalid, fmt::format("ready_file: {}", s.error().detail));
  }
  log_event(spdlog::level::info, "listening",
            {{"host", config.server.host},
             {"port", port},
             {"mode", config.mode == Mode::dev ? "dev" : "production"},
             {"store", config.store_url_for_logs()},
             {"active_kid", keys.get()->active()->kid()}});
  if (auto warning = plaintext_listener_warning(config, port))
    log_event(spdlog::level::warn, "plaintext_listener", {{"detail", *warning}});

  // SETs name the authority as it is reached: public_url, or in dev mode on
  // port 0 the address it is listening on.
  std::unique_ptr<SsfPushConsumer> ssf_consumer;
  if (ssf_streams) {
    const std::string issuer =
        config.server.public_base_from_host
            ? fmt::format("{}://{}:{}{}", config.server.public_scheme, config.server.public_host,
                          port, config.server.public_path)
            : config.server.public_base;
    ssf_consumer = std::make_unique<SsfPushConsumer>(ssf_live, keys, issuer, clock);
    ssf_consumer->on_refused = [](const SsfStream& s, const Event& e, unsigned status) {
      log_event(spdlog::level::warn, "ssf_set_refused",
                {{"stream_id", s.id}, {"event_id", e.id()}, {"status", status}});
    };
    consumers.push_back(ssf_consumer.get());
  }
  std::unique_ptr<OutboxDispatcher> dispatcher;
  if (outbox != nullptr) {
    dispatcher = std::make_unique<OutboxDispatcher>(
        *outbox, consumers, OutboxOptions{}, clock,
        [&metrics](const DispatchReport& r) { metrics.observe_dispatch(r); });
    outbox_audit->attach(dispatcher.get());
  }
  {
    Housekeeper housekeeper(config, reloader, api_key_reloader, **service,
                            outbox != nullptr ? nullptr : publisher.get(), ssf_streams.get());
    std::optional<UpstreamLoop> upstream_loop;
    if (providers)
      upstream_loop.emplace(**store, *cipher, *providers, clock, config.upstream_refresh);
    (*server)->run();
    block_stop_signals();
  }
  if (outbox_audit) outbox_audit->attach(nullptr);
  dispatcher.reset();  // events not delivered yet wait in the store for the next start
  log_event(spdlog::level::info, "stopped");
  return {};
}

}  // namespace tessera::cli
