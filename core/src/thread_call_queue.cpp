#include "daemonkit/core/thread_call_queue.h"

#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit {

ThreadCallQueue::ThreadCallQueue() : head_(&stub_), tail_(&stub_) {}

ThreadCallQueue::~ThreadCallQueue() {
  while (detail::CallNode* node = dequeue()) {
    if (node->queued == nullptr) {
      delete node;
    } else {
      node->queued->store(false, std::memory_order_release);
    }
  }
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

void ThreadCallQueue::push(std::function<void()> fn) {
  auto* node = new detail::CallNode;
  node->fn = std::move(fn);
  enqueue(node);
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
  return tail == &stub_ && next == nullptr;
}

std::size_t ThreadCallQueue::run_batch(const LogSink& log) {
  batch_.clear();
  while (detail::CallNode* node = dequeue()) batch_.push_back(node);
  // Swap out: a call may re-enter run_batch (it should not, but must not corrupt the batch).
  std::vector<detail::CallNode*> batch;
  batch.swap(batch_);
  const std::size_t count = batch.size();
  for (std::size_t i = 0; i < count; ++i) {
    detail::CallNode* node = batch[i];
    std::function<void()> fn;
    if (node->queued == nullptr) {
      fn = std::move(node->fn);
      delete node;
    } else {
      // Cleared before running: a post made while the call runs queues it again.
      fn = node->fn;
      node->queued->store(false, std::memory_order_release);
    }
    try {
      if (fn) fn();
    } catch (const std::exception& e) {
      if (log) log(fmt::format("while calling from thread: {}", e.what()));
    } catch (...) {
      // Not ours to swallow (e.g. the fake kernel ending a process): free the rest first.
      for (std::size_t j = i + 1; j < count; ++j) {
        if (batch[j]->queued == nullptr) {
          delete batch[j];
        } else {
          batch[j]->queued->store(false, std::memory_order_release);
        }
      }
      throw;
    }
  }
  batch.clear();
  if (batch_.capacity() < batch.capacity()) batch_.swap(batch);
  return count;
}

}  // namespace daemonkit
