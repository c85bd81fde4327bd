// The commands on the fake kernel: a whole `run` (the launcher, the intermediate and the daemon
// up to PROGRAM's exec, and each step's failure reaching the user), the launcher's refusals
// before it forks, its waiting loop (with the fake's before_each_call hook playing PROGRAM),
// and `status`/`stop` reading PID files.
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "daemonkit/cli/options.h"
#include "daemonkit/cli/run_command.h"
#include "daemonkit/cli/status_command.h"
#include "daemonkit/cli/stop_command.h"
#include "daemonkit/core/daemon/daemon_stopper.h"
#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::cli {
namespace {

using core::kLaunchStopGrace;
using fake::FakeSyscalls;
using fake::FakeSyscallsOptions;
using fake::ForkAs;
using fake::ProcessEnded;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr pid_t kLauncher = 1000;  // FakeSyscalls' default calling process

RunOptions run_options(std::vector<std::string> words) {
  words.insert(words.begin(), {"daemonkit", "run"});
  Parsed parsed = parse_command_line(words);
  EXPECT_TRUE(std::holds_alternative<RunOptions>(parsed));
  return std::get<RunOptions>(parsed);
}

int count_calls(const FakeSyscalls& os, const std::string& name) {
  return static_cast<int>(std::count_if(os.transcript().begin(), os.transcript().end(),
                                        [&](const auto& record) { return record.name == name; }));
}

// A whole launch runs inside run_run on the fake: the launcher vforks the intermediate, which
// vforks the daemon, and each returns once its child has exec'd or ended, as on Linux. So the
// daemon's state is asserted directly afterwards, and what it reported is in the result.
struct Launch {
  CommandResult result;
  pid_t daemon = 0;   // the last process made: the daemon, once both vforks happened
  pid_t session = 0;  // the intermediate's session and process group, the daemon's too
};

Launch launch(FakeSyscalls& os, const RunOptions& options,
              const std::vector<std::string>& env = {"PATH=/usr/bin:/bin"}) {
  Launch run;
  run.result = run_run(os, options, env);
  run.daemon = os.last_forked_pid();
  if (run.daemon != 0) run.session = os.process(run.daemon).sid;
  return run;
}

class RunOnFake : public ::testing::Test {
 protected:
  void SetUp() override {
    os_.install_program("/usr/bin/prog");
    os_.make_dir("/run");
    os_.make_dir("/var/log");
    os_.make_dir("/srv/jail/data");
    os_.make_fifo("/var/log/unread.fifo");
  }
  FakeSyscalls os_;
};

TEST_F(RunOnFake, DaemonIsSetUpThenExecsProgramWithThePidFileLocked) {
  const Launch run = launch(
      os_,
      run_options({"--pidfile", "/run/p.pid", "--logfile", "/var/log/p.log", "--", "prog", "-x"}),
      {"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "DAEMONKIT_STATUS_FD=9"});
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  const fake::ProcessInfo info = os_.process(run.daemon);
  EXPECT_TRUE(info.alive());
  EXPECT_EQ(info.umask, 0077U);
  EXPECT_EQ(info.cwd, "/");
  EXPECT_NE(info.sid, run.daemon) << "the daemon must not lead its session";
  EXPECT_NE(info.sid, os_.process(kLauncher).sid);
  EXPECT_EQ(info.ppid, kLauncher) << "orphaned to the launcher, its subreaper";
  EXPECT_THAT(info.blocked_signals, IsEmpty());
  ASSERT_EQ(info.execs.size(), 1U);
  EXPECT_EQ(info.execs[0].path, "/usr/bin/prog");
  EXPECT_EQ(info.execs[0].argv, (std::vector<std::string>{"prog", "-x"}));
  // Neither readiness variable leaks into PROGRAM under --ready=exec.
  EXPECT_EQ(info.execs[0].envp, (std::vector<std::string>{"PATH=/usr/bin"}));
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::to_string(run.daemon) + "\n");
  EXPECT_EQ(os_.describe_fd(run.daemon, 0), "/dev/null");
  EXPECT_THAT(os_.describe_fd(run.daemon, 1), HasSubstr("/var/log/p.log"));
  EXPECT_THAT(os_.describe_fd(run.daemon, 2), HasSubstr("/var/log/p.log"));
  // After the exec: stdio and the PID file, whose lock PROGRAM now holds.
  const std::vector<int> fds = os_.open_fds(run.daemon);
  ASSERT_EQ(fds.size(), 4U);
  EXPECT_THAT(os_.describe_fd(run.daemon, fds[3]), HasSubstr("/run/p.pid"));
  // The launcher keeps only stdio and its copy of the PID file, which closes as it exits.
  EXPECT_EQ(os_.open_fds(kLauncher), (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(RunOnFake, ALauncherSignalHandlerIsResetBeforeTheDaemonUnblocksSignals) {
  struct sigaction handler {};
  handler.sa_handler = [](int) {};
  ASSERT_TRUE(os_.sigaction(SIGHUP, &handler, nullptr));
  const Launch run = launch(os_, run_options({"--", "prog"}));
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  // The daemon starts with every signal blocked (vfork); the handler must be gone first.
  const auto& calls = os_.transcript();
  std::optional<std::size_t> reset;
  std::optional<std::size_t> unblocked;
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].pid != run.daemon) continue;
    if (calls[i].name == "sigaction" && calls[i].args[0] == "SIGHUP") reset = i;
    if (calls[i].name == "sigprocmask" && !unblocked) unblocked = i;
  }
  ASSERT_TRUE(reset && unblocked);
  EXPECT_LT(*reset, *unblocked);
  EXPECT_THAT(os_.process(run.daemon).caught_signals, IsEmpty());
}

TEST_F(RunOnFake, ChrootAndRundirAreEnteredInThatOrder) {
  os_.install_program("/srv/jail/bin/prog");
  const Launch run =
      launch(os_, run_options({"--chroot", "/srv/jail", "--rundir", "/data", "--", "/bin/prog"}));
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  const fake::ProcessInfo info = os_.process(run.daemon);
  EXPECT_EQ(info.root, "/srv/jail");
  EXPECT_EQ(info.cwd, "/data");
}

TEST_F(RunOnFake, PrivilegesAreDroppedAfterThePidFileIsWritten) {
  const Launch run = launch(
      os_, run_options({"--pidfile", "/run/p.pid", "--uid", "nobody", "--", "/usr/bin/prog"}));
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  const fake::ProcessInfo info = os_.process(run.daemon);
  EXPECT_EQ(info.uids, (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(info.gids, (sys::ResGids{65534, 65534, 65534}));
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::to_string(run.daemon) + "\n");
}

// Each step's failure ends its process with 1 and reaches the launcher's user, named; no PID
// file is left behind.
struct StepFailure {
  std::string label;  // the test's name: stable, so ctest's filter finds it on every run
  std::vector<std::string> options;
  std::string call;  // the call made to fail ("" for a failure the world causes)
  int nth;
  int error;
  std::string report;
};

void PrintTo(const StepFailure& step, std::ostream* out) { *out << step.label; }

class RunStepFailsOnFake : public RunOnFake, public ::testing::WithParamInterface<StepFailure> {};

TEST_P(RunStepFailsOnFake, ReportsTheStepToTheUser) {
  const StepFailure& step = GetParam();
  if (!step.call.empty()) os_.fail_nth(step.call, step.nth, step.error);
  std::vector<std::string> words = step.options;
  words.insert(words.end(), {"--pidfile", "/run/p.pid", "--", "/usr/bin/prog"});
  const Launch run = launch(os_, run_options(words));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text(step.report));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
  const fake::ProcessInfo failed = os_.process(run.daemon);
  EXPECT_FALSE(failed.alive());
  EXPECT_EQ(WEXITSTATUS(failed.wait_status), 1);
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, RunStepFailsOnFake,
    ::testing::Values(
        StepFailure{"Chroot",
                    {"--chroot", "/nojail"},
                    "",
                    0,
                    0,
                    "chroot(/nojail): No such file or directory (ENOENT)"},
        StepFailure{"Rundir",
                    {"--rundir", "/nowhere"},
                    "",
                    0,
                    0,
                    "chdir(/nowhere): No such file or directory (ENOENT)"},
        StepFailure{"Logfile",
                    {"--logfile", "/nodir/x.log"},
                    "",
                    0,
                    0,
                    "open(/nodir/x.log): No such file or directory (ENOENT)"},
        // The log is opened without waiting, then made blocking for PROGRAM.
        StepFailure{"LogfileMadeBlocking",
                    {"--logfile", "/var/log/p.log"},
                    "fcntl",
                    4,  // after the launcher's three checks of stdin, stdout and stderr
                    EBADF,
                    "fcntl(/var/log/p.log): Bad file descriptor (EBADF)"},
        // Waiting for a reader would hold the launcher, asleep in vfork, past any --timeout.
        StepFailure{"LogfileIsAFifoNobodyReads",
                    {"--logfile", "/var/log/unread.fifo"},
                    "",
                    0,
                    0,
                    "open(/var/log/unread.fifo): No such device or address (ENXIO)"},
        StepFailure{"Setresuid",
                    {"--uid", "nobody"},
                    "setresuid",
                    1,
                    EPERM,
                    "setresuid(65534): Operation not permitted (EPERM)"},
        StepFailure{"Setsid", {}, "setsid", 1, EPERM, "setsid: Operation not permitted (EPERM)"},
        // The intermediate's vfork of the daemon (the launcher's was the first).
        StepFailure{"DaemonVfork",
                    {},
                    "vfork",
                    2,
                    EAGAIN,
                    "vfork: Resource temporarily unavailable (EAGAIN)"},
        StepFailure{
            "Execve", {}, "execve", 1, ENOEXEC, "exec /usr/bin/prog: Exec format error (ENOEXEC)"}),
    [](const ::testing::TestParamInfo<StepFailure>& param) { return param.param.label; });

TEST_F(RunOnFake, ALogFifoWithAReaderGetsProgramsOutputThroughABlockingDescriptor) {
  const int reader = *os_.open("/var/log/unread.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
  const Launch run = launch(os_, run_options({"--logfile", "/var/log/unread.fifo", "--", "prog"}));
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  os_.switch_to(run.daemon);
  // Opened without waiting, then made blocking again: PROGRAM gets an ordinary stdout.
  EXPECT_EQ(*os_.fcntl(1, F_GETFL, 0) & O_NONBLOCK, 0);
  EXPECT_EQ(*os_.fcntl(2, F_GETFL, 0) & O_NONBLOCK, 0);
  ASSERT_EQ(*os_.write(1, "hello\n", 6), 6U);
  os_.end_process(run.daemon, 0);
  os_.switch_to(kLauncher);
  char buffer[16];
  ASSERT_EQ(*os_.read(reader, buffer, sizeof buffer), 6U);
  EXPECT_EQ(std::string(buffer, 6), "hello\n");
}

// ---- --logfile, opened as root for a PROGRAM that may be someone else ----------------------
// The log's directory belongs to the user PROGRAM runs as (uid 1001 here), who may plant in it
// whatever it likes before root opens the log.

class LogfileOnFake : public RunOnFake {
 protected:
  void SetUp() override {
    RunOnFake::SetUp();
    os_.add_user("app", kApp, kApp);
    os_.make_dir("/home/app", 0755, kApp, kApp);
    os_.write_file("/etc/shadow", "root:secret\n", 0640);
  }

  // run --uid app --pidfile /run/p.pid --logfile PATH [extra] -- prog
  Launch launch_logging_to(const std::string& path, std::vector<std::string> extra = {}) {
    std::vector<std::string> words{"--uid", "app", "--pidfile", "/run/p.pid", "--logfile", path};
    words.insert(words.end(), extra.begin(), extra.end());
    words.insert(words.end(), {"--", "prog"});
    return launch(os_, run_options(words));
  }

  // The launch failed with `message`, in the daemon, before PROGRAM, leaving no PID file.
  void expect_refused(const Launch& run, const std::string& message) {
    EXPECT_EQ(run.result.code, 1);
    EXPECT_EQ(run.result.err, launch_failure_text(message));
    EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
    EXPECT_TRUE(os_.process(run.daemon).execs.empty());
  }

  static constexpr uid_t kApp = 1001;
};

TEST_F(LogfileOnFake, ASymlinkIsRefusedAndItsTargetLeftAlone) {
  os_.make_symlink("/etc/shadow", "/home/app/app.log");
  const Launch run = launch_logging_to("/home/app/app.log");
  expect_refused(run, "--logfile /home/app/app.log is a symbolic link; refused (never followed)");
  EXPECT_EQ(os_.read_file("/etc/shadow"), "root:secret\n");
}

TEST_F(LogfileOnFake, ADanglingSymlinkCreatesNothingWhereItPoints) {
  os_.make_dir("/etc/cron.d");
  os_.make_symlink("/etc/cron.d/evil", "/home/app/app.log");
  expect_refused(launch_logging_to("/home/app/app.log"),
                 "--logfile /home/app/app.log is a symbolic link; refused (never followed)");
  EXPECT_FALSE(os_.stat_path("/etc/cron.d/evil").has_value());
}

TEST_F(LogfileOnFake, ALoopHigherUpThePathKeepsTheErrnosWords) {
  os_.make_symlink("/home/app/loop", "/home/app/loop");
  expect_refused(launch_logging_to("/home/app/loop/app.log"),
                 "open(/home/app/loop/app.log): Too many levels of symbolic links (ELOOP)");
}

TEST_F(LogfileOnFake, AHardLinkToARootFileIsRefusedAndTheFileLeftAlone) {
  os_.make_hard_link("/etc/shadow", "/home/app/app.log");
  expect_refused(launch_logging_to("/home/app/app.log"),
                 "--logfile /home/app/app.log has 2 hard links; refused (must have exactly 1)");
  EXPECT_EQ(os_.read_file("/etc/shadow"), "root:secret\n");
}

TEST_F(LogfileOnFake, AFileOfAnotherUserIsRefused) {
  os_.write_file("/home/app/app.log", "theirs\n", 0666, 1002, 1002);
  expect_refused(launch_logging_to("/home/app/app.log"),
                 "--logfile /home/app/app.log is owned by uid 1002; refused (must be root's or "
                 "uid 1001's)");
  EXPECT_EQ(os_.read_file("/home/app/app.log"), "theirs\n");
}

TEST_F(LogfileOnFake, AFifoOfAnotherUserIsRefusedEvenWithAReader) {
  os_.make_fifo("/home/app/log.fifo", 0666, 1002, 1002);
  ASSERT_TRUE(os_.open("/home/app/log.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0));
  expect_refused(launch_logging_to("/home/app/log.fifo"),
                 "--logfile /home/app/log.fifo is a FIFO owned by uid 1002; refused (must be "
                 "root's or uid 1001's)");
}

TEST_F(LogfileOnFake, TheUsersOwnFileIsAccepted) {
  os_.write_file("/home/app/app.log", "earlier\n", 0644, kApp, kApp);
  const Launch run = launch_logging_to("/home/app/app.log");
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_THAT(os_.describe_fd(run.daemon, 1), HasSubstr("/home/app/app.log"));
  EXPECT_THAT(os_.describe_fd(run.daemon, 2), HasSubstr("/home/app/app.log"));
}

TEST_F(LogfileOnFake, TheUsersOwnFifoIsAccepted) {
  os_.make_fifo("/home/app/log.fifo", 0600, kApp, kApp);
  ASSERT_TRUE(os_.open("/home/app/log.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0));
  const Launch run = launch_logging_to("/home/app/log.fifo");
  ASSERT_EQ(run.result.code, 0) << run.result.err;
}

TEST_F(LogfileOnFake, RootsFileIsAccepted) {
  os_.write_file("/var/log/app.log", "", 0600);
  const Launch run = launch_logging_to("/var/log/app.log");
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_THAT(os_.describe_fd(run.daemon, 1), HasSubstr("/var/log/app.log"));
}

TEST_F(LogfileOnFake, RootsCharacterDeviceIsAccepted) {
  const Launch run = launch_logging_to("/dev/null");
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_EQ(os_.describe_fd(run.daemon, 1), "/dev/null");
}

TEST_F(LogfileOnFake, ANewFileIsCreatedByRootWithOneLink) {
  const Launch run = launch_logging_to("/home/app/new.log");
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  const auto st = os_.stat_path("/home/app/new.log");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(S_ISREG(st->st_mode));
  EXPECT_EQ(st->st_uid, 0U);
  EXPECT_EQ(st->st_nlink, 1U);
  EXPECT_THAT(os_.describe_fd(run.daemon, 1), HasSubstr("/home/app/new.log"));
}

TEST_F(LogfileOnFake, TheSameRuleHoldsWithNodaemon) {
  os_.make_hard_link("/etc/shadow", "/home/app/app.log");
  // The caller's stderr, where --nodaemon writes what went wrong once the log was to take it.
  const int caller_stderr = *os_.open("/tmp/stderr", O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(os_.dup2(caller_stderr, 2));
  ASSERT_TRUE(os_.close(caller_stderr));
  const CommandResult result = run_run(
      os_,
      run_options({"--nodaemon", "--uid", "app", "--logfile", "/home/app/app.log", "--", "prog"}),
      {"PATH=/usr/bin"});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(os_.read_file("/tmp/stderr"),
            launch_failure_text("--logfile /home/app/app.log has 2 hard links; refused (must "
                                "have exactly 1)"));
  EXPECT_TRUE(os_.process(kLauncher).execs.empty());
  EXPECT_EQ(os_.read_file("/etc/shadow"), "root:secret\n");
}

TEST_F(LogfileOnFake, FailedFstatIsReported) {
  os_.fail_when(
      "fstat", [](const fake::CallRecord& call) { return call.pid != kLauncher; }, EIO);
  expect_refused(launch_logging_to("/var/log/app.log"),
                 "fstat(/var/log/app.log): Input/output error (EIO)");
}

// Without --uid PROGRAM runs as whoever started daemonkit, so that user's files are trusted.
TEST(LogfileWithoutUidOnFake, TheLaunchersOwnUserIsTrusted) {
  FakeSyscallsOptions options;
  options.uid = 1000;
  options.gid = 1000;
  FakeSyscalls os(options);
  os.install_program("/usr/bin/prog");
  os.make_dir("/home/me", 0755, 1000, 1000);
  os.write_file("/home/me/mine.log", "", 0644, 1000, 1000);
  os.write_file("/home/me/theirs.log", "", 0666, 1002, 1002);
  const Launch mine = launch(os, run_options({"--logfile", "/home/me/mine.log", "--", "prog"}));
  EXPECT_EQ(mine.result.code, 0) << mine.result.err;
  const Launch theirs = launch(os, run_options({"--logfile", "/home/me/theirs.log", "--", "prog"}));
  EXPECT_EQ(theirs.result.err,
            launch_failure_text("--logfile /home/me/theirs.log is owned by uid 1002; refused "
                                "(must be root's or uid 1000's)"));
}

TEST(LogfileWithoutUidOnFake, FailedGetresuidIsReportedBeforeAnythingForks) {
  FakeSyscalls os;
  os.install_program("/usr/bin/prog");
  os.fail_nth("getresuid", 1, EFAULT);
  const Launch run = launch(os, run_options({"--logfile", "/var/log/p.log", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("getresuid: Bad address (EFAULT)"));
  EXPECT_EQ(count_calls(os, "vfork"), 0);
}

// ---- --nodaemon: PROGRAM takes this process's place --------------------------------------

// Runs `daemonkit run --nodaemon ...` on the fake, where a successful exec ends the call with
// ProcessEnded. Returns the result of a failed run, or nothing once PROGRAM was exec'd.
std::optional<CommandResult> run_in_place_on(FakeSyscalls& os, std::vector<std::string> words,
                                             const std::vector<std::string>& env) {
  words.insert(words.begin(), "--nodaemon");
  try {
    return run_run(os, run_options(words), env);
  } catch (const ProcessEnded& ended) {
    EXPECT_TRUE(ended.by_exec);
    return std::nullopt;
  }
}

// A descriptor the caller left open at `fd`, without FD_CLOEXEC (as a careless parent would).
void inherit(FakeSyscalls& os, const std::string& path, int fd) {
  const int opened = *os.open(path.c_str(), O_RDONLY, 0);
  ASSERT_TRUE(os.dup2(opened, fd));
  ASSERT_TRUE(os.close(opened));
}

TEST_F(RunOnFake, NodaemonClosesWhatTheCallerLeftOpenButKeepsThePidFile) {
  os_.write_file("/etc/secret", "root only", 0600);
  inherit(os_, "/etc/secret", 7);
  inherit(os_, "/etc/secret", 40);
  const auto failed = run_in_place_on(
      os_, {"--pidfile", "/run/p.pid", "--uid", "nobody", "--", "prog"}, {"PATH=/usr/bin"});
  ASSERT_FALSE(failed.has_value()) << failed->err;
  ASSERT_EQ(os_.process(kLauncher).execs.size(), 1U);
  const std::vector<int> fds = os_.open_fds(kLauncher);
  ASSERT_EQ(fds.size(), 4U);
  EXPECT_EQ(std::vector<int>(fds.begin(), fds.begin() + 3), (std::vector<int>{0, 1, 2}));
  EXPECT_THAT(os_.describe_fd(kLauncher, fds[3]), HasSubstr("/run/p.pid"));
  // The writer was kept through the closing, used, and then closed by write_pid.
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::optional<std::string>("1000\n"));
}

TEST_F(RunOnFake, NodaemonKeepsSystemdsSocketsWhenTheyAreOurs) {
  os_.write_file("/etc/secret", "root only", 0600);
  os_.write_file("/run/socket-a", "");
  os_.write_file("/run/socket-b", "");
  inherit(os_, "/run/socket-a", 3);
  inherit(os_, "/run/socket-b", 4);
  inherit(os_, "/etc/secret", 7);
  const auto failed =
      run_in_place_on(os_, {"--", "prog"}, {"PATH=/usr/bin", "LISTEN_PID=1000", "LISTEN_FDS=2"});
  ASSERT_FALSE(failed.has_value()) << failed->err;
  EXPECT_EQ(os_.open_fds(kLauncher), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_THAT(os_.describe_fd(kLauncher, 3), HasSubstr("/run/socket-a"));
  EXPECT_THAT(os_.describe_fd(kLauncher, 4), HasSubstr("/run/socket-b"));
  // The variables reach PROGRAM, which keeps our pid, so sd_listen_fds finds its sockets.
  EXPECT_THAT(os_.process(kLauncher).execs.at(0).envp, Contains("LISTEN_PID=1000"));
}

TEST(NodaemonOnFake, ClosesSocketsMeantForAnotherProcess) {
  for (const std::vector<std::string>& env :
       {std::vector<std::string>{"LISTEN_PID=999", "LISTEN_FDS=1"},
        std::vector<std::string>{"LISTEN_FDS=1"},
        std::vector<std::string>{"LISTEN_PID=1000", "LISTEN_FDS=one"}}) {
    FakeSyscalls os;
    os.install_program("/usr/bin/prog");
    os.write_file("/run/socket-a", "");
    inherit(os, "/run/socket-a", 3);
    const auto failed = run_in_place_on(os, {"--", "prog"}, env);
    ASSERT_FALSE(failed.has_value()) << failed->err;
    EXPECT_EQ(os.open_fds(kLauncher), (std::vector<int>{0, 1, 2})) << env.back();
  }
}

TEST_F(RunOnFake, NodaemonRefusesMoreSocketsThanItCanKeep) {
  const auto failed = run_in_place_on(os_, {"--pidfile", "/run/p.pid", "--", "prog"},
                                      {"LISTEN_PID=1000", "LISTEN_FDS=300"});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->code, 1);
  // 256 kept at most, less stdio and the PID file's two descriptors (lock and writer).
  EXPECT_EQ(failed->err, launch_failure_text("LISTEN_FDS=300: more descriptors than daemonkit "
                                             "can keep open (at most 251)"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, NodaemonReportsAFailureToCloseDescriptors) {
  os_.fail_nth("close_range", 1, EINVAL);
  const auto failed = run_in_place_on(os_, {"--pidfile", "/run/p.pid", "--", "prog"}, {});
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->err, launch_failure_text("closing inherited descriptors: Invalid argument "
                                             "(EINVAL)"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

// Its closed pipe alone would read as PROGRAM's exec; the launcher knows better because the
// intermediate has always ended by the time vfork returns.
TEST_F(RunOnFake, AnIntermediateKilledBeforeTheDaemonExistsIsAFailure) {
  os_.before_each_call([&](std::string_view name, pid_t caller) {
    if (name == "vfork" && caller != kLauncher) os_.send_signal(caller, SIGKILL);
  });
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  os_.before_each_call(nullptr);
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("the intermediate process was killed by signal 9 "
                                                "(SIGKILL) before the daemon started"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, ExecOfAMissingProgramIsNamedAsTyped) {
  const Launch run = launch(os_, run_options({"--", "nope"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("exec nope: No such file or directory (ENOENT)"));
}

TEST_F(RunOnFake, ProgramIsSearchedForAlongPathInOrder) {
  os_.install_program("/opt/bin/prog", 0644);  // found first, but not executable
  const Launch run = launch(os_, run_options({"--", "prog"}), {"PATH=/nowhere:/opt/bin:/usr/bin"});
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  std::vector<std::string> tried;
  for (const auto& call : os_.transcript()) {
    if (call.name == "execve") tried.push_back(call.args[0]);
  }
  EXPECT_EQ(tried, (std::vector<std::string>{"/nowhere/prog", "/opt/bin/prog", "/usr/bin/prog"}));
  EXPECT_EQ(os_.process(run.daemon).execs.at(0).path, "/usr/bin/prog");
}

TEST_F(RunOnFake, HeldPidFileIsRefusedBeforeAnythingForks) {
  os_.write_file("/run/p.pid", "999\n");  // the fake's shell, alive; the file is not locked
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_THAT(run.result.err, StartsWith("Another server is running, PID 999\n\n"));
  EXPECT_EQ(count_calls(os_, "vfork"), 0);
  EXPECT_EQ(os_.read_file("/run/p.pid"), "999\n");
}

TEST_F(RunOnFake, UnknownUserIsRefusedBeforeAnythingForks) {
  const Launch run = launch(os_, run_options({"--uid", "bob", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("Unknown user bob"));
  EXPECT_EQ(count_calls(os_, "vfork"), 0);
}

TEST_F(RunOnFake, FailedVforkReleasesThePidFile) {
  os_.fail_nth("vfork", 1, EAGAIN);
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("vfork: Resource temporarily unavailable (EAGAIN)"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, FailedPipeIsReported) {
  os_.fail_nth("pipe2", 1, EMFILE);
  const Launch run = launch(os_, run_options({"--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("pipe2: Too many open files (EMFILE)"));
}

// ---- the launcher's waiting loop ---------------------------------------------------------
// Once the daemon has exec'd PROGRAM, the launcher polls. The fake runs only the current
// process's code, so the hook plays PROGRAM just before the launcher's first poll.

constexpr int kStaysSilent = -1;  // PROGRAM lives on, never reporting

// What PROGRAM was given to report on: the status pipe under --ready=pipe, the launcher's
// socket under --ready=notify; -1 and "" otherwise.
struct ProgramSees {
  int status_fd = -1;
  std::string notify_socket;
};

// What PROGRAM does: returns its exit code, or kStaysSilent.
using ProgramScript = std::function<int(FakeSyscalls&, const ProgramSees&)>;

ProgramSees what_program_sees(const fake::ExecRecord& exec) {
  ProgramSees sees;
  for (const std::string& entry : exec.envp) {
    if (entry.starts_with("DAEMONKIT_STATUS_FD=")) sees.status_fd = std::stoi(entry.substr(20));
    if (entry.starts_with("NOTIFY_SOCKET=")) sees.notify_socket = entry.substr(14);
  }
  return sees;
}

Launch launch_with_program(FakeSyscalls& os, const RunOptions& options, ProgramScript program) {
  bool played = false;
  os.before_each_call([&](std::string_view name, pid_t caller) {
    if (played || name != "poll" || caller != kLauncher) return;
    played = true;
    const pid_t daemon = os.last_forked_pid();
    const fake::ProcessInfo info = os.process(daemon);
    ASSERT_EQ(info.execs.size(), 1U) << "PROGRAM was not exec'd";
    os.switch_to(daemon);
    const int code = program(os, what_program_sees(info.execs[0]));
    if (code != kStaysSilent) os.end_process(daemon, code);
  });
  Launch run = launch(os, options, {"PATH=/usr/bin"});
  os.before_each_call(nullptr);
  return run;
}

bool killed_group_of(const FakeSyscalls& os, pid_t leader) {
  return std::any_of(os.transcript().begin(), os.transcript().end(), [&](const auto& call) {
    return call.name == "kill" && !call.args.empty() && call.args[0] == std::to_string(-leader);
  });
}

TEST_F(RunOnFake, LauncherExitsZeroOnceProgramIsExecd) {
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  EXPECT_FALSE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, LauncherPassesOnWhatProgramReportsOnThePipe) {
  const Launch run =
      launch_with_program(os_, run_options({"--ready=pipe", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            EXPECT_TRUE(os.write(sees.status_fd, "1 port 80 is taken", 18));
                            return 1;
                          });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("port 80 is taken"));
}

TEST_F(RunOnFake, LauncherNamesHowProgramDiedBeforeItWasReady) {
  const Launch run = launch_with_program(os_, run_options({"--ready=pipe", "--", "prog"}),
                                         [](FakeSyscalls&, const ProgramSees&) { return 3; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog exited with exit status 3 before it was ready"));
}

TEST_F(RunOnFake, LauncherStopsAProgramThatIsNotReadyInTime) {
  const auto before = os_.clock().monotonic();
  const Launch run =
      launch_with_program(os_, run_options({"--ready=pipe", "--timeout", "2", "--", "prog"}),
                          [](FakeSyscalls&, const ProgramSees&) { return kStaysSilent; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog was not ready after 2 seconds; sent it SIGTERM"));
  EXPECT_GE(os_.clock().monotonic() - before, std::chrono::seconds(2));
  EXPECT_TRUE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, FailedPollEndsTheLaunchAndStopsTheDaemon) {
  os_.fail_nth("poll", 1, ENOMEM);
  const Launch run = launch_with_program(
      os_, run_options({"--ready=pipe", "--pidfile", "/run/p.pid", "--", "prog"}),
      [](FakeSyscalls&, const ProgramSees&) { return kStaysSilent; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("poll: Cannot allocate memory (ENOMEM); sent it SIGTERM"));
  EXPECT_TRUE(killed_group_of(os_, run.session));
  EXPECT_FALSE(os_.process(run.daemon).alive());
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

// ---- a failure report while PROGRAM keeps the pipe open (#12 item 6) -----------------------
// A report is one write of at most 100 bytes (atomic, under PIPE_BUF): once a read has drained
// the pipe, the report is whole, and it is the answer, whether PROGRAM closes its end or not.

ProgramScript fails_and_stays(std::string report) {
  return [report = std::move(report)](FakeSyscalls& os, const ProgramSees& sees) {
    EXPECT_EQ(*os.write(sees.status_fd, report.data(), report.size()), report.size());
    return kStaysSilent;
  };
}

TEST_F(RunOnFake, PipeFailureReportOfAProgramThatKeepsThePipeOpenIsFinalAtOnce) {
  const Launch run = launch_with_program(
      os_, run_options({"--ready=pipe", "--pidfile", "/run/p.pid", "--", "prog"}),
      fails_and_stays("1 port 80 is taken"));
  EXPECT_EQ(run.result.code, 1);
  // Stopping it is cleanup after its own report: told only if it came to SIGKILL.
  EXPECT_EQ(run.result.err, launch_failure_text("port 80 is taken"));
  EXPECT_FALSE(os_.process(run.daemon).alive());
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, PipeFailureReportOfAProgramThatIgnoresSigtermSaysItCameToSigkill) {
  const Launch run = launch_with_program(
      os_, run_options({"--ready=pipe", "--pidfile", "/run/p.pid", "--", "prog"}),
      [](FakeSyscalls& os, const ProgramSees& sees) {
        EXPECT_TRUE(os.write(sees.status_fd, "1 port 80 is taken", 18));
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        EXPECT_TRUE(os.sigaction(SIGTERM, &ignore, nullptr));
        return kStaysSilent;
      });
  EXPECT_EQ(run.result.err, launch_failure_text("port 80 is taken; sent it SIGTERM, then SIGKILL"));
  EXPECT_EQ(os_.process(run.daemon).state, fake::ProcessState::kReaped);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, PipeFailureReportIsNotReplacedByTheTimeout) {
  const auto before = os_.clock().monotonic();
  const Launch run =
      launch_with_program(os_, run_options({"--ready=pipe", "--timeout", "5", "--", "prog"}),
                          fails_and_stays("1 no config at /etc/prog.conf"));
  EXPECT_EQ(run.result.err, launch_failure_text("no config at /etc/prog.conf"));
  EXPECT_LT(os_.clock().monotonic() - before, std::chrono::seconds(5));
}

// ---- an inherited SIGCHLD = SIG_IGN (#12 item 7) -------------------------------------------
// The kernel would reap the launcher's children itself and send no SIGCHLD: the launcher must
// put the default back before it forks, or a death before readiness goes unseen.

struct IgnoredSigchld {
  const char* label;
  void (*set)(struct sigaction&);
};

void PrintTo(const IgnoredSigchld& c, std::ostream* out) { *out << c.label; }

class RunWithSigchldIgnored
    : public RunOnFake,
      public ::testing::WithParamInterface<std::tuple<IgnoredSigchld, const char*>> {};

TEST_P(RunWithSigchldIgnored, ADeathBeforeReadyIsSeenWithItsStatus) {
  const auto& [how, mode] = GetParam();
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  how.set(action);
  ASSERT_TRUE(os_.sigaction(SIGCHLD, &action, nullptr));
  const Launch run =
      launch_with_program(os_, run_options({mode, "--pidfile", "/run/p.pid", "--", "prog"}),
                          [](FakeSyscalls&, const ProgramSees&) { return 3; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog exited with exit status 3 before it was ready"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

INSTANTIATE_TEST_SUITE_P(
    EachWayAndMode, RunWithSigchldIgnored,
    ::testing::Combine(::testing::Values(IgnoredSigchld{"SigIgn",
                                                        [](struct sigaction& a) {
                                                          a.sa_handler = SIG_IGN;
                                                        }},
                                         IgnoredSigchld{"NoCldWait",
                                                        [](struct sigaction& a) {
                                                          a.sa_handler = SIG_DFL;
                                                          a.sa_flags = SA_NOCLDWAIT;
                                                        }}),
                       ::testing::Values("--ready=notify", "--ready=pipe")),
    [](const auto& param) {
      return std::string(std::get<0>(param.param).label) +
             (std::string(std::get<1>(param.param)) == "--ready=pipe" ? "Pipe" : "Notify");
    });

TEST_F(RunOnFake, FailingToResetSigchldIsReportedBeforeAnythingForks) {
  os_.fail_when(
      "sigaction", [](const fake::CallRecord& r) { return r.args.at(0) == "SIGCHLD"; }, EINVAL);
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("sigaction(SIGCHLD): Invalid argument (EINVAL)"));
  EXPECT_EQ(count_calls(os_, "vfork"), 0);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

// ---- giving up on a live daemon (#12 item 8) -----------------------------------------------
// It is stopped, and known gone, before its PID file is given up: SIGTERM to its group and to
// itself, then SIGKILL after kLaunchStopGrace; if it still lives, the file stays.

int ignore_sigterm(FakeSyscalls& os, const ProgramSees&) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  EXPECT_TRUE(os.sigaction(SIGTERM, &ignore, nullptr));
  return kStaysSilent;
}

int leave_the_group(FakeSyscalls& os, const ProgramSees&) {
  EXPECT_TRUE(os.setsid());
  return kStaysSilent;
}

const std::vector<std::string> kTimesOut = {"--ready=notify", "--timeout", "1",   "--pidfile",
                                            "/run/p.pid",     "--",        "prog"};

TEST_F(RunOnFake, TimeoutEscalatesToSigkillForAProgramThatIgnoresSigterm) {
  const auto before = os_.clock().monotonic();
  const Launch run = launch_with_program(os_, run_options(kTimesOut), ignore_sigterm);
  EXPECT_EQ(
      run.result.err,
      launch_failure_text("prog was not ready after 1 second; sent it SIGTERM, then SIGKILL"));
  const fake::ProcessInfo daemon = os_.process(run.daemon);
  EXPECT_EQ(daemon.state, fake::ProcessState::kReaped) << "waited for before giving up";
  EXPECT_EQ(WTERMSIG(daemon.wait_status), SIGKILL);
  EXPECT_GE(os_.clock().monotonic() - before, std::chrono::seconds(1) + kLaunchStopGrace);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, TimeoutReachesAProgramThatLeftItsProcessGroup) {
  const Launch run = launch_with_program(os_, run_options(kTimesOut), leave_the_group);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog was not ready after 1 second; sent it SIGTERM"));
  const fake::ProcessInfo daemon = os_.process(run.daemon);
  EXPECT_EQ(daemon.state, fake::ProcessState::kReaped);
  EXPECT_EQ(WTERMSIG(daemon.wait_status), SIGTERM);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

// PROGRAM outside the group, ignoring SIGTERM, and no pidfd to reach it: it lives on, and
// so does its PID file, and the message says both.
TEST_F(RunOnFake, ADaemonThatCouldNotBeStoppedKeepsItsPidFile) {
  os_.fail_nth("pidfd_open", 1, EMFILE);
  const Launch run = launch_with_program(os_, run_options(kTimesOut),
                                         [](FakeSyscalls& os, const ProgramSees& sees) {
                                           (void)leave_the_group(os, sees);
                                           return ignore_sigterm(os, sees);
                                         });
  EXPECT_EQ(run.result.err,
            launch_failure_text(fmt::format(
                "prog was not ready after 1 second; tried SIGTERM, then SIGKILL, but it is "
                "still running as PID {0} (pidfd_open({0}): Too many open files (EMFILE)); kept "
                "the PID file /run/p.pid",
                run.daemon)));
  EXPECT_TRUE(os_.process(run.daemon).alive());
  EXPECT_EQ(os_.read_file("/run/p.pid"), fmt::format("{}\n", run.daemon));
}

// Each new call of the stop failing: the group still reaches PROGRAM, and what cannot be told
// keeps the file.
TEST_F(RunOnFake, AFailedPidfdStillStopsTheDaemonThroughItsGroup) {
  for (const char* call : {"pidfd_open", "pidfd_send_signal"}) {
    FakeSyscalls os;
    os.install_program("/usr/bin/prog");
    os.make_dir("/run");
    os.fail_nth(call, 1, call == std::string("pidfd_open") ? EMFILE : EPERM);
    const Launch run = launch_with_program(
        os, run_options(kTimesOut), [](FakeSyscalls&, const ProgramSees&) { return kStaysSilent; });
    EXPECT_EQ(run.result.err,
              launch_failure_text("prog was not ready after 1 second; sent it SIGTERM"))
        << call;
    EXPECT_FALSE(os.process(run.daemon).alive()) << call;
    EXPECT_FALSE(os.read_file("/run/p.pid").has_value()) << call;
  }
}

// The launcher's waitpid for the daemon alone, without waiting.
bool is_reap_check(const fake::CallRecord& r) {
  return r.pid == kLauncher && r.args.size() == 2 && r.args[0] != "-1" && r.args[1] == "WNOHANG";
}

// The nth call of `name` the stop makes: those after the 1 s timeout of kTimesOut.
FakeSyscalls::Predicate nth_while_stopping(FakeSyscalls& os, int nth,
                                           bool (*also)(const fake::CallRecord&) = nullptr) {
  const auto timeout_at = os.clock().monotonic() + std::chrono::seconds(1);
  return [&os, nth, also, timeout_at, seen = 0](const fake::CallRecord& r) mutable {
    if (os.clock().monotonic() < timeout_at || (also != nullptr && !also(r))) return false;
    return ++seen == nth;
  };
}

TEST_F(RunOnFake, AFailedFirstReapCheckLeavesTheDaemonAndItsPidFile) {
  os_.fail_when("waitpid", nth_while_stopping(os_, 1, is_reap_check), EINTR);
  const Launch run = launch_with_program(os_, run_options(kTimesOut), leave_the_group);
  EXPECT_EQ(run.result.err,
            launch_failure_text(fmt::format(
                "prog was not ready after 1 second; could not tell whether it still runs "
                "(waitpid({}): Interrupted system call (EINTR)); kept the PID file /run/p.pid",
                run.daemon)));
  EXPECT_TRUE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, AFailedWaitAfterSigtermEscalatesAndStillReaps) {
  for (const char* call : {"waitpid", "poll"}) {
    FakeSyscalls os;
    os.install_program("/usr/bin/prog");
    os.make_dir("/run");
    if (call == std::string("poll")) {
      os.fail_when("poll", nth_while_stopping(os, 1), ENOMEM);
    } else {
      os.fail_when("waitpid", nth_while_stopping(os, 2, is_reap_check), EINTR);
    }
    const Launch run = launch_with_program(os, run_options(kTimesOut), ignore_sigterm);
    EXPECT_EQ(
        run.result.err,
        launch_failure_text("prog was not ready after 1 second; sent it SIGTERM, then SIGKILL"))
        << call;
    EXPECT_EQ(os.process(run.daemon).state, fake::ProcessState::kReaped) << call;
    EXPECT_FALSE(os.read_file("/run/p.pid").has_value()) << call;
  }
}

// A process PROGRAM forked holds the PID file's lock after PROGRAM is gone: it is still the
// instance the file stands for, so the file is not removed from under it.
TEST_F(RunOnFake, APidFileStillLockedByWhatProgramLeftBehindIsKept) {
  pid_t daemon = 0;
  pid_t child = 0;
  const Launch run = launch_with_program(
      os_, run_options(kTimesOut), [&](FakeSyscalls& os, const ProgramSees& sees) {
        daemon = os.current_pid();
        child = *os.fork();  // inherits the PID file's descriptor, and so its lock
        os.switch_to(child);
        (void)leave_the_group(os, sees);
        os.switch_to(daemon);
        return kStaysSilent;
      });
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog was not ready after 1 second; sent it SIGTERM; the PID "
                                "file /run/p.pid is still locked by another process; left it "
                                "in place"));
  EXPECT_FALSE(os_.process(daemon).alive());
  EXPECT_TRUE(os_.process(child).alive());
  EXPECT_EQ(os_.read_file("/run/p.pid"), fmt::format("{}\n", daemon));
}

// Without the signalfd the launcher cannot watch the daemon: it stops it as any other give-up.
TEST_F(RunOnFake, AFailedSignalfdStopsTheDaemonBeforeGivingUpItsPidFile) {
  os_.fail_nth("signalfd", 1, EMFILE);
  const Launch run = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.err,
            launch_failure_text("signalfd: Too many open files (EMFILE); sent it SIGTERM"));
  EXPECT_EQ(os_.process(run.daemon).state, fake::ProcessState::kReaped);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

// ---- --ready=exec: exec succeeded, and no more (#12 item 13) -------------------------------
// A death already known when the pipe closes is reported; a later one is not waited for.

TEST_F(RunOnFake, ExecModeReportsADeathKnownWhenThePipeCloses) {
  const Launch run =
      launch_with_program(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}),
                          [](FakeSyscalls&, const ProgramSees&) { return 3; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog exited with exit status 3 before it was ready"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, ExecModeDoesNotWaitToSeeWhetherProgramStaysUp) {
  const Launch run =
      launch_with_program(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}),
                          [](FakeSyscalls&, const ProgramSees&) { return kStaysSilent; });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_TRUE(os_.process(run.daemon).alive());
  EXPECT_FALSE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, ExecModeWhoseReapCheckFailsReportsTheExecAsBefore) {
  os_.fail_when("waitpid", is_reap_check, ECHILD);
  const Launch run = launch_with_program(os_, run_options({"--", "prog"}),
                                         [](FakeSyscalls&, const ProgramSees&) { return 3; });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
}

TEST_F(RunOnFake, PipeModeHandsTheStatusPipeToProgramWhichReportsReady) {
  std::string handed;
  const Launch run = launch_with_program(os_, run_options({"--ready=pipe", "--", "prog"}),
                                         [&](FakeSyscalls& os, const ProgramSees& sees) {
                                           handed =
                                               os.describe_fd(os.current_pid(), sees.status_fd);
                                           core::Readiness::Options options;
                                           options.status_fd = sees.status_fd;
                                           core::Readiness readiness(os, options);
                                           EXPECT_TRUE(readiness.ready("listening"));
                                           return kStaysSilent;
                                         });
  EXPECT_THAT(handed, AllOf(StartsWith("pipe:"), HasSubstr(":w"), Not(HasSubstr("cloexec"))));
  EXPECT_EQ(run.result.code, 0) << run.result.err;
}

TEST_F(RunOnFake, NotifyModeIsReadyOnReadyEqualsOneFromProgram) {
  std::string told;
  const Launch run = launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                                         [&](FakeSyscalls& os, const ProgramSees& sees) {
                                           told = sees.notify_socket;
                                           core::Readiness::Options options;
                                           options.notify_socket = sees.notify_socket;
                                           core::Readiness readiness(os, options);
                                           EXPECT_TRUE(readiness.ready("listening"));
                                           return kStaysSilent;
                                         });
  EXPECT_THAT(told, StartsWith("@daemonkit/notify/"));
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_FALSE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, NotifyModeTellsTheStatusOfAProgramThatGaveUp) {
  const Launch run =
      launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            core::Readiness::Options options;
                            options.notify_socket = sees.notify_socket;
                            core::Readiness readiness(os, options);
                            EXPECT_TRUE(readiness.fail("no config at /etc/prog.conf", ENOENT));
                            return 1;
                          });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("no config at /etc/prog.conf (No such file or directory, ENOENT)"));
}

// ---- who may notify -------------------------------------------------------------------------
// The socket's abstract name is public (/proc/net/unix), so anyone can send to it; only the
// daemon's session is heard.

constexpr pid_t kShell = 999;  // the fake's shell: another session, as any local user is

// Sends `text` to the notify socket as process `pid`, from a socket of its own, then makes
// the caller current again.
void notify_as(FakeSyscalls& os, pid_t pid, const std::string& address, const std::string& text) {
  const pid_t caller = os.current_pid();
  os.switch_to(pid);
  ASSERT_TRUE(address.starts_with("@"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::copy(address.begin() + 1, address.end(), addr.sun_path + 1);
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  const int fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_TRUE(os.sendto(fd, text.data(), text.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&addr), len));
  EXPECT_TRUE(os.close(fd));
  os.switch_to(caller);
}

bool report_ready(FakeSyscalls& os, const ProgramSees& sees) {
  core::Readiness::Options options;
  options.notify_socket = sees.notify_socket;
  core::Readiness readiness(os, options);
  return readiness.ready("listening").has_value();
}

const char* const kIgnoredOne =
    "ignored 1 notification from a process outside the daemon's session";

TEST_F(RunOnFake, NotifyModeIgnoresReadyFromAnotherSession) {
  const Launch run =
      launch_with_program(os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            notify_as(os, kShell, sees.notify_socket, "READY=1\n");
                            return kStaysSilent;
                          });
  EXPECT_EQ(run.result.code, 1) << "a stranger's READY=1 made the launch succeed";
  EXPECT_THAT(run.result.err,
              AllOf(HasSubstr("prog was not ready after 2 seconds"), HasSubstr(kIgnoredOne)));
  EXPECT_TRUE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, NotifyModeHearsTheDaemonAfterStrangersSpoke) {
  const Launch run =
      launch_with_program(os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            notify_as(os, kShell, sees.notify_socket, "STATUS=hijacked\nERRNO=1\n");
                            notify_as(os, kShell, sees.notify_socket, "READY=1\n");
                            EXPECT_TRUE(report_ready(os, sees));
                            return kStaysSilent;
                          });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  EXPECT_FALSE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, NotifyModeHearsAHelperTheDaemonForkedInItsSession) {
  const Launch run = launch_with_program(
      os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
      [](FakeSyscalls& os, const ProgramSees& sees) {
        const pid_t helper = *os.fork();  // as systemd-notify run from a script
        notify_as(os, helper, sees.notify_socket, "READY=1\n");
        os.end_process(helper, 0);  // gone, but not yet reaped when the launcher looks
        return kStaysSilent;
      });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
}

TEST_F(RunOnFake, NotifyModeIgnoresAHelperThatLeftTheSession) {
  const Launch run =
      launch_with_program(os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            const pid_t daemon = os.current_pid();
                            const pid_t helper = *os.fork();
                            os.switch_to(helper);
                            EXPECT_TRUE(os.setsid());
                            os.switch_to(daemon);
                            notify_as(os, helper, sees.notify_socket, "READY=1\n");
                            notify_as(os, helper, sees.notify_socket, "READY=1\n");
                            return kStaysSilent;
                          });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_THAT(run.result.err, HasSubstr("ignored 2 notifications from processes outside the "
                                        "daemon's session"));
}

TEST_F(RunOnFake, NotifyModeIgnoresADatagramWithoutCredentials) {
  const Launch run = launch_with_program(
      os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
      [](FakeSyscalls& os, const ProgramSees& sees) {
        // Only to reach the path: a socket that stopped asking gets datagrams with none.
        const pid_t daemon = os.current_pid();
        os.switch_to(kLauncher);
        for (int fd : os.open_fds(kLauncher)) {
          if (os.describe_fd(kLauncher, fd).find("@daemonkit/notify/") == std::string::npos) {
            continue;
          }
          const int off = 0;
          EXPECT_TRUE(os.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &off, sizeof off));
        }
        os.switch_to(daemon);
        EXPECT_TRUE(report_ready(os, sees));
        return kStaysSilent;
      });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_THAT(run.result.err, HasSubstr(kIgnoredOne));
}

TEST_F(RunOnFake, NotifyModeAsksForCredentialsBeforeTheNameExists) {
  const Launch run = launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                                         [](FakeSyscalls& os, const ProgramSees& sees) {
                                           EXPECT_TRUE(report_ready(os, sees));
                                           return kStaysSilent;
                                         });
  ASSERT_EQ(run.result.code, 0) << run.result.err;
  std::vector<std::string> order;
  for (const auto& call : os_.transcript()) {
    if (call.pid != kLauncher) continue;
    if (call.name == "setsockopt" && call.args.at(1) == "SOL_SOCKET, SO_PASSCRED") {
      order.push_back("SO_PASSCRED=" + call.args.at(2));
    }
    if (call.name == "bind") order.push_back("bind");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"SO_PASSCRED=1", "bind"}));
}

TEST_F(RunOnFake, NotifyModeFailsWhenCredentialsCannotBeAskedFor) {
  os_.fail_nth("setsockopt", 1, ENOPROTOOPT);
  const Launch run =
      launch(os_, run_options({"--ready=notify", "--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("notify socket: setsockopt: Protocol not available (ENOPROTOOPT)"));
  EXPECT_EQ(count_calls(os_, "vfork"), 0);
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
  EXPECT_EQ(os_.open_fds(kLauncher), (std::vector<int>{0, 1, 2})) << "the socket was closed";
}

TEST_F(RunOnFake, NotifyModeRetriesAnInterruptedRecvmsg) {
  os_.fail_nth("recvmsg", 1, EINTR);
  const Launch run = launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                                         [](FakeSyscalls& os, const ProgramSees& sees) {
                                           EXPECT_TRUE(report_ready(os, sees));
                                           return kStaysSilent;
                                         });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_GE(count_calls(os_, "recvmsg"), 2);
}

TEST_F(RunOnFake, NotifyModeFailsOnAnUnreadableSocketAndStopsTheDaemon) {
  os_.fail_nth("recvmsg", 1, ENOMEM);
  const Launch run = launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                                         [](FakeSyscalls& os, const ProgramSees& sees) {
                                           EXPECT_TRUE(report_ready(os, sees));
                                           return kStaysSilent;
                                         });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("reading the notify socket: recvmsg: Cannot "
                                                "allocate memory (ENOMEM); sent it SIGTERM"));
  EXPECT_TRUE(killed_group_of(os_, run.session));
}

TEST_F(RunOnFake, NotifyModeRefusesASenderItCannotPlace) {
  os_.fail_when(
      "getsid", [](const fake::CallRecord& call) { return call.pid == kLauncher; }, ESRCH);
  const Launch run =
      launch_with_program(os_, run_options({"--ready=notify", "--timeout", "2", "--", "prog"}),
                          [](FakeSyscalls& os, const ProgramSees& sees) {
                            EXPECT_TRUE(report_ready(os, sees));
                            return kStaysSilent;
                          });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_THAT(run.result.err, HasSubstr(kIgnoredOne));
}

TEST_F(RunOnFake, NotifyModeReadsTheDaemonsLastWordsBeforeReapingIt) {
  // The daemon fails and dies at once; the launcher must place it while it is a zombie.
  const Launch run = launch_with_program(os_, run_options({"--ready=notify", "--", "prog"}),
                                         [](FakeSyscalls& os, const ProgramSees& sees) {
                                           core::Readiness::Options options;
                                           options.notify_socket = sees.notify_socket;
                                           core::Readiness readiness(os, options);
                                           EXPECT_TRUE(readiness.fail("no config", ENOENT));
                                           return 1;
                                         });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("no config (No such file or directory, ENOENT)"));
  std::optional<std::size_t> placed;
  std::optional<std::size_t> reaped;
  const auto& calls = os_.transcript();
  const std::string daemon = fmt::format("{{pid={} ", run.daemon);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].pid != kLauncher) continue;
    if (calls[i].name == "getsid" && !placed) placed = i;
    if (calls[i].name == "waitpid" && calls[i].value.starts_with(daemon) && !reaped) reaped = i;
  }
  ASSERT_TRUE(placed.has_value());
  ASSERT_TRUE(reaped.has_value());
  EXPECT_LT(*placed, *reaped);
}

// ---- status and stop ----------------------------------------------------------------------

// Makes `holder` take the exclusive lock on `path` as a daemon does, on a descriptor of its
// own that its children inherit; the test's process is current again afterwards.
void lock_as(FakeSyscalls& os, pid_t holder, const std::string& path) {
  const pid_t self = os.current_pid();
  os.switch_to(holder);
  auto fd = os.open(path.c_str(), O_RDONLY | O_CREAT, 0644);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(os.flock(*fd, LOCK_EX | LOCK_NB));
  os.switch_to(self);
}

// A child of `parent`, which inherits its descriptors (and so the lock it holds).
pid_t fork_of(FakeSyscalls& os, pid_t parent) {
  const pid_t self = os.current_pid();
  os.switch_to(parent);
  os.script_fork(ForkAs::kParent);
  const pid_t child = os.fork().value();
  os.switch_to(self);
  return child;
}

// The daemon's life in these tests: the shell's pid 999 writes the file and holds the lock.
void daemon_999_holds(FakeSyscalls& os) {
  os.write_file("/run/p.pid", "999\n");
  lock_as(os, 999, "/run/p.pid");
}

bool was_signalled(const FakeSyscalls& os, pid_t pid) { return !os.process(pid).signals.empty(); }

StopOptions stop_options() { return {"/run/p.pid", std::chrono::seconds(1)}; }

TEST(StatusOnFake, EachLsbCode) {
  FakeSyscalls os;
  EXPECT_EQ(run_status(os, {"/run/p.pid"}).code, kStatusNotRunning);
  os.write_file("/run/p.pid", "999\n");  // alive, unlocked: an older tool's file
  CommandResult unproven = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(unproven.code, kStatusUnknown);
  EXPECT_EQ(unproven.out, "");
  EXPECT_EQ(unproven.err,
            "daemonkit status: PID file /run/p.pid is not locked by any process; PID 999 is "
            "alive but may not be the daemon (an older tool's file, one written by hand, or a "
            "reused pid)\n");
  lock_as(os, 999, "/run/p.pid");
  CommandResult running = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(running.code, kStatusRunning);
  EXPECT_EQ(running.out, "999\n");
  os.end_process(999, 0);                 // the lock goes with it
  os.write_file("/run/p.pid", "4242\n");  // no such process
  CommandResult dead = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(dead.code, kStatusDeadPidFileExists);
  EXPECT_EQ(dead.err, "daemonkit status: not running, but PID file /run/p.pid exists (PID 4242)\n");
  os.write_file("/run/p.pid", "0\n");  // kill(0, 0) succeeds, yet pid 0 is never a daemon
  EXPECT_EQ(run_status(os, {"/run/p.pid"}).code, kStatusDeadPidFileExists);
  os.write_file("/run/p.pid", "1000\n");  // our own pid: a leftover of an earlier life
  EXPECT_EQ(run_status(os, {"/run/p.pid"}).code, kStatusDeadPidFileExists);
}

// A file that cannot be read, or a pid whose probe fails with an errno that says nothing of its
// liveness: status cannot tell, and says why.
TEST(StatusOnFake, UnreadablePidFileOrFailedProbeIsUnknown) {
  struct Case {
    const char* call;
    int error;
    const char* message;
  };
  for (const Case c : {Case{"open", EACCES, "open(/run/p.pid): Permission denied (EACCES)"},
                       Case{"kill", EINVAL, "kill(999): Invalid argument (EINVAL)"}}) {
    FakeSyscalls os;
    os.write_file("/run/p.pid", "999\n");
    os.fail_nth(c.call, 1, c.error);
    CommandResult result = run_status(os, {"/run/p.pid"});
    EXPECT_EQ(result.code, kStatusUnknown) << c.call;
    EXPECT_EQ(result.err, fmt::format("daemonkit status: {}\n", c.message));
  }
}

// kill(pid, 0) succeeds on a zombie; an unreaped dead daemon must not read as running.
TEST(StatusOnFake, AZombieNamedByAnUnlockedFileIsDead) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(os.fork().value(), 0);
  const pid_t zombie = os.getpid();
  try {
    os.exit_now(0);
  } catch (const ProcessEnded&) {
  }
  os.switch_to(self);
  os.write_file("/run/p.pid", std::to_string(zombie) + "\n");
  EXPECT_EQ(run_status(os, {"/run/p.pid"}).code, kStatusDeadPidFileExists);
}

// A stale file is removed through its lock: a `run` that took it over after stop looked (and
// holds the lock now) keeps it.
TEST(StopOnFake, AStaleFileTakenOverWhileWeLookIsLeftToItsNewOwner) {
  FakeSyscalls os;
  os.write_file("/run/p.pid", "4242\n");
  int opens = 0;
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "open" && ++opens == 2) lock_as(os, 999, "/run/p.pid");
  });
  CommandResult stale = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  os.before_each_call({});
  EXPECT_EQ(stale.code, 1);
  EXPECT_EQ(stale.err, "Removing stale pidfile /run/p.pid\ndaemonkit stop: no daemon is running\n");
  EXPECT_TRUE(os.read_file("/run/p.pid").has_value());
  EXPECT_FALSE(was_signalled(os, 999));
}

TEST(StopOnFake, NothingToStop) {
  FakeSyscalls os;
  CommandResult missing = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "daemonkit stop: no daemon is running (no PID file at /run/p.pid)\n");
  os.write_file("/run/p.pid", "4242\n");
  CommandResult stale = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(stale.code, 1);
  EXPECT_EQ(stale.err, "Removing stale pidfile /run/p.pid\ndaemonkit stop: no daemon is running\n");
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
  os.write_file("/run/p.pid", "x");
  EXPECT_EQ(run_stop(os, {"/run/p.pid", std::chrono::seconds(1)}).err,
            "Pidfile /run/p.pid contains non-numeric value\n");
}

TEST(StopOnFake, SignalRefusedIsReportedAndTheFileKept) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.fail_nth("pidfd_send_signal", 1, EPERM);
  CommandResult result = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "daemonkit stop: pidfd_send_signal(PID 999, SIGTERM): Operation not "
            "permitted (EPERM)\n");
  EXPECT_EQ(os.read_file("/run/p.pid"), "999\n");
  EXPECT_TRUE(os.process(999).alive());
}

TEST(StopOnFake, PidfdFailureOtherThanGoneIsReported) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.fail_nth("pidfd_open", 1, EMFILE);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "daemonkit stop: pidfd_open(999): Too many open files (EMFILE); not "
            "signalling PID 999\n");
  EXPECT_FALSE(was_signalled(os, 999));
}

// ---- Issue #12: a pid is signalled, or reported as running, only once proven ----------------

// Item 1: a file nobody locks names a live process; that proves nothing about it.
TEST(StopOnFake, AnUnlockedFileNamingALiveProcessIsRefusedAndNothingIsSignalled) {
  FakeSyscalls os;
  os.write_file("/run/p.pid", "1\n");  // init, say, in a container
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err,
            "daemonkit stop: PID file /run/p.pid is not locked by any process; PID 1 is alive "
            "but may not be the daemon (an older tool's file, one written by hand, or a reused "
            "pid); not signalling it\n");
  EXPECT_EQ(count_calls(os, "pidfd_open"), 0);
  EXPECT_EQ(count_calls(os, "pidfd_send_signal"), 0);
  EXPECT_EQ(count_calls(os, "kill"), 1) << "only the kill(pid, 0) probe";
  EXPECT_EQ(os.read_file("/run/p.pid"), "1\n");
}

TEST(StopOnFake, AProvenDaemonIsStoppedAndItsFileRemoved) {
  FakeSyscalls os;
  daemon_999_holds(os);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_FALSE(os.process(999).alive());
  EXPECT_EQ(os.process(999).signals.at(0).signal, SIGTERM);
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
  EXPECT_THAT(os.open_fds(kLauncher), IsEmpty()) << "pidfds and the file all closed";
}

// The order that leaves no window for a reused pid: the pidfd first, then the proof that the
// process behind the pid holds the lock, then a look that it has not exited since, then the
// signal through the pidfd.
TEST(StopOnFake, PidfdIsOpenedBeforeTheProofAndTheSignalGoesThroughIt) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.clear_transcript();
  ASSERT_EQ(run_stop(os, stop_options()).code, 0);
  std::vector<std::string> steps;
  for (const auto& call : os.transcript()) {
    if (call.name == "pidfd_open" || call.name == "pidfd_send_signal" || call.name == "kill") {
      steps.push_back(call.name);
    } else if (call.name == "open" && call.args.at(0) == "/proc/999/fd" &&
               std::find(steps.begin(), steps.end(), "pidfd_open") != steps.end()) {
      steps.push_back("prove");
    } else if (call.name == "poll" && call.args.at(1) == "0") {
      steps.push_back("exited?");
    }
  }
  ASSERT_GE(steps.size(), 4U);
  EXPECT_EQ(std::vector<std::string>(steps.begin(), steps.begin() + 4),
            (std::vector<std::string>{"pidfd_open", "prove", "exited?", "pidfd_send_signal"}));
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "kill"), 0);
}

