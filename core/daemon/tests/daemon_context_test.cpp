// DaemonContext in one fake kernel: the first parent, the intermediate and the daemon all run,
// each through its own step function, and the test watches the state each one is left in and
// the bytes that cross the status pipe.
#include "daemonkit/core/daemon/daemon_context.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonize_harness.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWithMessage;
using fake::FakeSyscalls;
using ::testing::Contains;
using testing::DaemonizeRun;
using ::testing::ElementsAre;
using testing::fake_options;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::run_daemonize;

std::vector<std::string> calls_by(const FakeSyscalls& os, pid_t pid, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& r : os.transcript()) {
    if (r.pid == pid && r.name == name) out.push_back(r.to_string());
  }
  return out;
}

TEST(DaemonContextFake, ThreeProcessesAndTheReadyByteCrossingThePipe) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr << to_string(os.transcript());
  EXPECT_EQ(run.first_parent_stderr, "");
  ASSERT_NE(run.intermediate, 0);
  ASSERT_NE(run.daemon, 0);
  EXPECT_NE(run.daemon, run.intermediate);
  EXPECT_TRUE(run.daemon_alive(os));
  EXPECT_FALSE(os.process(run.intermediate).alive());
  EXPECT_EQ(os.process(run.intermediate).wait_status, 0);

  // The daemon wrote exactly "0", once, on the pipe; nobody else wrote on it.
  std::vector<std::string> pipe_writes;
  for (const auto& r : os.transcript()) {
    if (r.name == "write" && r.pid == run.daemon && r.args.size() > 1 && r.args[1] == "\"0\"") {
      pipe_writes.push_back(r.to_string());
    }
  }
  EXPECT_EQ(pipe_writes.size(), 1u) << to_string(os.transcript());
  // After the fork, the first parent closed its write end before its first read (twisted#7745).
  std::size_t forked = 0, closed_write = 0, first_read = 0;
  for (const auto& r : os.transcript()) {
    if (r.pid != run.first_parent) continue;
    if (r.name == "fork" && forked == 0) forked = r.index;
    if (forked == 0) continue;
    if (r.name == "close" && closed_write == 0) closed_write = r.index;
    if (r.name == "read" && first_read == 0) first_read = r.index;
  }
  ASSERT_NE(first_read, 0u);
  EXPECT_LT(closed_write, first_read);
}

TEST(DaemonContextFake, DaemonIsANewSessionsNonLeaderWithDevNullStdioAndUmask077) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_EQ(daemon.sid, run.intermediate);
  EXPECT_NE(daemon.sid, daemon.pid);
  EXPECT_NE(daemon.sid, os.process(run.first_parent).sid);
  EXPECT_EQ(daemon.umask, 077u);
  EXPECT_EQ(daemon.cwd, "/");
  for (int fd : {0, 1, 2}) EXPECT_EQ(os.describe_fd(run.daemon, fd), "/dev/null") << fd;
}

TEST(DaemonContextFake, DaemonKeepsOnlyStdioAndThePidFile) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  const DaemonizeRun run = run_daemonize(os, options, [](DaemonContext& ctx, FakeSyscalls& fos) {
    // A descriptor the daemon's program opens after open() is its own business.
    ctx.ready();
    (void)fos;
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const std::vector<int> fds = os.open_fds(run.daemon);
  ASSERT_EQ(fds.size(), 4u) << ::testing::PrintToString(fds);
  EXPECT_THAT(os.describe_fd(run.daemon, fds[3]), ::testing::StartsWith("file:/run/d.pid"));
}

TEST(DaemonContextFake, InheritedDescriptorsAreClosedButPreservedOnesKept) {
  FakeSyscalls os;
  // Opened by the first parent before daemonizing, without CLOEXEC, above its stdio.
  const int leaked = 3;
  const int kept = 4;
  DaemonOptions options = fake_options();
  options.files_preserve = {kept};
  const DaemonizeRun run = run_daemonize(os, options, testing::report_ready, [](FakeSyscalls& fos) {
    ASSERT_EQ(fos.open("/tmp/leak", O_WRONLY | O_CREAT, 0600), 3);
    ASSERT_EQ(fos.open("/tmp/kept", O_WRONLY | O_CREAT, 0600), 4);
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const std::vector<int> fds = os.open_fds(run.daemon);
  EXPECT_THAT(fds, Not(Contains(leaked)));
  EXPECT_THAT(fds, Contains(kept));
  EXPECT_THAT(os.describe_fd(run.daemon, kept), ::testing::StartsWith("file:/tmp/kept"));
}

TEST(DaemonContextFake, PidFileHoldsTheDaemonsPidAndItsLock) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.daemon) + "\n");
  // A second starter, in the daemon's kernel, finds the lock held.
  os.switch_to(run.daemon);
  auto second = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(second);
  EXPECT_THAT(second, FailsWithMessage(HasSubstr("Another server is running, PID " +
                                                 std::to_string(run.daemon))));
}

