#include "server/store_workers.hpp"

#include "server/routes.hpp"

namespace tessera::server {

StoreWorkers::StoreWorkers(std::size_t threads, std::size_t queue) : capacity_(queue) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

StoreWorkers::~StoreWorkers() {
  stop();
}

bool StoreWorkers::try_run(Job& job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || threads_.empty()) return false;
    if (jobs_.size() >= capacity_) return false;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

void StoreWorkers::stop() noexcept {
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    dropped.swap(jobs_);
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  dropped.clear();  // outside the lock: a job's captures may take time to go
}

void StoreWorkers::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (const std::exception& e) {
      log_event(LogLevel::error, "store_worker_exception", e.what());
    } catch (...) {
      log_event(LogLevel::error, "store_worker_exception", "not a std::exception");
    }
  }
}

}  // namespace tessera::server
