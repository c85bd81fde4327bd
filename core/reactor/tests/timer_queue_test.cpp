// TimerQueue and DelayedCall on a hand-driven clock: Twisted's pinned timeout values, the
// cancel/reset/delay rules, ordering, compaction, and a model-based property test.
#include "daemonkit/core/reactor/internal/timer_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct ManualClock {
  TimePoint now{seconds(1000)};
  void advance(Duration d) { now += d; }
};

struct Fixture {
  ManualClock clock;
  std::vector<std::string> lines;
  TimerQueue queue{[this] { return clock.now; },
                   [this](std::string_view line) { lines.emplace_back(line); }};
};

// ---- Twisted's pinned values (twisted-spec §3.6) --------------------------------------------

TEST(TimerQueue, TimeoutIsNoneWithNoCalls) {
  Fixture f;
  EXPECT_EQ(f.queue.timeout(), std::nullopt);
}

// Every turn of the loop asks for due calls and the timeout: with none pending, neither reads
// the clock (a loop that serves only I/O paid two clock reads a turn).
TEST(TimerQueue, WithNothingPendingTheClockIsNotRead) {
  int reads = 0;
  TimerQueue queue{[&reads] {
                     ++reads;
                     return TimePoint{seconds(1)};
                   },
                   {}};
  EXPECT_EQ(queue.run_due(), 0u);
  EXPECT_EQ(queue.timeout(), std::nullopt);
  EXPECT_EQ(reads, 0);
  auto call = queue.call_later(seconds(5), [] {});
  EXPECT_EQ(queue.run_due(), 0u);
  EXPECT_GT(reads, 0) << "a pending call is compared with the clock";
}

TEST(TimerQueue, TimeoutIsDelayOfOnlyCall) {
  Fixture f;
  f.queue.call_later(seconds(100), [] {});
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(100)));
  f.clock.advance(seconds(25));
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(75)));
}

TEST(TimerQueue, TimeoutIsEarliestOfSeveral) {
  Fixture f;
  f.queue.call_later(seconds(50), [] {});
  f.queue.call_later(seconds(10), [] {});
  f.queue.call_later(seconds(100), [] {});
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(10)));
}

TEST(TimerQueue, TimeoutFollowsReset) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(50), [] {});
  f.clock.advance(seconds(25));
  ASSERT_TRUE(call.reset(seconds(15)));
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(15)));
}

TEST(TimerQueue, TimeoutFollowsDelay) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(50), [] {});
  f.clock.advance(seconds(10));
  ASSERT_TRUE(call.delay(seconds(20)));
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(60)));
}

TEST(TimerQueue, TimeoutIsNoneWhenOnlyCallCancelled) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(50), [] {});
  ASSERT_TRUE(call.cancel());
  EXPECT_EQ(f.queue.timeout(), std::nullopt);
}

TEST(TimerQueue, TimeoutIgnoresCallCancelledAfterEnteringHeap) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(5), [] {});
  f.queue.call_later(seconds(50), [] {});
  ASSERT_EQ(f.queue.timeout(), Duration(seconds(5)));  // both now in the heap
  ASSERT_TRUE(call.cancel());
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(50)));
}

TEST(TimerQueue, TimeoutIsExactAfterDelayOfCallAlreadyInHeap) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(50), [] {});
  ASSERT_EQ(f.queue.timeout(), Duration(seconds(50)));
  f.clock.advance(seconds(10));
  ASSERT_TRUE(call.delay(seconds(20)));
  // Twisted would answer 40 here (the heap key is stale) and wake up early for nothing.
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(60)));
}

TEST(TimerQueue, TimeoutNeverNegative) {
  Fixture f;
  f.queue.call_later(seconds(1), [] {});
  f.clock.advance(seconds(30));
  EXPECT_EQ(f.queue.timeout(), Duration(0));
}

TEST(TimerQueue, TimeoutCappedForEpollMilliseconds) {
  Fixture f;
  f.queue.call_later(seconds(10'000'000), [] {});
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(2147483)));
  EXPECT_LE(std::chrono::duration_cast<milliseconds>(*f.queue.timeout()).count(), 2147483647);
}

// ---- Running and handles --------------------------------------------------------------------

TEST(TimerQueue, RunsOnlyDueCallsInTimeThenScheduleOrder) {
  Fixture f;
  std::vector<int> ran;
  f.queue.call_later(seconds(3), [&] { ran.push_back(3); });
  f.queue.call_later(seconds(1), [&] { ran.push_back(1); });
  f.queue.call_later(seconds(2), [&] { ran.push_back(21); });
  f.queue.call_later(seconds(2), [&] { ran.push_back(22); });
  f.queue.call_later(seconds(9), [&] { ran.push_back(9); });
  f.clock.advance(seconds(3));
  EXPECT_EQ(f.queue.run_due(), 4u);
  EXPECT_THAT(ran, testing::ElementsAre(1, 21, 22, 3));
}

