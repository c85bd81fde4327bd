// The commands on the fake kernel: the daemon side of `run` (everything between the forks and
// the exec, and each step's failure reaching the status pipe), the launcher's refusals before
// it forks, its waiting loop (with the fake's before_each_call hook playing the intermediate and
// the daemon), and `status`/`stop` reading PID files. The fake runs both forks' children in this
// process, so the daemon's state is asserted directly.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
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

// The daemon's side of a launch: both forks continue as the child, so this process plays the
// intermediate and then the daemon until PROGRAM is exec'd or the daemon exits.
struct DaemonRun {
  ProcessEnded ended;
  bool returned = false;  // run_run came back: the launcher failed before forking
  CommandResult result;
};

DaemonRun run_daemon_side(FakeSyscalls& os, const RunOptions& options,
                          const std::vector<std::string>& env = {"PATH=/usr/bin:/bin"}) {
  os.script_fork(ForkAs::kChild);
  os.script_fork(ForkAs::kChild);
  DaemonRun run;
  try {
    run.result = run_run(os, options, env);
    run.returned = true;
  } catch (const ProcessEnded& ended) {
    run.ended = ended;
  }
  return run;
}

// What the daemon wrote to the status pipe, read as the launcher.
std::string launcher_reads_status(FakeSyscalls& os) {
  os.switch_to(kLauncher);
  for (int fd : os.open_fds(kLauncher)) {
    const std::string what = os.describe_fd(kLauncher, fd);
    if (what.starts_with("pipe:") && what.find(":r") != std::string::npos) {
      char buffer[128];
      auto n = os.read(fd, buffer, sizeof buffer);
      return n ? std::string(buffer, *n) : std::string("<read failed>");
    }
  }
  std::string seen;
  for (int fd : os.open_fds(kLauncher)) seen += " " + os.describe_fd(kLauncher, fd);
  return "<no pipe among" + seen + ">";
}

class RunOnFake : public ::testing::Test {
 protected:
  void SetUp() override {
    os_.install_program("/usr/bin/prog");
    os_.make_dir("/run");
    os_.make_dir("/var/log");
    os_.make_dir("/srv/jail/data");
  }
  FakeSyscalls os_;
};

