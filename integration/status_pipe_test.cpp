// The status pipe on the real kernel: a forked child plays the daemon and the test process
// waits as the first parent would. ctest runs each case as its own process with a timeout, so
// a regression to Twisted's hang (twisted#7745) fails one case instead of blocking the suite.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "daemonkit/core/status/status_pipe.h"
#include "daemonkit/sys/real_syscalls.h"
#include "status_printers.h"

namespace daemonkit::core {
namespace {

using namespace std::chrono_literals;

// Long enough for a loaded machine to schedule a child that reports at once; the silent
// cases cost exactly this much.
constexpr auto kTimeout = 500ms;
// How the child says something went wrong with its own end, distinct from codes it is asked
// to exit with.
constexpr int kChildSetupFailed = 120;

class StatusPipeOnKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    const sys::Result<sys::PipeFds> fds = os_.pipe2(O_CLOEXEC);
    ASSERT_TRUE(fds) << sys::to_string(fds.error());
    pipe_ = *fds;
  }

  // Forks a child that runs `daemon(write_end)` and exits with its result. In the child the
  // code plays a daemon after its daemonizing fork: a whole process that goes on running the
  // program (this test process is single-threaded, so allocating there is safe); it is not a
  // spawn child on its way to exec, where only async-signal-safe calls would be allowed.
  template <typename Daemon>
  pid_t fork_daemon(Daemon daemon) {
    const sys::Result<pid_t> pid = os_.fork();
    if (!pid) {
      ADD_FAILURE() << sys::to_string(pid.error());
      return -1;
    }
    if (*pid == 0) {
      if (pipe_.read_end >= 0 && !os_.close(pipe_.read_end)) os_.exit_now(kChildSetupFailed);
      os_.exit_now(daemon(pipe_.write_end));
    }
    return *pid;
  }

  // The child's wait status, reaping it if wait_for_status has not already.
  std::optional<int> reap(pid_t pid) {
    const sys::Result<sys::WaitResult> waited = os_.waitpid(pid, 0);
    if (!waited) return std::nullopt;
    return waited->status;
  }

  sys::RealSyscalls os_;
  sys::PipeFds pipe_;
};

TEST_F(StatusPipeOnKernel, ChildReportsReady) {
  const pid_t child = fork_daemon([&](int fd) { return StatusReporter(os_, fd).ready() ? 0 : 1; });
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.timeout = 10s, .pid = child});
  EXPECT_EQ(parent_exit(outcome), (ParentExit{0, ""}));
  EXPECT_EQ(reap(child), W_EXITCODE(0, 0));
}

TEST_F(StatusPipeOnKernel, ChildReportsFailure) {
  const pid_t child = fork_daemon([&](int fd) {
    return StatusReporter(os_, fd).fail("setuid(65534)", sys::Error{EPERM, "setuid", {}}) ? 0 : 1;
  });
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.timeout = 10s, .pid = child});
  EXPECT_EQ(parent_exit(outcome),
            (ParentExit{1,
                        "An error has occurred: setuid(65534): Operation not permitted "
                        "(EPERM)\nPlease look at log file for more information.\n"}));
  EXPECT_EQ(reap(child), W_EXITCODE(0, 0));
}

TEST_F(StatusPipeOnKernel, ChildExitingWithoutReportingIsNamedWithItsExitStatus) {
  // Twisted's parent hangs here for ever: it still holds a write end of its own.
  const pid_t child = fork_daemon([](int) { return 3; });
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.pid = child});
  EXPECT_EQ(outcome,
            StatusOutcome(Failed{"the daemon exited before reporting its status: exit status 3",
                                 FailureCause::kNoReport}));
}

TEST_F(StatusPipeOnKernel, ChildKilledBeforeReportingIsNamedWithTheSignal) {
  const pid_t child = fork_daemon([&](int) {
    (void)os_.kill(os_.getpid(), SIGKILL);
    return kChildSetupFailed;
  });
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.pid = child});
  EXPECT_EQ(outcome, StatusOutcome(Failed{"the daemon exited before reporting its status: "
                                          "killed by signal 9 (SIGKILL)",
                                          FailureCause::kNoReport}));
}