TEST(TimerQueue, CallScheduledByATimedCallWaitsForTheNextPass) {
  Fixture f;
  int inner = 0;
  f.queue.call_later(Duration(0), [&] { f.queue.call_later(Duration(0), [&] { ++inner; }); });
  EXPECT_EQ(f.queue.run_due(), 1u);
  EXPECT_EQ(inner, 0);
  EXPECT_EQ(f.queue.run_due(), 1u);
  EXPECT_EQ(inner, 1);
}

TEST(TimerQueue, HandleReportsStateAndTime) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(5), [] {});
  EXPECT_TRUE(call.active());
  EXPECT_EQ(call.time(), f.clock.now + seconds(5));
  ASSERT_TRUE(call.delay(seconds(2)));
  EXPECT_EQ(call.time(), f.clock.now + seconds(7));
  f.clock.advance(seconds(7));
  f.queue.run_due();
  EXPECT_FALSE(call.active());
  EXPECT_TRUE(call.called());
  EXPECT_FALSE(call.cancelled());
}

TEST(TimerQueue, ChangingACalledCallIsAnError) {
  Fixture f;
  DelayedCall call = f.queue.call_later(Duration(0), [] {});
  f.queue.run_due();
  EXPECT_THAT(call.cancel(), FailsWith(ReactorErrc::kAlreadyCalled));
  EXPECT_THAT(call.reset(seconds(1)), FailsWith(ReactorErrc::kAlreadyCalled));
  EXPECT_THAT(call.delay(seconds(1)), FailsWith(ReactorErrc::kAlreadyCalled));
}

TEST(TimerQueue, ChangingACancelledCallIsAnError) {
  Fixture f;
  DelayedCall call = f.queue.call_later(seconds(1), [] {});
  ASSERT_TRUE(call.cancel());
  EXPECT_THAT(call.cancel(), FailsWith(ReactorErrc::kAlreadyCancelled));
  EXPECT_THAT(call.reset(seconds(1)), FailsWith(ReactorErrc::kAlreadyCancelled));
  EXPECT_THAT(call.delay(seconds(1)), FailsWith(ReactorErrc::kAlreadyCancelled));
  EXPECT_THAT(DelayedCall().cancel(), FailsWith(ReactorErrc::kAlreadyCancelled));
}

TEST(TimerQueue, CancellingFromInsideTheCallIsAlreadyCalled) {
  Fixture f;
  DelayedCall call;
  std::optional<ReactorErrc> seen;
  call = f.queue.call_later(Duration(0), [&] { seen = call.cancel().error().code; });
  f.queue.run_due();
  EXPECT_EQ(seen, ReactorErrc::kAlreadyCalled);
}

TEST(TimerQueue, CancelDropsTheFunctionAndWhatItCaptured) {
  Fixture f;
  auto token = std::make_shared<int>(7);
  DelayedCall call = f.queue.call_later(seconds(1), [token] {});
  EXPECT_EQ(token.use_count(), 2);
  ASSERT_TRUE(call.cancel());
  EXPECT_EQ(token.use_count(), 1);
}

TEST(TimerQueue, ResetLaterAndSoonerMoveTheCall) {
  Fixture f;
  std::vector<int> ran;
  DelayedCall a = f.queue.call_later(seconds(1), [&] { ran.push_back(1); });
  f.queue.call_later(seconds(2), [&] { ran.push_back(2); });
  (void)f.queue.timeout();  // both in the heap
  ASSERT_TRUE(a.reset(seconds(3)));
  f.clock.advance(seconds(2));
  f.queue.run_due();
  EXPECT_THAT(ran, testing::ElementsAre(2));
  ASSERT_TRUE(a.reset(Duration(0)));
  f.queue.run_due();
  EXPECT_THAT(ran, testing::ElementsAre(2, 1));
}

TEST(TimerQueue, FailingCallIsLoggedAndOthersRun) {
  Fixture f;
  int ran = 0;
  f.queue.call_later(Duration(0), [] { throw std::runtime_error("boom"); });
  f.queue.call_later(Duration(0), [&] { ++ran; });
  EXPECT_EQ(f.queue.run_due(), 2u);
  EXPECT_EQ(ran, 1);
  EXPECT_THAT(f.lines, testing::ElementsAre("while handling timed call: boom"));
}

