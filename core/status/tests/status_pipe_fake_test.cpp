// The status pipe across processes of the fake kernel: a forked child reports (or does not)
// through a real fake pipe, and the parent waits. Fault injection drives every call of both
// ends to fail, and the parent must always come back with a Failed naming the cause.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/core/status/status_pipe.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "status_printers.h"
#include "status_test_support.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::ForkAs;
using fake::ProcessEnded;
using ::testing::AnyOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr pid_t kParent = 1000;  // FakeSyscallsOptions' default pid

// What the child does with its write end; returns its exit code, or nothing to stay alive
// (silent, still holding the write end) when the parent takes over.
using Daemon = std::function<std::optional<int>(sys::Syscalls&, int write_fd)>;

struct ForkedDaemon {
  pid_t child = 0;
  sys::PipeFds pipe;
  // The child's calls, as transcript positions [first, last).
  std::size_t child_first = 0;
  std::size_t child_last = 0;
};

// Makes the pipe, forks, runs `daemon` in the child and makes the parent current again.
ForkedDaemon start(FakeSyscalls& os, const Daemon& daemon) {
  ForkedDaemon run;
  const sys::Result<sys::PipeFds> fds = os.pipe2(O_CLOEXEC);
  if (!fds) {
    ADD_FAILURE() << "pipe2: " << sys::to_string(fds.error());
    return run;
  }
  run.pipe = *fds;
  os.script_fork(ForkAs::kChild);
  const sys::Result<pid_t> pid = os.fork();
  if (!pid || *pid != 0) {
    ADD_FAILURE() << "fork did not continue as the child";
    return run;
  }
  run.child = os.getpid();
  run.child_first = os.transcript().size();
  try {
    (void)os.close(run.pipe.read_end);
    if (const std::optional<int> code = daemon(os, run.pipe.write_end)) os.exit_now(*code);
  } catch (const ProcessEnded&) {
  }
  run.child_last = os.transcript().size();
  os.switch_to(kParent);
  return run;
}

std::optional<int> reports_ready(sys::Syscalls& os, int fd) {
  return StatusReporter(os, fd).ready() ? 0 : 1;
}

TEST(StatusPipeOnFake, ChildReportsReady) {
  FakeSyscalls os;
  const ForkedDaemon run = start(os, reports_ready);
  EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child}),
            StatusOutcome(Ready{}));
  EXPECT_THAT(os.open_fds(kParent),
              Not(AnyOf(Contains(run.pipe.read_end), Contains(run.pipe.write_end))));
}

TEST(StatusPipeOnFake, ChildReportsFailureWithStepAndError) {
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [](sys::Syscalls& s, int fd) -> std::optional<int> {
    return StatusReporter(s, fd).fail("setuid(65534)", sys::Error{EPERM, "setuid", {}}) ? 0 : 1;
  });
  EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child}),
            StatusOutcome(Failed{"setuid(65534): Operation not permitted (EPERM)"}));
}

RC_GTEST_PROP(StatusPipeOnFake, AnyFailureMessageArrivesSanitised, ()) {
  const std::string message = *testing::hostile_message();
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [&](sys::Syscalls& s, int fd) -> std::optional<int> {
    return StatusReporter(s, fd).fail(message) ? 0 : 1;
  });
  const StatusOutcome outcome =
      wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child});
  const std::string expected = sanitize_message(message, kMaxStatusMessageBytes);
  RC_ASSERT(outcome ==
            StatusOutcome(Failed{
                expected.empty() ? "the daemon reported a failure without a message" : expected}));
}

TEST(StatusPipeOnFake, ChildExitingBeforeReportingIsNamedWithItsExitStatus) {
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [](sys::Syscalls&, int) -> std::optional<int> { return 3; });
  EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child}),
            StatusOutcome(Failed{"the daemon exited before reporting its status: exit status 3",
                                 FailureCause::kNoReport}));
  EXPECT_EQ(os.process(run.child).state, fake::ProcessState::kReaped);
}