TEST_F(RunOnFake, DaemonIsSetUpThenExecsProgramWithThePidFileLocked) {
  DaemonRun run = run_daemon_side(
      os_, run_options({"--pidfile", "/run/p.pid", "--logfile", "/var/log/p.log", "--", "prog",
                        "-x"}),
      {"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "DAEMONKIT_STATUS_FD=9"});
  ASSERT_FALSE(run.returned) << run.result.err;
  ASSERT_TRUE(run.ended.by_exec);
  const pid_t daemon = run.ended.pid;
  const fake::ProcessInfo info = os_.process(daemon);
  EXPECT_EQ(info.umask, 0077U);
  EXPECT_EQ(info.cwd, "/");
  EXPECT_NE(info.sid, daemon) << "the daemon must not lead its session";
  EXPECT_NE(info.sid, os_.process(kLauncher).sid);
  EXPECT_THAT(info.blocked_signals, Not(Contains(SIGCHLD)));
  ASSERT_EQ(info.execs.size(), 1U);
  EXPECT_EQ(info.execs[0].path, "/usr/bin/prog");
  EXPECT_EQ(info.execs[0].argv, (std::vector<std::string>{"prog", "-x"}));
  // Neither readiness variable leaks into PROGRAM under --ready=exec.
  EXPECT_EQ(info.execs[0].envp, (std::vector<std::string>{"PATH=/usr/bin"}));
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::to_string(daemon) + "\n");
  EXPECT_EQ(os_.describe_fd(daemon, 0), "/dev/null");
  EXPECT_THAT(os_.describe_fd(daemon, 1), HasSubstr("/var/log/p.log"));
  EXPECT_THAT(os_.describe_fd(daemon, 2), HasSubstr("/var/log/p.log"));
  // After the exec: stdio and the PID file, whose lock PROGRAM now holds.
  const std::vector<int> fds = os_.open_fds(daemon);
  ASSERT_EQ(fds.size(), 4U);
  EXPECT_THAT(os_.describe_fd(daemon, fds[3]), HasSubstr("/run/p.pid"));
}

TEST_F(RunOnFake, PipeModeHandsTheStatusPipeToProgram) {
  DaemonRun run = run_daemon_side(os_, run_options({"--ready=pipe", "--", "/usr/bin/prog"}));
  ASSERT_TRUE(run.ended.by_exec);
  const fake::ProcessInfo info = os_.process(run.ended.pid);
  ASSERT_EQ(info.execs.size(), 1U);
  std::string fd_var;
  for (const std::string& entry : info.execs[0].envp) {
    if (entry.starts_with("DAEMONKIT_STATUS_FD=")) fd_var = entry.substr(20);
  }
  ASSERT_FALSE(fd_var.empty());
  EXPECT_THAT(os_.describe_fd(run.ended.pid, std::stoi(fd_var)), HasSubstr(":w"));
}

TEST_F(RunOnFake, ChrootAndRundirAreEnteredInThatOrder) {
  os_.install_program("/srv/jail/bin/prog");
  DaemonRun run = run_daemon_side(
      os_, run_options({"--chroot", "/srv/jail", "--rundir", "/data", "--", "/bin/prog"}));
  ASSERT_TRUE(run.ended.by_exec);
  const fake::ProcessInfo info = os_.process(run.ended.pid);
  EXPECT_EQ(info.root, "/srv/jail");
  EXPECT_EQ(info.cwd, "/data");
}

TEST_F(RunOnFake, PrivilegesAreDroppedAfterThePidFileIsWritten) {
  DaemonRun run =
      run_daemon_side(os_, run_options({"--pidfile", "/run/p.pid", "--uid", "nobody", "--",
                                        "/usr/bin/prog"}));
  ASSERT_TRUE(run.ended.by_exec);
  const fake::ProcessInfo info = os_.process(run.ended.pid);
  EXPECT_EQ(info.uids, (sys::ResUids{65534, 65534, 65534}));
  EXPECT_EQ(info.gids, (sys::ResGids{65534, 65534, 65534}));
  EXPECT_EQ(os_.read_file("/run/p.pid"), std::to_string(run.ended.pid) + "\n");
}

// Each step's failure ends the daemon with 1 and reaches the launcher's pipe, named.
struct StepFailure {
  std::string label;  // the test's name: stable, so ctest's filter finds it on every run
  std::vector<std::string> options;
  std::string call;  // the call made to fail ("" for a failure the world causes)
  int error;
  std::string report;
};

void PrintTo(const StepFailure& step, std::ostream* out) { *out << step.label; }

class RunStepFailsOnFake : public RunOnFake, public ::testing::WithParamInterface<StepFailure> {};

TEST_P(RunStepFailsOnFake, ReportsTheStepOnTheStatusPipe) {
  const StepFailure& step = GetParam();
  if (!step.call.empty()) os_.fail_nth(step.call, 1, step.error);
  std::vector<std::string> words = step.options;
  words.insert(words.end(), {"--", "/usr/bin/prog"});
  DaemonRun run = run_daemon_side(os_, run_options(words));
  ASSERT_FALSE(run.returned) << run.result.err;
  ASSERT_TRUE(run.ended.exited());
  EXPECT_EQ(run.ended.exit_code(), 1);
  EXPECT_EQ(launcher_reads_status(os_), step.report);
}

INSTANTIATE_TEST_SUITE_P(
    EachStep, RunStepFailsOnFake,
    ::testing::Values(
        StepFailure{"Chroot", {"--chroot", "/nojail"}, "", 0,
                    "1 chroot(/nojail): No such file or directory (ENOENT)"},
        StepFailure{"Rundir", {"--rundir", "/nowhere"}, "", 0,
                    "1 chdir(/nowhere): No such file or directory (ENOENT)"},
        StepFailure{"Logfile", {"--logfile", "/nodir/x.log"}, "", 0,
                    "1 open(/nodir/x.log): No such file or directory (ENOENT)"},
        StepFailure{"Setresuid", {"--uid", "nobody"}, "setresuid", EPERM,
                    "1 setresuid(65534): Operation not permitted (EPERM)"},
        StepFailure{"Setsid", {}, "setsid", EPERM, "1 setsid: Operation not permitted (EPERM)"},
        StepFailure{"Execve", {}, "execve", ENOEXEC,
                    "1 exec /usr/bin/prog: Exec format error (ENOEXEC)"}),
    [](const ::testing::TestParamInfo<StepFailure>& param) { return param.param.label; });

TEST_F(RunOnFake, ExecOfAMissingProgramIsNamedAsTyped) {
  DaemonRun run = run_daemon_side(os_, run_options({"--", "nope"}));
  ASSERT_TRUE(run.ended.exited());
  EXPECT_EQ(launcher_reads_status(os_), "1 exec nope: No such file or directory (ENOENT)");
}

TEST_F(RunOnFake, HeldPidFileIsRefusedBeforeAnythingForks) {
  os_.write_file("/run/p.pid", "999\n");  // the fake's shell, alive; the file is not locked
  DaemonRun run = run_daemon_side(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  ASSERT_TRUE(run.returned);
  EXPECT_EQ(run.result.code, 1);
  EXPECT_THAT(run.result.err, StartsWith("Another server is running, PID 999\n\n"));
  EXPECT_EQ(count_calls(os_, "fork"), 0);
  EXPECT_EQ(os_.read_file("/run/p.pid"), "999\n");
}

TEST_F(RunOnFake, UnknownUserIsRefusedBeforeAnythingForks) {
  DaemonRun run = run_daemon_side(os_, run_options({"--uid", "bob", "--", "prog"}));
  ASSERT_TRUE(run.returned);
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("Unknown user bob"));
  EXPECT_EQ(count_calls(os_, "fork"), 0);
}

TEST_F(RunOnFake, FailedForkReleasesThePidFile) {
  os_.fail_nth("fork", 1, EAGAIN);
  DaemonRun run = run_daemon_side(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}));
  ASSERT_TRUE(run.returned);
  EXPECT_EQ(run.result.err, launch_failure_text("fork: Resource temporarily unavailable (EAGAIN)"));
  EXPECT_FALSE(os_.read_file("/run/p.pid").has_value());
}