TEST_F(StatusPipeOnKernel, SilentChildTimesOut) {
  const pid_t child = fork_daemon([&](int) {
    // Holds the write end open and says nothing until killed.
    (void)os_.poll(nullptr, 0, -1);
    return kChildSetupFailed;
  });
  const auto started = std::chrono::steady_clock::now();
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.timeout = kTimeout, .pid = child});
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(outcome, StatusOutcome(Failed{
                         "timed out after 500 ms waiting for the daemon to report its status",
                         FailureCause::kTimeout}));
  EXPECT_GE(waited, kTimeout);
  ASSERT_TRUE(os_.kill(child, SIGKILL));
  EXPECT_EQ(reap(child), W_EXITCODE(0, SIGKILL));
}

TEST_F(StatusPipeOnKernel, GrandchildIsExplainedWhenTheParentIsItsSubreaper) {
  // The shape of a real double fork: the daemon is a grandchild. As its subreaper, the parent
  // inherits it when the middle process exits, and can say how it died.
  ASSERT_TRUE(os_.prctl(PR_SET_CHILD_SUBREAPER, 1));
  const sys::Result<sys::PipeFds> side = os_.pipe2(O_CLOEXEC);
  ASSERT_TRUE(side);
  const pid_t middle = fork_daemon([&](int) {
    const sys::Result<pid_t> grandchild = os_.fork();
    if (!grandchild) return kChildSetupFailed;
    if (*grandchild == 0) os_.exit_now(4);
    // Tells the parent the daemon's pid, as a daemonizer could through a PID file.
    const pid_t pid = *grandchild;
    const sys::Result<std::size_t> sent = os_.write(side->write_end, &pid, sizeof pid);
    return sent && *sent == sizeof pid ? 0 : kChildSetupFailed;
  });
  ASSERT_TRUE(os_.close(side->write_end));
  pid_t daemon = 0;
  const sys::Result<std::size_t> got = os_.read(side->read_end, &daemon, sizeof daemon);
  ASSERT_TRUE(got && *got == sizeof daemon);
  ASSERT_TRUE(os_.close(side->read_end));
  EXPECT_EQ(reap(middle), W_EXITCODE(0, 0));

  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, pipe_.write_end, {.timeout = 10s, .pid = daemon});
  EXPECT_EQ(outcome,
            StatusOutcome(Failed{"the daemon exited before reporting its status: exit status 4",
                                 FailureCause::kNoReport}));
}

TEST_F(StatusPipeOnKernel, ReportingToAParentThatLeftIsAnErrorNotASigpipeDeath) {
  ASSERT_TRUE(os_.close(pipe_.read_end));
  pipe_.read_end = -1;  // gone before the fork: no reader anywhere
  const pid_t child = fork_daemon([&](int fd) {
    const sys::Result<void> sent = StatusReporter(os_, fd).ready();
    return !sent && sent.error().code == EPIPE ? 0 : 1;
  });
  ASSERT_TRUE(os_.close(pipe_.write_end));
  EXPECT_EQ(reap(child), W_EXITCODE(0, 0));
}

TEST_F(StatusPipeOnKernel, KeepingTheWriteEndOpenIsWhatHangsTwisted) {
  // The defect this component exists to avoid, shown on the kernel: the child is long gone,
  // but while the parent holds a write end no EOF comes, and only the timeout ends the wait.
  const pid_t child = fork_daemon([](int) { return 0; });
  EXPECT_EQ(reap(child), W_EXITCODE(0, 0));
  const StatusOutcome outcome =
      wait_for_status(os_, pipe_.read_end, /*write_fd=*/-1, {.timeout = kTimeout});
  EXPECT_EQ(outcome, StatusOutcome(Failed{
                         "timed out after 500 ms waiting for the daemon to report its status",
                         FailureCause::kTimeout}));
  ASSERT_TRUE(os_.close(pipe_.write_end));
}

}  // namespace
}  // namespace daemonkit::core