// The daemon exits between the proof and the signal: its pidfd says so, and nothing is sent.
TEST(StopOnFake, ADaemonThatExitsAfterTheProofIsNotSignalled) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "poll" && os.process(999).alive()) os.end_process(999, 0);
  });
  CommandResult result = run_stop(os, stop_options());
  os.before_each_call({});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(count_calls(os, "pidfd_send_signal"), 0);
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// The daemon ends on its own between the look and the signal, leaving a child with the lock:
// the child is the instance, and is stopped; the daemon's pid is never signalled.
TEST(StopOnFake, AChildLeftHoldingTheLockWhileWeLookedIsStopped) {
  FakeSyscalls os;
  daemon_999_holds(os);
  const pid_t child = fork_of(os, 999);
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "poll" && os.process(999).alive()) os.end_process(999, 0);
  });
  CommandResult result = run_stop(os, stop_options());
  os.before_each_call({});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, fmt::format("daemonkit stop: PID {} still holds the lock on /run/p.pid; "
                                    "stopping it too\n",
                                    child));
  EXPECT_FALSE(was_signalled(os, 999));
  EXPECT_FALSE(os.process(child).alive());
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// Item 2: whatever pid the file names, a process that does not hold the lock is never signalled;
// the processes that do are the instance.
TEST(StopOnFake, APidThatDoesNotHoldTheLockIsNeverSignalled) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.write_file("/run/p.pid", "1\n");  // rewritten to aim at init (same inode)
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err,
            "daemonkit stop: PID 1 does not hold the lock on /run/p.pid (it is not the daemon), "
            "but PID 999 does; stopping it\n");
  EXPECT_FALSE(was_signalled(os, 1));
  EXPECT_FALSE(os.process(999).alive());
}

