// TimerService on the reactor over the fake kernel's manual clock: the first call inside start,
// then one every interval on a fixed grid; a slow call skips the beats it overran; a throwing or
// failing call is logged and ends the calls; an asynchronous call holds the next one and the
// stop (Twisted's #6290); stop cancels; restart works.
#include "daemonkit/core/app/timer_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

struct Clockwork {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;
  std::chrono::nanoseconds origin{};

  Clockwork() {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
    origin = os.clock().monotonic();
  }
  LogSink sink() {
    return [this](std::string_view line) { log.emplace_back(line); };
  }
  // Seconds since the test began, on the fake clock.
  long long at() {
    return std::chrono::duration_cast<seconds>(os.clock().monotonic() - origin).count();
  }
  // Moves the clock and runs what fell due, one second at a time so that every timer fires at
  // its own time rather than all at the end.
  void pass(seconds how_long) {
    for (auto s = seconds(0); s < how_long; s += seconds(1)) {
      os.clock().advance(seconds(1));
      reactor->run_until_current();
    }
  }
};

TEST(TimerService, CallsInsideStartThenEveryInterval) {
  Clockwork w;
  std::vector<long long> calls;
  TimerService timer(*w.reactor, seconds(10), [&] { calls.push_back(w.at()); });
  ASSERT_THAT(timer.start(), IsOk());
  EXPECT_THAT(calls, ElementsAre(0));
  w.pass(seconds(35));
  EXPECT_THAT(calls, ElementsAre(0, 10, 20, 30));
}

TEST(TimerService, StopCancelsTheNextCall) {
  Clockwork w;
  int calls = 0;
  TimerService timer(*w.reactor, seconds(10), [&] { ++calls; });
  ASSERT_THAT(timer.start(), IsOk());
  w.pass(seconds(10));
  Completion stopped = timer.stop();
  EXPECT_TRUE(stopped.completed());
  EXPECT_THAT(stopped.errors(), IsEmpty());
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
  w.pass(seconds(30));
  EXPECT_EQ(calls, 2);
}

TEST(TimerService, StopBeforeStartCompletesAndRestartCallsAgain) {
  Clockwork w;
  int calls = 0;
  TimerService timer(*w.reactor, seconds(5), [&] { ++calls; });
  EXPECT_TRUE(timer.stop().completed());  // Twisted fails here (#6202)
  ASSERT_THAT(timer.start(), IsOk());
  EXPECT_TRUE(timer.stop().completed());
  ASSERT_THAT(timer.start(), IsOk());
  EXPECT_EQ(calls, 2);
  w.pass(seconds(5));
  EXPECT_EQ(calls, 3);
}

TEST(TimerService, ThrowingCallIsLoggedAndEndsTheCallsButNotTheService) {
  Clockwork w;
  int calls = 0;
  TimerService timer(
      *w.reactor, seconds(10),
      [&] {
        if (++calls == 2) throw std::runtime_error("disk full");
      },
      w.sink(), "sweeper");
  ASSERT_THAT(timer.start(), IsOk());
  w.pass(seconds(60));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(timer.failure(), "disk full");
  EXPECT_THAT(w.log, ElementsAre("service 'sweeper': the timed call failed, no further calls: "
                                 "disk full"));
  EXPECT_TRUE(timer.running());
  Completion stopped = timer.stop();
  EXPECT_TRUE(stopped.completed());
  EXPECT_THAT(stopped.errors(), IsEmpty());
  // A new start begins afresh.
  ASSERT_THAT(timer.start(), IsOk());
  EXPECT_EQ(timer.failure(), std::nullopt);
  EXPECT_EQ(calls, 3);
}

TEST(TimerService, ThrowingAnythingElseIsCaughtToo) {
  Clockwork w;
  TimerService timer(
      *w.reactor, seconds(1), [] { throw 42; }, w.sink());
  ASSERT_THAT(timer.start(), IsOk());
  EXPECT_EQ(timer.failure(), "an exception that is not a std::exception");
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
}

