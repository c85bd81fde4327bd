// ThreadPool: a small pool for blocking work the reactor thread must not do (Twisted's
// callInThread). Threads start lazily, up to a size hint; stop() finishes queued work and joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace daemonkit::core {

class ThreadPool {
 public:
  // `report` receives the message of a call that threw, on the pool thread that ran it.
  explicit ThreadPool(std::function<void(std::string)> report, std::size_t max_threads = 4);
  ~ThreadPool() { stop(); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs fn on a pool thread. Returns false (and drops fn) once the pool is stopped.
  bool call(std::function<void()> fn);
  // The most threads the pool will start (at least 1). Threads already running stay.
  void set_max_threads(std::size_t n);
  // Runs what is queued, then joins every thread. Idempotent; the pool stays stopped.
  void stop();

  [[nodiscard]] std::size_t threads() const;
  [[nodiscard]] bool stopped() const;

 private:
  void work();

  std::function<void(std::string)> report_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t max_threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace daemonkit::core