// Item 9: the daemon died and its child holds the inherited lock.
TEST(StatusOnFake, ADeadDaemonsChildHoldingTheLockIsReportedAsSuch) {
  FakeSyscalls os;
  daemon_999_holds(os);
  const pid_t child = fork_of(os, 999);
  os.end_process(999, 0);
  CommandResult result = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(result.code, kStatusDeadPidFileExists);
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(result.err, fmt::format("daemonkit status: PID 999 has exited, but PID {} still holds "
                                    "the lock on /run/p.pid (left behind by it)\n",
                                    child));
}

TEST(StopOnFake, ADeadDaemonsChildrenHoldingTheLockAreStopped) {
  FakeSyscalls os;
  daemon_999_holds(os);
  const pid_t first = fork_of(os, 999);
  const pid_t second = fork_of(os, 999);
  os.end_process(999, 0);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err,
            fmt::format("daemonkit stop: PID 999 has exited, but PIDs {}, {} still hold the lock "
                        "on /run/p.pid (left behind by it); stopping them\n",
                        first, second));
  EXPECT_FALSE(os.process(first).alive());
  EXPECT_FALSE(os.process(second).alive());
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// The normal case of item 9: the daemon exits on SIGTERM; a child it forked still holds the
// lock, and is stopped too before the file goes.
TEST(StopOnFake, ChildrenStillHoldingTheLockAfterTheDaemonExitsAreStoppedToo) {
  FakeSyscalls os;
  daemon_999_holds(os);
  const pid_t child = fork_of(os, 999);
  const pid_t grandchild = fork_of(os, child);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, fmt::format("daemonkit stop: PIDs {}, {} still hold the lock on "
                                    "/run/p.pid; stopping them too\n",
                                    child, grandchild));
  for (pid_t pid : {999, child, grandchild}) {
    EXPECT_FALSE(os.process(pid).alive()) << pid;
    EXPECT_EQ(os.process(pid).signals.at(0).signal, SIGTERM) << pid;
  }
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// A holder that ignores SIGTERM gets SIGKILL once --timeout has passed.
TEST(StopOnFake, AHolderThatOutlivesTheTimeoutIsKilled) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.switch_to(999);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(os.sigaction(SIGTERM, &ignore, nullptr));
  os.switch_to(kLauncher);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err,
            "daemonkit stop: PID 999 did not exit within 1 seconds of SIGTERM; sent "
            "SIGKILL\n");
  EXPECT_EQ(os.process(999).wait_status & 0x7f, SIGKILL);
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// /proc will not show who holds the lock (another user's daemon, no privilege): nothing is
// signalled, and status says the service runs without vouching for the pid.
TEST(StopOnFake, AnUnprovableHolderIsNotSignalled) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.fail_when(
      "open", [](const fake::CallRecord& call) { return call.args.at(0) == "/proc/999/fd"; },
      EACCES);
  CommandResult stop = run_stop(os, stop_options());
  EXPECT_EQ(stop.code, 1);
  EXPECT_EQ(stop.err,
            "daemonkit stop: the lock on /run/p.pid is held, but PID 999 could not be "
            "proven to hold it: open(/proc/999/fd): Permission denied (EACCES); not "
            "signalling anything\n");
  EXPECT_FALSE(was_signalled(os, 999));
  CommandResult status = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(status.code, kStatusRunning);
  EXPECT_EQ(status.out, "");
  EXPECT_EQ(status.err,
            "daemonkit status: running (the lock on /run/p.pid is held), but PID 999 "
            "could not be proven to hold it: open(/proc/999/fd): Permission denied "
            "(EACCES)\n");
}