TEST(TimerService, SlowCallSkipsTheBeatsItOverran) {
  Clockwork w;
  std::vector<long long> calls;
  TimerService timer(*w.reactor, seconds(10), [&] {
    calls.push_back(w.at());
    // The second call takes 25 s: past the beats at 20 and 30.
    if (calls.size() == 2) w.os.clock().advance(seconds(25));
  });
  ASSERT_THAT(timer.start(), IsOk());
  w.pass(seconds(25));  // and the 25 s the slow call took: up to 50
  EXPECT_THAT(calls, ElementsAre(0, 10, 40, 50));
  EXPECT_EQ(timer.skipped_beats(), 2u);
}

TEST(TimerService, CallThatTakesExactlyAnIntervalSkipsOneBeat) {
  Clockwork w;
  std::vector<long long> calls;
  TimerService timer(*w.reactor, seconds(10), [&] {
    calls.push_back(w.at());
    if (calls.size() == 1) w.os.clock().advance(seconds(10));
  });
  ASSERT_THAT(timer.start(), IsOk());
  w.pass(seconds(10));
  EXPECT_THAT(calls, ElementsAre(0, 20));
  EXPECT_EQ(timer.skipped_beats(), 1u);
}

TEST(TimerService, AsynchronousCallHoldsTheNextOneAndTheStop) {
  Clockwork w;
  std::vector<long long> calls;
  Completion in_flight = Completion::done();
  TimerService timer(*w.reactor, seconds(10), TimerService::AsyncCall{[&] {
    calls.push_back(w.at());
    in_flight = Completion();
    return in_flight;
  }});
  ASSERT_THAT(timer.start(), IsOk());
  w.pass(seconds(30));
  EXPECT_THAT(calls, ElementsAre(0)) << "no call while one is in flight";
  w.pass(seconds(3));
  ASSERT_TRUE(in_flight.complete());  // at 33: the next beat is 40
  w.pass(seconds(10));
  EXPECT_THAT(calls, ElementsAre(0, 40));
  EXPECT_EQ(timer.skipped_beats(), 3u);

  Completion stopped = timer.stop();
  EXPECT_FALSE(stopped.completed()) << "the stop waits for the call in flight";
  EXPECT_EQ(timer.state(), ServiceState::kStopping);
  ASSERT_TRUE(in_flight.complete());
  EXPECT_TRUE(stopped.completed());
  EXPECT_EQ(timer.state(), ServiceState::kStopped);
  w.pass(seconds(30));
  EXPECT_THAT(calls, ElementsAre(0, 40));
}

TEST(TimerService, FailedAsynchronousCallIsLoggedAndEndsTheCalls) {
  Clockwork w;
  int calls = 0;
  Completion in_flight;
  TimerService timer(*w.reactor, seconds(10), TimerService::AsyncCall{[&] {
    ++calls;
    return in_flight;
  }},
                     w.sink());
  ASSERT_THAT(timer.start(), IsOk());
  ASSERT_TRUE(in_flight.fail(StepError::plain(StepKind::kApplication, "query timed out")));
  w.pass(seconds(30));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(timer.failure(), "query timed out");
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("the timed call failed, no further calls: query "
                                           "timed out")));
}

TEST(TimerService, StopFromInsideTheCallStopsAtOnce) {
  Clockwork w;
  int calls = 0;
  std::unique_ptr<TimerService> timer;
  timer = std::make_unique<TimerService>(*w.reactor, seconds(10), [&] {
    if (++calls == 2) {
      EXPECT_TRUE(timer->stop().completed());
    }
  });
  ASSERT_THAT(timer->start(), IsOk());
  w.pass(seconds(40));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(timer->state(), ServiceState::kStopped);
}

TEST(TimerService, NonPositiveIntervalIsRefusedAtStart) {
  Clockwork w;
  int calls = 0;
  TimerService timer(
      *w.reactor, seconds(0), [&] { ++calls; }, {}, "tick");
  EXPECT_THAT(timer.start(), FailsWith(StepKind::kOptions));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(timer.state(), ServiceState::kStopped);
}

TEST(TimerService, DestroyedServiceLeavesNoCallBehind) {
  Clockwork w;
  int calls = 0;
  {
    TimerService timer(*w.reactor, seconds(10), [&] { ++calls; });
    ASSERT_THAT(timer.start(), IsOk());
  }
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
  w.pass(seconds(20));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace daemonkit::core
