#include "tessera/redis_epochs.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <mutex>
#include <vector>

namespace tessera {

namespace {

struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

timeval to_timeval(std::chrono::milliseconds ms) {
  return {.tv_sec = static_cast<time_t>(ms.count() / 1000),
          .tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

Result<Context> connect(const RedisOptions& o) {
  const timeval tv = to_timeval(o.timeout);
  Context c(redisConnectWithTimeout(o.host.c_str(), o.port, tv));
  if (!c) return fail(ErrorCode::epoch_unavailable, "redis: out of memory");
  if (c->err != 0) {
    return fail(ErrorCode::epoch_unavailable,
                fmt::format("redis {}:{}: {}", o.host, o.port, c->errstr));
  }
  redisSetTimeout(c.get(), tv);
  return c;
}

std::string epoch_key(std::string_view subject) {
  return fmt::format("sv:{}", subject);
}

std::optional<std::uint64_t> parse_u64(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_STRING) return std::nullopt;
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(r->str, r->str + r->len, v);
  if (ec != std::errc{} || p != r->str + r->len) return std::nullopt;
  return v;
}

}  // namespace

// A few blocking connections, reused; a broken one is dropped and replaced
// on next use.
class RedisPool {
 public:
  explicit RedisPool(RedisOptions o) : o_(std::move(o)) {}

  Result<Reply> command(std::initializer_list<std::string_view> args) {
    Context c;
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!c) {
      auto fresh = connect(o_);
      if (!fresh) return std::unexpected(fresh.error());
      c = std::move(*fresh);
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply r(static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
    if (!r || c->err != 0) {
      return fail(ErrorCode::epoch_unavailable,
                  fmt::format("redis: {}", c->err != 0 ? c->errstr : "no reply"));
    }
    if (r->type == REDIS_REPLY_ERROR) {
      const std::string msg(r->str, r->len);
      release(std::move(c));
      return fail(ErrorCode::epoch_unavailable, "redis: " + msg);
    }
    release(std::move(c));
    return r;
  }

 private:
  void release(Context c) {
    std::lock_guard lock(mu_);
    if (idle_.size() < o_.pool_size) idle_.push_back(std::move(c));
  }

  RedisOptions o_;
  std::mutex mu_;
  std::vector<Context> idle_;
};

Result<RedisOptions> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  if (!url.starts_with(kScheme)) {
    return fail(ErrorCode::config_invalid, "redis URL must start with redis://");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    rest = rest.substr(0, slash);
  }
  RedisOptions o;
  const auto colon = rest.rfind(':');
  o.host = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) {
    const auto port = rest.substr(colon + 1);
    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), o.port);
    if (ec != std::errc{} || p != port.data() + port.size() || o.port <= 0 || o.port > 65535) {
      return fail(ErrorCode::config_invalid, "redis URL: bad port");
    }
  }
  if (o.host.empty()) return fail(ErrorCode::config_invalid, "redis URL: no host");
  return o;
}

// ---- RedisEpochSource -------------------------------------------------------

RedisEpochSource::RedisEpochSource(RedisOptions options, verify::EpochSource* fallback)
    : options_(std::move(options)),
      fallback_(fallback),
      pool_(std::make_unique<RedisPool>(options_)) {}

RedisEpochSource::~RedisEpochSource() = default;