// Each call stop adds after the file was read, failing: reported, nothing signalled that was
// not proven, and the file kept.
TEST(StopOnFake, EachFailingCallOfTheStopIsReportedAndTheFileKept) {
  struct Case {
    const char* call;
    int nth;  // counted from the stop's first call: the look at the file proves once too
    const char* says;
  };
  for (const Case c :
       {Case{"poll", 1, "poll: Invalid argument (EINVAL)"},
        Case{"stat", 2, "stat(/proc/999/fd/0): Invalid argument (EINVAL)"},
        Case{"clock_gettime", 1, "clock_gettime: Invalid argument (EINVAL)"},
        Case{"getdents64", 2, "getdents64(/proc/999/fd): Invalid argument (EINVAL)"}}) {
    FakeSyscalls os;
    daemon_999_holds(os);
    os.clear_transcript();
    os.fail_nth(c.call, c.nth, EINVAL);
    CommandResult result = run_stop(os, stop_options());
    EXPECT_EQ(result.code, 1) << c.call;
    EXPECT_THAT(result.err, HasSubstr(c.says)) << c.call;
    EXPECT_FALSE(was_signalled(os, 999)) << c.call;
    EXPECT_EQ(os.read_file("/run/p.pid"), "999\n") << c.call;
  }
}

