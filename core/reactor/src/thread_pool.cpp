#include "daemonkit/core/reactor/internal/thread_pool.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace daemonkit::core {

ThreadPool::ThreadPool(std::function<void(std::string)> report, std::size_t max_threads)
    : report_(std::move(report)), max_threads_(std::max<std::size_t>(1, max_threads)) {}

bool ThreadPool::call(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (stopping_) return false;
  queue_.push_back(std::move(fn));
  if (idle_ == 0 && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { work(); });
  } else {
    lock.unlock();
    ready_.notify_one();
  }
  return true;
}

void ThreadPool::set_max_threads(std::size_t n) {
  std::lock_guard lock(mutex_);
  max_threads_ = std::max<std::size_t>(1, n);
}

void ThreadPool::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  for (auto& t : threads) t.join();
}

std::size_t ThreadPool::threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

bool ThreadPool::stopped() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void ThreadPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stopping, and nothing left to do
    std::function<void()> fn = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      fn();
    } catch (const std::exception& e) {
      if (report_) report_(std::string("Unhandled error in thread pool call: ") + e.what());
    }
    lock.lock();
  }
}

}  // namespace daemonkit::core
