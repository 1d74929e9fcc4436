// The store workers: a bounded pool of threads that run the handlers which
// touch the store, so that the io threads never wait on a disk, a lock or a
// database round trip (docs/http.md "Store workers").
//
// Why threads and not an asynchronous store: the stores are synchronous
// ports (SQLite is a library call; group commit already parks many callers
// on one fsync), and a pool gives them what they need to batch — many
// writers waiting at once — while the event loop keeps serving JWKS,
// /healthz and /metrics. Bounded twice: `threads` run at once and at most
// `queue` wait; a full queue is refused at once (the caller answers 503
// `overloaded` with Retry-After), never queued without bound.
//
// No Boost here: a job posts its own completion back to its connection.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera::server {

class StoreWorkers {
 public:
  using Job = std::move_only_function<void()>;

  // threads == 0: no pool; try_run() then always refuses (the server runs
  // everything inline and never asks).
  StoreWorkers(std::size_t threads, std::size_t queue);
  ~StoreWorkers();  // stop()
  StoreWorkers(const StoreWorkers&) = delete;
  StoreWorkers& operator=(const StoreWorkers&) = delete;

  [[nodiscard]] bool enabled() const noexcept { return !threads_.empty(); }
  // Queues `job` unless the queue is full or the pool stopped; false → the
  // job was not taken (and is destroyed by the caller).
  [[nodiscard]] bool try_run(Job& job);
  // Lets running jobs finish, drops the ones not started (their
  // connections close unanswered: the server is going away), joins.
  void stop() noexcept;

 private:
  void work();

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tessera::server
