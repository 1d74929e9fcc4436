#include "tessera/redis_counters.hpp"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <vector>

namespace tessera {

namespace {

timeval to_tv(std::chrono::milliseconds ms) {
  return {.tv_sec = static_cast<time_t>(ms.count() / 1000),
          .tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace

RedisWindowCounters::RedisWindowCounters(RedisOptions redis, Options options, const Clock& clock)
    : redis_(std::move(redis)), options_(std::move(options)), clock_(clock) {
  if (options_.window.count() < 1) options_.window = std::chrono::seconds{1};
  thread_ = std::thread([this] { run(); });
}

RedisWindowCounters::~RedisWindowCounters() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (context_ != nullptr) redisFree(static_cast<redisContext*>(context_));
}

std::int64_t RedisWindowCounters::window_of(UnixMillis t) const noexcept {
  return t.time_since_epoch().count() / (options_.window.count() * 1000);
}

void RedisWindowCounters::add(std::string_view key) noexcept {
  try {
    std::lock_guard lock(mu_);
    const std::int64_t w = window_of(clock_.now_ms());
    if (w != pending_window_) {
      pending_.clear();  // counts of a window that is over count for nothing
      pending_window_ = w;
    }
    if (pending_.size() >= options_.max_pending && !pending_.contains(std::string(key))) return;
    ++pending_[std::string(key)];
  } catch (...) {  // out of memory: the count is lost, the caller goes on
  }
}

std::optional<RedisWindowCounters::Total> RedisWindowCounters::total(
    std::string_view key) const noexcept {
  const UnixMillis now = clock_.now_ms();
  const std::int64_t w = window_of(now);
  std::lock_guard lock(mu_);
  const auto it = totals_.find(std::string(key));
  if (it == totals_.end() || it->second.first != w) return std::nullopt;
  const auto window_ms = options_.window.count() * 1000;
  return Total{it->second.second, UnixMillis(std::chrono::milliseconds((w + 1) * window_ms))};
}

void RedisWindowCounters::flush() {
  std::unordered_map<std::string, std::uint64_t> batch;
  std::int64_t w = 0;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
    w = pending_window_;
  }
  if (batch.empty()) return;
  std::lock_guard flushing(flush_mu_);
  auto* c = static_cast<redisContext*>(context_);
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) redisFree(c);
    c = redisConnectWithTimeout(redis_.host.c_str(), redis_.port, to_tv(redis_.timeout));
    context_ = c;
    if (c == nullptr || c->err != 0) {
      failures_.fetch_add(1);
      return;
    }
    redisSetTimeout(c, to_tv(redis_.timeout));
  }
  const std::string ttl_ms = std::to_string(options_.window.count() * 2000);
  std::vector<std::string> names;
  names.reserve(batch.size());
  for (const auto& [key, n] : batch) {
    names.push_back(fmt::format("{}{}:{}", options_.prefix, key, w));
    const std::string by = std::to_string(n);
    const char* incr[] = {"INCRBY", names.back().c_str(), by.c_str()};
    const std::size_t incr_len[] = {6, names.back().size(), by.size()};
    redisAppendCommandArgv(c, 3, incr, incr_len);
    const char* expire[] = {"PEXPIRE", names.back().c_str(), ttl_ms.c_str()};
    const std::size_t expire_len[] = {7, names.back().size(), ttl_ms.size()};
    redisAppendCommandArgv(c, 3, expire, expire_len);
  }
  std::vector<std::pair<std::string, std::uint64_t>> heard;
  auto key_it = batch.begin();
  for (std::size_t i = 0; i < batch.size(); ++i, ++key_it) {
    void* incr = nullptr;
    void* expire = nullptr;
    if (redisGetReply(c, &incr) != REDIS_OK || redisGetReply(c, &expire) != REDIS_OK) {
      if (incr != nullptr) freeReplyObject(incr);
      failures_.fetch_add(1);
      return;  // c->err is set: reconnected at the next flush
    }
    const auto* r = static_cast<redisReply*>(incr);
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
      heard.emplace_back(key_it->first, static_cast<std::uint64_t>(r->integer));
    freeReplyObject(incr);
    freeReplyObject(expire);
  }
  std::lock_guard lock(mu_);
  std::erase_if(totals_, [&](const auto& e) { return e.second.first != w; });
  for (auto& [key, count] : heard) totals_[std::move(key)] = {w, count};
}

void RedisWindowCounters::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, options_.flush_interval);
    if (stop_) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace tessera