TEST_F(RunOnFake, FailedPipeIsReported) {
  os_.fail_nth("pipe2", 1, EMFILE);
  DaemonRun run = run_daemon_side(os_, run_options({"--", "prog"}));
  ASSERT_TRUE(run.returned);
  EXPECT_EQ(run.result.err, launch_failure_text("pipe2: Too many open files (EMFILE)"));
}

// ---- the launcher's waiting loop ---------------------------------------------------------
// The launcher continues as the parent of its fork and runs its poll loop on the fake. The
// fake runs only the current process's code, so the hook plays the intermediate and the daemon
// just before the launcher's first poll, with the calls each would make.

// How the daemon the hook plays ends its part.
constexpr int kExecsProgram = -1;  // execs /usr/bin/prog (the status pipe closes, CLOEXEC)
constexpr int kStaysSilent = -2;   // lives on, the pipe open, never reporting

// What the daemon does once it exists, given the status pipe's write end: returns its exit
// code, or kExecsProgram, or kStaysSilent.
using DaemonScript = std::function<int(FakeSyscalls&, int status_fd)>;

struct LauncherRun {
  CommandResult result;
  pid_t intermediate = 0;
};

// What PROGRAM does once exec'd, given $NOTIFY_SOCKET (empty unless --ready=notify): returns
// its exit code, or kStaysSilent.
using ProgramScript = std::function<int(FakeSyscalls&, const std::string& notify_socket)>;

