#include "daemonkit/core/reactor/internal/timer_queue.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace {

bool earlier(const detail::TimerEntry& a, const detail::TimerEntry& b) {
  return a.time < b.time || (a.time == b.time && a.seq < b.seq);
}

}  // namespace

// ---- DelayedCall --------------------------------------------------------------------------

ReactorResult<void> DelayedCall::cancel() {
  if (!entry_ || entry_->cancelled) return reactor_fail(ReactorErrc::kAlreadyCancelled);
  if (entry_->called) return reactor_fail(ReactorErrc::kAlreadyCalled);
  entry_->cancelled = true;
  entry_->fn = nullptr;
  if (entry_->queue != nullptr) entry_->queue->on_cancel(*entry_);
  return {};
}

ReactorResult<void> DelayedCall::reset(Duration from_now) {
  if (!entry_ || entry_->cancelled) return reactor_fail(ReactorErrc::kAlreadyCancelled);
  if (entry_->called) return reactor_fail(ReactorErrc::kAlreadyCalled);
  const TimePoint target = entry_->queue->now() + from_now;
  if (target < entry_->time) {
    entry_->extra = Duration{0};
    entry_->time = target;
    entry_->queue->on_sooner(*entry_);
  } else {
    entry_->extra = target - entry_->time;
  }
  return {};
}

ReactorResult<void> DelayedCall::delay(Duration by) {
  if (!entry_ || entry_->cancelled) return reactor_fail(ReactorErrc::kAlreadyCancelled);
  if (entry_->called) return reactor_fail(ReactorErrc::kAlreadyCalled);
  entry_->extra += by;
  if (entry_->extra < Duration{0}) {
    entry_->time += entry_->extra;
    entry_->extra = Duration{0};
    entry_->queue->on_sooner(*entry_);
  }
  return {};
}

bool DelayedCall::active() const { return entry_ && !entry_->called && !entry_->cancelled; }
bool DelayedCall::called() const { return entry_ && entry_->called; }
bool DelayedCall::cancelled() const { return entry_ && entry_->cancelled; }
TimePoint DelayedCall::time() const { return entry_ ? entry_->time + entry_->extra : TimePoint{}; }

// ---- TimerQueue ---------------------------------------------------------------------------

TimerQueue::TimerQueue(std::function<TimePoint()> clock, LogSink log)
    : clock_(std::move(clock)), log_(std::move(log)) {}

TimerQueue::~TimerQueue() {
  // Handles may outlive the queue; they then report their calls as cancelled.
  for (auto* list : {&heap_, &new_calls_}) {
    for (auto& entry : *list) {
      entry->queue = nullptr;
      entry->cancelled = true;
      entry->fn = nullptr;
    }
  }
}

DelayedCall TimerQueue::call_later(Duration delay, std::function<void()> fn) {
  auto entry = std::make_shared<Entry>();
  entry->time = now() + std::max(delay, Duration{0});
  entry->seq = next_seq_++;
  entry->fn = std::move(fn);
  entry->queue = this;
  new_calls_.push_back(entry);
  return DelayedCall(std::move(entry));
}

void TimerQueue::on_cancel(Entry& entry) {
  if (entry.heap_index >= 0) ++cancellations_;
  // A cancelled entry still in new_calls_ is dropped when the list is moved into the heap.
}

void TimerQueue::on_sooner(Entry& entry) {
  if (entry.heap_index >= 0) sift_up(static_cast<std::size_t>(entry.heap_index));
}

void TimerQueue::insert_new() {
  // Every turn of the loop asks, and almost every time nothing was added: no swap, no free.
  if (new_calls_.empty()) return;
  // Swap first: nothing here runs user code, but keep the list consistent if push throws.
  std::vector<EntryPtr> fresh;
  fresh.swap(new_calls_);
  for (auto& entry : fresh) {
    if (entry->cancelled) continue;
    // A postponement made before the call reached the heap is applied now (Twisted does the
    // same in _insertNewDelayedCalls), so the heap key is exact on entry.
    entry->time += entry->extra;
    entry->extra = Duration{0};
    push(std::move(entry));
  }
}