TEST(StatusPipeOnFake, ChildKilledBeforeReportingIsNamedWithTheSignal) {
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [](sys::Syscalls& s, int) -> std::optional<int> {
    (void)s.kill(s.getpid(), SIGKILL);
    return 1;
  });
  EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child}),
            StatusOutcome(Failed{
                "the daemon exited before reporting its status: killed by signal 9 (SIGKILL)",
                FailureCause::kNoReport}));
}

TEST(StatusPipeOnFake, SilentChildWithoutTimeoutEndsInAFailureNotAHang) {
  // The fake answers a read that could never complete with EDEADLK where a kernel would sleep
  // for ever; the waiter must pass that on as a Failed naming the read.
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [](sys::Syscalls&, int) -> std::optional<int> { return {}; });
  EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child}),
            StatusOutcome(Failed{"read(status pipe): Resource deadlock avoided (EDEADLK)",
                                 FailureCause::kIo}));
  EXPECT_TRUE(os.process(run.child).alive());
}

TEST(StatusPipeOnFake, SilentChildTimesOutOnTheManualClock) {
  FakeSyscalls os;
  const ForkedDaemon run = start(os, [](sys::Syscalls&, int) -> std::optional<int> { return {}; });
  const auto before = os.clock().monotonic();
  const StatusOutcome outcome = wait_for_status(os, run.pipe.read_end, run.pipe.write_end,
                                                {.timeout = 30s, .pid = run.child});
  EXPECT_EQ(outcome,
            StatusOutcome(Failed{"timed out after 30 s waiting for the daemon to report its status",
                                 FailureCause::kTimeout}));
  EXPECT_GE(os.clock().monotonic() - before, 30s);
  EXPECT_TRUE(os.process(run.child).alive());
}

TEST(StatusPipeOnFake, ReporterIgnoresSigpipeOnlyWhileReporting) {
  FakeSyscalls os;
  const sys::Result<sys::PipeFds> fds = os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(fds);
  ASSERT_TRUE(os.close(fds->read_end));  // nobody will read
  StatusReporter reporter(os, fds->write_end);
  const sys::Result<void> sent = reporter.ready();
  ASSERT_THAT(sent, FailsWith(EPIPE));
  const fake::ProcessInfo self = os.process(kParent);
  EXPECT_TRUE(self.alive());
  ASSERT_FALSE(self.signals.empty());
  EXPECT_EQ(self.signals.back().signal, SIGPIPE);
  EXPECT_EQ(self.signals.back().action, fake::SignalAction::kIgnored);
  // The previous disposition (the default) is back, and the write end is closed.
  EXPECT_EQ(std::count(self.ignored_signals.begin(), self.ignored_signals.end(), SIGPIPE), 0);
  EXPECT_THAT(self.fds, Not(Contains(fds->write_end)));
}

// Fails each call the parent makes, in turn, in a fresh kernel: the outcome must be a Failed
// that names the call, or, where the call cannot change the outcome, the undisturbed one.
// Returns the names of the calls it failed.
std::vector<std::string> every_parent_call_failing(
    const Daemon& daemon, bool with_pid, const StatusOutcome& undisturbed,
    std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
  const auto options = [&](pid_t child) {
    StatusWaitOptions chosen{.timeout = timeout};
    if (with_pid) chosen.pid = child;
    return chosen;
  };
  std::size_t first = 0;
  std::size_t last = 0;
  std::vector<std::string> names;
  {
    FakeSyscalls os;
    const ForkedDaemon run = start(os, daemon);
    first = os.transcript().size();
    EXPECT_EQ(wait_for_status(os, run.pipe.read_end, run.pipe.write_end, options(run.child)),
              undisturbed);
    last = os.transcript().size();
    for (std::size_t i = first; i < last; ++i) names.push_back(os.transcript().at(i).name);
  }
  EXPECT_GE(last - first, 3u) << "close, read(s), close at least";
  for (std::size_t index = first; index < last; ++index) {
    FakeSyscalls os;
    os.fail_call_at(index);
    const ForkedDaemon run = start(os, daemon);
    const StatusOutcome outcome =
        wait_for_status(os, run.pipe.read_end, run.pipe.write_end, options(run.child));
    const fake::CallRecord& failed_call = os.transcript().at(index);
    SCOPED_TRACE(::testing::Message() << "failing " << failed_call.to_string());
    EXPECT_NE(failed_call.error, 0) << "the injected fault did not fire";
    const bool closes_read_end =
        failed_call.name == "close" && failed_call.args.at(0) == std::to_string(run.pipe.read_end);
    // The sleep between waitpid attempts polls no descriptors; a failure only cuts it short.
    const bool grace_sleep = failed_call.name == "poll" && failed_call.args.at(0) == "0";
    const bool no_child = failed_call.name == "waitpid" && failed_call.error == ECHILD;
    // An interrupted call is retried (poll after measuring the time left again).
    const bool interrupted = failed_call.error == EINTR;
    if (closes_read_end || interrupted) {
      EXPECT_EQ(outcome, undisturbed);
    } else if (grace_sleep || no_child) {
      EXPECT_TRUE(std::holds_alternative<Failed>(outcome) &&
                  std::get<Failed>(outcome).message.find("before reporting") != std::string::npos)
          << ::testing::PrintToString(outcome);
    } else {
      EXPECT_TRUE(std::holds_alternative<Failed>(outcome) &&
                  std::get<Failed>(outcome).message.find(failed_call.name) != std::string::npos)
          << ::testing::PrintToString(outcome);
    }
  }
  return names;
}

