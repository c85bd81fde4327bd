#include "daemonkit/core/thread_call_queue.h"

#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit {

ThreadCallQueue::ThreadCallQueue() : head_(&stub_), tail_(&stub_) {}

ThreadCallQueue::~ThreadCallQueue() {
  while (detail::CallNode* node = dequeue()) node->queued->store(false, std::memory_order_release);
}

void ThreadCallQueue::enqueue(detail::CallNode* node) noexcept {
  node->next.store(nullptr, std::memory_order_relaxed);
  // seq_cst on both: the Waker's pending flag is read after this (Dekker-style), and the
  // consumer clears that flag before it looks here; one of the two must see the other.
  detail::CallNode* prev = head_.exchange(node, std::memory_order_seq_cst);
  // Between the exchange and this store the list is cut at prev: a consumer stops there and
  // finds the rest on a later batch, after this producer's wake-up.
  prev->next.store(node, std::memory_order_seq_cst);
}

bool ThreadCallQueue::push(PreparedCall& call) noexcept {
  if (call.queued_.exchange(true, std::memory_order_acq_rel)) return false;
  enqueue(&call.node_);
  return true;
}

detail::CallNode* ThreadCallQueue::dequeue() noexcept {
  detail::CallNode* tail = tail_;
  detail::CallNode* next = tail->next.load(std::memory_order_seq_cst);
  if (tail == &stub_) {
    if (next == nullptr) return nullptr;
    tail_ = next;
    tail = next;
    next = next->next.load(std::memory_order_seq_cst);
  }
  if (next != nullptr) {
    tail_ = next;
    return tail;
  }
  if (tail != head_.load(std::memory_order_seq_cst)) return nullptr;  // a push is half done
  enqueue(&stub_);
  next = tail->next.load(std::memory_order_seq_cst);
  if (next != nullptr) {
    tail_ = next;
    return tail;
  }
  return nullptr;
}

bool ThreadCallQueue::empty() const {
  const detail::CallNode* tail = tail_;
  const detail::CallNode* next = tail->next.load(std::memory_order_seq_cst);
  std::lock_guard lock(mutex_);
  return tail == &stub_ && next == nullptr && calls_.empty();
}

std::size_t ThreadCallQueue::run_batch(const LogSink& log) {
  // Take both lanes before running anything: calls queued from here on wait for a later batch.
  std::vector<detail::CallNode*> prepared;
  prepared.swap(batch_);
  while (detail::CallNode* node = dequeue()) prepared.push_back(node);
  std::vector<std::function<void()>> ordinary;
  ordinary.swap(running_);
  {
    std::lock_guard lock(mutex_);
    ordinary.swap(calls_);
  }
  const std::size_t count = prepared.size() + ordinary.size();

  std::size_t next_prepared = 0;
  // Not ours to swallow (e.g. the fake kernel ending a process): release what did not run.
  struct Unwind {
    std::vector<detail::CallNode*>& nodes;
    std::size_t& next;
    ~Unwind() {
      for (; next < nodes.size(); ++next) nodes[next]->queued->store(false, std::memory_order_release);
    }
  } unwind{prepared, next_prepared};

  const auto run = [&log](const std::function<void()>& fn) {
    try {
      if (fn) fn();
    } catch (const std::exception& e) {
      if (log) log(fmt::format("while calling from thread: {}", e.what()));
    }
  };
  while (next_prepared < prepared.size()) {
    detail::CallNode* node = prepared[next_prepared++];
    // A copy, and the flag cleared before running: a post made while the call runs queues it
    // again, and the call may even destroy its own PreparedCall.
    std::function<void()> fn = node->fn;
    node->queued->store(false, std::memory_order_release);
    run(fn);
  }
  for (auto& fn : ordinary) run(fn);

  // Hand the buffers back with their capacity, unless a nested batch already did.
  ordinary.clear();
  if (running_.capacity() < ordinary.capacity()) running_.swap(ordinary);
  prepared.clear();
  if (batch_.capacity() < prepared.capacity()) batch_.swap(prepared);
  return count;
}

}  // namespace daemonkit