// After the daemon is gone: looking for other holders fails, or the file cannot be removed.
TEST(StopOnFake, FailuresAfterTheDaemonIsGoneAreReported) {
  {
    FakeSyscalls os;
    daemon_999_holds(os);
    os.fail_when(
        "open", [](const fake::CallRecord& call) { return call.args.at(0) == "/proc"; }, EMFILE);
    CommandResult result = run_stop(os, stop_options());
    EXPECT_EQ(result.code, 1);
    EXPECT_EQ(result.err, "daemonkit stop: open(/proc): Too many open files (EMFILE)\n");
    EXPECT_FALSE(os.process(999).alive());
  }
  {
    FakeSyscalls os;
    daemon_999_holds(os);
    os.fail_nth("unlink", 1, EROFS);
    CommandResult result = run_stop(os, stop_options());
    EXPECT_EQ(result.code, 0);
    EXPECT_EQ(result.err, "daemonkit stop: unlink(/run/p.pid): Read-only file system (EROFS)\n");
  }
}

// Removing the file once nobody holds the lock: each call failing is reported, the instance is
// still stopped.
TEST(StopOnFake, FailingCallsOfTheRemovalAreReported) {
  struct Case {
    const char* call;
    int nth;  // the look at the file makes the first fstat and flock
    const char* says;
  };
  for (const Case c : {Case{"fstat", 2, "fstat(/run/p.pid): Input/output error (EIO)"},
                       Case{"flock", 2, "flock(/run/p.pid): Input/output error (EIO)"}}) {
    FakeSyscalls os;
    daemon_999_holds(os);
    os.clear_transcript();
    os.fail_nth(c.call, c.nth, EIO);
    CommandResult result = run_stop(os, stop_options());
    EXPECT_EQ(result.code, 0) << c.call;
    EXPECT_EQ(result.err, fmt::format("daemonkit stop: {}\n", c.says)) << c.call;
    EXPECT_FALSE(os.process(999).alive());
  }
  FakeSyscalls os;
  daemon_999_holds(os);
  int opens = 0;
  os.fail_when(
      "open",
      [&](const fake::CallRecord& call) { return call.args.at(0) == "/run/p.pid" && ++opens == 2; },
      EACCES);
  CommandResult result = run_stop(os, stop_options());
  EXPECT_EQ(result.code, 0);
  EXPECT_EQ(result.err, "daemonkit stop: open(/run/p.pid): Permission denied (EACCES)\n");
}