// The launcher's notify socket as the daemon inherited it: "@name", or "" if there is none.
std::string inherited_notify_socket(FakeSyscalls& os) {
  for (int fd : os.open_fds(os.current_pid())) {
    sockaddr_un addr{};
    socklen_t len = sizeof addr;
    if (!os.getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)) continue;
    if (addr.sun_family != AF_UNIX || len <= offsetof(sockaddr_un, sun_path) + 1) continue;
    if (addr.sun_path[0] != '\0') continue;
    const std::size_t name_len = len - offsetof(sockaddr_un, sun_path) - 1;
    return "@" + std::string(addr.sun_path + 1, name_len);
  }
  return "";
}

LauncherRun run_launcher(FakeSyscalls& os, const RunOptions& options, DaemonScript daemon,
                         ProgramScript program = nullptr) {
  LauncherRun run;
  os.before_each_call([&](std::string_view name, pid_t caller) {
    if (run.intermediate != 0 || name != "poll" || caller != kLauncher) return;
    run.intermediate = os.last_forked_pid();
    // The status pipe's write end, which the launcher closed and the intermediate still holds.
    int status_fd = -1;
    for (int fd : os.open_fds(run.intermediate)) {
      const std::string what = os.describe_fd(run.intermediate, fd);
      if (what.starts_with("pipe:") && what.find(":w") != std::string::npos) status_fd = fd;
    }
    os.switch_to(run.intermediate);
    ASSERT_TRUE(os.setsid());
    const pid_t daemon_pid = os.fork().value();
    os.end_process(run.intermediate, 0);
    os.switch_to(daemon_pid);
    const int end = daemon(os, status_fd);
    if (end >= 0) os.end_process(daemon_pid, end);
    if (end != kExecsProgram) return;
    const std::string notify_socket = inherited_notify_socket(os);
    char arg0[] = "prog";
    char* argv[] = {arg0, nullptr};
    try {
      static_cast<void>(os.execve("/usr/bin/prog", argv, argv));
    } catch (const ProcessEnded&) {
    }
    if (!program) return;
    os.switch_to(daemon_pid);
    if (const int code = program(os, notify_socket); code >= 0) os.end_process(daemon_pid, code);
  });
  run.result = run_run(os, options, {"PATH=/usr/bin"});
  os.before_each_call(nullptr);
  return run;
}

bool killed_group_of(const FakeSyscalls& os, pid_t leader) {
  return std::any_of(os.transcript().begin(), os.transcript().end(), [&](const auto& call) {
    return call.name == "kill" && !call.args.empty() && call.args[0] == std::to_string(-leader);
  });
}

TEST_F(RunOnFake, LauncherExitsZeroOnceProgramIsExecd) {
  const LauncherRun run =
      run_launcher(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}),
                   [](FakeSyscalls&, int) { return kExecsProgram; });
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_EQ(run.result.err, "");
  EXPECT_EQ(os_.open_fds(kLauncher), (std::vector<int>{0, 1, 2, 3}))
      << "only stdio and its copy of the PID file, whose lock the daemon shares";
  EXPECT_FALSE(killed_group_of(os_, run.intermediate));
}

TEST_F(RunOnFake, LauncherPassesOnWhatProgramReportsOnThePipe) {
  const LauncherRun run =
      run_launcher(os_, run_options({"--ready=pipe", "--", "prog"}), [](FakeSyscalls& os, int fd) {
        EXPECT_TRUE(os.write(fd, "1 port 80 is taken", 18));
        return 1;
      });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("port 80 is taken"));
}

