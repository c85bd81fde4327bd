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
#include <variant>
#include <vector>

#include "daemonkit/cli/options.h"
#include "daemonkit/cli/run_command.h"
#include "daemonkit/cli/status_command.h"
#include "daemonkit/cli/stop_command.h"
#include "daemonkit/core/readiness.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::cli {
namespace {

using fake::FakeSyscalls;
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
  EXPECT_EQ(run.result.err, launch_failure_text("poll: Cannot allocate memory (ENOMEM)"));
  EXPECT_TRUE(killed_group_of(os_, run.session));
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
  EXPECT_EQ(run.result.err, launch_failure_text(
                                "no config at /etc/prog.conf (No such file or directory, ENOENT)"));
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

bool was_signalled(const FakeSyscalls& os, pid_t pid) {
  return !os.process(pid).signals.empty();
}

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
  os.end_process(999, 0);  // the lock goes with it
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

TEST(StopOnFake, NothingToStop) {
  FakeSyscalls os;
  CommandResult missing = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "daemonkit stop: no daemon is running (no PID file at /run/p.pid)\n");
  os.write_file("/run/p.pid", "4242\n");
  CommandResult stale = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(stale.code, 1);
  EXPECT_EQ(stale.err,
            "Removing stale pidfile /run/p.pid\ndaemonkit stop: no daemon is running\n");
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
  EXPECT_EQ(result.err, "daemonkit stop: pidfd_send_signal(PID 999, SIGTERM): Operation not "
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
  EXPECT_EQ(result.err, "daemonkit stop: pidfd_open(999): Too many open files (EMFILE); not "
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
  EXPECT_EQ(result.err, "daemonkit stop: PID 999 did not exit within 1 seconds of SIGTERM; sent "
                        "SIGKILL\n");
  EXPECT_EQ(os.process(999).wait_status & 0x7f, SIGKILL);
  EXPECT_FALSE(os.read_file("/run/p.pid").has_value());
}

// /proc will not show who holds the lock (another user's daemon, no privilege): nothing is
// signalled, and status says the service runs without vouching for the pid.
TEST(StopOnFake, AnUnprovableHolderIsNotSignalled) {
  FakeSyscalls os;
  daemon_999_holds(os);
  os.fail_when("open", [](const fake::CallRecord& call) { return call.args.at(0) == "/proc/999/fd"; },
               EACCES);
  CommandResult stop = run_stop(os, stop_options());
  EXPECT_EQ(stop.code, 1);
  EXPECT_EQ(stop.err, "daemonkit stop: the lock on /run/p.pid is held, but PID 999 could not be "
                      "proven to hold it: open(/proc/999/fd): Permission denied (EACCES); not "
                      "signalling anything\n");
  EXPECT_FALSE(was_signalled(os, 999));
  CommandResult status = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(status.code, kStatusRunning);
  EXPECT_EQ(status.out, "");
  EXPECT_EQ(status.err, "daemonkit status: running (the lock on /run/p.pid is held), but PID 999 "
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
  for (const Case c : {Case{"poll", 1, "poll: Invalid argument (EINVAL)"},
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
    os.fail_when("open", [](const fake::CallRecord& call) { return call.args.at(0) == "/proc"; },
                 EMFILE);
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
  os.fail_when("open", [&](const fake::CallRecord& call) {
    return call.args.at(0) == "/run/p.pid" && ++opens == 2;
  }, EACCES);
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