// The instance ends while status looks for who holds the lock: the lock, tried again, is free.
TEST(StatusOnFake, AnInstanceThatEndsWhileWeLookIsNotRunning) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "getdents64" && os.process(999).alive()) os.end_process(999, 0);
  });
  CommandResult result = run_status(os, {"/run/p.pid"});
  os.before_each_call({});
  EXPECT_EQ(result.code, kStatusDeadPidFileExists);
  EXPECT_EQ(result.err,
            "daemonkit status: not running, but PID file /run/p.pid exists (PID 999)\n");
}

// Item 5: a FIFO at the path must not hang status or stop (the fake aborts the test if a call
// would block forever).
TEST(StatusOnFake, AFifoAtThePathIsNotAPidFileAndNothingWaits) {
  FakeSyscalls os;
  os.set_would_block(fake::WouldBlock::kAbort);
  os.make_fifo("/run/p.pid");
  CommandResult status = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(status.code, kStatusUnknown);
  EXPECT_EQ(status.err, "daemonkit status: /run/p.pid is not a regular file; not reading it\n");
  CommandResult stop = run_stop(os, stop_options());
  EXPECT_EQ(stop.code, 1);
  EXPECT_EQ(stop.err, "daemonkit stop: /run/p.pid is not a regular file; not reading it\n");
}

