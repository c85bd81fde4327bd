// TimerQueue: the reactor's timed calls, sans I/O (Twisted's _pendingTimedCalls machinery).
// A binary heap with lazy cancellation and lazy postponement, Twisted's compaction rule, and its
// poll-timeout rule; time comes from an injected clock so tests drive it by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/reactor/delayed_call.h"

namespace daemonkit::core {

class TimerQueue {
 public:
  // The longest poll timeout: 2147483 s is the largest whole number of seconds whose
  // millisecond count fits epoll_wait's signed 32-bit timeout (Twisted #9389).
  static constexpr Duration kMaxTimeout = std::chrono::seconds(2147483);
  // Compaction: rebuild the heap once more than this many cancelled calls sit in it and they
  // are more than half of it (Twisted's rule).
  static constexpr std::size_t kCompactionThreshold = 50;

  TimerQueue(std::function<TimePoint()> clock, LogSink log);
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Schedules fn at now + delay (a negative delay counts as 0). The call enters the heap at the
  // next timeout() or run_due(), so a call scheduled by a timed call never runs in the same pass.
  DelayedCall call_later(Duration delay, std::function<void()> fn);

  // How long the loop may sleep: none with no active calls, else the time to the earliest active
  // call, never negative, at most kMaxTimeout. Exact: cancelled calls and pending postponements
  // at the top of the heap are settled first, so the loop never wakes early for nothing.
  [[nodiscard]] std::optional<Duration> timeout() {
    if (nothing_scheduled()) return std::nullopt;
    return settled_timeout();
  }

  // Runs every call due at the time read once on entry, in (due time, schedule order) order.
  // A call that throws a std::exception is logged ("while handling timed call") and the rest
  // still run. Returns how many calls ran.
  std::size_t run_due() { return nothing_scheduled() ? 0 : run_due_calls(); }

  // Active calls, in no particular order (Twisted's getDelayedCalls()).
  [[nodiscard]] std::vector<DelayedCall> pending() const;
  // Entries physically in the heap, cancelled ones included (for the compaction rule's tests).
  [[nodiscard]] std::size_t heap_size() const { return heap_.size(); }

 private:
  friend class DelayedCall;
  using Entry = detail::TimerEntry;
  using EntryPtr = std::shared_ptr<Entry>;

  [[nodiscard]] TimePoint now() const { return clock_(); }
  void on_cancel(Entry& entry);
  void on_sooner(Entry& entry);
  // Inline, as the two above: a loop that serves only I/O asks on every turn.
  [[nodiscard]] bool nothing_scheduled() const { return heap_.empty() && new_calls_.empty(); }
  std::optional<Duration> settled_timeout();
  std::size_t run_due_calls();
  void insert_new();
  void push(EntryPtr entry);
  EntryPtr pop_top();
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void swap_at(std::size_t a, std::size_t b);
  void maybe_compact();

  std::function<TimePoint()> clock_;
  LogSink log_;
  std::vector<EntryPtr> heap_;
  std::vector<EntryPtr> new_calls_;
  std::size_t cancellations_ = 0;  // cancelled entries still in heap_
  std::uint64_t next_seq_ = 0;
};

}  // namespace daemonkit::core
