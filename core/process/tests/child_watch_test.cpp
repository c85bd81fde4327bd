// ChildWatch on the fake kernel: reaping by pidfd (exit codes, signals, a child reaped by
// someone else, waitpid failures), signals only while the child is ours, children the watch was
// not given left alone, and the SIGCHLD fallback without a pidfd.
#include "daemonkit/core/process/child_watch.h"

#include <signal.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::milliseconds;

constexpr const char* kProgram = "/usr/bin/worker";

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
}

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::optional<ProcessExit> exit;
  int exits = 0;

  World() {
    os.install_program(kProgram);
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  // A child that has exec'd kProgram and runs until the test ends it, and its pidfd.
  sys::ChildWithPidFd spawn() {
    auto child = os.vfork_with_pidfd([this] {
      sigset_t none;  // the vfork child starts with every signal blocked
      sigemptyset(&none);
      (void)os.sigprocmask(SIG_SETMASK, &none, nullptr);
      char arg0[] = "worker";
      char* argv[] = {arg0, nullptr};
      char* envp[] = {nullptr};
      (void)os.execve(kProgram, argv, envp);
      return 127;
    });
    EXPECT_TRUE(child);
    return child.value_or(sys::ChildWithPidFd{});
  }

  std::unique_ptr<ChildWatch> watch(pid_t pid, int pidfd) {
    auto made =
        ChildWatch::start(*reactor, os, pid, OwnedFd(os, pidfd), [this](const ProcessExit& e) {
          exit = e;
          ++exits;
        });
    EXPECT_TRUE(made) << (made ? "" : to_string(made.error()));
    return made ? std::move(*made) : nullptr;
  }

  void turn() {
    ASSERT_THAT(reactor->iterate(milliseconds(0)), IsOk());
    reactor->run_until_current();
  }
};

TEST(ChildWatch, ReapsAChildThatExitsAndGivesItsCode) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  w.turn();
  EXPECT_EQ(w.exits, 0);
  w.os.end_process(child.pid, 3);
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_TRUE(w.exit->exited());
  EXPECT_EQ(w.exit->exit_code(), 3);
  EXPECT_FALSE(w.exit->clean());
  EXPECT_EQ(w.exit->describe(), "exit status 3");
  EXPECT_TRUE(watch->reaped());
  EXPECT_EQ(w.os.process(child.pid).state, fake::ProcessState::kReaped);
  // The pidfd went with the child, and the reactor no longer watches it.
  EXPECT_THAT(w.os.open_fds(w.os.getpid()), testing::Not(testing::Contains(child.pidfd)));
  EXPECT_THAT(w.reactor->readers(), testing::IsEmpty());
  w.turn();
  EXPECT_EQ(w.exits, 1);
}

TEST(ChildWatch, SignalsThroughThePidfdAndReportsTheKillingSignal) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  ASSERT_THAT(watch->signal(SIGTERM), IsOk());
  EXPECT_EQ(calls_of(w.os, "pidfd_send_signal"), 1u);
  EXPECT_EQ(calls_of(w.os, "kill"), 0u);
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_TRUE(w.exit->killed());
  EXPECT_EQ(w.exit->signal(), SIGTERM);
  EXPECT_FALSE(w.exit->core_dumped());
  EXPECT_EQ(w.exit->describe(), "killed by signal 15 (SIGTERM)");
}

TEST(ChildWatch, ACoreDumpIsSaid) {
  World w;
  ASSERT_THAT(w.os.setrlimit(RLIMIT_CORE, {RLIM_INFINITY, RLIM_INFINITY}), IsOk());
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  w.os.send_signal(child.pid, SIGSEGV);
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_TRUE(w.exit->core_dumped());
  EXPECT_EQ(w.exit->describe(), "killed by signal 11 (SIGSEGV), core dumped");
}

// Once reaped, the pid may be a stranger's: no call is made at all.
TEST(ChildWatch, SignallingAReapedChildFailsWithEsrchAndMakesNoCall) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  w.os.end_process(child.pid, 0);
  w.turn();
  ASSERT_TRUE(watch->reaped());
  EXPECT_TRUE(w.exit->clean());
  w.os.clear_transcript();
  EXPECT_THAT(watch->signal(SIGTERM), FailsWith(ESRCH));
  EXPECT_TRUE(w.os.transcript().empty());
}

// Another child of this process, not given to the watch, exits too: it stays a zombie for
// whoever owns it (never waitpid(-1)).
TEST(ChildWatch, NeverReapsAChildItWasNotGiven) {
  World w;
  const auto ours = w.spawn();
  const auto theirs = w.spawn();
  auto watch = w.watch(ours.pid, ours.pidfd);
  w.os.end_process(theirs.pid, 9);
  w.os.end_process(ours.pid, 0);
  w.turn();
  EXPECT_EQ(w.exits, 1);
  EXPECT_EQ(w.os.process(theirs.pid).state, fake::ProcessState::kZombie);
  EXPECT_EQ(calls_of(w.os, "waitpid"), 1u);
  ASSERT_THAT(w.os.close(theirs.pidfd), IsOk());
}

TEST(ChildWatch, AChildReapedBySomeoneElseEndsWithAnUnknownExit) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  w.os.end_process(child.pid, 4);
  ASSERT_THAT(w.os.waitpid(child.pid, 0), IsOk());  // a waitpid elsewhere in the process
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_FALSE(w.exit->known());
  EXPECT_FALSE(w.exit->clean());
  EXPECT_EQ(w.exit->describe(), "reaped elsewhere: how it ended is unknown");
  EXPECT_THAT(w.reactor->readers(), testing::IsEmpty());
}