std::optional<Duration> TimerQueue::settled_timeout() {
  insert_new();
  // Settle the top so the answer is the earliest *active* call's real time.
  while (!heap_.empty()) {
    Entry& top = *heap_.front();
    if (top.cancelled) {
      pop_top();
      --cancellations_;
    } else if (top.extra != Duration{0}) {
      EntryPtr entry = pop_top();
      entry->time += entry->extra;
      entry->extra = Duration{0};
      push(std::move(entry));
    } else {
      break;
    }
  }
  if (heap_.empty()) return std::nullopt;
  const Duration left = heap_.front()->time - now();
  return std::clamp(left, Duration{0}, kMaxTimeout);
}

std::size_t TimerQueue::run_due_calls() {
  insert_new();
  // No timer, no clock read: a loop that serves only I/O reads the clock once per turn (for
  // its timeout), not twice.
  if (heap_.empty()) return 0;
  const TimePoint now_at_start = now();
  std::size_t ran = 0;
  while (!heap_.empty() && heap_.front()->time <= now_at_start) {
    EntryPtr entry = pop_top();
    if (entry->cancelled) {
      --cancellations_;
      continue;
    }
    if (entry->extra != Duration{0}) {
      entry->time += entry->extra;
      entry->extra = Duration{0};
      push(std::move(entry));
      continue;
    }
    // `called` is set before the function runs: cancelling from inside it is kAlreadyCalled.
    entry->called = true;
    std::function<void()> fn = std::move(entry->fn);
    entry->fn = nullptr;
    ++ran;
    try {
      fn();
    } catch (const std::exception& e) {
      if (log_) log_(fmt::format("while handling timed call: {}", e.what()));
    }
  }
  maybe_compact();
  return ran;
}

std::vector<DelayedCall> TimerQueue::pending() const {
  std::vector<DelayedCall> out;
  for (const auto* list : {&heap_, &new_calls_}) {
    for (const auto& entry : *list) {
      if (!entry->cancelled && !entry->called) out.push_back(DelayedCall(entry));
    }
  }
  return out;
}

void TimerQueue::maybe_compact() {
  if (cancellations_ <= kCompactionThreshold || cancellations_ <= heap_.size() / 2) return;
  std::vector<EntryPtr> kept;
  kept.reserve(heap_.size() - cancellations_);
  for (auto& entry : heap_) {
    if (entry->cancelled) {
      entry->heap_index = -1;
    } else {
      kept.push_back(std::move(entry));
    }
  }
  heap_ = std::move(kept);
  cancellations_ = 0;
  for (std::size_t i = 0; i < heap_.size(); ++i)
    heap_[i]->heap_index = static_cast<std::ptrdiff_t>(i);
  for (std::size_t i = heap_.size() / 2; i-- > 0;) sift_down(i);
}

void TimerQueue::push(EntryPtr entry) {
  entry->heap_index = static_cast<std::ptrdiff_t>(heap_.size());
  heap_.push_back(std::move(entry));
  sift_up(heap_.size() - 1);
}

TimerQueue::EntryPtr TimerQueue::pop_top() {
  swap_at(0, heap_.size() - 1);
  EntryPtr top = std::move(heap_.back());
  heap_.pop_back();
  top->heap_index = -1;
  if (!heap_.empty()) sift_down(0);
  return top;
}

void TimerQueue::sift_up(std::size_t i) {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!earlier(*heap_[i], *heap_[parent])) break;
    swap_at(i, parent);
    i = parent;
  }
}

void TimerQueue::sift_down(std::size_t i) {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t best = i;
    const std::size_t left = 2 * i + 1;
    const std::size_t right = left + 1;
    if (left < n && earlier(*heap_[left], *heap_[best])) best = left;
    if (right < n && earlier(*heap_[right], *heap_[best])) best = right;
    if (best == i) return;
    swap_at(i, best);
    i = best;
  }
}

void TimerQueue::swap_at(std::size_t a, std::size_t b) {
  std::swap(heap_[a], heap_[b]);
  heap_[a]->heap_index = static_cast<std::ptrdiff_t>(a);
  heap_[b]->heap_index = static_cast<std::ptrdiff_t>(b);
}

}  // namespace daemonkit::core
