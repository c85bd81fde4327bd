// ThreadCallQueue: the calls other threads (and signal handlers) hand to the reactor thread.
// A lock-free multi-producer, single-consumer queue (Vyukov's intrusive MPSC list): enqueueing
// is one atomic exchange and one store, so it is safe from any thread and from a signal handler
// as long as the node was allocated beforehand (PreparedCall).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <vector>

#include "daemonkit/core/log_sink.h"

namespace daemonkit {

namespace detail {

struct CallNode {
  std::atomic<CallNode*> next{nullptr};
  std::function<void()> fn;
  // Set for a PreparedCall's node (owned by the caller, never deleted by the queue); null for
  // a node the queue allocated and deletes after running.
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

  // Any thread. Allocates the node (so not from a signal handler).
  void push(std::function<void()> fn);
  // Any thread or signal handler. Returns false if the call was already queued.
  bool push(PreparedCall& call) noexcept;

  // Consumer thread only. Takes every call queued now, then runs them in FIFO order; calls
  // they queue run on a later batch (Twisted's rule). A call throwing a std::exception is
  // logged ("while calling from thread") and the rest still run. Returns how many ran.
  std::size_t run_batch(const LogSink& log);

  // Consumer thread only: whether a call is visibly queued.
  [[nodiscard]] bool empty() const;

 private:
  void enqueue(detail::CallNode* node) noexcept;
  detail::CallNode* dequeue() noexcept;

  // Producers exchange head_; the consumer owns tail_. stub_ keeps the list never empty.
  alignas(64) std::atomic<detail::CallNode*> head_;
  alignas(64) detail::CallNode* tail_;
  detail::CallNode stub_;
  std::vector<detail::CallNode*> batch_;
};

}  // namespace daemonkit
