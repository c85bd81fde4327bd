// DelayedCall: the handle call_later returns (Twisted's IDelayedCall).
// The handle is shared with the timer queue; cancelling or changing a call that already ran or
// was cancelled is an error value, never a silent no-op.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/reactor/reactor_error.h"

namespace daemonkit::core {

class TimerQueue;

namespace detail {

// One scheduled call. `time` is where it sits in the heap; `extra` is a postponement not yet
// applied to the heap (Twisted's delayed_time), so that pushing a call later costs nothing
// until it reaches the top.
struct TimerEntry {
  TimePoint time{};
  Duration extra{0};
  std::uint64_t seq = 0;  // schedule order: breaks ties between equal times, so firing is FIFO
  std::function<void()> fn;
  bool called = false;
  bool cancelled = false;
  std::ptrdiff_t heap_index = -1;  // -1 while in the queue's list of new calls
  TimerQueue* queue = nullptr;     // null once the queue is gone
};

}  // namespace detail

class DelayedCall {
 public:
  // An empty handle: not active, and every change fails with kAlreadyCancelled.
  DelayedCall() = default;

  // Drops the function (and what it captured). Fails if the call ran or was cancelled.
  ReactorResult<void> cancel();
  // Re-targets the call to now + from_now. Fails if the call ran or was cancelled.
  ReactorResult<void> reset(Duration from_now);
  // Moves the call by `by` (may be negative). Fails if the call ran or was cancelled.
  ReactorResult<void> delay(Duration by);

  // False once the call ran or was cancelled.
  [[nodiscard]] bool active() const;
  [[nodiscard]] bool called() const;
  [[nodiscard]] bool cancelled() const;
  // When the call is due, including any pending delay (Twisted's getTime()).
  [[nodiscard]] TimePoint time() const;

 private:
  friend class TimerQueue;
  explicit DelayedCall(std::shared_ptr<detail::TimerEntry> entry) : entry_(std::move(entry)) {}
  std::shared_ptr<detail::TimerEntry> entry_;
};

}  // namespace daemonkit::core