TEST(DaemonContextFake, PidFileIsWrittenBeforeReadyIsReported) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  std::size_t pid_write = 0, ready_write = 0;
  for (const auto& r : os.transcript()) {
    if (r.name != "write" || r.pid != run.daemon) continue;
    if (r.args.size() > 1 && r.args[1] == "\"0\"") ready_write = r.index;
    if (r.args.size() > 1 && r.args[1].find(std::to_string(run.daemon)) != std::string::npos) {
      pid_write = r.index;
    }
  }
  ASSERT_NE(pid_write, 0u);
  EXPECT_LT(pid_write, ready_write);
}

TEST(DaemonContextFake, SecondStartIsRefusedBeforeForking) {
  FakeSyscalls os;
  const DaemonizeRun first = run_daemonize(os, fake_options());
  ASSERT_EQ(first.first_parent_exit, 0);
  // A new command, started from the shell.
  os.switch_to(999);
  const pid_t command = *os.fork();
  ASSERT_NE(command, 0);
  os.switch_to(command);
  const DaemonizeRun second = run_daemonize(os, fake_options());
  EXPECT_EQ(second.first_parent_exit, 1);
  EXPECT_THAT(second.first_parent_stderr,
              HasSubstr("Another server is running, PID " + std::to_string(first.daemon) + "\n"));
  EXPECT_THAT(second.first_parent_stderr, HasSubstr("--pidfile"));
  EXPECT_THAT(calls_by(os, command, "fork"), IsEmpty());
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(first.daemon) + "\n");
}

TEST(DaemonContextFake, UnlockedFileOfALiveProcessIsRefused) {
  FakeSyscalls os;
  os.write_file("/run/d.pid", "999\n");  // the shell, alive
  const DaemonizeRun run = run_daemonize(os, fake_options());
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("Another server is running, PID 999\n"));
}

TEST(DaemonContextFake, StaleFileIsLoggedAndTakenOver) {
  FakeSyscalls os;
  os.write_file("/run/d.pid", "4242\n");
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_THAT(run.log, Contains("Removing stale pidfile /run/d.pid"));
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.daemon) + "\n");
}

TEST(DaemonContextFake, OwnPidAndPidZeroAreStaleNotRunning) {
  for (const std::string content : {"1000\n", "0\n", "-1\n"}) {
    FakeSyscalls os;
    os.write_file("/run/d.pid", content);
    const DaemonizeRun run = run_daemonize(os, fake_options());
    EXPECT_EQ(run.first_parent_exit, 0) << content << run.first_parent_stderr;
  }
}

TEST(DaemonContextFake, NonNumericFileIsRefused) {
  FakeSyscalls os;
  os.write_file("/run/d.pid", "1_0\n");
  const DaemonizeRun run = run_daemonize(os, fake_options());
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_EQ(run.first_parent_stderr, "Pidfile /run/d.pid contains non-numeric value\n");
}