TEST(TimerQueue, CompactsWhenCancelledCallsExceedFiftyAndHalf) {
  Fixture f;
  std::vector<DelayedCall> calls;
  for (int i = 0; i < 100; ++i) calls.push_back(f.queue.call_later(seconds(10 + i), [] {}));
  (void)f.queue.timeout();
  ASSERT_EQ(f.queue.heap_size(), 100u);
  // 50 cancelled of 100: not more than 50, so no compaction.
  for (int i = 99; i >= 50; --i) ASSERT_TRUE(calls[static_cast<std::size_t>(i)].cancel());
  f.queue.run_due();
  EXPECT_EQ(f.queue.heap_size(), 100u);
  // The 51st cancellation crosses both thresholds (51 > 50 and 51 > 100/2).
  ASSERT_TRUE(calls[49].cancel());
  f.queue.run_due();
  EXPECT_EQ(f.queue.heap_size(), 49u);
  EXPECT_EQ(f.queue.timeout(), Duration(seconds(10)));
}

TEST(TimerQueue, HandleOutlivingTheQueueReportsCancelled) {
  DelayedCall call;
  {
    Fixture f;
    call = f.queue.call_later(seconds(1), [] {});
  }
  EXPECT_FALSE(call.active());
  EXPECT_THAT(call.cancel(), FailsWith(ReactorErrc::kAlreadyCancelled));
}

// ---- Model-based property -------------------------------------------------------------------

// The model: each call has an effective due time, a schedule number and a state. The queue
// must fire exactly the active calls due by now, ordered by (due time, schedule number), and
// its timeout must be the clamped distance to the earliest active call.
RC_GTEST_PROP(TimerQueue, BehavesLikeASortedListOfCalls, ()) {
  enum class State { kPending, kCalled, kCancelled };
  struct ModelCall {
    TimePoint due;
    std::size_t seq;
    State state = State::kPending;
  };
  Fixture f;
  std::vector<ModelCall> model;
  std::vector<DelayedCall> handles;
  std::vector<std::size_t> fired;

  const auto steps = *rc::gen::inRange(1, 120);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 6);
    if (op == 0 || handles.empty()) {
      const Duration delay = milliseconds(*rc::gen::inRange(-5, 2000));
      const std::size_t id = handles.size();
      handles.push_back(f.queue.call_later(delay, [&fired, id] { fired.push_back(id); }));
      model.push_back(ModelCall{f.clock.now + std::max(delay, Duration(0)), id});
      continue;
    }
    const auto id =
        static_cast<std::size_t>(*rc::gen::inRange<int>(0, static_cast<int>(handles.size())));
    ModelCall& m = model[id];
    const auto expected_error = [&]() -> std::optional<ReactorErrc> {
      if (m.state == State::kCalled) return ReactorErrc::kAlreadyCalled;
      if (m.state == State::kCancelled) return ReactorErrc::kAlreadyCancelled;
      return std::nullopt;
    }();
    switch (op) {
      case 1: {
        auto r = handles[id].cancel();
        RC_ASSERT(r.has_value() == !expected_error.has_value());
        if (expected_error) RC_ASSERT(r.error().code == *expected_error);
        if (r) m.state = State::kCancelled;
        break;
      }
      case 2: {
        const Duration to = milliseconds(*rc::gen::inRange(0, 2000));
        auto r = handles[id].reset(to);
        RC_ASSERT(r.has_value() == !expected_error.has_value());
        if (r) m.due = f.clock.now + to;
        break;
      }
      case 3: {
        const Duration by = milliseconds(*rc::gen::inRange(-1000, 2000));
        auto r = handles[id].delay(by);
        RC_ASSERT(r.has_value() == !expected_error.has_value());
        if (r) m.due += by;
        break;
      }
      case 4: {
        const auto timeout = f.queue.timeout();
        std::optional<Duration> want;
        for (const auto& c : model) {
          if (c.state != State::kPending) continue;
          const Duration left =
              std::clamp(c.due - f.clock.now, Duration(0), TimerQueue::kMaxTimeout);
          if (!want || left < *want) want = left;
        }
        RC_ASSERT(timeout == want);
        break;
      }
      default: {
        f.clock.advance(milliseconds(*rc::gen::inRange(0, 1500)));
        fired.clear();
        f.queue.run_due();
        std::vector<std::size_t> due;
        for (const auto& c : model) {
          if (c.state == State::kPending && c.due <= f.clock.now) due.push_back(c.seq);
        }
        std::sort(due.begin(), due.end(), [&](std::size_t a, std::size_t b) {
          return std::pair(model[a].due, a) < std::pair(model[b].due, b);
        });
        for (std::size_t d : due) model[d].state = State::kCalled;
        RC_ASSERT(fired == due);
        break;
      }
    }
    // Every handle agrees with the model after every step.
    for (std::size_t i = 0; i < handles.size(); ++i) {
      RC_ASSERT(handles[i].active() == (model[i].state == State::kPending));
      if (model[i].state == State::kPending) RC_ASSERT(handles[i].time() == model[i].due);
    }
  }
}

}  // namespace
}  // namespace daemonkit::core
