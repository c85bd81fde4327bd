// The reactor on the fake kernel with its manual clock: lifecycle and system events, timed
// calls, call_from_thread ordering, readers and writers, signal routing, children, daemonize
// hooks, and every OS failure path by fault injection. No threads, no sleeps: a timeout makes
// the fake's epoll_wait move the clock.
#include "daemonkit/core/reactor/reactor.h"

#include <sys/eventfd.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Contains;
using testing::ElementsAre;
using testing::IsEmpty;

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
}

// call_from_thread, failing the test if the ring refuses the call.
template <typename F>
void from_thread(Reactor& reactor, F&& fn) {
  auto r = reactor.call_from_thread(std::forward<F>(fn));
  ASSERT_THAT(r, IsOk());
}

struct World {
  FakeSyscalls os;
  std::vector<std::string> lines;
  std::unique_ptr<Reactor> reactor;

  explicit World(bool signals = true) {
    ReactorOptions options;
    options.log = [this](std::string_view l) { lines.emplace_back(l); };
    options.install_signal_handlers = signals;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created) << (created ? "" : to_string(created.error()));
    if (created) reactor = std::move(*created);
  }
  Duration elapsed_since(std::chrono::nanoseconds start) { return os.clock().monotonic() - start; }
  // Calls the handler the reactor installed, as the kernel would on delivery (the fake kernel
  // records signals but never runs handlers).
  void deliver(int sig) {
    struct sigaction current {};
    ASSERT_TRUE(os.sigaction(sig, nullptr, &current));
    ASSERT_EQ(current.sa_handler, &SignalRouting::handle) << "signal " << sig << " not routed";
    current.sa_handler(sig);
  }
  void stop_later(Duration delay) {
    reactor->call_later(delay, [this] { ASSERT_TRUE(reactor->stop()); });
  }
};

// ---- Lifecycle and system events ------------------------------------------------------------

TEST(Reactor, StopWhenNotRunningIsAnError) {
  World w;
  auto r = w.reactor->stop();
  ASSERT_THAT(r, FailsWith(ReactorErrc::kNotRunning));
  EXPECT_EQ(to_string(r.error()), "Can't stop reactor that isn't running.");
}

TEST(Reactor, PhasesRunInOrderAndRunReturnsAfterShutdown) {
  World w;
  std::vector<std::string> seen;
  auto note = [&](std::string what) {
    return [&, what] { seen.push_back(what + (w.reactor->running() ? ":running" : ":idle")); };
  };
  for (auto event : {"startup", "shutdown"}) {
    w.reactor->add_system_event_trigger(Phase::kAfter, event, note(std::string(event) + ".after"));
    w.reactor->add_system_event_trigger(Phase::kDuring, event,
                                        note(std::string(event) + ".during"));
    w.reactor->add_system_event_trigger(Phase::kBefore, event,
                                        note(std::string(event) + ".before"));
  }
  w.reactor->call_when_running([&] { seen.push_back("when running"); });
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(seen, ElementsAre("startup.before:idle", "startup.during:running",
                                "startup.after:running", "when running", "shutdown.before:running",
                                "shutdown.during:idle", "shutdown.after:idle"));
  // During-shutdown triggers see the reactor idle: its own crash() trigger was registered
  // first, at construction, as in Twisted.
  EXPECT_FALSE(w.reactor->running());
  EXPECT_THAT(w.lines, Contains("Main loop terminated."));
}