TEST(DaemonContextFake, SymlinkedPidFileIsRefused) {
  FakeSyscalls os;
  os.write_file("/etc/victim", "x");
  os.make_symlink("/etc/victim", "/run/d.pid");
  const DaemonizeRun run = run_daemonize(os, fake_options());
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("open(/run/d.pid)"));
  EXPECT_EQ(os.read_file("/etc/victim"), "x");
}

TEST(DaemonContextFake, ExplicitUmaskAndWorkingDirectory) {
  FakeSyscalls os;
  os.make_dir("/srv/app");
  DaemonOptions options = fake_options();
  options.umask = 027;
  options.working_directory = "/srv/app";
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(os.process(run.daemon).umask, 027u);
  EXPECT_EQ(os.process(run.daemon).cwd, "/srv/app");
}

TEST(DaemonContextFake, MissingWorkingDirectoryFailsWithTheStep) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.working_directory = "/nowhere";
  const DaemonizeRun run = run_daemonize(os, options);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_EQ(run.first_parent_stderr,
            "An error has occurred: chdir(/nowhere): No such file or directory (ENOENT)\n"
            "Please look at log file for more information.\n");
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
  EXPECT_FALSE(run.daemon_alive(os));
}

TEST(DaemonContextFake, ChrootEntersTheRootThenTheWorkingDirectoryInsideIt) {
  FakeSyscalls os;
  os.make_dir("/jail/run");
  DaemonOptions options = fake_options();
  options.chroot_directory = "/jail";
  options.pidfile = "/jail/run/d.pid";
  std::string pid_inside;
  const DaemonizeRun run = run_daemonize(os, options, [&](DaemonContext& ctx, FakeSyscalls& fos) {
    ctx.ready();
    pid_inside = fos.read_file("/jail/run/d.pid").value_or("");
    // The daemon finds its PID file by its path inside the root, and removes it on close.
    ctx.close();
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(pid_inside, std::to_string(run.daemon) + "\n");
  EXPECT_FALSE(os.stat_path("/jail/run/d.pid"));
  EXPECT_EQ(os.process(run.daemon).root, "/jail");
  EXPECT_EQ(os.process(run.daemon).cwd, "/");
  // twistd's order, the same as the launch's (LaunchOnFake.ChrootThenRundirInTwistdsOrder):
  // chroot, then the working directory inside the new root.
  std::vector<std::string> steps;
  for (const auto& r : os.transcript()) {
    if (r.pid == run.daemon && (r.name == "chroot" || r.name == "chdir")) {
      steps.push_back(r.call_text());
    }
  }
  EXPECT_THAT(steps, ElementsAre("chroot(/jail)", "chdir(/)", "chdir(/)"));
}

TEST(DaemonContextFake, ARelativeWorkingDirectoryIsTakenInsideTheRoot) {
  FakeSyscalls os;
  os.make_dir("/jail/data");
  os.make_dir("/data");
  DaemonOptions options = fake_options();
  options.chroot_directory = "/jail";
  options.working_directory = "data";
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(os.process(run.daemon).root, "/jail");
  EXPECT_EQ(os.process(run.daemon).cwd, "/data");
  EXPECT_THAT(calls_by(os, run.daemon, "chdir"),
              ElementsAre(HasSubstr("chdir(/)"), HasSubstr("chdir(data)")));
}

TEST(DaemonContextFake, PreventCoreSetsCoreLimitToZero) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0);
  os.switch_to(run.daemon);
  const auto core = os.getrlimit(RLIMIT_CORE);
  ASSERT_TRUE(core);
  EXPECT_EQ(core->rlim_cur, 0u);
  EXPECT_EQ(core->rlim_max, 0u);
}

TEST(DaemonContextFake, SignalMapIgnoresJobControlSignals) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options());
  ASSERT_EQ(run.first_parent_exit, 0);
  const fake::ProcessInfo daemon = os.process(run.daemon);
  for (int sig : {SIGTSTP, SIGTTIN, SIGTTOU}) EXPECT_THAT(daemon.ignored_signals, Contains(sig));
  EXPECT_THAT(daemon.blocked_signals, IsEmpty());
}