TEST(StatusOnFake, FailingCallsOfTheLookAreUnknown) {
  for (const char* call : {"fstat", "flock"}) {
    FakeSyscalls os;
    os.write_file("/run/p.pid", "999\n");
    os.fail_nth(call, 1, EIO);
    CommandResult result = run_status(os, {"/run/p.pid"});
    EXPECT_EQ(result.code, kStatusUnknown) << call;
    EXPECT_EQ(result.err,
              fmt::format("daemonkit status: {}(/run/p.pid): Input/output error (EIO)\n", call));
  }
}

// Item 9 for `run`: a held lock is refused, naming the file's pid only once proven, and saying
// who holds the lock when the daemon it names has died.
TEST_F(RunOnFake, AHeldLockIsRefusedWithWhatProcProves) {
  daemon_999_holds(os_);
  const Launch proven = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(proven.result.code, 1);
  EXPECT_THAT(proven.result.err, StartsWith("Another server is running, PID 999\n\n"));
  const pid_t child = fork_of(os_, 999);
  os_.end_process(999, 0);
  const Launch left = launch(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  EXPECT_EQ(left.result.code, 1);
  EXPECT_THAT(left.result.err,
              StartsWith(fmt::format("Another server is running: PID 999 has exited, but PID {} "
                                     "still holds the lock on /run/p.pid (left behind by it)\n\n",
                                     child)));
  EXPECT_EQ(count_calls(os_, "vfork"), 0);
  EXPECT_EQ(os_.read_file("/run/p.pid"), "999\n");
}

}  // namespace
}  // namespace daemonkit::cli
