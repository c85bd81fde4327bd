// core::launch, called as a C++ program (a supervisor, a test) would call it: the whole launch
// of `daemonkit run` on the fake kernel, with no command line in between.
#include "daemonkit/core/daemon/launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr pid_t kCaller = 1000;  // FakeSyscalls' default calling process

class LaunchOnFake : public ::testing::Test {
 protected:
  void SetUp() override {
    os_.install_program("/usr/bin/prog");
    os_.install_program("/srv/jail/bin/prog");
    os_.make_dir("/run");
    os_.make_dir("/srv/jail/data");
  }

  static LaunchOptions options_for(std::vector<std::string> command) {
    LaunchOptions options;
    options.command = std::move(command);
    options.environment = {"PATH=/usr/bin:/bin"};
    return options;
  }

  // The chroot and chdir calls `pid` made, in order.
  std::vector<std::string> directory_steps(pid_t pid) const {
    std::vector<std::string> steps;
    for (const auto& call : os_.transcript()) {
      if (call.pid == pid && (call.name == "chroot" || call.name == "chdir")) {
        steps.push_back(call.call_text());
      }
    }
    return steps;
  }

  FakeSyscalls os_;
};

TEST_F(LaunchOnFake, ADaemonIsReadyOnceProgramIsExecdWithItsPidFileWritten) {
  LaunchOptions options = options_for({"prog", "-x"});
  options.pidfile = "/run/p.pid";
  options.umask = 027;
  const LaunchReport report = launch(os_, options);
  ASSERT_FALSE(report.failure) << report.failure->message;
  EXPECT_EQ(report.notes, "");
  const pid_t daemon = os_.last_forked_pid();
  ASSERT_NE(daemon, kCaller);
  const fake::ProcessInfo info = os_.process(daemon);
  EXPECT_TRUE(info.alive());
  EXPECT_EQ(info.umask, 027U);
  EXPECT_NE(info.sid, daemon) << "the daemon must not lead its session";
  ASSERT_EQ(info.execs.size(), 1U);
  EXPECT_EQ(info.execs[0].path, "/usr/bin/prog");
  EXPECT_EQ(info.execs[0].argv, (std::vector<std::string>{"prog", "-x"}));
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::to_string(daemon) + "\n");
  EXPECT_EQ(os_.describe_fd(daemon, 0), "/dev/null");
}

// The one order for both ways daemonkit makes a daemon (DaemonContextFake.
// ChrootEntersTheRootThenTheWorkingDirectoryInsideIt pins DaemonContext's): twistd's chroot,
// then the working directory, taken inside the new root.
TEST_F(LaunchOnFake, ChrootThenRundirInTwistdsOrder) {
  LaunchOptions options = options_for({"/bin/prog"});
  options.chroot = "/srv/jail";
  options.rundir = "/data";
  const LaunchReport report = launch(os_, options);
  ASSERT_FALSE(report.failure) << report.failure->message;
  const pid_t daemon = os_.last_forked_pid();
  EXPECT_EQ(os_.process(daemon).root, "/srv/jail");
  EXPECT_EQ(os_.process(daemon).cwd, "/data");
  EXPECT_THAT(directory_steps(daemon),
              ElementsAre("chroot(/srv/jail)", "chdir(/)", "chdir(/data)"));
}

TEST_F(LaunchOnFake, InPlaceChrootThenRundirInTwistdsOrder) {
  LaunchOptions options = options_for({"/bin/prog"});
  options.detach = false;
  options.chroot = "/srv/jail";
  options.rundir = "/data";
  // In place, launch returns only when the exec failed; on the fake a successful exec ends
  // the call with ProcessEnded.
  try {
    const LaunchReport report = launch(os_, options);
    FAIL() << (report.failure ? report.failure->message : "returned without a failure");
  } catch (const fake::ProcessEnded& ended) {
    EXPECT_TRUE(ended.by_exec);
  }
  EXPECT_EQ(os_.process(kCaller).root, "/srv/jail");
  EXPECT_EQ(os_.process(kCaller).cwd, "/data");
  EXPECT_THAT(directory_steps(kCaller),
              ElementsAre("chroot(/srv/jail)", "chdir(/)", "chdir(/data)"));
  ASSERT_EQ(os_.process(kCaller).execs.size(), 1U);
  EXPECT_EQ(os_.process(kCaller).execs[0].path, "/bin/prog");
}

// The daemon's failure crosses the status pipe through StatusReporter, as DaemonContext's does:
// SIGPIPE is ignored around the write, so a launcher gone away cannot kill the daemon mid-report.
TEST_F(LaunchOnFake, AFailedStepIsReportedWithSigpipeIgnoredAroundTheWrite) {
  LaunchOptions options = options_for({"prog"});
  options.rundir = "/nowhere";
  options.pidfile = "/run/p.pid";
  const LaunchReport report = launch(os_, options);
  ASSERT_TRUE(report.failure);
  EXPECT_EQ(report.failure->message, "chdir(/nowhere): No such file or directory (ENOENT)");
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
  const pid_t daemon = os_.last_forked_pid();
  EXPECT_FALSE(os_.process(daemon).alive());
  EXPECT_EQ(WEXITSTATUS(os_.process(daemon).wait_status), 1);
  std::vector<std::string> around;
  for (const auto& call : os_.transcript()) {
    if (call.pid != daemon) continue;
    if ((call.name == "sigaction" && !call.args.empty() && call.args[0] == "SIGPIPE") ||
        (call.name == "write" && call.error == 0)) {
      around.push_back(call.name);
    }
  }
  // The reset of every disposition touches SIGPIPE first; then the guard, the report, the restore.
  EXPECT_THAT(around, ElementsAre("sigaction", "sigaction", "write", "sigaction", "write"));
}

// The launch's signal reset is DaemonContext's: a mask it cannot clear fails the start rather
// than leaving PROGRAM with signals blocked.
TEST_F(LaunchOnFake, ASignalMaskThatCannotBeClearedFailsTheStart) {
  const LaunchOptions options = options_for({"prog"});
  os_.fail_when(
      "sigprocmask",
      [](const fake::CallRecord& call) {
        return call.pid != kCaller && !call.args.empty() && call.args[0] == "SIG_SETMASK";
      },
      EINVAL);
  const LaunchReport report = launch(os_, options);
  ASSERT_TRUE(report.failure);
  EXPECT_EQ(report.failure->message, "sigprocmask: Invalid argument (EINVAL)");
  EXPECT_TRUE(os_.process(os_.last_forked_pid()).execs.empty());
}

TEST_F(LaunchOnFake, NoProgramIsAFailureBeforeAnythingForks) {
  const LaunchReport report = launch(os_, LaunchOptions{});
  ASSERT_TRUE(report.failure);
  EXPECT_EQ(report.failure->message, "no program to run");
  EXPECT_EQ(os_.last_forked_pid(), 0);
}

}  // namespace
}  // namespace daemonkit::core