TEST(DaemonContextFake, SigtermFromAnotherProcessStopsTheDaemonThroughItsSignalfd) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.signal_map = default_signal_map();
  constexpr pid_t kShell = 999;  // the fake's interactive shell, root like a service manager
  std::optional<signalfd_siginfo> stop;
  bool readable_before_kill = true;
  const DaemonizeRun run = run_daemonize(os, options, [&](DaemonContext& ctx, FakeSyscalls& fos) {
    ctx.ready();
    const pid_t daemon = fos.getpid();
    ASSERT_GE(ctx.stop_fd(), 0);
    pollfd watch{ctx.stop_fd(), POLLIN, 0};
    readable_before_kill = *fos.poll(&watch, 1, 0) != 0;
    fos.switch_to(kShell);
    ASSERT_TRUE(fos.kill(daemon, SIGTERM));
    fos.switch_to(daemon);
    EXPECT_TRUE(fos.process(daemon).alive()) << "SIGTERM is blocked, so it waits in the signalfd";
    ASSERT_EQ(*fos.poll(&watch, 1, 0), 1);
    signalfd_siginfo info{};
    auto n = fos.read(ctx.stop_fd(), &info, sizeof info);
    ASSERT_TRUE(n);
    stop = info;
    ctx.close();
    fos.exit_now(0);
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_FALSE(readable_before_kill);
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->ssi_signo, static_cast<std::uint32_t>(SIGTERM));
  EXPECT_EQ(stop->ssi_pid, static_cast<std::uint32_t>(kShell));
  EXPECT_FALSE(os.stat_path("/run/d.pid")) << "an orderly stop removes the PID file";
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_FALSE(daemon.alive());
  EXPECT_TRUE(WIFEXITED(daemon.wait_status));
  EXPECT_EQ(WEXITSTATUS(daemon.wait_status), 0);
  EXPECT_THAT(daemon.signals,
              Contains(Field(&fake::SignalEvent::action, fake::SignalAction::kPending)));
}

TEST(DaemonContextFake, DefaultStopSignalIsBlockedIntoACloexecNonblockingSignalfd) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.signal_map = default_signal_map();
  int stop_fd = -1;
  const DaemonizeRun run = run_daemonize(os, options, [&](DaemonContext& ctx, FakeSyscalls&) {
    stop_fd = ctx.stop_fd();
    ctx.ready();
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_THAT(daemon.blocked_signals, ElementsAre(SIGTERM));
  ASSERT_GE(stop_fd, 0);
  EXPECT_EQ(os.describe_fd(run.daemon, stop_fd), "anon_inode:[signalfd] (cloexec)");
  os.switch_to(run.daemon);
  signalfd_siginfo info{};
  EXPECT_EQ(os.read(stop_fd, &info, sizeof info).error().code, EAGAIN) << "SFD_NONBLOCK";
}

TEST(DaemonContextFake, SignalfdFailureFailsTheStartNamingTheCall) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.signal_map = default_signal_map();
  const DaemonizeRun run = run_daemonize(os, options, testing::report_ready, [](FakeSyscalls& fos) {
    fos.fail_nth("signalfd", 1, EMFILE);
  });
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("signalfd: Too many open files (EMFILE)"));
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
}

TEST(DaemonContextFake, StdioOptionsReplaceDevNull) {
  FakeSyscalls os;
  const int log = 3;
  DaemonOptions options = fake_options();
  options.stdout_fd = log;
  options.stderr_fd = log;
  const DaemonizeRun run = run_daemonize(os, options, testing::report_ready, [](FakeSyscalls& fos) {
    ASSERT_EQ(fos.open("/var/log/d.log", O_WRONLY | O_CREAT | O_APPEND, 0640), 3);
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(os.describe_fd(run.daemon, 0), "/dev/null");
  EXPECT_THAT(os.describe_fd(run.daemon, 1), ::testing::StartsWith("file:/var/log/d.log"));
  EXPECT_THAT(os.describe_fd(run.daemon, 2), ::testing::StartsWith("file:/var/log/d.log"));
}

TEST(DaemonContextFake, PreservingAStandardDescriptorThatWouldBeClobberedIsRefused) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.files_preserve = {1};
  const DaemonizeRun run = run_daemonize(os, options);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("files_preserve names fd 1"));
  EXPECT_THAT(calls_by(os, run.first_parent, "fork"), IsEmpty());
}

