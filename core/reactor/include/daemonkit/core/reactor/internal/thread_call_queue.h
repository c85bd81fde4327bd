// ThreadCallQueue: the calls other threads and signal handlers hand to the reactor thread.
// A bounded ring of preallocated slots, each holding one InlineCall (Vyukov's bounded MPMC queue,
// used with one consumer): pushing is a compare-and-swap, a placement-new and a store, with no
// lock, no allocation and nothing that throws, so it is async-signal-safe. Beside it, a lane
// of PreparedCalls: calls allocated by their owner, which coalesce and which a full ring cannot
// refuse.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/reactor/internal/inline_call.h"

namespace daemonkit::core {

namespace detail {

struct CallNode {
  std::atomic<CallNode*> next{nullptr};
  std::function<void()> fn;
  // The owning PreparedCall's "queued" flag.
  std::atomic<bool>* queued = nullptr;
};

}  // namespace detail

// A call allocated up front, so that posting it needs no allocation and never finds the queue
// full: async-signal-safe. Posting it while it is already queued does nothing (the posts
// coalesce), which suits "something changed, look again" notifications from a signal handler.
// It must outlive the queue's use of it: do not destroy it while queued.
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
  // A slot is one cache line: its sequence number and an InlineCall of this many bytes. 48 holds
  // a lambda capturing six pointers, or a std::function, or a pointer and a std::string.
  static constexpr std::size_t kInlineBytes = 48;
  using Call = InlineCall<kInlineBytes>;
  static constexpr std::size_t kDefaultCapacity = 4096;

  // `capacity` is rounded up to a power of two (at least 2). All slots are allocated here, as
  // zeroed memory that nothing writes until a call uses a slot: a ring of fresh pages costs no
  // page fault and no resident memory until then (the default 256 KiB used to cost about
  // 0.8 ms of faults at every start, and stayed resident in an idle daemon).
  explicit ThreadCallQueue(std::size_t capacity = kDefaultCapacity);
  // Destroys the calls still queued without running them.
  ~ThreadCallQueue();
  ThreadCallQueue(const ThreadCallQueue&) = delete;
  ThreadCallQueue& operator=(const ThreadCallQueue&) = delete;