Result<std::uint64_t> RedisEpochSource::current(std::string_view subject) {
  const std::string key = epoch_key(subject);
  auto r = pool_->command({"MGET", key, "sv:"});
  if (!r) return std::unexpected(r.error());
  if ((*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) {
    return fail(ErrorCode::epoch_unavailable, "redis: unexpected MGET reply");
  }
  const auto own = parse_u64((*r)->element[0]);
  const std::uint64_t global = parse_u64((*r)->element[1]).value_or(0);
  if (own) return effective_epoch({.global = global, .subject = *own});
  if (fallback_ == nullptr) return effective_epoch({.global = global});
  auto fetched = fallback_->current(subject);
  if (!fetched) return fetched;
  // Write back, unless a bump wrote the key meanwhile (NX): the newer wins.
  (void)pool_->command({"SET", key, fmt::format("{}", *fetched), "NX", "EX",
                        fmt::format("{}", options_.key_ttl.count())});
  // The fallback answers an effective epoch already; the global key may
  // have moved since.
  return effective_epoch({.global = global, .subject = *fetched});
}

// ---- RedisEpochPublisher ----------------------------------------------------

RedisEpochPublisher::RedisEpochPublisher(RedisOptions options)
    : options_(std::move(options)), pool_(std::make_unique<RedisPool>(options_)) {}

RedisEpochPublisher::~RedisEpochPublisher() = default;

// The key only ever goes up: a bump delivered late (the outbox retries
// after an outage) or raced by another authority's newer one never lowers
// it. Then the subject is published.
constexpr const char* kRaiseAndPublish = R"lua(
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > current then
  if ARGV[2] == '0' then
    redis.call('SET', KEYS[1], ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  end
end
return redis.call('PUBLISH', ARGV[3], ARGV[4])
)lua";

Status RedisEpochPublisher::publish(std::string_view subject, std::uint64_t epoch) {
  const std::string value = fmt::format("{}", epoch);
  // The global key never expires (docs/distributed.md: evict the others first).
  const std::string ttl = subject.empty() ? "0" : fmt::format("{}", options_.key_ttl.count());
  const std::string key = subject.empty() ? std::string("sv:") : epoch_key(subject);
  auto r =
      pool_->command({"EVAL", kRaiseAndPublish, "1", key, value, ttl, options_.channel, subject});
  if (!r) return std::unexpected(r.error());
  return {};
}

void RedisEpochPublisher::epoch_moved(std::string_view subject, std::uint64_t epoch) noexcept {
  try {
    if (!publish(subject, epoch)) ++failures_;
  } catch (...) {  // allocation failure: the port must not throw
    ++failures_;
  }
}

// ---- RedisEpochSubscriber ---------------------------------------------------

namespace {
std::mutex g_subscriber_mu;  // guards the live context of every subscriber during shutdown
}

RedisEpochSubscriber::RedisEpochSubscriber(RedisOptions options,
                                           std::function<void(std::string_view)> on_bump,
                                           std::function<void()> on_resync)
    : options_(std::move(options)),
      on_bump_(std::move(on_bump)),
      on_resync_(std::move(on_resync)),
      thread_([this] { run(); }) {}

RedisEpochSubscriber::~RedisEpochSubscriber() {
  stop_ = true;
  {
    // Unblock a read in progress: the thread owns the context, we only shut
    // its socket down, under the lock the thread takes to free it.
    std::lock_guard lock(g_subscriber_mu);
    if (auto* c = static_cast<redisContext*>(live_context_.load())) shutdown(c->fd, SHUT_RDWR);
  }
  thread_.join();
}

void RedisEpochSubscriber::listen(redisContext* c) {
  using clock = std::chrono::steady_clock;
  auto last_heard = clock::now();
  bool pinged = false;
  while (!stop_) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(c, &raw) != REDIS_OK) return;
    if (raw == nullptr) {  // nothing buffered: wait for the socket, a while
      pollfd p{c->fd, POLLIN, 0};
      const int n = ::poll(&p, 1, 100);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
      if (n > 0) {
        if (redisBufferRead(c) != REDIS_OK) return;
        continue;
      }
      if (clock::now() - last_heard < options_.heartbeat) continue;
      if (pinged) return;  // no answer to the PING: Redis is not there
      if (redisAppendCommand(c, "PING") != REDIS_OK) return;
      for (int done = 0; !done;) {
        if (redisBufferWrite(c, &done) != REDIS_OK) return;
      }
      pinged = true;
      last_heard = clock::now();
      continue;
    }
    Reply msg(static_cast<redisReply*>(raw));
    last_heard = clock::now();
    pinged = false;  // anything heard answers the PING (a pong, or a message)
    if (msg && msg->type == REDIS_REPLY_ARRAY && msg->elements == 3 &&
        msg->element[0]->type == REDIS_REPLY_STRING &&
        std::string_view(msg->element[0]->str, msg->element[0]->len) == "message" &&
        msg->element[2]->type == REDIS_REPLY_STRING) {
      on_bump_(std::string_view(msg->element[2]->str, msg->element[2]->len));
    }
  }
}

void RedisEpochSubscriber::run() {
  auto backoff = std::chrono::milliseconds{50};
  bool first = true;
  while (!stop_) {
    auto c = connect(options_);
    if (c) {
      // The SUBSCRIBE answer within the command timeout (a stalled Redis
      // accepts connections and never answers); then poll() decides.
      Reply ok(static_cast<redisReply*>(redisCommand(
          c->get(), "SUBSCRIBE %b", options_.channel.data(), options_.channel.size())));
      if (ok && (*c)->err == 0) {
        {
          std::lock_guard lock(g_subscriber_mu);
          live_context_ = c->get();
          if (stop_) {  // the destructor ran before it could see this context
            live_context_ = nullptr;
            break;
          }
        }
        subscribed_ = true;
        if (!first) on_resync_();  // bumps may have been missed while away
        first = false;
        backoff = std::chrono::milliseconds{50};
        listen(c->get());
        if (!stop_) on_resync_();  // lost: from now on bumps may be missed
        subscribed_ = false;
        {
          std::lock_guard lock(g_subscriber_mu);
          live_context_ = nullptr;
        }
      }
    }
    for (auto waited = std::chrono::milliseconds{0}; waited < backoff && !stop_;
         waited += std::chrono::milliseconds{10}) {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds{1000});
  }
}

}  // namespace tessera