TEST_F(RunOnFake, LauncherNamesHowProgramDiedBeforeItWasReady) {
  const LauncherRun run = run_launcher(os_, run_options({"--ready=pipe", "--", "prog"}),
                                       [](FakeSyscalls&, int) { return 3; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog exited with exit status 3 before it was ready"));
}

TEST_F(RunOnFake, LauncherStopsAProgramThatIsNotReadyInTime) {
  const auto before = os_.clock().monotonic();
  const LauncherRun run =
      run_launcher(os_, run_options({"--ready=pipe", "--timeout", "2", "--", "prog"}),
                   [](FakeSyscalls&, int) { return kStaysSilent; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err,
            launch_failure_text("prog was not ready after 2 seconds; sent it SIGTERM"));
  EXPECT_GE(os_.clock().monotonic() - before, std::chrono::seconds(2));
  EXPECT_TRUE(killed_group_of(os_, run.intermediate));
}

TEST_F(RunOnFake, FailedPollEndsTheLaunchAndStopsTheDaemon) {
  os_.fail_nth("poll", 1, ENOMEM);
  const LauncherRun run = run_launcher(os_, run_options({"--pidfile", "/run/p.pid", "--", "prog"}),
                                       [](FakeSyscalls&, int) { return kStaysSilent; });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text("poll: Cannot allocate memory (ENOMEM)"));
  EXPECT_TRUE(killed_group_of(os_, run.intermediate));
}

TEST_F(RunOnFake, NotifyModeIsReadyOnReadyEqualsOneFromProgram) {
  std::string told;
  const LauncherRun run = run_launcher(
      os_, run_options({"--ready=notify", "--", "prog"}),
      [](FakeSyscalls&, int) { return kExecsProgram; },
      [&](FakeSyscalls& os, const std::string& notify_socket) {
        told = notify_socket;
        core::Readiness::Options options;
        options.notify_socket = notify_socket;
        core::Readiness readiness(os, options);
        EXPECT_TRUE(readiness.ready("listening"));
        return kStaysSilent;
      });
  EXPECT_THAT(told, StartsWith("@daemonkit/notify/"));
  EXPECT_EQ(run.result.code, 0) << run.result.err;
  EXPECT_FALSE(killed_group_of(os_, run.intermediate));
}

TEST_F(RunOnFake, NotifyModeTellsTheStatusOfAProgramThatGaveUp) {
  const LauncherRun run = run_launcher(
      os_, run_options({"--ready=notify", "--", "prog"}),
      [](FakeSyscalls&, int) { return kExecsProgram; },
      [](FakeSyscalls& os, const std::string& notify_socket) {
        core::Readiness::Options options;
        options.notify_socket = notify_socket;
        core::Readiness readiness(os, options);
        EXPECT_TRUE(readiness.fail("no config at /etc/prog.conf", ENOENT));
        return 1;
      });
  EXPECT_EQ(run.result.code, 1);
  EXPECT_EQ(run.result.err, launch_failure_text(
                                "no config at /etc/prog.conf (No such file or directory, ENOENT)"));
}

// ---- status and stop ----------------------------------------------------------------------

TEST(StatusOnFake, EachLsbCode) {
  FakeSyscalls os;
  EXPECT_EQ(run_status(os, {"/run/p.pid"}).code, kStatusNotRunning);
  os.write_file("/run/p.pid", "999\n");  // alive, unlocked: an older tool's file
  CommandResult running = run_status(os, {"/run/p.pid"});
  EXPECT_EQ(running.code, kStatusRunning);
  EXPECT_EQ(running.out, "999\n");
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
  os.write_file("/run/p.pid", "999\n");
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
  os.write_file("/run/p.pid", "999\n");
  os.fail_nth("pidfd_open", 1, EMFILE);
  CommandResult result = run_stop(os, {"/run/p.pid", std::chrono::seconds(1)});
  EXPECT_EQ(result.code, 1);
  EXPECT_EQ(result.err, "daemonkit stop: pidfd_open(999): Too many open files (EMFILE)\n");
}

}  // namespace
}  // namespace daemonkit::cli