  // Any thread or signal handler; lock-free, allocates nothing, never blocks. False when
  // capacity() calls wait already (nothing is queued then); a thread may try again once the
  // consumer has run a batch. Calls pushed by one thread run in the order pushed; calls pushed
  // by different threads run in the order they claimed their slots. Inline: it is the hot
  // path of call_from_thread.
  template <typename F>
  [[nodiscard]] bool try_push(F&& fn) noexcept {
    std::size_t pos = enqueue_pos_.load(std::memory_order_relaxed);
    Slot* slot;
    for (;;) {
      slot = &slots_[pos & mask_];
      // Acquire: the consumer's destruction of the slot's previous call happens before we
      // build ours in its place.
      const std::size_t seq = sequence(*slot, pos, std::memory_order_acquire);
      const auto lag = static_cast<std::ptrdiff_t>(seq - pos);
      if (lag == 0) {
        if (enqueue_pos_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
      } else if (lag < 0) {
        return false;  // the slot still holds the call from one lap ago: full
      } else {
        pos = enqueue_pos_.load(std::memory_order_relaxed);
      }
    }
    ::new (static_cast<void*>(slot->call)) Call(std::forward<F>(fn));
    // seq_cst, not just release: this store and the Waker's pending flag form a Dekker pair
    // with the consumer's clear-then-look (see ready()).
    set_sequence(*slot, pos, pos + 1, std::memory_order_seq_cst);
    return true;
  }

  // Any thread or signal handler. Returns false if the call was already queued.
  bool push(PreparedCall& call) noexcept;

  // Consumer thread only. Takes the calls queued now, then runs them: the prepared calls first,
  // then the ring's, each lane in FIFO order. Calls they queue run in a later batch (Twisted's
  // rule). A call throwing a std::exception is logged ("while calling from thread") and the
  // rest still run; anything else propagates, and the calls after it stay queued. Returns how
  // many ran.
  // Inline: every turn of the loop asks, and almost every time nothing waits.
  std::size_t run_batch(const LogSink& log) { return ready() ? run_ready_batch(log) : 0; }

  // Consumer thread only: whether a call waits, published, at the head of either lane.
  // Its loads are seq_cst because they are the consumer's half of a Dekker pair. A producer
  // publishes (seq_cst store) and then Waker::wake() loads the pending flag (seq_cst); the
  // consumer, about to block, does Waker::clear() (seq_cst store) and then ready(). In the
  // single total order of seq_cst operations either the consumer's look follows the publish
  // (ready() sees the call) or the producer's load follows the clear (wake() finds the flag
  // clear and writes the eventfd); perhaps both, never neither: no wake-up is lost. A slot
  // claimed but not yet published is not ready: its producer's wake() follows its publish, so
  // the same argument covers it, and the calls behind it wait for it anyway (FIFO).
  [[nodiscard]] bool ready() const noexcept {
    if (prepared_ready()) return true;
    const Slot& slot = slots_[dequeue_pos_ & mask_];
    return sequence(slot, dequeue_pos_, std::memory_order_seq_cst) == dequeue_pos_ + 1;
  }
  // Consumer thread only: whether no call is queued or being queued in either lane.
  [[nodiscard]] bool empty() const noexcept;

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  // Trivial, so zeroed memory is a ring of free slots (an implicit-lifetime type: calloc
  // creates them). The sequence is pos when the slot is free for the producer claiming position
  // pos, pos + 1 once it holds the call pushed at pos; it is stored less the slot's index, so
  // that 0 means "free for the first lap". The call lives in `call` from its push until the
  // consumer has run it.
  struct alignas(64) Slot {
    std::size_t sequence_less_index;
    alignas(Call) std::byte call[sizeof(Call)];
  };
  static_assert(sizeof(Slot) == 64, "a ring slot should be exactly one cache line");
  static_assert(std::is_trivial_v<Slot>, "zeroed memory must be a ring of free slots");

  // `pos` is any position that maps to the slot (its low bits are the slot's index).
  std::size_t sequence(const Slot& slot, std::size_t pos, std::memory_order order) const noexcept {
    // atomic_ref has no const form in C++20; a load does not write.
    return std::atomic_ref<std::size_t>(const_cast<Slot&>(slot).sequence_less_index).load(order) +
           (pos & mask_);
  }
  void set_sequence(Slot& slot, std::size_t pos, std::size_t value,
                    std::memory_order order) noexcept {
    std::atomic_ref<std::size_t>(slot.sequence_less_index).store(value - (pos & mask_), order);
  }
  static Call& call_in(Slot& slot) noexcept {
    return *std::launder(reinterpret_cast<Call*>(slot.call));
  }
  struct FreeRing {
    void operator()(void* memory) const noexcept { std::free(memory); }
  };

  void enqueue(detail::CallNode* node) noexcept;
  detail::CallNode* dequeue() noexcept;
  bool prepared_ready() const noexcept {
    const detail::CallNode* tail = tail_;
    const detail::CallNode* next = tail->next.load(std::memory_order_seq_cst);
    if (tail == &stub_) return next != nullptr;
    // A real node at the tail is queued; dequeue() hands it out unless a push behind it is half
    // done, which errs towards "ready": the loop polls once more rather than sleep.
    return true;
  }
  std::size_t run_ready_batch(const LogSink& log);

  // Ring. Producers share enqueue_pos_; the consumer owns dequeue_pos_. Separate cache lines:
  // producers bouncing one must not evict the other.
  const std::size_t mask_;
  const std::unique_ptr<void, FreeRing> ring_memory_;  // calloc's block, slots_ inside it
  Slot* const slots_;
  alignas(64) std::atomic<std::size_t> enqueue_pos_{0};
  alignas(64) std::size_t dequeue_pos_ = 0;

  // Prepared lane (Vyukov's intrusive MPSC list): producers exchange head_; the consumer owns
  // tail_; stub_ keeps the list never empty.
  alignas(64) std::atomic<detail::CallNode*> head_;
  alignas(64) detail::CallNode* tail_;
  detail::CallNode stub_;
  std::vector<detail::CallNode*> batch_;
};

}  // namespace daemonkit::core
