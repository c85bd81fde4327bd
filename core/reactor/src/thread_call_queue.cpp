#include "daemonkit/core/reactor/internal/thread_call_queue.h"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <new>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace {

std::size_t ring_size(std::size_t capacity) {
  return std::bit_ceil(std::max<std::size_t>(2, capacity));
}

// calloc, not new: it hands out fresh pages without writing them. One line more than the ring
// so the slots can start on a cache line (calloc aligns to 16).
void* zeroed_ring(std::size_t slots, std::size_t slot_size) {
  void* memory = std::calloc(slots + 1, slot_size);
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

template <typename Slot>
Slot* first_slot(void* memory) {
  const auto address = reinterpret_cast<std::uintptr_t>(memory);
  const std::uintptr_t aligned = (address + alignof(Slot) - 1) & ~(alignof(Slot) - 1);
  return reinterpret_cast<Slot*>(aligned);
}

void run_logged(const LogSink& log, auto& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (log) log(fmt::format("while calling from thread: {}", e.what()));
  }
}

}  // namespace

ThreadCallQueue::ThreadCallQueue(std::size_t capacity)
    : mask_(ring_size(capacity) - 1),
      ring_memory_(zeroed_ring(mask_ + 1, sizeof(Slot))),
      slots_(first_slot<Slot>(ring_memory_.get())),
      head_(&stub_),
      tail_(&stub_) {}

ThreadCallQueue::~ThreadCallQueue() {
  while (detail::CallNode* node = dequeue()) node->queued->store(false, std::memory_order_release);
  // The calls still held, without running them: published ones from the consumer's position on.
  for (std::size_t pos = dequeue_pos_;
       pos - dequeue_pos_ <= mask_ &&
       sequence(slots_[pos & mask_], pos, std::memory_order_acquire) == pos + 1;
       ++pos) {
    call_in(slots_[pos & mask_]).~Call();
  }
}

// ---- Prepared lane --------------------------------------------------------------------------

void ThreadCallQueue::enqueue(detail::CallNode* node) noexcept {
  node->next.store(nullptr, std::memory_order_relaxed);
  detail::CallNode* prev = head_.exchange(node, std::memory_order_seq_cst);
  // Between the exchange and this store the list is cut at prev: a consumer stops there and
  // finds the rest on a later batch, after this producer's wake-up. seq_cst: this store is the
  // producer's half of the Dekker pair described at ready().
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

// ---- Both lanes -----------------------------------------------------------------------------

bool ThreadCallQueue::empty() const noexcept {
  return !prepared_ready() && dequeue_pos_ == enqueue_pos_.load(std::memory_order_seq_cst);
}

std::size_t ThreadCallQueue::run_ready_batch(const LogSink& log) {
  // Take both lanes' extent before running anything: calls queued from here on wait for a
  // later batch.
  std::vector<detail::CallNode*> prepared;
  prepared.swap(batch_);
  while (detail::CallNode* node = dequeue()) prepared.push_back(node);
  // The ring's extent: the calls published now, up to the first slot that is not. Any call
  // queued from here on, by a call of this batch or by another thread, claims a position at
  // or beyond it (every position before it is claimed already). Found by reading the slots, not
  // enqueue_pos_: every push writes that line, and reading it once per batch took it away
  // from the producer, whose next push then waited to get it back.
  std::size_t end = dequeue_pos_;
  while (end - dequeue_pos_ <= mask_ &&
         sequence(slots_[end & mask_], end, std::memory_order_acquire) == end + 1) {
    ++end;
  }
  std::size_t ran = 0;

  std::size_t next_prepared = 0;
  {
    // Not ours to swallow (e.g. the fake kernel ending a process): release what did not run.
    struct Unwind {
      std::vector<detail::CallNode*>& nodes;
      std::size_t& next;
      ~Unwind() {
        for (; next < nodes.size(); ++next) {
          nodes[next]->queued->store(false, std::memory_order_release);
        }
      }
    } unwind{prepared, next_prepared};
    while (next_prepared < prepared.size()) {
      detail::CallNode* node = prepared[next_prepared++];
      // A copy, and the flag cleared before running: a post made while the call runs queues it
      // again, and the call may even destroy its own PreparedCall.
      std::function<void()> fn = node->fn;
      node->queued->store(false, std::memory_order_release);
      ++ran;
      if (fn) run_logged(log, fn);
    }
  }
  prepared.clear();
  // Hand the buffer back with its capacity, unless a nested batch already did.
  if (batch_.capacity() < prepared.capacity()) batch_.swap(prepared);

  // The ring, up to `end`. The position advances before the call runs, so a batch nested
  // inside a call carries on after it (and this one stops where it did); the slot is released
  // after the call, thrown through or not.
  while (dequeue_pos_ < end) {
    const std::size_t pos = dequeue_pos_;
    Slot& slot = slots_[pos & mask_];
    dequeue_pos_ = pos + 1;
    struct Release {
      ThreadCallQueue& queue;
      Slot& slot;
      std::size_t pos;
      ~Release() {
        call_in(slot).~Call();
        // Release: the destruction above happens before the next producer builds here.
        queue.set_sequence(slot, pos, pos + queue.mask_ + 1, std::memory_order_release);
      }
    } release{*this, slot, pos};
    ++ran;
    run_logged(log, call_in(slot));
  }
  return ran;
}

}  // namespace daemonkit::core