TEST(ReserveStdio, FillsClosedStandardDescriptorsSoFilesLandAbove2) {
  FakeSyscalls os;  // starts with nothing open
  auto filled = reserve_stdio(os);
  ASSERT_TRUE(filled);
  EXPECT_EQ(*filled, 3);
  const int log = *os.open("/tmp/log", O_WRONLY | O_CREAT, 0600);
  EXPECT_EQ(log, 3);
  EXPECT_EQ(*reserve_stdio(os), 0);
}

TEST(DaemonContextFake, StdinClosedAtLaunchCannotSwallowThePidFile) {
  // twistd's H4: with fd 0 closed, the next file opened lands on it, and the stdio redirection
  // clobbers it. Here that file would be our own PID file.
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  const DaemonizeRun run = run_daemonize(
      os, options,
      [](DaemonContext& ctx, FakeSyscalls& fos) {
        ctx.ready();
        (void)fos;
      },
      [](FakeSyscalls& fos) { (void)fos.close(0); });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  for (int fd : {0, 1, 2}) EXPECT_EQ(os.describe_fd(run.daemon, fd), "/dev/null") << fd;
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.daemon) + "\n");
}

TEST(DaemonContextFake, ShedsToNobodyAfterWritingThePidFileAndRootIsGone) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.privileges.user = "nobody";
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_EQ(daemon.uids, (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(daemon.gids, (sys::ResGids{65534, 65534, 65534}));
  EXPECT_THAT(daemon.groups, ElementsAre(65534u));
  EXPECT_THAT(run.log, Contains("set uid/gid 65534/65534"));
  os.switch_to(run.daemon);
  EXPECT_FALSE(os.setuid(0));
}

// The jail holds no group database; the groups were read from the host's before any fork, so
// the daemon still gets all of them, and neither child reads the database.
TEST(DaemonContextFake, ChrootedDaemonGetsTheUsersWholeGroupListFromBeforeTheFork) {
  FakeSyscalls os;
  os.add_user("svc", 500, 500);
  os.add_group("svc", 500);
  os.add_group("adm", 4, {"svc"});
  os.add_group("web", 33, {"other", "svc"});
  os.add_group("misc", 77, {"other"});
  os.make_dir("/jail/run");
  DaemonOptions options = fake_options();
  options.chroot_directory = "/jail";
  options.pidfile = "/jail/run/d.pid";
  options.privileges.user = "svc";
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_EQ(daemon.root, "/jail");
  EXPECT_EQ(daemon.uids, (sys::ResUids{500, 500, 500}));
  EXPECT_THAT(daemon.groups, ElementsAre(4u, 33u, 500u));
  EXPECT_THAT(calls_by(os, run.daemon, "setgroups"),
              ElementsAre(HasSubstr("setgroups([500, 4, 33])")));
  std::vector<pid_t> readers;
  for (const auto& r : os.transcript()) {
    if (r.name == "getgrouplist") readers.push_back(r.pid);
  }
  EXPECT_THAT(readers, ElementsAre(run.first_parent));
}

// twistd's H5: /run is root's, the daemon is nobody by the time it exits. It used to empty the
// file through the read-write descriptor it kept; that descriptor is what let a daemon that
// shed privileges rewrite its pid (issue #12, item 2), so it now keeps a read-only one and
// cannot empty a root-owned file either. The file stays, unlocked, naming a pid that is gone,
// and the log says what the next start will make of it.
TEST(DaemonContextFake, PidFileIsLeftAndSaidSoWhenTheShedDaemonCannotRemoveIt) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.privileges.user = "nobody";
  const DaemonizeRun run = run_daemonize(os, options, [](DaemonContext& ctx, FakeSyscalls&) {
    ctx.ready();
    ctx.close();
  });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.daemon) + "\n");
  EXPECT_THAT(run.log, Contains(HasSubstr("No permission to delete pid file /run/d.pid")));
  EXPECT_THAT(run.log, Contains(::testing::AllOf(HasSubstr("Failed to empty PID file /run/d.pid"),
                                                 HasSubstr("Permission denied (EACCES)"),
                                                 HasSubstr("next start"))));
}

