// Black-box tests of the `daemonkit` binary on the real kernel: every run option, every --ready
// mode's success and failure paths, stop and status with their exit codes, and the exact
// messages daemonkit(1) promises. Each test works in its own directory and stops every daemon
// it started (through the PID file, or by the pid a probe reported).
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli_runner.h"

namespace {

using namespace daemonkit_cli_test;
namespace fs = std::filesystem;
const std::string kProbe = DAEMONKIT_PROBE_BIN;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

class DaemonkitCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/daemonkit-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // World-writable and sticky like /tmp, so tests that drop to nobody can write here.
    chmod(dir_.c_str(), 01777);
    // Daemons orphaned by their launcher come to us, not to a PID 1 that may never reap them,
    // so a killed daemon can be reaped here and its pid stops answering kill(pid, 0).
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }

  // Reaps a daemon this test adopted, once it has exited.
  static void reap(pid_t pid) { waitpid(pid, nullptr, 0); }

  // Only our own unreaped children are signalled: a pid we no longer own may have been reused,
  // by another test's daemon under ctest -j.
  static void kill_if_ours(pid_t pid) {
    if (pid > 1 && waitpid(pid, nullptr, WNOHANG) == 0) kill(pid, SIGKILL);
  }

  void TearDown() override {
    for (pid_t pid : started_) kill_if_ours(pid);
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().extension() == ".pid") {
        kill_if_ours(static_cast<pid_t>(std::atol(read_file(entry.path()).c_str())));
      }
    }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The probe's report, once it has written it.
  std::map<std::string, std::string> report(const std::string& name = "report") {
    const fs::path file = dir_ / name;
    EXPECT_TRUE(eventually([&] { return fs::exists(file); })) << "no report at " << file;
    auto parsed = parse_report(read_file(file));
    if (parsed.count("pid") != 0) started_.push_back(static_cast<pid_t>(std::stol(parsed["pid"])));
    return parsed;
  }

  pid_t pid_in(const std::string& pidfile) {
    const pid_t pid = static_cast<pid_t>(std::atol(read_file(path(pidfile)).c_str()));
    started_.push_back(pid);
    return pid;
  }

  // `daemonkit run --pidfile P [extra...] -- probe REPORT MODE [args...]`
  std::vector<std::string> probe_run(std::vector<std::string> options,
                                     const std::vector<std::string>& probe_args,
                                     const std::string& pidfile = "d.pid") {
    std::vector<std::string> args{"run"};
    if (!pidfile.empty()) {
      args.push_back("--pidfile");
      args.push_back(path(pidfile));
    }
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.push_back(kProbe);
    args.push_back(path("report"));
    args.insert(args.end(), probe_args.begin(), probe_args.end());
    return args;
  }

  fs::path dir_;
  std::vector<pid_t> started_;
};

std::string failure_text(const std::string& message) {
  return "An error has occurred: " + message + "\nPlease look at log file for more information.\n";
}

// ---- The command line -------------------------------------------------------------------------