// waitpid failing otherwise (not expected, but any errno can come) is tried again at the next
// wake-up; the level-triggered pidfd brings it.
TEST(ChildWatch, AFailedWaitpidIsTriedAgain) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  w.os.end_process(child.pid, 2);
  w.os.fail_nth("waitpid", 1, EINTR);
  w.turn();
  EXPECT_EQ(w.exits, 0);
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_EQ(w.exit->exit_code(), 2);
}

TEST(ChildWatch, AChildThatExitedBeforeTheWatchIsReapedAtTheNextTurn) {
  World w;
  const auto child = w.spawn();
  w.os.end_process(child.pid, 6);
  auto watch = w.watch(child.pid, child.pidfd);
  EXPECT_EQ(w.exits, 0);
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_EQ(w.exit->exit_code(), 6);
}

TEST(ChildWatch, AFailedEpollCtlGivesTheErrorAndClosesThePidfd) {
  World w;
  const auto child = w.spawn();
  w.os.clear_transcript();  // counts calls from here
  w.os.fail_nth("epoll_ctl", 1, ENOMEM);
  auto made = ChildWatch::start(*w.reactor, w.os, child.pid, OwnedFd(w.os, child.pidfd),
                                [](const ProcessExit&) {});
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().os.code, ENOMEM);
  EXPECT_THAT(w.os.open_fds(w.os.getpid()), testing::Not(testing::Contains(child.pidfd)));
}

// A watch dropped while its child runs stops watching and leaves the child alone.
TEST(ChildWatch, DestroyingTheWatchNeitherKillsNorReaps) {
  World w;
  const auto child = w.spawn();
  auto watch = w.watch(child.pid, child.pidfd);
  watch.reset();
  EXPECT_THAT(w.reactor->readers(), testing::IsEmpty());
  EXPECT_TRUE(w.os.process(child.pid).alive());
  EXPECT_EQ(calls_of(w.os, "pidfd_send_signal") + calls_of(w.os, "kill"), 0u);
  w.os.end_process(child.pid, 0);
  w.turn();
  EXPECT_EQ(w.exits, 0);
  EXPECT_EQ(w.os.process(child.pid).state, fake::ProcessState::kZombie);
}

TEST(ChildWatch, TheExitCallbackMayDestroyTheWatch) {
  World w;
  const auto child = w.spawn();
  std::unique_ptr<ChildWatch> watch;
  auto made = ChildWatch::start(*w.reactor, w.os, child.pid, OwnedFd(w.os, child.pidfd),
                                [&](const ProcessExit&) {
                                  ++w.exits;
                                  watch.reset();
                                });
  ASSERT_TRUE(made);
  watch = std::move(*made);
  w.os.end_process(child.pid, 0);
  w.turn();
  EXPECT_EQ(w.exits, 1);
  EXPECT_EQ(watch, nullptr);
}

// ---- Without a pidfd (Linux < 5.2): SIGCHLD and waitpid(pid) through the reactor. ----------

TEST(ChildWatchFallback, ReapsOnTheReactorsChildReapingAndSignalsByPid) {
  World w;
  const auto child = w.spawn();
  ASSERT_THAT(w.os.close(child.pidfd), IsOk());
  auto watch = w.watch(child.pid, -1);
  EXPECT_FALSE(watch->has_pidfd());
  ASSERT_THAT(watch->signal(SIGKILL), IsOk());
  EXPECT_EQ(calls_of(w.os, "kill"), 1u);
  w.reactor->reap_children();  // what the reactor does on SIGCHLD
  ASSERT_EQ(w.exits, 1);
  EXPECT_EQ(w.exit->signal(), SIGKILL);
  w.os.clear_transcript();
  EXPECT_THAT(watch->signal(SIGKILL), FailsWith(ESRCH));
  EXPECT_TRUE(w.os.transcript().empty());
}

// The reactor reaps an already-exited child inside watch_child; the watch hands the exit over
// at the next turn, so on_exit never runs before start has returned.
TEST(ChildWatchFallback, AChildThatExitedBeforeTheWatchEndsAtTheNextTurn) {
  World w;
  const auto child = w.spawn();
  ASSERT_THAT(w.os.close(child.pidfd), IsOk());
  w.os.end_process(child.pid, 8);
  auto watch = w.watch(child.pid, -1);
  EXPECT_EQ(w.exits, 0);
  EXPECT_TRUE(watch->reaped());
  w.turn();
  ASSERT_EQ(w.exits, 1);
  EXPECT_EQ(w.exit->exit_code(), 8);
}

TEST(ChildWatchFallback, DestroyingTheWatchBeforeTheEarlyExitIsDeliveredCancelsIt) {
  World w;
  const auto child = w.spawn();
  ASSERT_THAT(w.os.close(child.pidfd), IsOk());
  w.os.end_process(child.pid, 8);
  auto watch = w.watch(child.pid, -1);
  watch.reset();
  w.turn();
  EXPECT_EQ(w.exits, 0);
}

TEST(ChildWatchFallback, DestroyingTheWatchUnwatchesTheChild) {
  World w;
  const auto child = w.spawn();
  ASSERT_THAT(w.os.close(child.pidfd), IsOk());
  auto watch = w.watch(child.pid, -1);
  watch.reset();
  w.os.end_process(child.pid, 0);
  w.reactor->reap_children();
  EXPECT_EQ(w.exits, 0);
  EXPECT_EQ(w.os.process(child.pid).state, fake::ProcessState::kZombie);
}

}  // namespace
}  // namespace daemonkit::core
