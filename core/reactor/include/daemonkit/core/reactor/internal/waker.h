// Waker: wakes the reactor's epoll_wait from another thread or a signal handler.
// An eventfd plus one pending flag (libuv's uv_async design): many wake() calls cost one write
// until the reactor has caught up, and a wake() that finds the flag set is a single atomic load.
#pragma once

#include <atomic>
#include <cstdint>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class Waker {
 public:
  explicit Waker(sys::Syscalls& sys) : sys_(sys) {}
  ~Waker() { close(); }
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  // Creates the eventfd (EFD_CLOEXEC | EFD_NONBLOCK), closing any previous one first: this is
  // also how the reactor gets a fresh one in the daemon after daemonizing. Not concurrent with
  // wake().
  [[nodiscard]] sys::Result<void> open();
  // Closes the eventfd; wake() then does nothing. Not concurrent with wake().
  void close();
  [[nodiscard]] int fd() const { return fd_.load(std::memory_order_relaxed); }

  // Any thread, and async-signal-safe: atomics and at most one write(2) through Syscalls
  // (RealSyscalls::write is a bare write plus errno capture, and allocates nothing); errno is
  // preserved for the interrupted code. EAGAIN (counter full) means a wake-up is pending
  // anyway; other errors are ignored because there is no one to tell from a signal handler.
  void wake() noexcept {
    // The fast path, inline: a wake-up is already owed. seq_cst pairs with clear() and with
    // the publication of whatever the caller announced, so a caller that sees "pending" knows
    // the reactor has yet to look.
    if (pending_.load(std::memory_order_seq_cst)) return;
    wake_slow();
  }

  // Reactor thread: empties the eventfd so epoll stops reporting it. Leaves the pending flag
  // alone: while it is set, the reactor owes a look at what the wakers announce, and wake()
  // stays a single load, however long the reactor takes.
  void drain();
  // Reactor thread: whether a wake-up is owed.
  [[nodiscard]] bool pending() const { return pending_.load(std::memory_order_seq_cst); }
  // Reactor thread, right before it blocks: wake() writes again from now on. Look at the
  // sources once more afterwards (ThreadCallQueue::ready explains the ordering): whatever was
  // announced before this call is visible then, or its wake() saw the flag clear and wrote.
  void clear() { pending_.store(false, std::memory_order_seq_cst); }

  // How many times wake() actually wrote to the eventfd; the difference to the calls made is
  // what coalescing saved. Relaxed: for tests and statistics.
  [[nodiscard]] std::uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }

 private:
  void wake_slow() noexcept;

  sys::Syscalls& sys_;
  std::atomic<int> fd_{-1};
  std::atomic<bool> pending_{false};
  std::atomic<std::uint64_t> writes_{0};
};

}  // namespace daemonkit::core