TEST_F(DaemonkitCli, VersionAndHelpExitZero) {
  Outcome version = run({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_THAT(version.out, MatchesRegex("daemonkit [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  for (const char* command : {"run", "stop", "status"}) {
    Outcome help = run({command, "--help"});
    EXPECT_EQ(help.code, 0) << command;
    EXPECT_THAT(help.out, HasSubstr("--pidfile")) << command;
    EXPECT_THAT(help.err, IsEmpty());
  }
}

TEST_F(DaemonkitCli, UsageErrorsExitTwoWithTheProblem) {
  Outcome umask = run({"run", "--umask", "999", "--", "/bin/true"});
  EXPECT_EQ(umask.code, 2);
  EXPECT_EQ(umask.err,
            "daemonkit run: --umask: '999' is not an octal mode from 0 to 0777 (e.g. 022)\n"
            "Run 'daemonkit run --help' for more information.\n");
  EXPECT_THAT(umask.out, IsEmpty());
  EXPECT_EQ(run({"run"}).code, 2);
  EXPECT_EQ(run({"run", "--ready=later", "--", "/bin/true"}).code, 2);
  EXPECT_EQ(run({"run", "-n", "--ready=pipe", "--", "/bin/true"}).code, 2);
  EXPECT_EQ(run({"stop"}).code, 2);
  EXPECT_EQ(run({"status"}).code, 2);
  EXPECT_EQ(run({"frobnicate"}).code, 2);
  EXPECT_EQ(run({}).code, 2);
}

TEST_F(DaemonkitCli, ManPageDocumentsEveryRunOptionAndMessage) {
  const std::string man = read_file(DAEMONKIT_MAN_PAGE);
  ASSERT_FALSE(man.empty());
  const std::string help = run({"run", "--help"}).out;
  // Every long option the binary offers is in the page (troff escapes each dash).
  std::istringstream words(help);
  int options = 0;
  for (std::string word; words >> word;) {
    if (!word.starts_with("--") || word.size() < 3 || word[2] < 'a' || word[2] > 'z') continue;
    word = word.substr(0, word.find_first_not_of("abcdefghijklmnopqrstuvwxyz-", 2));
    std::string escaped;
    for (char c : word) escaped += c == '-' ? std::string("\\-") : std::string(1, c);
    ++options;
    EXPECT_NE(man.find(escaped), std::string::npos) << word << " is not in daemonkit.1";
  }
  EXPECT_GE(options, 11);
  for (const char* message :
       {"An error has occurred", "Another server is running", "contains non-numeric value",
        "Removing stale pidfile", "no daemon is running", "sent SIGKILL", "not running",
        "closed the status pipe without reporting readiness", "sent it SIGTERM, then SIGKILL",
        "left it in place", "sent a malformed status report"}) {
    EXPECT_NE(man.find(message), std::string::npos) << message << " is not in daemonkit.1";
  }
}

// argv reaches the terminal only as visible escapes: no escape sequence, broken UTF-8 or bidi
// override of the user's is printed raw.
TEST_F(DaemonkitCli, UsageErrorsShowControlsInvalidUtf8AndBidiOverridesEscaped) {
  Outcome umask = run({"run", "--umask",
                       "\x1b[2J\xff\xe2\x80\xae"
                       "9",
                       "--", "/bin/true"});
  EXPECT_EQ(umask.code, 2);
  EXPECT_EQ(umask.err,
            "daemonkit run: --umask: '\\x1b[2J\\xff\\u{202E}9' is not an octal mode from 0 to "
            "0777 (e.g. 022)\nRun 'daemonkit run --help' for more information.\n");
  Outcome option = run({"stop",
                        "--\xc2\x9b"
                        "31m"});
  EXPECT_EQ(option.code, 2);
  EXPECT_THAT(option.err, HasSubstr("'--\\xc2\\x9b31m'"));
}

TEST_F(DaemonkitCli, EmptyPidfileMeansNoneForRunAndIsAUsageErrorForStopAndStatus) {
  Outcome launched = run(probe_run({"--pidfile", ""}, {"run"}, ""));
  EXPECT_EQ(launched.code, 0) << launched.err;
  report();
  for (const char* command : {"stop", "status"}) {
    Outcome refused = run({command, "--pidfile", ""});
    EXPECT_EQ(refused.code, 2);
    EXPECT_EQ(refused.err, fmt::format("daemonkit {0}: --pidfile '' means no PID file; {0} needs "
                                       "one\nRun 'daemonkit {0} --help' for more information.\n",
                                       command));
  }
}

// ---- run: the daemon's state ------------------------------------------------------------------

TEST_F(DaemonkitCli, RunDaemonizesWithTwistdDefaults) {
  Outcome launched = run_with(probe_run({}, {"run"}), spec_umask(0022));
  ASSERT_EQ(launched.code, 0) << launched.err;
  EXPECT_THAT(launched.out, IsEmpty());
  EXPECT_THAT(launched.err, IsEmpty());
  auto state = report();
  EXPECT_EQ(state["umask"], "0077");  // twistd's default for daemons, whatever the caller had
  EXPECT_EQ(state["cwd"], "/");       // default --rundir
  // Once the launcher has gone, the daemon belongs to init or a subreaper above the test.
  // (The report was written while the launcher, its subreaper until then, still waited.)
  const std::string stat = read_file("/proc/" + state["pid"] + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string run_state;
  pid_t ppid_now = 0;
  fields >> run_state >> ppid_now;
  EXPECT_NE(ppid_now, launched.pid);
  EXPECT_NE(state["sid"], state["pid"]) << "the daemon must not lead its session";
  EXPECT_NE(state["sid"], std::to_string(getsid(0)));
  // stdin, stdout and stderr, and the PID file's descriptor that keeps the lock across exec:
  // nothing else the launcher (or whoever started it) had open.
  ASSERT_THAT(state["fds"], MatchesRegex("0,1,2,[0-9]+"));
  const std::string lock_fd = state["fds"].substr(6);
  EXPECT_EQ(fs::read_symlink("/proc/" + state["pid"] + "/fd/" + lock_fd), fs::path(path("d.pid")));
  EXPECT_EQ(state["sigchld_blocked"], "0");
  EXPECT_EQ(state["NOTIFY_SOCKET"], "(unset)");
  EXPECT_EQ(state["DAEMONKIT_STATUS_FD"], "(unset)");
  // The PID file names PROGRAM itself, before the launcher has exited.
  EXPECT_EQ(read_file(path("d.pid")), state["pid"] + "\n");
}

TEST_F(DaemonkitCli, UmaskOptionIsOctal) {
  ASSERT_EQ(run(probe_run({"--umask", "027"}, {"run"})).code, 0);
  EXPECT_EQ(report()["umask"], "0027");
}

TEST_F(DaemonkitCli, NodaemonKeepsTheUmaskAndRunsInPlace) {
  // Under --nodaemon PROGRAM replaces daemonkit: same pid, its exit status is ours.
  Outcome in_place = run_with(probe_run({"--nodaemon"}, {"exit", "7"}), spec_umask(0002));
  EXPECT_EQ(in_place.code, 7) << in_place.err;
  auto state = report();
  EXPECT_EQ(state["pid"], std::to_string(in_place.pid));
  EXPECT_EQ(state["umask"], "0002");
  EXPECT_THAT(in_place.out, StartsWith("probe stdout"));  // stdio kept without --logfile
}

// PROGRAM gets stdio and the PID file, not what daemonkit's caller left open.
TEST_F(DaemonkitCli, NodaemonClosesInheritedDescriptors) {
  RunSpec spec;
  spec.inherited_fd = 7;
  Outcome in_place = run_with(probe_run({"--nodaemon"}, {"exit", "0"}), spec);
  EXPECT_EQ(in_place.code, 0) << in_place.err;
  auto state = report();
  std::vector<std::string> fds;
  std::istringstream list(state["fds"]);
  for (std::string fd; std::getline(list, fd, ',');) fds.push_back(fd);
  EXPECT_THAT(fds, ::testing::Not(::testing::Contains("7"))) << state["fds"];
  // The PID file's lock descriptor, at whatever number it got (its writer, opened beside it,
  // was closed once the pid was written).
  EXPECT_THAT(fds, ::testing::ElementsAre("0", "1", "2", ::testing::Not("7")))
      << "stdio and the PID file";
}

TEST_F(DaemonkitCli, NodaemonPassesTheServiceManagersNotifySocketThrough) {
  Outcome in_place = run_with(probe_run({"-n", "--ready=notify"}, {"exit", "0"}, ""),
                              spec_env({"NOTIFY_SOCKET=/run/systemd/notify"}));
  EXPECT_EQ(in_place.code, 0) << in_place.err;
  EXPECT_EQ(report()["NOTIFY_SOCKET"], "/run/systemd/notify");
}

TEST_F(DaemonkitCli, RundirIsWherePROGRAMStarts) {
  fs::create_directory(dir_ / "work");
  ASSERT_EQ(run(probe_run({"--rundir", path("work")}, {"run"})).code, 0);
  EXPECT_EQ(report()["cwd"], path("work"));
}

TEST_F(DaemonkitCli, MissingRundirIsReportedWithItsErrno) {
  Outcome failed = run(probe_run({"-d", path("absent")}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(fmt::format("chdir({}): No such file or directory (ENOENT)",
                                                 path("absent"))));
  EXPECT_FALSE(fs::exists(path("d.pid"))) << "a failed start must not leave its PID file";
}

TEST_F(DaemonkitCli, RelativePathsAreTakenFromTheCallersDirectory) {
  fs::copy_file(kProbe, dir_ / "probe");
  Outcome launched = run_with({"run", "--pidfile", "rel.pid", "--logfile", "rel.log", "--",
                               "./probe", path("report"), "run"},
                              spec_cwd(dir_.string()));
  ASSERT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  EXPECT_EQ(state["cwd"], "/");
  EXPECT_EQ(read_file(path("rel.pid")), state["pid"] + "\n");
  EXPECT_TRUE(eventually(
      [&] { return read_file(path("rel.log")).find("probe stderr") != std::string::npos; }));
}

TEST_F(DaemonkitCli, LogfileGetsStdoutAndStderrAppendedWithTheDaemonUmask) {
  { std::ofstream(path("d.log")) << "earlier line\n"; }
  ASSERT_EQ(run(probe_run({"--logfile", path("d.log")}, {"run"})).code, 0);
  auto state = report();
  EXPECT_TRUE(eventually([&] {
    const std::string log = read_file(path("d.log"));
    return log.find("probe stderr") != std::string::npos;
  }));
  const std::string log = read_file(path("d.log"));
  EXPECT_THAT(log, StartsWith("earlier line\n"));
  EXPECT_THAT(log, HasSubstr("probe stdout " + state["pid"] + "\n"));
  EXPECT_THAT(log, HasSubstr("probe stderr " + state["pid"] + "\n"));

  // A new log file is created under the daemon's umask (twistd used the caller's: H8).
  ASSERT_EQ(run(probe_run({"--logfile", path("new.log")}, {"run"}, "new.pid")).code, 0);
  ASSERT_TRUE(eventually([&] { return fs::exists(path("new.log")); }));
  struct stat st {};
  ASSERT_EQ(stat(path("new.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  pid_in("new.pid");
}

TEST_F(DaemonkitCli, UnwritableLogfileIsReported) {
  Outcome failed = run(probe_run({"--logfile", path("no/such/dir.log")}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(fmt::format("open({}): No such file or directory (ENOENT)",
                                                 path("no/such/dir.log"))));
}

// Root opens the log; a symlink planted at its path must not lead root's writes elsewhere.
TEST_F(DaemonkitCli, LogfileThatIsASymlinkIsRefusedAndItsTargetUntouched) {
  { std::ofstream(path("target")) << "precious\n"; }
  fs::create_symlink(path("target"), path("app.log"));
  Outcome failed = run(probe_run({"--logfile", path("app.log")}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err,
            failure_text(fmt::format("--logfile {} is a symbolic link; refused (never followed)",
                                     path("app.log"))));
  EXPECT_EQ(read_file(path("target")), "precious\n");
  EXPECT_FALSE(fs::exists(path("d.pid")));
  EXPECT_FALSE(fs::exists(path("report"))) << "PROGRAM ran";
}

TEST_F(DaemonkitCli, LogfileWithASecondHardLinkIsRefusedAndLeftUntouched) {
  { std::ofstream(path("target")) << "precious\n"; }
  fs::create_hard_link(path("target"), path("l"));
  Outcome failed = run(probe_run({"--logfile", path("l")}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err,
            failure_text(fmt::format("--logfile {} has 2 hard links; refused (must have exactly 1)",
                                     path("l"))));
  EXPECT_EQ(read_file(path("target")), "precious\n");
  // The same rule with --nodaemon.
  Outcome in_place = run(probe_run({"--nodaemon", "--logfile", path("l")}, {"run"}));
  EXPECT_EQ(in_place.code, 1);
  EXPECT_EQ(in_place.err, failed.err);
  EXPECT_EQ(read_file(path("target")), "precious\n");
}

// A blocking open would wait for a reader with the launcher asleep in vfork: past --timeout,
// and deaf to every signal but SIGKILL.
TEST_F(DaemonkitCli, LogFifoThatNobodyReadsFailsAtOnce) {
  ASSERT_EQ(mkfifo(path("log.fifo").c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  Outcome failed = run(probe_run({"--logfile", path("log.fifo"), "--timeout", "2"}, {"run"}));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(fmt::format("open({}): No such device or address (ENXIO)",
                                                 path("log.fifo"))));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, LogFifoWithAReaderCarriesTheDaemonsOutput) {
  ASSERT_EQ(mkfifo(path("log.fifo").c_str(), 0600), 0);
  const int reader = open(path("log.fifo").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  ASSERT_EQ(run(probe_run({"--logfile", path("log.fifo")}, {"run"})).code, 0);
  auto state = report();
  std::string log;
  EXPECT_TRUE(eventually([&] {
    char buffer[256];
    for (ssize_t n; (n = read(reader, buffer, sizeof buffer)) > 0;) log.append(buffer, n);
    return log.find("probe stderr") != std::string::npos;
  }));
  EXPECT_THAT(log, HasSubstr("probe stdout " + state["pid"] + "\n"));
  close(reader);
}

// ---- run: the PID file -------------------------------------------------------------------------

TEST_F(DaemonkitCli, RunningPidFileIsRefusedWithTwistdsMessage) {
  ASSERT_EQ(run(probe_run({}, {"run"})).code, 0);
  const pid_t pid = pid_in("d.pid");
  Outcome second = run(probe_run({}, {"run"}));
  EXPECT_EQ(second.code, 1);
  EXPECT_EQ(second.err,
            fmt::format("Another server is running, PID {}\n\n"
                        "This could either be a previously started instance of your "
                        "application or a\n"
                        "different application entirely. To start a new one, either run it in "
                        "some other\n"
                        "directory, or use the --pidfile and --logfile parameters to avoid "
                        "clashes.\n",
                        pid));
  EXPECT_EQ(read_file(path("d.pid")), fmt::format("{}\n", pid)) << "the refused start touched it";
  EXPECT_TRUE(process_alive(pid));
}

TEST_F(DaemonkitCli, StalePidFileIsTakenOverAndSaidSo) {
  // A pid that surely names no process: a child we started and reaped.
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  std::ofstream(path("d.pid")) << gone << "\n";
  Outcome launched = run(probe_run({}, {"run"}));
  EXPECT_EQ(launched.code, 0);
  EXPECT_EQ(launched.err, fmt::format("Removing stale pidfile {}\n", path("d.pid")));
  EXPECT_EQ(read_file(path("d.pid")), report()["pid"] + "\n");
}

TEST_F(DaemonkitCli, NonNumericPidFileIsReported) {
  std::ofstream(path("d.pid")) << "not a pid\n";
  Outcome refused = run(probe_run({}, {"run"}));
  EXPECT_EQ(refused.code, 1);
  EXPECT_EQ(refused.err, fmt::format("Pidfile {} contains non-numeric value\n", path("d.pid")));
  EXPECT_EQ(read_file(path("d.pid")), "not a pid\n");
}

TEST_F(DaemonkitCli, PidFileLockLivesExactlyAsLongAsPROGRAM) {
  ASSERT_EQ(run(probe_run({}, {"run"})).code, 0);
  const pid_t pid = pid_in("d.pid");
  // SIGKILL: PROGRAM gets no chance to clean up, yet the lock dies with it.
  kill(pid, SIGKILL);
  reap(pid);
  Outcome status = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(status.code, 1) << status.err;
  Outcome again = run(probe_run({}, {"run"}));
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.err, fmt::format("Removing stale pidfile {}\n", path("d.pid")));
}

// ---- run: --ready=exec ------------------------------------------------------------------------

TEST_F(DaemonkitCli, ExecFailureReachesTheShell) {
  Outcome failed =
      run_with({"run", "--pidfile", path("d.pid"), "--", "./nope"}, spec_cwd(dir_.string()));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text("exec ./nope: No such file or directory (ENOENT)"));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, ExecOfANonExecutableIsPermissionDenied) {
  std::ofstream(path("plain")) << "#!/bin/sh\n";
  Outcome failed = run({"run", "--", path("plain")});
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err,
            failure_text(fmt::format("exec {}: Permission denied (EACCES)", path("plain"))));
}

TEST_F(DaemonkitCli, ProgramIsSearchedOnPath) {
  fs::create_directory(dir_ / "bin");
  fs::copy_file(kProbe, dir_ / "bin" / "dk-probe");
  Outcome launched =
      run_with(probe_run({}, {"run"}), spec_env({"PATH=/nonexistent:" + path("bin")}));
  ASSERT_EQ(launched.code, 0);
  report();
  Outcome by_name =
      run_with({"run", "--pidfile", path("n.pid"), "--", "dk-probe", path("r2"), "run"},
               spec_env({"PATH=/nonexistent:" + path("bin")}));
  EXPECT_EQ(by_name.code, 0) << by_name.err;
  report("r2");
}

// exec readiness means "exec succeeded": the launcher does not wait to see PROGRAM stay up.
TEST_F(DaemonkitCli, ExecReadinessDoesNotWaitForALaterDeath) {
  const auto start = std::chrono::steady_clock::now();
  Outcome launched =
      run({"run", "--pidfile", path("d.pid"), "--", "/bin/sh", "-c", "sleep 1; exit 3"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  EXPECT_EQ(launched.code, 0) << launched.err;
  pid_in("d.pid");
}

// ---- run: --ready=notify ----------------------------------------------------------------------

TEST_F(DaemonkitCli, NotifyReadyOnReadyOne) {
  Outcome launched = run_with(probe_run({"--ready=notify"}, {"notify-ready"}),
                              spec_env({"NOTIFY_SOCKET=/somewhere/else"}));
  EXPECT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  EXPECT_THAT(state["NOTIFY_SOCKET"], StartsWith("@daemonkit/notify/"));
  EXPECT_TRUE(process_alive(std::stoi(state["pid"])));
}

TEST_F(DaemonkitCli, NotifyFailureIsTheProgramsLastStatusAndErrno) {
  Outcome failed =
      run(probe_run({"--ready=notify"}, {"notify-fail", "Failed to open the spool", "13"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text("Failed to open the spool (Permission denied, EACCES)"));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, NotifyProgramDyingWithoutWordsSaysHow) {
  Outcome failed = run(probe_run({"--ready=notify"}, {"notify-silent-exit", "3"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(kProbe + " exited with exit status 3 before it was ready"));
}

TEST_F(DaemonkitCli, NotifyProgramThatNeverGetsReadyTimesOutAndIsStopped) {
  const auto start = std::chrono::steady_clock::now();
  Outcome failed = run(probe_run({"--ready=notify", "--timeout", "0.5"}, {"run"}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(kProbe + " was not ready after 0.5 seconds; sent it SIGTERM"));
  const pid_t pid = static_cast<pid_t>(std::stol(report()["pid"]));
  EXPECT_TRUE(eventually([&] { return !process_alive(pid); }));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// Anyone can read the launcher's abstract socket name in /proc/net/unix and send to it; this
// test, in a session of its own, plays that user against a PROGRAM that never reports.
TEST_F(DaemonkitCli, NotifyReadyFromOutsideTheDaemonsSessionIsIgnored) {
  std::string sent = "not sent";
  std::thread stranger([&] {
    const fs::path file = dir_ / "report";
    if (!eventually([&] { return fs::exists(file); })) return;
    const std::string where = parse_report(read_file(file))["NOTIFY_SOCKET"];
    if (where.size() < 2 || where[0] != '@') return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, where.data() + 1, where.size() - 1);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + where.size());
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const char datagram[] = "READY=1\n";
    if (::sendto(fd, datagram, sizeof datagram - 1, MSG_NOSIGNAL,
                 reinterpret_cast<sockaddr*>(&addr), len) == sizeof datagram - 1) {
      sent = "sent";
    }
    ::close(fd);
  });
  Outcome failed = run(probe_run({"--ready=notify", "--timeout", "2"}, {"run"}));
  stranger.join();
  EXPECT_EQ(sent, "sent");
  EXPECT_EQ(failed.code, 1) << "a stranger's READY=1 was taken for the daemon's";
  EXPECT_THAT(failed.err,
              AllOf(HasSubstr(kProbe + " was not ready after 2 seconds"),
                    HasSubstr("ignored 1 notification from a process outside the daemon's "
                              "session")));
  const pid_t pid = static_cast<pid_t>(std::stol(report()["pid"]));
  EXPECT_TRUE(eventually([&] { return !process_alive(pid); }));
}

// ---- run: --ready=pipe ------------------------------------------------------------------------

TEST_F(DaemonkitCli, PipeReadyOnZero) {
  Outcome launched = run(probe_run({"--ready=pipe"}, {"pipe-ready"}));
  EXPECT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  EXPECT_THAT(state["DAEMONKIT_STATUS_FD"], MatchesRegex("[0-9]+"));
  EXPECT_TRUE(process_alive(std::stoi(state["pid"])));
}

TEST_F(DaemonkitCli, PipeFailureMessageIsPrinted) {
  Outcome failed =
      run(probe_run({"--ready=pipe"}, {"pipe-fail", "bind(127.0.0.1:7): Permission denied"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text("bind(127.0.0.1:7): Permission denied"));
}

TEST_F(DaemonkitCli, PipeProgramDyingBeforeReportSaysHow) {
  Outcome failed = run(probe_run({"--ready=pipe"}, {"exit", "4"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(kProbe + " exited with exit status 4 before it was ready"));
}

TEST_F(DaemonkitCli, PipeClosedWithoutReportIsAFailure) {
  Outcome failed = run(probe_run({"--ready=pipe"}, {"pipe-close"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(kProbe + " closed the status pipe without reporting "
                                              "readiness; sent it SIGTERM"));
  const pid_t pid = static_cast<pid_t>(std::stol(report()["pid"]));
  EXPECT_TRUE(eventually([&] { return !process_alive(pid); })) << "the silent daemon was left";
}

TEST_F(DaemonkitCli, PipeGarbageIsAProtocolError) {
  Outcome failed = run(probe_run({"--ready=pipe"}, {"pipe-raw", "ok"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_THAT(failed.err,
              StartsWith("An error has occurred: " + kProbe + " sent a malformed status report"));
}

TEST_F(DaemonkitCli, PipeProgramThatNeverGetsReadyTimesOut) {
  Outcome failed = run(probe_run({"--ready=pipe", "--timeout", "1"}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(kProbe + " was not ready after 1 second; sent it SIGTERM"));
}

// A failure report is whole once it is read (one write of at most 100 bytes): a program that
// keeps the pipe open after it does not hold the launch, nor see its words replaced by the
// timeout's. It is stopped, and its PID file given up once it is gone.
TEST_F(DaemonkitCli, PipeFailureReportOfAProgramThatRunsOnIsFinalAtOnce) {
  const auto start = std::chrono::steady_clock::now();
  Outcome failed =
      run(probe_run({"--ready=pipe", "--timeout", "20"}, {"pipe-fail-stay", "port busy"}));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(failed.code, 1);
  // Stopping it is cleanup after its own report: told only if it came to SIGKILL.
  EXPECT_EQ(failed.err, failure_text("port busy"));
  const pid_t pid = static_cast<pid_t>(std::stol(report()["pid"]));
  EXPECT_FALSE(process_alive(pid)) << "stopped and reaped before the launcher exits";
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// ---- run: what the launcher inherits ----------------------------------------------------------

// Some shells and supervisors start programs with SIGCHLD ignored, which survives exec and
// would have the kernel reap the daemon unseen. perl sets it here, then execs daemonkit.
TEST_F(DaemonkitCli, AnInheritedIgnoredSigchldDoesNotHideADeathBeforeReady) {
  const std::string perl = "/usr/bin/perl";
  if (access(perl.c_str(), X_OK) != 0) GTEST_SKIP() << "needs " << perl << " to ignore SIGCHLD";
  RunSpec spec;
  spec.prefix = {perl, "-e", "$SIG{CHLD} = 'IGNORE'; exec @ARGV or exit 127"};
  for (const auto& [mode, probe] : std::vector<std::pair<std::string, std::string>>{
           {"--ready=notify", "notify-silent-exit"}, {"--ready=pipe", "exit"}}) {
    const auto start = std::chrono::steady_clock::now();
    Outcome failed = run_with(probe_run({mode, "--timeout", "20"}, {probe, "3"}), spec);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5)) << mode;
    EXPECT_EQ(failed.code, 1) << mode;
    EXPECT_EQ(failed.err, failure_text(kProbe + " exited with exit status 3 before it was ready"))
        << mode;
    EXPECT_FALSE(fs::exists(path("d.pid"))) << mode;
  }
}

// ---- run: giving up on a live daemon ----------------------------------------------------------
// A daemon the launch gives up on is gone before its PID file is: SIGTERM to its group and to
// itself, SIGKILL 2 seconds later (the man page's grace), and the file kept if it lives on.

TEST_F(DaemonkitCli, TimeoutKillsAProgramThatIgnoresSigterm) {
  const auto start = std::chrono::steady_clock::now();
  Outcome failed = run(probe_run({"--ready=notify", "--timeout", "0.5"}, {"ignore-term"}));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(2500));
  EXPECT_LT(took, std::chrono::seconds(7));
  EXPECT_EQ(failed.err, failure_text(kProbe + " was not ready after 0.5 seconds; sent it "
                                              "SIGTERM, then SIGKILL"));
  const pid_t pid = static_cast<pid_t>(std::stol(report()["pid"]));
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// A shell that ignores SIGTERM, with a child that does too (an ignored signal stays ignored
// across exec): SIGKILL reaches both through the group.
TEST_F(DaemonkitCli, TimeoutKillsAShellIgnoringSigtermAndItsChild) {
  Outcome failed =
      run({"run", "--pidfile", path("d.pid"), "--ready=notify", "--timeout", "0.5", "--", "/bin/sh",
           "-c", "trap '' TERM; sleep 60 & echo $$ $! > " + path("pids") + "; wait"});
  EXPECT_EQ(failed.err, failure_text("/bin/sh was not ready after 0.5 seconds; sent it SIGTERM, "
                                     "then SIGKILL"));
  std::istringstream pids(read_file(path("pids")));
  pid_t shell = 0;
  pid_t child = 0;
  pids >> shell >> child;
  ASSERT_GT(child, 0);
  started_.push_back(shell);
  started_.push_back(child);
  EXPECT_FALSE(process_alive(shell));
  EXPECT_TRUE(eventually([&] { return !process_alive(child); })) << "the shell's child was left";
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, TimeoutReachesAProgramThatLeftItsProcessGroup) {
  Outcome failed = run(probe_run({"--ready=notify", "--timeout", "0.5"}, {"own-session"}));
  EXPECT_EQ(failed.err, failure_text(kProbe + " was not ready after 0.5 seconds; sent it SIGTERM"));
  auto state = report();
  const pid_t pid = static_cast<pid_t>(std::stol(state["pid"]));
  EXPECT_FALSE(process_alive(pid)) << "the daemon outside the group was left running";
  EXPECT_FALSE(fs::exists(path("d.pid")));
  // A second instance may now start: nothing holds the file.
  Outcome again = run(probe_run({}, {"run"}, "d.pid"));
  EXPECT_EQ(again.code, 0) << again.err;
  pid_in("d.pid");
}

// PROGRAM dies, but a process it started in a session of its own keeps the PID file's lock
// (inherited with the descriptor): the file is still that instance's, and is left to it.
TEST_F(DaemonkitCli, APidFileStillLockedByWhatProgramLeftBehindIsKept) {
  Outcome failed = run({"run", "--pidfile", path("d.pid"), "--ready=notify", "--timeout", "0.5",
                        "--", "/bin/sh", "-c",
                        "setsid sh -c 'echo $$ > " + path("survivor") +
                            "; exec sleep 30' & "
                            "sleep 30"});
  ASSERT_TRUE(eventually([&] { return fs::exists(path("survivor")); }));
  const pid_t survivor = static_cast<pid_t>(std::atol(read_file(path("survivor")).c_str()));
  started_.push_back(survivor);
  EXPECT_EQ(failed.err, failure_text("/bin/sh was not ready after 0.5 seconds; sent it SIGTERM; "
                                     "the PID file " +
                                     path("d.pid") +
                                     " is still locked by "
                                     "another process; left it in place"));
  EXPECT_TRUE(process_alive(survivor));
  EXPECT_TRUE(fs::exists(path("d.pid")));
  Outcome second = run(probe_run({}, {"run"}, "d.pid"));
  EXPECT_EQ(second.code, 1);
  EXPECT_THAT(second.err, StartsWith("Another server is running"));
}

// ---- stop and status -------------------------------------------------------------------------

TEST_F(DaemonkitCli, StatusFollowsTheLifecycleWithLsbCodes) {
  Outcome none = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(none.code, 3);
  EXPECT_EQ(none.err, "daemonkit status: not running\n");
  ASSERT_EQ(run(probe_run({}, {"run"})).code, 0);
  const pid_t pid = pid_in("d.pid");
  Outcome running = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(running.code, 0);
  EXPECT_EQ(running.out, fmt::format("{}\n", pid));
  kill(pid, SIGKILL);
  ASSERT_TRUE(eventually([&] { return !process_alive(pid); }));
  Outcome dead = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(dead.code, 1);
  EXPECT_EQ(dead.err,
            fmt::format("daemonkit status: not running, but PID file {} exists (PID {})\n",
                        path("d.pid"), pid));
}

TEST_F(DaemonkitCli, StopTerminatesRemovesThePidFileAndExitsZero) {
  ASSERT_EQ(run(probe_run({}, {"run"})).code, 0);
  const pid_t pid = pid_in("d.pid");
  Outcome stopped = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_THAT(stopped.err, IsEmpty());
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(path("d.pid")));
  Outcome again = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(again.code, 1);
  EXPECT_EQ(again.err, fmt::format("daemonkit stop: no daemon is running (no PID file at {})\n",
                                   path("d.pid")));
}

TEST_F(DaemonkitCli, StopKillsWhatIgnoresSigtermAfterTheTimeout) {
  ASSERT_EQ(run(probe_run({}, {"ignore-term"})).code, 0);
  const pid_t pid = pid_in("d.pid");
  ASSERT_TRUE(eventually([&] { return fs::exists(path("report")); }));
  Outcome stopped = run({"stop", "--pidfile", path("d.pid"), "--timeout", "0.3"});
  EXPECT_EQ(stopped.code, 0);
  EXPECT_EQ(stopped.err, fmt::format("daemonkit stop: PID {} did not exit within 0.3 seconds of "
                                     "SIGTERM; sent SIGKILL\n",
                                     pid));
  EXPECT_FALSE(process_alive(pid));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, StopRemovesAStalePidFileAndSaysNothingRan) {
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  std::ofstream(path("d.pid")) << gone << "\n";
  Outcome stopped = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(stopped.code, 1);
  EXPECT_EQ(stopped.err, fmt::format("Removing stale pidfile {}\ndaemonkit stop: no daemon is "
                                     "running\n",
                                     path("d.pid")));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

TEST_F(DaemonkitCli, StopAndStatusReportANonNumericPidFile) {
  std::ofstream(path("d.pid")) << "garbage";
  Outcome stopped = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(stopped.code, 1);
  EXPECT_EQ(stopped.err, fmt::format("Pidfile {} contains non-numeric value\n", path("d.pid")));
  Outcome status = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(status.code, 1);
  EXPECT_EQ(status.err, fmt::format("Pidfile {} contains non-numeric value\n", path("d.pid")));
}

// ---- Issue #12: stop and status believe only what the lock proves ---------------------------

// Item 1: a PID file nobody locks, naming a live process that is not ours to stop.
TEST_F(DaemonkitCli, StopRefusesAnUnlockedFileNamingALiveUnrelatedProcess) {
  const pid_t sleeper = fork();
  ASSERT_GE(sleeper, 0);
  if (sleeper == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  started_.push_back(sleeper);
  std::ofstream(path("d.pid")) << sleeper << "\n";
  Outcome stopped = run({"stop", "--pidfile", path("d.pid"), "--timeout", "0.2"});
  EXPECT_EQ(stopped.code, 1);
  EXPECT_EQ(stopped.err,
            fmt::format("daemonkit stop: PID file {} is not locked by any process; PID {} is "
                        "alive but may not be the daemon (an older tool's file, one written by "
                        "hand, or a reused pid); not signalling it\n",
                        path("d.pid"), sleeper));
  EXPECT_TRUE(process_alive(sleeper));
  EXPECT_EQ(read_file(path("d.pid")), fmt::format("{}\n", sleeper));
  Outcome status = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(status.code, 4);
  EXPECT_EQ(status.out, "");
  kill(sleeper, SIGKILL);
  reap(sleeper);
}

// Item 5: a FIFO at the path; status and stop must answer at once, not wait for a writer.
TEST_F(DaemonkitCli, AFifoAtThePidFilePathDoesNotHangStatusOrStop) {
  ASSERT_EQ(mkfifo(path("d.pid").c_str(), 0644), 0);
  const auto start = std::chrono::steady_clock::now();
  Outcome status = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(status.code, 4);
  EXPECT_EQ(status.err, fmt::format("daemonkit status: {} is not a regular file; not reading it\n",
                                    path("d.pid")));
  Outcome stopped = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(stopped.code, 1);
  EXPECT_EQ(stopped.err, fmt::format("daemonkit stop: {} is not a regular file; not reading it\n",
                                     path("d.pid")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  fs::remove(path("d.pid"));  // TearDown reads every .pid file, and would wait on a FIFO
}

// Item 9: the daemon forks a child (which inherits the lock) and dies. status, run and stop say
// so, and stop ends the child.
TEST_F(DaemonkitCli, ADaemonWhoseChildOutlivesItIsReportedAndTheChildStopped) {
  const Outcome started = run(probe_run({}, {"fork-child-exit", path("child"), path("go")}));
  ASSERT_EQ(started.code, 0) << started.err;
  const pid_t daemon = pid_in("d.pid");
  std::ofstream(path("go")).put('\n');  // the daemon may exit now, leaving its child
  const auto child_report = report("child");
  const pid_t child = static_cast<pid_t>(std::stol(child_report.at("pid")));
  reap(daemon);  // adopted by us (the subreaper); gone once reaped
  const std::string facts =
      fmt::format("PID {} has exited, but PID {} still holds the lock on {} (left behind by it)",
                  daemon, child, path("d.pid"));
  Outcome status = run({"status", "--pidfile", path("d.pid")});
  EXPECT_EQ(status.code, 1);
  EXPECT_EQ(status.out, "");
  EXPECT_EQ(status.err, fmt::format("daemonkit status: {}\n", facts));
  Outcome refused = run(probe_run({}, {"run"}));
  EXPECT_EQ(refused.code, 1);
  EXPECT_THAT(refused.err, StartsWith(fmt::format("Another server is running: {}\n\n", facts)));
  Outcome stopped = run({"stop", "--pidfile", path("d.pid"), "--timeout", "5"});
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_EQ(stopped.err, fmt::format("daemonkit stop: {}; stopping it\n", facts));
  EXPECT_TRUE(eventually([&] { return !process_alive(child); }));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// Item 9, the ordinary case: SIGTERM ends the daemon, but a child it forked still holds the
// lock: stop ends it too before removing the file.
TEST_F(DaemonkitCli, StopAlsoEndsChildrenStillHoldingTheLock) {
  ASSERT_EQ(run(probe_run({}, {"fork-child", path("child")})).code, 0);
  const pid_t daemon = pid_in("d.pid");
  const pid_t child = static_cast<pid_t>(std::stol(report("child").at("pid")));
  Outcome stopped = run({"stop", "--pidfile", path("d.pid"), "--timeout", "5"});
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_EQ(stopped.err, fmt::format("daemonkit stop: PID {} still holds the lock on {}; "
                                     "stopping it too\n",
                                     child, path("d.pid")));
  EXPECT_TRUE(eventually([&] { return !process_alive(daemon) && !process_alive(child); }));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// ---- root only: chroot and privileges ---------------------------------------------------------

class DaemonkitCliAsRoot : public DaemonkitCli {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (chroot, setuid)";
    DaemonkitCli::SetUp();
  }
};

TEST_F(DaemonkitCliAsRoot, ChrootThenRundirInsideIt) {
  const fs::path jail = dir_ / "jail";
  fs::create_directories(jail / "srv");
  fs::copy_file(kProbe, jail / "probe");
  Outcome launched = run({"run", "--pidfile", path("d.pid"), "--logfile", path("d.log"), "--chroot",
                          jail.string(), "--rundir", "/srv", "--", "/probe", "/report", "run"});
  ASSERT_EQ(launched.code, 0) << launched.err;
  ASSERT_TRUE(eventually([&] { return fs::exists(jail / "report"); }));
  auto state = parse_report(read_file(jail / "report"));
  started_.push_back(static_cast<pid_t>(std::stol(state["pid"])));
  EXPECT_EQ(state["cwd"], "/srv");
  // The PID file and the log were opened before the chroot: outside it.
  EXPECT_EQ(read_file(path("d.pid")), state["pid"] + "\n");
  EXPECT_TRUE(eventually(
      [&] { return read_file(path("d.log")).find("probe stderr") != std::string::npos; }));
}

TEST_F(DaemonkitCliAsRoot, MissingChrootIsReported) {
  Outcome failed = run(probe_run({"--chroot", path("nojail")}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text(fmt::format("chroot({}): No such file or directory (ENOENT)",
                                                 path("nojail"))));
}

TEST_F(DaemonkitCliAsRoot, UidByNameSetsEveryIdAndTheGroups) {
  const passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const std::string u = std::to_string(nobody->pw_uid);
  const std::string g = std::to_string(nobody->pw_gid);
  // The log file sits in a directory only root may write: it is opened before the drop.
  fs::create_directory(dir_ / "private");
  chmod(path("private").c_str(), 0700);
  Outcome launched =
      run(probe_run({"--uid", "nobody", "--logfile", path("private/d.log")}, {"run"}));
  ASSERT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  EXPECT_EQ(state["uids"], u + "/" + u + "/" + u);
  EXPECT_EQ(state["gids"], g + "/" + g + "/" + g);
  EXPECT_EQ(state["groups"], g);
  EXPECT_TRUE(eventually(
      [&] { return read_file(path("private/d.log")).find("probe stderr") != std::string::npos; }));
  // twistd's log line, in the daemon's log.
  EXPECT_THAT(read_file(path("private/d.log")),
              HasSubstr(fmt::format("daemonkit: set uid/gid {}/{}\n", u, g)));
  // The PID file stays removable by root's stop after the drop.
  EXPECT_EQ(run({"stop", "--pidfile", path("d.pid")}).code, 0);
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// A file of someone else's in the log's place: root's files and PROGRAM's user's are fine.
TEST_F(DaemonkitCliAsRoot, LogfileOfAnotherUserIsRefused) {
  const passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  // Not in the sticky test directory, where fs.protected_regular would refuse root's O_CREAT
  // open of nobody's file before daemonkit's own rule is reached.
  fs::create_directory(dir_ / "logs");
  const std::string log = path("logs/l");
  { std::ofstream(log) << "theirs\n"; }
  ASSERT_EQ(chown(log.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  // Without --uid PROGRAM runs as root: nobody's file is not its to write.
  Outcome failed = run(probe_run({"--logfile", log}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err,
            failure_text(fmt::format("--logfile {} is owned by uid {}; refused (must be root's)",
                                     log, nobody->pw_uid)));
  EXPECT_EQ(read_file(log), "theirs\n");
  // With --uid nobody it is PROGRAM's own file.
  Outcome launched = run(probe_run({"--uid", "nobody", "--logfile", log}, {"run"}));
  ASSERT_EQ(launched.code, 0) << launched.err;
  report();
  EXPECT_TRUE(eventually([&] { return read_file(log).find("probe stderr") != std::string::npos; }));
}

TEST_F(DaemonkitCliAsRoot, UidAndGidByNumber) {
  Outcome launched = run(probe_run({"-u", "65534", "-g", "65534"}, {"run"}));
  ASSERT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  EXPECT_EQ(state["uids"], "65534/65534/65534");
  EXPECT_EQ(state["gids"], "65534/65534/65534");
  EXPECT_EQ(state["groups"], "65534");
}

TEST_F(DaemonkitCliAsRoot, EuidSetsOnlyTheEffectiveIds) {
  Outcome launched = run(probe_run({"--uid", "65534", "--gid", "65534", "--euid"}, {"run"}));
  ASSERT_EQ(launched.code, 0) << launched.err;
  auto state = report();
  // The real ids stay root's, so PROGRAM may take its privileges back. (execve copies the
  // effective ids into the saved ones, so after the exec those read 65534 too.)
  EXPECT_EQ(state["uids"], "0/65534/65534");
  EXPECT_EQ(state["gids"], "0/65534/65534");
  // As twistd observed: supplementary groups become the user's even in euid mode.
  EXPECT_EQ(state["groups"], "65534");
}

TEST_F(DaemonkitCliAsRoot, UnknownUserIsReportedBeforeAnythingStarts) {
  Outcome failed = run(probe_run({"--uid", "no-such-user-dk"}, {"run"}));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text("Unknown user no-such-user-dk"));
  EXPECT_FALSE(fs::exists(path("d.pid")));
  Outcome group = run(probe_run({"--gid", "no-such-group-dk"}, {"run"}));
  EXPECT_EQ(group.err, failure_text("Unknown group no-such-group-dk"));
}

TEST_F(DaemonkitCliAsRoot, UnprivilegedCallerCannotTakeRoot) {
  Outcome failed = run_with(probe_run({"--uid", "0", "--gid", "0"}, {"run"}), spec_uid(65534));
  EXPECT_EQ(failed.code, 1);
  EXPECT_EQ(failed.err, failure_text("setresgid(0): Operation not permitted (EPERM)"));
  EXPECT_FALSE(fs::exists(path("d.pid")));
}

// Item 2: after the drop, the daemon holds the lock on a read-only descriptor, and has no way
// to rewrite the file (which would aim root's stop at another process).
TEST_F(DaemonkitCliAsRoot, ADaemonThatDroppedPrivilegesCannotRewriteItsPidFile) {
  ASSERT_EQ(run(probe_run({"--uid", "nobody"}, {"rewrite-pidfile", path("d.pid")})).code, 0);
  const pid_t daemon = pid_in("d.pid");
  ASSERT_TRUE(eventually([&] { return fs::exists(path("report.rewrite")); }));
  const std::string tried = parse_report(read_file(path("report.rewrite")))["rewrite"];
  EXPECT_EQ(tried,
            fmt::format("write:{},ftruncate:{},reopen:{},open:{}", EBADF, EINVAL, EACCES, EACCES));
  EXPECT_EQ(read_file(path("d.pid")), fmt::format("{}\n", daemon));
  Outcome stopped = run({"stop", "--pidfile", path("d.pid")});
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_FALSE(process_alive(daemon));
}

}  // namespace