TEST(DaemonContextFake, OrderlyCloseRemovesThePidFile) {
  FakeSyscalls os;
  const DaemonizeRun run = run_daemonize(os, fake_options(), [](DaemonContext& ctx, FakeSyscalls&) {
    ctx.ready();
    ctx.close();
  });
  ASSERT_EQ(run.first_parent_exit, 0);
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
}

TEST(DaemonContextFake, ProgramFailureReachesTheParentAndRemovesThePidFile) {
  FakeSyscalls os;
  const DaemonizeRun run =
      run_daemonize(os, fake_options(), [](DaemonContext& ctx, FakeSyscalls& fos) {
        ctx.fail(StepError::from(StepKind::kApplication, "bind(0.0.0.0:80)",
                                 sys::Error{EADDRINUSE, "bind", {}}));
        fos.exit_now(1);
      });
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_EQ(run.first_parent_stderr,
            "An error has occurred: bind(0.0.0.0:80): Address already in use (EADDRINUSE)\n"
            "Please look at log file for more information.\n");
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
}

TEST(DaemonContextFake, DaemonDyingSilentlyFailsTheParentWithoutAHang) {
  FakeSyscalls os;
  const DaemonizeRun run =
      run_daemonize(os, fake_options(), [](DaemonContext&, FakeSyscalls& fos) { fos.exit_now(3); });
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("the daemon exited before reporting its status"));
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
}

TEST(DaemonContextFake, IntermediateFailuresNameTheirStep) {
  {
    FakeSyscalls os;
    const DaemonizeRun run =
        run_daemonize(os, fake_options(), testing::report_ready,
                      [](FakeSyscalls& fos) { fos.fail_nth("setsid", 1, EPERM); });
    EXPECT_EQ(run.first_parent_exit, 1);
    EXPECT_THAT(run.first_parent_stderr,
                HasSubstr("An error has occurred: setsid: Operation not permitted (EPERM)"));
    EXPECT_FALSE(os.stat_path("/run/d.pid"));
  }
  {
    FakeSyscalls os;
    const DaemonizeRun run =
        run_daemonize(os, fake_options(), testing::report_ready,
                      [](FakeSyscalls& fos) { fos.fail_nth("fork", 2, EAGAIN); });
    EXPECT_EQ(run.first_parent_exit, 1);
    EXPECT_THAT(
        run.first_parent_stderr,
        HasSubstr("An error has occurred: fork: Resource temporarily unavailable (EAGAIN)"));
    EXPECT_FALSE(os.stat_path("/run/d.pid"));
  }
}

TEST(DaemonContextFake, FirstForkFailureIsReturnedAndLeavesNoPidFile) {
  FakeSyscalls os;
  const DaemonizeRun run =
      run_daemonize(os, fake_options(), testing::report_ready,
                    [](FakeSyscalls& fos) { fos.fail_nth("fork", 1, EAGAIN); });
  ASSERT_TRUE(run.open_error);
  EXPECT_EQ(run.open_error->message, "fork: Resource temporarily unavailable (EAGAIN)");
  EXPECT_EQ(run.open_error->kind, StepKind::kDetach);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_FALSE(os.stat_path("/run/d.pid"));
}

