// ThreadCallQueue: the calls other threads (and signal handlers) hand to the reactor thread.
// Two lanes. Ordinary calls go into a vector under a mutex that the consumer swaps out once per
// batch: no allocation per call in steady state (a per-call node cost 10x in the benchmark,
// from cross-thread malloc/free). Prepared calls, which signal handlers post, go through a
// lock-free intrusive MPSC list (Vyukov's): one atomic exchange and one store, no lock, no
// allocation, so async-signal-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "daemonkit/core/log_sink.h"

namespace daemonkit {

namespace detail {

struct CallNode {
  std::atomic<CallNode*> next{nullptr};
  std::function<void()> fn;
  // The owning PreparedCall's "queued" flag.
  std::atomic<bool>* queued = nullptr;
};

}  // namespace detail

// A call allocated up front, so that posting it needs no allocation: async-signal-safe. Posting
// it while it is already queued does nothing (the posts coalesce). It must outlive the queue's
// use of it: do not destroy it while queued.
class PreparedCall {
 public:
  explicit PreparedCall(std::function<void()> fn) {
    node_.fn = std::move(fn);
    node_.queued = &queued_;
  }
  PreparedCall(const PreparedCall&) = delete;
  PreparedCall& operator=(const PreparedCall&) = delete;

  [[nodiscard]] bool queued() const { return queued_.load(std::memory_order_acquire); }

 private:
  friend class ThreadCallQueue;
  detail::CallNode node_;
  std::atomic<bool> queued_{false};
};

class ThreadCallQueue {
 public:
  ThreadCallQueue();
  ~ThreadCallQueue();
  ThreadCallQueue(const ThreadCallQueue&) = delete;
  ThreadCallQueue& operator=(const ThreadCallQueue&) = delete;

  // Any thread; takes a mutex (so not from a signal handler). Inline: it is the hot path of
  // call_from_thread.
  void push(std::function<void()>&& fn) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(fn));
  }
  // Any thread or signal handler. Returns false if the call was already queued.
  bool push(PreparedCall& call) noexcept;

  // Consumer thread only. Takes every call queued now, then runs them: the prepared calls
  // first, then the ordinary ones, each lane in FIFO order. Calls they queue run on a later
  // batch (Twisted's rule). A call throwing a std::exception is logged ("while calling from
  // thread") and the rest still run. Returns how many ran.
  std::size_t run_batch(const LogSink& log);

  // Consumer thread only: whether a call is visibly queued.
  [[nodiscard]] bool empty() const;

 private:
  void enqueue(detail::CallNode* node) noexcept;
  detail::CallNode* dequeue() noexcept;

  // Prepared lane: producers exchange head_; the consumer owns tail_; stub_ keeps the list
  // never empty.
  alignas(64) std::atomic<detail::CallNode*> head_;
  alignas(64) detail::CallNode* tail_;
  detail::CallNode stub_;
  std::vector<detail::CallNode*> batch_;

  // Ordinary lane. `calls_` under the mutex; `running_` is the consumer's, swapped in and out
  // so both vectors keep their capacity.
  alignas(64) mutable std::mutex mutex_;
  std::vector<std::function<void()>> calls_;
  std::vector<std::function<void()>> running_;
};

}  // namespace daemonkit