TEST(Reactor, CallWhenRunningWhileRunningCallsAtOnce) {
  World w;
  bool inner = false;
  w.reactor->call_when_running([&] {
    w.reactor->call_when_running([&] { inner = true; });
    EXPECT_TRUE(inner);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(inner);
}

TEST(Reactor, NotRestartableAfterStop) {
  World w;
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(w.reactor->run(), FailsWith(ReactorErrc::kNotRestartable));
}

TEST(Reactor, RunWhileRunningIsAnError) {
  World w;
  std::optional<ReactorErrc> seen;
  w.reactor->call_when_running([&] {
    seen = w.reactor->run().error().code;
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(seen, ReactorErrc::kAlreadyRunning);
}

TEST(Reactor, SecondStopIsAnError) {
  World w;
  std::optional<ReactorErrc> second;
  w.reactor->call_when_running([&] {
    ASSERT_TRUE(w.reactor->stop());
    second = w.reactor->stop().error().code;
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(second, ReactorErrc::kNotRunning);
}

TEST(Reactor, CrashSkipsShutdownTriggersAndAllowsAnotherRun) {
  World w;
  int shutdowns = 0;
  int startups = 0;
  w.reactor->add_system_event_trigger(Phase::kDuring, "shutdown", [&] { ++shutdowns; });
  w.reactor->add_system_event_trigger(Phase::kAfter, "startup", [&] {
    ++startups;
    w.reactor->crash();
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(shutdowns, 0);
  EXPECT_FALSE(w.reactor->running());
  // The during-startup step that sets `running` is registered again by crash().
  bool running_again = false;
  w.reactor->call_when_running([&] {
    running_again = w.reactor->running();
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(running_again);
  EXPECT_EQ(shutdowns, 1);
  EXPECT_EQ(startups, 1);
}

TEST(Reactor, BeforeShutdownHoldKeepsTheLoopRunningUntilReleased) {
  World w;
  std::vector<std::string> seen;
  w.reactor->add_holding_trigger("shutdown", [&](EventHold hold) {
    seen.push_back("hold");
    auto shared = std::make_shared<EventHold>(std::move(hold));
    w.reactor->call_later(seconds(5), [&, shared] {
      seen.push_back("release");
      shared->release();
    });
  });
  w.reactor->add_system_event_trigger(Phase::kAfter, "shutdown", [&] { seen.push_back("after"); });
  const auto start = w.os.clock().monotonic();
  w.stop_later(seconds(1));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(seen, ElementsAre("hold", "release", "after"));
  EXPECT_EQ(w.elapsed_since(start), seconds(6));
}

TEST(Reactor, FailingTriggerIsLoggedAndShutdownCompletes) {
  World w;
  bool after = false;
  w.reactor->add_system_event_trigger(Phase::kBefore, "shutdown",
                                      [] { throw std::runtime_error("trigger broke"); });
  w.reactor->add_system_event_trigger(Phase::kAfter, "shutdown", [&] { after = true; });
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(after);
  EXPECT_THAT(w.lines, Contains("While calling system event trigger handler: trigger broke"));
}

TEST(Reactor, RemovedTriggerDoesNotRunAndRemovingTwiceIsAnError) {
  World w;
  bool ran = false;
  TriggerId id = w.reactor->add_system_event_trigger(Phase::kAfter, "startup", [&] { ran = true; });
  ASSERT_TRUE(w.reactor->remove_system_event_trigger(id));
  EXPECT_THAT(w.reactor->remove_system_event_trigger(id), FailsWith(ReactorErrc::kNotRegistered));
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_FALSE(ran);
}

// ---- Time -----------------------------------------------------------------------------------

TEST(Reactor, TimedCallFiresWhenTheFakeClockReachesIt) {
  World w;
  const auto start = w.os.clock().monotonic();
  std::optional<Duration> fired_at;
  w.reactor->call_later(seconds(10), [&] {
    fired_at = w.elapsed_since(start);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(fired_at, Duration(seconds(10)));
}

TEST(Reactor, SubMillisecondTimeoutRoundsUpInsteadOfSpinning) {
  World w;
  const auto start = w.os.clock().monotonic();
  w.reactor->call_later(std::chrono::microseconds(1500), [&] { ASSERT_TRUE(w.reactor->stop()); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(w.elapsed_since(start), milliseconds(2));
  EXPECT_EQ(calls_of(w.os, "epoll_wait"), 1u);
}

TEST(Reactor, TimeoutFollowsTwistedsPinnedValues) {
  World w;
  EXPECT_EQ(w.reactor->timeout(), std::nullopt);
  DelayedCall call = w.reactor->call_later(seconds(100), [] {});
  EXPECT_EQ(w.reactor->timeout(), Duration(seconds(100)));
  w.os.clock().advance(seconds(25));
  EXPECT_EQ(w.reactor->timeout(), Duration(seconds(75)));
  ASSERT_TRUE(call.reset(seconds(15)));
  EXPECT_EQ(w.reactor->timeout(), Duration(seconds(15)));
  ASSERT_TRUE(call.cancel());
  EXPECT_EQ(w.reactor->timeout(), std::nullopt);
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
}

TEST(Reactor, CancelledCallNeverRuns) {
  World w;
  bool ran = false;
  DelayedCall call = w.reactor->call_later(seconds(1), [&] { ran = true; });
  w.stop_later(seconds(2));
  w.reactor->call_later(milliseconds(500), [&] { ASSERT_TRUE(call.cancel()); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_FALSE(ran);
  EXPECT_THAT(call.cancel(), FailsWith(ReactorErrc::kAlreadyCancelled));
}

// ---- call_from_thread ordering (Twisted's rules, on one thread) -----------------------------

TEST(Reactor, ThreadCallsDoNotRunBeforeTheReactorRuns) {
  World w;
  int ran = 0;
  from_thread(*w.reactor, [&] { ++ran; });
  from_thread(*w.reactor, [&] { ++ran; });
  EXPECT_EQ(ran, 0);
  // Two calls, one wake-up: the second found the waker pending.
  EXPECT_EQ(w.reactor->waker().writes(), 1u);
  from_thread(*w.reactor, [&] { ASSERT_TRUE(w.reactor->stop()); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(ran, 2);
}

TEST(Reactor, NestedThreadCallRunsOnALaterIterationAfterDueTimedCalls) {
  World w;
  std::vector<std::string> order;
  w.reactor->call_when_running([&] {
    from_thread(*w.reactor, [&] {
      order.push_back("thread call");
      from_thread(*w.reactor, [&] {
        order.push_back("nested thread call");
        ASSERT_TRUE(w.reactor->stop());
      });
      w.reactor->call_later(Duration(0), [&] { order.push_back("timed call"); });
    });
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(order, ElementsAre("thread call", "timed call", "nested thread call"));
}

TEST(Reactor, ThreadCallsRunFifoAndFailuresAreLogged) {
  World w;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) from_thread(*w.reactor, [&, i] { order.push_back(i); });
  from_thread(*w.reactor, [] { throw std::runtime_error("thread call broke"); });
  from_thread(*w.reactor, [&] { ASSERT_TRUE(w.reactor->stop()); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(order, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(w.lines, Contains("while calling from thread: thread call broke"));
}

TEST(Reactor, BusyLoopDoesNotWriteTheWakerAgain) {
  World w;
  int round = 0;
  std::function<void()> again = [&] {
    if (++round == 50) {
      ASSERT_TRUE(w.reactor->stop());
    } else {
      from_thread(*w.reactor, [&again] { again(); });
    }
  };
  from_thread(*w.reactor, [&again] { again(); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(round, 50);
  // The loop kept polling with timeout 0 while calls kept coming: one write in all.
  EXPECT_EQ(w.reactor->waker().writes(), 1u);
}

TEST(Reactor, PreparedCallCoalescesAndRuns) {
  World w;
  int ran = 0;
  PreparedCall call([&] {
    ++ran;
    ASSERT_TRUE(w.reactor->stop());
  });
  w.reactor->post(call);
  w.reactor->post(call);
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(ran, 1);
}

TEST(Reactor, CallFromThreadRefusesWhenTheRingIsFull) {
  FakeSyscalls os;
  ReactorOptions options;
  options.install_signal_handlers = false;
  options.thread_call_capacity = 4;
  auto created = Reactor::create(os, std::move(options));
  ASSERT_TRUE(created);
  Reactor& reactor = **created;
  int ran = 0;
  for (int i = 0; i < 4; ++i) from_thread(reactor, [&] { ++ran; });
  auto refused = reactor.call_from_thread([&] { ran += 100; });
  ASSERT_THAT(refused, FailsWith(ReactorErrc::kQueueFull));
  EXPECT_EQ(to_string(refused.error()), "Too many calls from threads wait for the reactor.");
  // A prepared call is never refused; it runs first in its batch.
  PreparedCall stop([&] { ASSERT_TRUE(reactor.stop()); });
  reactor.post(stop);
  ASSERT_TRUE(reactor.run());
  EXPECT_EQ(ran, 4);
  EXPECT_TRUE(reactor.call_from_thread([] {}));  // the ring has room again
}

TEST(Reactor, IoGetsATurnBetweenBatchesOfThreadCalls) {
  World w(/*signals=*/false);
  auto pipe = *w.os.pipe2(O_NONBLOCK | O_CLOEXEC);
  std::vector<std::string> order;
  ASSERT_TRUE(w.reactor->add_reader(pipe.read_end, [&] {
    char c;
    ASSERT_TRUE(w.os.read(pipe.read_end, &c, 1));
    order.push_back("reader");
  }));
  from_thread(*w.reactor, [&] {
    order.push_back("first");
    ASSERT_TRUE(w.os.write(pipe.write_end, "x", 1));
    from_thread(*w.reactor, [&] {
      order.push_back("second");
      ASSERT_TRUE(w.reactor->stop());
    });
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(order, ElementsAre("first", "reader", "second"));
}

TEST(Reactor, WakerIsReArmedOnlyRightBeforeTheLoopBlocks) {
  World w(/*signals=*/false);
  std::vector<bool> pending_while_busy;
  int round = 0;
  std::function<void()> again = [&] {
    pending_while_busy.push_back(w.reactor->waker().pending());
    if (++round < 5) from_thread(*w.reactor, [&again] { again(); });
  };
  from_thread(*w.reactor, [&again] { again(); });
  w.reactor->call_later(seconds(1), [&] {
    // The loop blocked to wait for this timer, so the flag was cleared: the next call writes.
    EXPECT_FALSE(w.reactor->waker().pending());
    from_thread(*w.reactor, [&] { ASSERT_TRUE(w.reactor->stop()); });
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(pending_while_busy, ElementsAre(true, true, true, true, true));
  EXPECT_EQ(w.reactor->waker().writes(), 2u);
  // Zero timeouts while calls waited, one blocking wait for the timer, zero for the last call.
  std::vector<std::string> timeouts;
  for (const auto& r : w.os.transcript()) {
    if (r.name == "epoll_wait") timeouts.push_back(r.args.at(2));
  }
  EXPECT_THAT(timeouts, ElementsAre("0", "0", "0", "0", "1000", "0"));
}

// The race the re-check after Waker::clear() exists for, made deterministic: a call queued
// after the loop's last look but before it re-arms the waker. Its wake() finds the flag still
// set and writes nothing, so only the re-check can see it. The fake kernel lets the test run
// code at an exact point: the clock reading just before the loop blocks (found by a first run).
TEST(Reactor, CallQueuedJustBeforeTheWakerIsReArmedIsNotMissed) {
  const auto scenario = [](std::optional<std::size_t> inject_at, std::vector<std::string>& order,
                           std::size_t& last_clock_before_block) {
    World w(/*signals=*/false);
    const auto start = w.os.clock().monotonic();
    const auto mark = [&](const char* what) {
      const auto ms = std::chrono::duration_cast<milliseconds>(w.elapsed_since(start));
      order.push_back(fmt::format("{}@{}ms", what, ms.count()));
    };
    if (inject_at) {
      w.os.fail_when(
          "clock_gettime",
          [&, at = *inject_at](const fake::CallRecord& r) {
            if (r.index == at) from_thread(*w.reactor, [&] { mark("late call"); });
            return false;  // no fault: the predicate is only the hook
          },
          EINVAL);
    }
    // The second call runs an iteration later, after an epoll_wait that emptied the eventfd:
    // nothing is left there to wake the loop by accident.
    from_thread(*w.reactor, [&] {
      mark("call");
      from_thread(*w.reactor, [&] { mark("second call"); });
    });
    w.reactor->call_later(seconds(10), [&] {
      mark("timer");
      ASSERT_TRUE(w.reactor->stop());
    });
    ASSERT_TRUE(w.reactor->run());
    const auto& t = w.os.transcript();
    for (const auto& r : t) {
      if (r.name == "epoll_wait" && r.args.at(2) != "0") break;
      if (r.name == "clock_gettime") last_clock_before_block = r.index;
    }
  };
  std::vector<std::string> order;
  std::size_t at = 0;
  scenario(std::nullopt, order, at);
  ASSERT_THAT(order, ElementsAre("call@0ms", "second call@0ms", "timer@10000ms"));
  order.clear();
  std::size_t unused = 0;
  scenario(at, order, unused);
  EXPECT_THAT(order, ElementsAre("call@0ms", "second call@0ms", "late call@0ms", "timer@10000ms"));
}

// ---- Readers and writers --------------------------------------------------------------------

TEST(Reactor, ReaderSeesPipeDataThenEof) {
  World w;
  auto pipe = *w.os.pipe2(O_NONBLOCK | O_CLOEXEC);
  std::string got;
  ASSERT_TRUE(w.reactor->add_reader(pipe.read_end, [&] {
    char buf[8];
    auto n = w.os.read(pipe.read_end, buf, sizeof buf);
    ASSERT_TRUE(n);
    if (*n == 0) {
      ASSERT_TRUE(w.reactor->remove_reader(pipe.read_end));
      ASSERT_TRUE(w.reactor->stop());
    }
    got.append(buf, *n);
  }));
  EXPECT_THAT(w.reactor->readers(), ElementsAre(pipe.read_end));
  w.reactor->call_later(seconds(1), [&] {
    ASSERT_TRUE(w.os.write(pipe.write_end, "ping", 4));
    ASSERT_TRUE(w.os.close(pipe.write_end));
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(got, "ping");
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
}

TEST(Reactor, WriterIsCalledWhileWritableAndOnError) {
  World w;
  auto pipe = *w.os.pipe2(O_NONBLOCK);
  int calls = 0;
  ASSERT_TRUE(w.reactor->add_writer(pipe.write_end, [&] {
    if (++calls == 1) {
      ASSERT_TRUE(w.os.close(pipe.read_end));  // now EPOLLERR
    } else {
      ASSERT_TRUE(w.reactor->remove_writer(pipe.write_end));
      ASSERT_TRUE(w.reactor->stop());
    }
  }));
  EXPECT_THAT(w.reactor->writers(), ElementsAre(pipe.write_end));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(calls, 2);
}

TEST(Reactor, TurnUntilStopsWhenDoneOrAtTheLimitOnTheReactorsClock) {
  World w;
  bool fired = false;
  w.reactor->call_later(seconds(3), [&] { fired = true; });
  const auto start = w.os.clock().monotonic();
  auto done = w.reactor->turn_until([&] { return fired; }, seconds(10));
  ASSERT_THAT(done, fake::IsOk());
  EXPECT_TRUE(*done);
  EXPECT_EQ(w.elapsed_since(start), seconds(3));
  auto never = w.reactor->turn_until([] { return false; }, seconds(2));
  ASSERT_THAT(never, fake::IsOk());
  EXPECT_FALSE(*never);
  EXPECT_EQ(w.elapsed_since(start), seconds(5)) << "bounded by the limit, not by the 100 ms turns";
  w.os.fail_when(
      "epoll_wait", [](const fake::CallRecord&) { return true; }, EBADF);
  EXPECT_THAT(w.reactor->turn_until([] { return false; }, seconds(2)),
              fake::FailsWith(ReactorErrc::kOs));
}

// A loop that feeds a peer and drains it serves the feeding first (see Reactor::iterate).
TEST(Reactor, WritableDescriptorsAreServedBeforeReadableOnesInABatch) {
  World w;
  const int readable = *w.os.eventfd(1, EFD_NONBLOCK);
  const int writable = *w.os.eventfd(0, EFD_NONBLOCK);
  std::vector<char> called;
  ASSERT_TRUE(w.reactor->add_reader(readable, [&] { called.push_back('r'); }));
  ASSERT_TRUE(w.reactor->add_writer(writable, [&] { called.push_back('w'); }));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_THAT(called, ElementsAre('w', 'r'));
}

TEST(Reactor, WatcherRemovedDuringDispatchGetsNoStaleEvent) {
  World w;
  const int a = *w.os.eventfd(1, EFD_NONBLOCK);
  const int b = *w.os.eventfd(1, EFD_NONBLOCK);
  std::vector<int> called;
  auto reader = [&](int self, int other) {
    return [&, self, other] {
      called.push_back(self);
      ASSERT_TRUE(w.reactor->remove_reader(other));
      ASSERT_TRUE(w.reactor->remove_reader(self));
    };
  };
  ASSERT_TRUE(w.reactor->add_reader(a, reader(a, b)));
  ASSERT_TRUE(w.reactor->add_reader(b, reader(b, a)));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(called.size(), 1u) << "both were ready in one epoll_wait; the second was removed";
}

TEST(Reactor, ReusedDescriptorNumberGetsNoStaleEvent) {
  World w;
  const int a = *w.os.eventfd(1, EFD_NONBLOCK);
  const int b = *w.os.eventfd(1, EFD_NONBLOCK);
  bool old_b_called = false;
  bool new_b_called = false;
  ASSERT_TRUE(w.reactor->add_reader(a, [&] {
    ASSERT_TRUE(w.reactor->remove_reader(a));
    // Replace b by a fresh, idle eventfd under the same number, with a new callback.
    ASSERT_TRUE(w.reactor->remove_reader(b));
    ASSERT_TRUE(w.os.close(b));
    ASSERT_EQ(*w.os.eventfd(0, EFD_NONBLOCK), b);
    ASSERT_TRUE(w.reactor->add_reader(b, [&] { new_b_called = true; }));
  }));
  ASSERT_TRUE(w.reactor->add_reader(b, [&] { old_b_called = true; }));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_FALSE(old_b_called);
  EXPECT_FALSE(new_b_called) << "the event in this batch was for the old registration";
}

std::size_t epoll_deletes(const FakeSyscalls& os) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(std::count_if(t.begin(), t.end(), [](const fake::CallRecord& r) {
    return r.name == "epoll_ctl" && r.args.size() > 1 && r.args[1] == std::to_string(EPOLL_CTL_DEL);
  }));
}

// Whether the loop's next wait sleeps its whole timeout: nothing is reported, a stale
// registration included (the fake's epoll_wait moves the clock only when nothing is ready).
bool loop_sleeps(World& w) {
  const auto start = w.os.clock().monotonic();
  EXPECT_TRUE(w.reactor->iterate(milliseconds(10)));
  return w.elapsed_since(start) == milliseconds(10);
}

TEST(Reactor, RemovingBeforeCloseLeavesTheRegistrationToTheClose) {
  World w;
  const int fd = *w.os.eventfd(1, EFD_NONBLOCK);  // readable
  int called = 0;
  ASSERT_TRUE(w.reactor->add_reader(fd, [&] { ++called; }));
  ASSERT_TRUE(w.reactor->add_writer(fd, [&] { ++called; }));
  w.reactor->remove_before_close(fd);
  ASSERT_TRUE(w.os.close(fd));
  EXPECT_EQ(epoll_deletes(w.os), 0u) << "the close took it out of the epoll set";
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
  EXPECT_THAT(w.reactor->writers(), IsEmpty());
  EXPECT_TRUE(loop_sleeps(w));
  EXPECT_EQ(called, 0);
  EXPECT_THAT(w.lines, IsEmpty());
}

// Closing a descriptor drops its epoll registration only when no other descriptor (a dup, a
// forked child's copy, one passed away) holds its open file; otherwise the registration
// outlives the number, level-triggered, and nothing can remove it. The loop sees its first
// event, drops it (stale), moves every watcher to a fresh epoll set, and from then on removes
// descriptors explicitly.
TEST(Reactor, ARegistrationThatOutlivesItsCloseIsDroppedWithTheEpollSet) {
  World w;
  const int shared = *w.os.eventfd(1, EFD_NONBLOCK);
  const int other = *w.os.eventfd(0, EFD_NONBLOCK);
  int stale_calls = 0;
  int other_calls = 0;
  ASSERT_TRUE(w.reactor->add_reader(shared, [&] { ++stale_calls; }));
  ASSERT_TRUE(w.reactor->add_reader(other, [&] { ++other_calls; }));
  const int copy = *w.os.dup(shared);
  const int old_epoll = w.reactor->epoll_fd();
  w.reactor->remove_before_close(shared);
  ASSERT_TRUE(w.os.close(shared));

  ASSERT_TRUE(w.reactor->iterate(Duration(0)));  // reports the stale registration
  EXPECT_EQ(stale_calls, 0);
  EXPECT_THAT(w.lines, ElementsAre(testing::HasSubstr("outlived its close")));
  EXPECT_THAT(w.os.open_fds(w.os.getpid()), testing::Not(Contains(old_epoll)));
  EXPECT_TRUE(loop_sleeps(w)) << "the stale registration went with the old epoll set";

  // The other watcher, and the waker, moved to the new set.
  std::uint64_t one = 1;
  ASSERT_TRUE(w.os.write(other, &one, sizeof one));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(other_calls, 1);
  bool ran = false;
  from_thread(*w.reactor, [&] { ran = true; });
  w.reactor->run_until_current();
  EXPECT_TRUE(ran);

  // From now on each removal is explicit: this process shares descriptors.
  w.reactor->remove_before_close(other);
  EXPECT_EQ(epoll_deletes(w.os), 1u);
  ASSERT_TRUE(w.os.close(copy));
}

// The same rescue covers a descriptor its owner closed before removing it (remove_reader then
// fails with EBADF, which says nothing of whether the registration went).
TEST(Reactor, ADescriptorClosedBeforeItsRemovalWhileSharedDoesNotSpinTheLoop) {
  World w;
  const int fd = *w.os.eventfd(1, EFD_NONBLOCK);
  int called = 0;
  ASSERT_TRUE(w.reactor->add_reader(fd, [&] { ++called; }));
  const int copy = *w.os.dup(fd);
  ASSERT_TRUE(w.os.close(fd));
  ASSERT_TRUE(w.reactor->remove_reader(fd));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(called, 0);
  EXPECT_TRUE(loop_sleeps(w));
  ASSERT_TRUE(w.os.close(copy));
}

// An event for a watcher removed earlier in the same batch is expected, not a sign of a
// registration that outlived its close: no rebuild, no log.
TEST(Reactor, AWatcherRemovedBeforeCloseInTheBatchIsNotMistakenForAStaleRegistration) {
  World w;
  const int a = *w.os.eventfd(1, EFD_NONBLOCK);
  const int b = *w.os.eventfd(1, EFD_NONBLOCK);
  const int epoll = w.reactor->epoll_fd();
  std::vector<int> called;
  auto reader = [&](int self, int other) {
    return [&, self, other] {
      called.push_back(self);
      w.reactor->remove_before_close(other);
      ASSERT_TRUE(w.os.close(other));
      w.reactor->remove_before_close(self);
      ASSERT_TRUE(w.os.close(self));
    };
  };
  ASSERT_TRUE(w.reactor->add_reader(a, reader(a, b)));
  ASSERT_TRUE(w.reactor->add_reader(b, reader(b, a)));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(called.size(), 1u);
  EXPECT_EQ(w.reactor->epoll_fd(), epoll);
  EXPECT_THAT(w.lines, IsEmpty());
  EXPECT_EQ(epoll_deletes(w.os), 0u);
}

TEST(Reactor, AnEpollSetThatCannotBeRebuiltIsKeptAndTheRescueTriedAgain) {
  World w;
  const int shared = *w.os.eventfd(1, EFD_NONBLOCK);
  const int other = *w.os.eventfd(0, EFD_NONBLOCK);
  int other_calls = 0;
  ASSERT_TRUE(w.reactor->add_reader(shared, [] {}));
  ASSERT_TRUE(w.reactor->add_reader(other, [&] {
    std::uint64_t value = 0;
    ASSERT_TRUE(w.os.read(other, &value, sizeof value));
    ++other_calls;
  }));
  const int copy = *w.os.dup(shared);
  const int epoll = w.reactor->epoll_fd();
  w.reactor->remove_before_close(shared);
  ASSERT_TRUE(w.os.close(shared));
  w.os.fail_nth("epoll_create1", 2, EMFILE);  // the 1st made the reactor
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(w.reactor->epoll_fd(), epoll) << "kept: a half-built set would lose watchers";
  EXPECT_THAT(w.lines, Contains(testing::HasSubstr("EMFILE")));
  // Next time round, with a descriptor to spare, the rescue succeeds and nothing was lost.
  std::uint64_t one = 1;
  ASSERT_TRUE(w.os.write(other, &one, sizeof one));
  ASSERT_TRUE(w.reactor->iterate(Duration(0)));
  EXPECT_EQ(other_calls, 1);
  EXPECT_NE(w.reactor->epoll_fd(), epoll);
  EXPECT_TRUE(loop_sleeps(w));
  ASSERT_TRUE(w.os.close(copy));
}

TEST(Reactor, RemoveAllKeepsTheWaker) {
  World w;
  auto p1 = *w.os.pipe2(O_NONBLOCK);
  auto p2 = *w.os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(w.reactor->add_reader(p1.read_end, [] {}));
  ASSERT_TRUE(w.reactor->add_writer(p2.write_end, [] {}));
  ASSERT_TRUE(w.reactor->add_reader(p2.write_end, [] {}));
  EXPECT_THAT(w.reactor->remove_all(), ElementsAre(p1.read_end, p2.write_end));
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
  EXPECT_THAT(w.reactor->writers(), IsEmpty());
  bool ran = false;
  from_thread(*w.reactor, [&] {
    ran = true;
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(ran);
}

TEST(Reactor, ShutdownDisconnectsEveryWatcher) {
  World w;
  auto pipe = *w.os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(w.reactor->add_reader(pipe.read_end, [] {}));
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
}

TEST(Reactor, ReaderOnARegularFileFailsAsEpollDoes) {
  World w;
  w.os.write_file("/tmp/f", "x");
  const int fd = *w.os.open("/tmp/f", O_RDONLY, 0);
  auto r = w.reactor->add_reader(fd, [] {});
  ASSERT_THAT(r, FailsWith(ReactorErrc::kOs));
  EXPECT_EQ(r.error().os.code, EPERM);
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
}

TEST(Reactor, FailingReaderIsLoggedAndTheLoopGoesOn) {
  World w;
  const int fd = *w.os.eventfd(1, EFD_NONBLOCK);
  ASSERT_TRUE(w.reactor->add_reader(fd, [&] {
    ASSERT_TRUE(w.reactor->remove_reader(fd));
    throw std::runtime_error("reader broke");
  }));
  w.stop_later(seconds(1));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(w.lines,
              Contains(fmt::format("Unhandled error in reader of fd {}: reader broke", fd)));
}

// The registrations as a model: readers()/writers() always match it, and one iteration calls
// exactly the readers of ready descriptors and every writer (an eventfd is always writable).
// Descriptors are also closed and replaced, some while a dup keeps their file (and so their
// registration) alive: no stale event reaches a callback either way.
RC_GTEST_PROP(Reactor, WatchersBehaveLikeTheirModel, ()) {
  World w(/*signals=*/false);
  constexpr int kFds = 4;
  std::vector<int> fds;
  for (int i = 0; i < kFds; ++i) fds.push_back(*w.os.eventfd(0, EFD_NONBLOCK));
  std::set<int> readers, writers, readable;
  std::set<std::pair<int, char>> called;
  std::vector<int> copies;
  const auto steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 9);
    const auto index = static_cast<std::size_t>(*rc::gen::inRange(0, kFds));
    const int fd = fds[index];
    switch (op) {
      case 7:
      case 8:
        if (op == 8) copies.push_back(*w.os.dup(fd));
        w.reactor->remove_before_close(fd);
        RC_ASSERT(w.os.close(fd));
        readers.erase(fd);
        writers.erase(fd);
        readable.erase(fd);
        fds[index] = *w.os.eventfd(0, EFD_NONBLOCK);
        break;
      case 0:
        RC_ASSERT(w.reactor->add_reader(fd, [&called, fd] { called.emplace(fd, 'r'); }));
        readers.insert(fd);
        break;
      case 1:
        RC_ASSERT(w.reactor->add_writer(fd, [&called, fd] { called.emplace(fd, 'w'); }));
        writers.insert(fd);
        break;
      case 2:
        RC_ASSERT(w.reactor->remove_reader(fd));
        readers.erase(fd);
        break;
      case 3:
        RC_ASSERT(w.reactor->remove_writer(fd));
        writers.erase(fd);
        break;
      case 4: {
        std::set<int> both = readers;
        both.insert(writers.begin(), writers.end());
        const auto removed = w.reactor->remove_all();
        RC_ASSERT(std::set<int>(removed.begin(), removed.end()) == both);
        readers.clear();
        writers.clear();
        break;
      }
      case 5: {
        std::uint64_t value = 1;
        if (readable.contains(fd)) {
          RC_ASSERT(w.os.read(fd, &value, sizeof value));
          readable.erase(fd);
        } else {
          RC_ASSERT(w.os.write(fd, &value, sizeof value));
          readable.insert(fd);
        }
        break;
      }
      default: {
        called.clear();
        RC_ASSERT(w.reactor->iterate(Duration(0)));
        std::set<std::pair<int, char>> expected;
        for (int r : readers) {
          if (readable.contains(r)) expected.emplace(r, 'r');
        }
        for (int wr : writers) expected.emplace(wr, 'w');
        RC_ASSERT(called == expected);
        break;
      }
    }
    const auto got_readers = w.reactor->readers();
    const auto got_writers = w.reactor->writers();
    RC_ASSERT(std::set<int>(got_readers.begin(), got_readers.end()) == readers);
    RC_ASSERT(std::set<int>(got_writers.begin(), got_writers.end()) == writers);
  }
}

// ---- OS failures ----------------------------------------------------------------------------

TEST(Reactor, CreateFailsWhenEpollCannotBeCreated) {
  FakeSyscalls os;
  os.fail_nth("epoll_create1", 1, EMFILE);
  auto r = Reactor::create(os);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().os.code, EMFILE);
  EXPECT_STREQ(r.error().os.call, "epoll_create1");
}

TEST(Reactor, CreateFailingAtTheWakerLeaksNoDescriptor) {
  FakeSyscalls os;
  const auto before = os.open_fds(os.getpid());
  os.fail_nth("eventfd", 1, EMFILE);
  auto r = Reactor::create(os);
  ASSERT_FALSE(r);
  EXPECT_STREQ(r.error().os.call, "eventfd");
  EXPECT_EQ(os.open_fds(os.getpid()), before);
}

TEST(Reactor, CreateFailingToRegisterTheWakerLeaksNoDescriptor) {
  FakeSyscalls os;
  const auto before = os.open_fds(os.getpid());
  os.fail_nth("epoll_ctl", 1, ENOMEM);
  auto r = Reactor::create(os);
  ASSERT_FALSE(r);
  EXPECT_STREQ(r.error().os.call, "epoll_ctl");
  EXPECT_EQ(os.open_fds(os.getpid()), before);
}

TEST(Reactor, InterruptedEpollWaitIsRetried) {
  World w;
  w.os.fail_nth("epoll_wait", 1, EINTR);
  w.stop_later(seconds(1));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_GE(calls_of(w.os, "epoll_wait"), 2u);
}

TEST(Reactor, FailingEpollWaitEndsRunWithTheErrorAndNoShutdown) {
  World w;
  bool shutdown = false;
  w.reactor->add_system_event_trigger(Phase::kDuring, "shutdown", [&] { shutdown = true; });
  w.os.fail_nth("epoll_wait", 1, EBADF);
  w.stop_later(seconds(1));
  auto r = w.reactor->run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().os.code, EBADF);
  EXPECT_FALSE(shutdown);
  EXPECT_THAT(w.lines, Contains(testing::HasSubstr("Unexpected error in main loop: epoll_wait")));
}

TEST(Reactor, FailingEpollCtlOnAddLeavesNoWatcher) {
  World w;
  auto pipe = *w.os.pipe2(O_NONBLOCK);
  w.os.fail_nth("epoll_ctl", 2, ENOSPC);  // the 1st registered the waker
  EXPECT_EQ(w.reactor->add_reader(pipe.read_end, [] {}).error().os.code, ENOSPC);
  EXPECT_THAT(w.reactor->readers(), IsEmpty());
  ASSERT_TRUE(w.reactor->add_reader(pipe.read_end, [] {}));
  w.os.fail_nth("epoll_ctl", 4, ENOMEM);  // the MOD that adds a writer
  EXPECT_EQ(w.reactor->add_writer(pipe.read_end, [] {}).error().os.code, ENOMEM);
  EXPECT_THAT(w.reactor->writers(), IsEmpty());
  EXPECT_THAT(w.reactor->readers(), ElementsAre(pipe.read_end));
}

// ---- Signals --------------------------------------------------------------------------------

TEST(ReactorSignals, SigtermStopsTheReactorThroughTheLoop) {
  World w;
  bool after_shutdown = false;
  w.reactor->add_system_event_trigger(Phase::kAfter, "shutdown", [&] { after_shutdown = true; });
  w.reactor->call_when_running([&] {
    w.deliver(SIGTERM);
    // The handler only flagged it: nothing stopped yet.
    EXPECT_TRUE(w.reactor->running());
    EXPECT_THAT(w.lines, testing::Not(Contains("Received SIGTERM, shutting down.")));
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(after_shutdown);
  EXPECT_EQ(w.reactor->exit_signal(), SIGTERM);
  EXPECT_THAT(w.lines, Contains("Received SIGTERM, shutting down."));
}

TEST(ReactorSignals, SigintStopsTheReactor) {
  World w;
  w.reactor->call_when_running([&] { w.deliver(SIGINT); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(w.reactor->exit_signal(), SIGINT);
  EXPECT_THAT(w.lines, Contains("Received SIGINT, shutting down."));
}

TEST(ReactorSignals, PreviousDispositionsAreRestoredWhenRunReturns) {
  World w;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(w.os.sigaction(SIGTERM, &ignore, nullptr));
  w.reactor->call_when_running([&] {
    struct sigaction during {};
    ASSERT_TRUE(w.os.sigaction(SIGTERM, nullptr, &during));
    EXPECT_EQ(during.sa_handler, &SignalRouting::handle);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  for (int sig : {SIGTERM, SIGINT, SIGCHLD}) {
    struct sigaction after {};
    ASSERT_TRUE(w.os.sigaction(sig, nullptr, &after));
    EXPECT_EQ(after.sa_handler, sig == SIGTERM ? SIG_IGN : SIG_DFL) << "signal " << sig;
  }
}

TEST(ReactorSignals, SigpipeIsIgnoredWhileRunningOnlyIfItWasDefault) {
  const auto disposition = [](World& w) {
    struct sigaction now {};
    EXPECT_TRUE(w.os.sigaction(SIGPIPE, nullptr, &now));
    return now.sa_handler;
  };
  {
    World w;
    w.reactor->call_when_running([&] {
      EXPECT_EQ(disposition(w), SIG_IGN);
      ASSERT_TRUE(w.reactor->stop());
    });
    ASSERT_TRUE(w.reactor->run());
    EXPECT_EQ(disposition(w), SIG_DFL) << "put back when run returns";
  }
  World w;
  struct sigaction handler {};
  handler.sa_handler = [](int) {};
  ASSERT_TRUE(w.os.sigaction(SIGPIPE, &handler, nullptr));
  w.reactor->call_when_running([&] {
    EXPECT_EQ(disposition(w), handler.sa_handler) << "the program's own choice is kept";
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(disposition(w), handler.sa_handler);
}

TEST(ReactorSignals, SigintIsLeftAloneUnlessDefault) {
  World w;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(w.os.sigaction(SIGINT, &ignore, nullptr));
  w.reactor->call_when_running([&] {
    struct sigaction during {};
    ASSERT_TRUE(w.os.sigaction(SIGINT, nullptr, &during));
    EXPECT_EQ(during.sa_handler, SIG_IGN);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
}

TEST(ReactorSignals, SighupCallsTheHookAndIsUntouchedWithoutOne) {
  {
    World w;
    w.reactor->call_when_running([&] {
      struct sigaction during {};
      ASSERT_TRUE(w.os.sigaction(SIGHUP, nullptr, &during));
      EXPECT_EQ(during.sa_handler, SIG_DFL);
      ASSERT_TRUE(w.reactor->stop());
    });
    ASSERT_TRUE(w.reactor->run());
  }
  World w;
  int hups = 0;
  w.reactor->set_sighup_hook([&] {
    if (++hups == 2) {
      ASSERT_TRUE(w.reactor->stop());
    }
  });
  w.reactor->call_when_running([&] { w.deliver(SIGHUP); });
  w.reactor->call_later(seconds(1), [&] { w.deliver(SIGHUP); });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(hups, 2);
  EXPECT_TRUE(w.reactor->running() == false);
}

TEST(ReactorSignals, UserSignalHooksRunOnTheLoopEachForItsOwnSignal) {
  World w;
  std::vector<std::string> seen;
  w.reactor->set_signal_hook(SIGUSR1, [&] { seen.emplace_back("usr1"); });
  w.reactor->set_signal_hook(SIGUSR2, [&] { seen.emplace_back("usr2"); });
  w.reactor->set_signal_hook(SIGUSR2, {});  // removed again: SIGUSR2 stays untouched
  w.reactor->set_sighup_hook([&] { seen.emplace_back("hup"); });
  w.reactor->call_when_running([&] {
    struct sigaction usr2 {};
    ASSERT_TRUE(w.os.sigaction(SIGUSR2, nullptr, &usr2));
    EXPECT_EQ(usr2.sa_handler, SIG_DFL);
    // Both arrive before the loop looks: they run in signal-number order, on the loop.
    w.deliver(SIGUSR1);
    w.deliver(SIGHUP);
    EXPECT_TRUE(seen.empty());
  });
  w.reactor->call_later(seconds(1), [&] {
    w.reactor->set_signal_hook(SIGUSR1, [] { throw std::runtime_error("rotate failed"); });
    w.deliver(SIGUSR1);
  });
  w.stop_later(seconds(2));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(seen, ElementsAre("hup", "usr1"));
  EXPECT_THAT(w.lines, Contains("Unhandled error in SIGUSR1 hook: rotate failed"));
  EXPECT_THROW(w.reactor->set_signal_hook(SIGTERM, [] {}), std::logic_error);
}

TEST(ReactorSignals, SignalsAreNotRoutedWhenDisabled) {
  World w(/*signals=*/false);
  w.reactor->call_when_running([&] {
    struct sigaction during {};
    ASSERT_TRUE(w.os.sigaction(SIGTERM, nullptr, &during));
    EXPECT_EQ(during.sa_handler, SIG_DFL);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
}

TEST(ReactorSignals, OnlyOneReactorRoutesSignals) {
  World first;
  World second;
  first.reactor->call_when_running([&] {
    second.reactor->call_when_running([&] { ASSERT_TRUE(second.reactor->stop()); });
    ASSERT_TRUE(second.reactor->run());
    ASSERT_TRUE(first.reactor->stop());
  });
  ASSERT_TRUE(first.reactor->run());
  EXPECT_THAT(second.lines, Contains(testing::HasSubstr("Another reactor already routes")));
}

TEST(ReactorSignals, SignalFailingToInstallIsLogged) {
  World w;
  w.os.fail_when(
      "sigaction", [](const fake::CallRecord&) { return true; }, EINVAL);
  w.stop_later(Duration(0));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(w.lines, Contains(testing::HasSubstr("Cannot route signal 15 through the reactor")));
  EXPECT_THAT(w.lines, Contains(testing::HasSubstr("Cannot ignore SIGPIPE: sigaction")));
}

TEST(ReactorSignals, SigpipeThatCannotBePutBackIsLogged) {
  World w;
  w.reactor->call_when_running([&] {
    w.os.fail_when(
        "sigaction",
        [](const fake::CallRecord& r) { return !r.args.empty() && r.args[0] == "SIGPIPE"; },
        EINVAL);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_THAT(w.lines, Contains(testing::HasSubstr("Cannot restore SIGPIPE: sigaction")));
}

// ---- Children -------------------------------------------------------------------------------

TEST(ReactorChildren, SigchldReapsAWatchedChild) {
  World w;
  const pid_t child = *w.os.fork();  // unscripted: we continue as the parent
  std::optional<int> status;
  ASSERT_TRUE(w.reactor->watch_child(child, [&](int s) {
    status = s;
    ASSERT_TRUE(w.reactor->stop());
  }));
  EXPECT_EQ(w.reactor->watch_child(child, [](int) {}).error().code,
            ReactorErrc::kAlreadyRegistered);
  w.reactor->call_later(seconds(1), [&] {
    w.os.end_process(child, 3);
    w.deliver(SIGCHLD);
  });
  ASSERT_TRUE(w.reactor->run());
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_THAT(w.reactor->unwatch_child(child), FailsWith(ReactorErrc::kNotRegistered));
}

TEST(ReactorChildren, ChildThatAlreadyExitedIsReportedAtOnce) {
  World w;
  const pid_t child = *w.os.fork();
  w.os.end_process(child, 7);
  std::optional<int> status;
  ASSERT_TRUE(w.reactor->watch_child(child, [&](int s) { status = s; }));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 7);
  EXPECT_THAT(w.reactor->unwatch_child(child), FailsWith(ReactorErrc::kNotRegistered));
}

TEST(ReactorChildren, ChildExitingBeforeRunIsReapedAtStartup) {
  World w;
  const pid_t child = *w.os.fork();
  bool reaped = false;
  ASSERT_TRUE(w.reactor->watch_child(child, [&](int) { reaped = true; }));
  w.os.end_process(child, 0);  // no SIGCHLD reaches the loop: the handler was not there yet
  w.reactor->call_when_running([&] {
    EXPECT_TRUE(reaped);
    ASSERT_TRUE(w.reactor->stop());
  });
  ASSERT_TRUE(w.reactor->run());
}

TEST(ReactorChildren, UnwatchedChildIsNotReaped) {
  World w;
  const pid_t child = *w.os.fork();
  bool called = false;
  ASSERT_TRUE(w.reactor->watch_child(child, [&](int) { called = true; }));
  ASSERT_TRUE(w.reactor->unwatch_child(child));
  w.os.end_process(child, 0);
  w.reactor->reap_children();
  EXPECT_FALSE(called);
  EXPECT_EQ(w.os.process(child).state, fake::ProcessState::kZombie);
}

TEST(ReactorChildren, FailingWaitpidIsLogged) {
  World w;
  const pid_t child = *w.os.fork();
  ASSERT_TRUE(w.reactor->watch_child(child, [](int) {}));
  w.os.fail_nth("waitpid", 2, EINVAL);  // the first was watch_child's own check
  w.reactor->reap_children();
  EXPECT_THAT(w.lines,
              Contains(testing::HasSubstr(fmt::format("Failed to reap {}: waitpid", child))));
}

// ---- Daemonize hooks ------------------------------------------------------------------------

TEST(ReactorDaemonize, HooksLeaveNothingOfTheParentsInTheDaemon) {
  World w;
  auto pipe = *w.os.pipe2(O_NONBLOCK);
  bool read = false;
  ASSERT_TRUE(w.reactor->add_reader(pipe.read_end, [&] {
    read = true;
    ASSERT_TRUE(w.reactor->stop());
  }));
  const int old_epoll = w.reactor->epoll_fd();
  const int old_waker = w.reactor->waker_fd();
  const pid_t parent = w.os.getpid();

  w.reactor->before_daemonize();
  EXPECT_THAT(w.os.open_fds(parent), testing::Not(Contains(old_epoll)));
  EXPECT_THAT(w.os.open_fds(parent), testing::Not(Contains(old_waker)));
  w.os.script_fork(fake::ForkAs::kChild);
  ASSERT_EQ(*w.os.fork(), 0);
  const pid_t daemon = w.os.getpid();
  ASSERT_NE(daemon, parent);
  ASSERT_TRUE(w.reactor->after_daemonize());

  EXPECT_EQ(w.os.describe_fd(daemon, w.reactor->epoll_fd()), "anon_inode:[eventpoll] (cloexec)");
  EXPECT_EQ(w.os.describe_fd(daemon, w.reactor->waker_fd()), "anon_inode:[eventfd] (cloexec)");
  // The reader registered in the parent works in the daemon.
  ASSERT_TRUE(w.os.write(pipe.write_end, "x", 1));
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(read);
}

TEST(ReactorDaemonize, ThreadCallQueuedBeforeDaemonizingStillRuns) {
  World w;
  bool ran = false;
  from_thread(*w.reactor, [&] {
    ran = true;
    ASSERT_TRUE(w.reactor->stop());
  });
  w.reactor->before_daemonize();
  ASSERT_TRUE(w.reactor->after_daemonize());
  ASSERT_TRUE(w.reactor->run());
  EXPECT_TRUE(ran);
}

TEST(ReactorDaemonize, AfterDaemonizeReportsFailures) {
  World w;
  w.reactor->before_daemonize();
  w.os.fail_nth("epoll_create1", 2, EMFILE);  // the first made the reactor
  auto r = w.reactor->after_daemonize();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().os.code, EMFILE);
}

}  // namespace
}  // namespace daemonkit::core