// A caller that must treat one failure differently (`daemonkit run` prints the PID file's
// refusals as twistd does) asks the step's kind, never its text.
TEST(DaemonContextFake, EachFailedStepCarriesItsKind) {
  struct Case {
    const char* label;
    std::function<void(FakeSyscalls&, DaemonOptions&)> set_up;
    StepKind kind;
  };
  const Case cases[] = {
      {"working directory", [](FakeSyscalls&, DaemonOptions& o) { o.working_directory = "/no"; },
       StepKind::kChdir},
      {"chroot", [](FakeSyscalls&, DaemonOptions& o) { o.chroot_directory = "/no"; },
       StepKind::kChroot},
      {"pid file", [](FakeSyscalls& os, DaemonOptions&) { os.write_file("/run/d.pid", "x\n"); },
       StepKind::kPidFile},
      {"user", [](FakeSyscalls&, DaemonOptions& o) { o.privileges.user = "nosuchuser"; },
       StepKind::kPrivileges},
      {"core limit", [](FakeSyscalls& os, DaemonOptions&) { os.fail_nth("setrlimit", 1, EPERM); },
       StepKind::kCoreDumps},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    FakeSyscalls os;
    DaemonOptions options = fake_options();
    options.detach_process = false;
    c.set_up(os, options);
    const DaemonizeRun run = run_daemonize(os, options);
    ASSERT_TRUE(run.open_error);
    EXPECT_EQ(run.open_error->kind, c.kind) << run.open_error->message;
  }
}

TEST(DaemonContextFake, NotDetachingRunsEverythingInPlace) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.detach_process = false;
  const DaemonizeRun run = run_daemonize(os, options);
  EXPECT_EQ(run.daemon, run.first_parent);
  EXPECT_THAT(calls_by(os, run.first_parent, "fork"), IsEmpty());
  EXPECT_THAT(calls_by(os, run.first_parent, "pipe2"), IsEmpty());
  EXPECT_EQ(os.read_file("/run/d.pid"), std::to_string(run.first_parent) + "\n");
  EXPECT_EQ(os.process(run.first_parent).umask, 022u) << "umask untouched without detaching";
  EXPECT_EQ(os.describe_fd(run.first_parent, 2), std::string("file:") + testing::kParentStderr);
}

TEST(DaemonContextFake, UnderInitDetachingIsDecidedAgainst) {
  fake::FakeSyscallsOptions kernel;
  kernel.ppid = 1;
  FakeSyscalls os(kernel);
  DaemonOptions options = fake_options();
  options.detach_process.reset();
  const DaemonizeRun run = run_daemonize(os, options);
  EXPECT_EQ(run.daemon, run.first_parent);
  EXPECT_THAT(calls_by(os, run.first_parent, "fork"), IsEmpty());
  EXPECT_THAT(run.log, Contains(HasSubstr("init is the parent")));
}

// `daemonkit run --ready=pipe -- PROGRAM`, where PROGRAM daemonizes through DaemonContext: the
// launcher already forked, so PROGRAM stays in the foreground and reports on the launcher's pipe.
TEST(DaemonContextFake, UnderALaunchersStatusPipeItStaysAndReportsThere) {
  FakeSyscalls os;
  // Above the standard three, which the harness fills next.
  const auto pipe = *os.pipe2(O_CLOEXEC);
  const int read_fd = *os.fcntl(pipe.read_end, F_DUPFD_CLOEXEC, 10);
  const int write_fd = *os.fcntl(pipe.write_end, F_DUPFD_CLOEXEC, 10);
  (void)os.close(pipe.read_end);
  (void)os.close(pipe.write_end);
  Environment env;
  env.status_fd = std::to_string(write_fd);
  DaemonOptions options = fake_options();
  options.detach_process.reset();
  const DaemonizeRun run = run_daemonize(os, options, testing::report_ready, {}, env);
  EXPECT_EQ(run.daemon, run.first_parent);
  EXPECT_THAT(calls_by(os, run.first_parent, "fork"), IsEmpty());
  EXPECT_THAT(run.log, Contains(HasSubstr("DAEMONKIT_STATUS_FD")));
  char byte = 0;
  ASSERT_EQ(os.read(read_fd, &byte, 1).value_or(0), 1u);
  EXPECT_EQ(byte, '0');
  EXPECT_EQ(os.read(read_fd, &byte, 1).value_or(99), 0u) << "the write end is closed";
}