TEST(StatusPipeOnFake, EveryFailingParentCallIsNamedWhenTheChildReports) {
  every_parent_call_failing(reports_ready, /*with_pid=*/false, Ready{});
}

TEST(StatusPipeOnFake, EveryFailingParentCallIsNamedWithATimeout) {
  const std::vector<std::string> failed =
      every_parent_call_failing(reports_ready, /*with_pid=*/false, Ready{}, 5s);
  EXPECT_THAT(failed, Contains("clock_gettime"));
  EXPECT_THAT(failed, Contains("poll"));
}

TEST(StatusPipeOnFake, EveryFailingParentCallIsNamedWhenTheChildDies) {
  every_parent_call_failing([](sys::Syscalls&, int) -> std::optional<int> { return 3; },
                            /*with_pid=*/true,
                            Failed{"the daemon exited before reporting its status: exit status 3",
                                   FailureCause::kNoReport});
}

TEST(StatusPipeOnFake, EveryFailingChildCallStillEndsTheParentsWait) {
  // Learn the child's calls, then fail each in turn: the reporter returns the error and the
  // parent still concludes (EOF once the child is gone), it never waits for ever.
  ForkedDaemon learned;
  {
    FakeSyscalls os;
    learned = start(os, reports_ready);
  }
  ASSERT_LT(learned.child_first, learned.child_last);
  for (std::size_t index = learned.child_first; index < learned.child_last; ++index) {
    FakeSyscalls os;
    os.fail_call_at(index);
    const ForkedDaemon run = start(os, reports_ready);
    const StatusOutcome outcome =
        wait_for_status(os, run.pipe.read_end, run.pipe.write_end, {.pid = run.child});
    const fake::CallRecord& failed_call = os.transcript().at(index);
    if (failed_call.name == "exit_now") continue;  // cannot fail, by the fake's contract
    SCOPED_TRACE(::testing::Message() << "failing " << failed_call.to_string());
    ASSERT_NE(failed_call.error, 0) << "the injected fault did not fire";
    // Only a failed write loses the report; the child's own read-end close is not the
    // reporter's, and every other failure is returned by the reporter (the child exits 1).
    const bool is_write = failed_call.name == "write";
    const bool reporter_call = index > learned.child_first;
    if (is_write) {
      EXPECT_EQ(outcome,
                StatusOutcome(Failed{"the daemon exited before reporting its status: exit status 1",
                                     FailureCause::kNoReport}));
    } else {
      EXPECT_EQ(outcome, StatusOutcome(Ready{}));
      EXPECT_EQ(os.process(run.child).wait_status, W_EXITCODE(reporter_call ? 1 : 0, 0));
    }
    EXPECT_NE(os.process(run.child).state, fake::ProcessState::kRunning);
  }
}

}  // namespace
}  // namespace daemonkit::core