TEST(DaemonContextFake, PidFileSurvivingExecClearsCloexec) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.pidfile_survives_exec = true;
  int flags = -1;
  const DaemonizeRun run = run_daemonize(os, options, [&](DaemonContext& ctx, FakeSyscalls& fos) {
    flags = *fos.fcntl(ctx.pidfile()->fd(), F_GETFD, 0);
    ctx.ready();
  });
  ASSERT_EQ(run.first_parent_exit, 0);
  EXPECT_EQ(flags & FD_CLOEXEC, 0);
}

TEST(DaemonContextFake, StatusPipeCanBeHandedToAnExecdProgram) {
  FakeSyscalls os;
  int handed = -1;
  int flags = -1;
  const DaemonizeRun run =
      run_daemonize(os, fake_options(), [&](DaemonContext& ctx, FakeSyscalls& fos) {
        handed = *ctx.hand_over_status_fd();
        flags = *fos.fcntl(handed, F_GETFD, 0);
        ctx.ready();                      // no longer ours to send: writes nothing
        (void)fos.write(handed, "0", 1);  // the exec'd program reports
        (void)fos.close(handed);
      });
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_GE(handed, 3);
  EXPECT_EQ(flags & FD_CLOEXEC, 0);
  const auto writes = calls_by(os, run.daemon, "write");
  EXPECT_EQ(
      std::count_if(writes.begin(), writes.end(),
                    [](const std::string& w) { return w.find("\"0\"") != std::string::npos; }),
      1);
}

TEST(DaemonContextFake, HooksRunAroundDetaching) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  std::vector<std::string> seen;
  options.before_detach = [&] { seen.push_back("before:" + std::to_string(os.current_pid())); };
  options.after_detach = [&]() -> StepResult<void> {
    seen.push_back("after:" + std::to_string(os.current_pid()));
    return {};
  };
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(seen, ElementsAre("before:" + std::to_string(run.first_parent),
                                "after:" + std::to_string(run.daemon)));
}

TEST(DaemonContextFake, PrivilegedStartRunsAsRootBeforeShedding) {
  FakeSyscalls os;
  DaemonOptions options = fake_options();
  options.privileges.user = "nobody";
  uid_t euid_seen = 12345;
  options.privileged_start = [&]() -> StepResult<void> {
    euid_seen = os.getresuid()->effective;
    return {};
  };
  const DaemonizeRun run = run_daemonize(os, options);
  ASSERT_EQ(run.first_parent_exit, 0);
  EXPECT_EQ(euid_seen, 0u);
}

TEST(DaemonContextMock, RefusesToDoubleForkAMultithreadedProcess) {
  ::testing::NiceMock<fake::MockSyscalls> os;
  using ::testing::_;
  using ::testing::Return;
  using ::testing::StrEq;
  ON_CALL(os, open(StrEq("/proc/self/status"), _, _)).WillByDefault(Return(7));
  const std::string status = "Name:\tx\nThreads:\t4\n";
  EXPECT_CALL(os, read(7, _, _))
      .WillOnce([&](int, void* buf, std::size_t) {
        std::memcpy(buf, status.data(), status.size());
        return sys::Result<std::size_t>(status.size());
      })
      .WillOnce(Return(sys::Result<std::size_t>(0)));
  EXPECT_CALL(os, fork()).Times(0);
  EXPECT_CALL(os, pipe2(_)).Times(0);
  DaemonOptions options;
  options.detach_process = true;
  DaemonContext ctx(os, options, {}, {});
  auto opened = ctx.open();
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened,
              FailsWithMessage(HasSubstr("Refusing to daemonize a process with 4 threads")));
}

}  // namespace
}  // namespace daemonkit::core
