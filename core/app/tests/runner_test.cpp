// The UnixApplicationRunner on the fake kernel, with all three processes of a daemonizing start
// (launcher, intermediate, daemon) in one FakeSyscalls: twistd's order as a list of events, a
// fault matrix (every call of a good run failed with every errno it can really get), the
// message reaching the launcher, the PID file removed on every failure and on shutdown, and
// the exit by the signal that stopped the reactor.
//
// twistd's defects, and the tests that show they are absent here:
//   H1 (launcher hangs)          RunnerFaultMatrix.*  (every case: the launcher finished)
//   H2 (failure unreported)      Runner.StartFailureReachesTheLauncherAndRemovesThePidFile,
//                                Runner.ForegroundStartFailureRemovesThePidFile
//   H3 (early failure unreported) RunnerFaultMatrix.*  (faults before and inside daemonize)
//   H5 (PID file left after shedding) Runner.RemovalRefusedAfterSheddingLeavesAFileTheNextStartTakesOver
//   H6, H7 and the 100-byte cut are DaemonContext's, pinned in core/daemon's tests.
//   H8 (log mode from the umask)  Runner.LogFileIsOpenedBeforeAnyForkWithItsStatedMode
#include "daemonkit/core/app/runner.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::CallRecord;
using fake::FakeSyscalls;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kParentStderr = "/tmp/launcher.stderr";
// In a directory the daemon's user owns, so the daemon can still remove it after shedding
// root (twistd's H5 is a root-owned directory: see RemovalRefusedAfterShedding).
constexpr const char* kPidDir = "/run/app";
constexpr const char* kPidFile = "/run/app/app.pid";
constexpr const char* kLogFile = "/tmp/app.log";

// Binds 127.0.0.1:80 in its privileged start (only root may), and notes where in the
// transcript each of its steps ran.
class PortService : public Service {
 public:
  PortService(FakeSyscalls& os, std::vector<std::string>& journal)
      : Service("web"), os_(os), journal_(journal) {}

  std::optional<std::string> fail_start;
  bool hold_stop = false;

 protected:
  StepResult<void> do_privileged_start() override {
    note("privileged_start");
    auto fd = os_.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!fd) return step_failed(StepError::from(StepKind::kApplication, "socket", fd.error()));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(80);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (auto bound = os_.bind(*fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr); !bound) {
      (void)os_.close(*fd);
      return step_failed(
          StepError::from(StepKind::kApplication, "bind(127.0.0.1:80)", bound.error()));
    }
    fd_ = *fd;
    return {};
  }
  StepResult<void> do_start() override {
    note("start");
    const std::string_view hello = "hello from start\n";
    (void)os_.write(1, hello.data(), hello.size());
    if (fail_start) return step_failed(StepError::plain(StepKind::kApplication, *fail_start));
    return {};
  }
  Completion do_stop() override {
    note("stop");
    if (fd_ >= 0) (void)os_.close(std::exchange(fd_, -1));
    if (hold_stop) return Completion();  // never completes
    return Completion::done();
  }
  Completion undo_failed_start() override {
    if (fd_ >= 0) (void)os_.close(std::exchange(fd_, -1));
    return Completion::done();
  }

 private:
  void note(const std::string& what) {
    journal_.push_back(fmt::format("{}@{}", what, os_.transcript().size()));
  }
  FakeSyscalls& os_;
  std::vector<std::string>& journal_;
  int fd_ = -1;
};

RunnerOptions daemon_options() {
  RunnerOptions options;
  options.pidfile = kPidFile;
  options.logfile = kLogFile;
  options.uid = "nobody";
  return options;
}

struct RunnerRun {
  pid_t first_parent = 0;
  pid_t intermediate = 0;
  pid_t daemon = 0;
  std::optional<int> first_parent_exit;
  std::string first_parent_stderr;
  // How the daemon (or the foreground process) ended: its wait status.
  std::optional<int> daemon_status;
  std::vector<std::string> journal;
  std::string log;
};

// SIGTERM as the kernel would deliver it (the fake records signals but never runs handlers).
// False when the reactor does not route it (the fault matrix failed its sigaction).
bool deliver(FakeSyscalls& os, int sig) {
  struct sigaction current {};
  if (!os.sigaction(sig, nullptr, &current)) return false;
  if (current.sa_handler != &SignalRouting::handle) return false;
  current.sa_handler(sig);
  return true;
}

struct Scenario {
  RunnerOptions options = daemon_options();
  // In the shell before the launcher is forked; in the launcher before the run (neither in
  // the transcript); then once the transcript is cleared.
  std::function<void(FakeSyscalls&)> in_shell;
  std::function<void(FakeSyscalls&)> setup;
  std::function<void(FakeSyscalls&)> arm;
  std::optional<std::string> fail_start;
  bool hold_stop = false;
  int stop_signal = SIGTERM;  // 0: stop the reactor with stop()
  // In the daemon while the reactor runs, before the stop.
  std::function<void(FakeSyscalls&)> while_running;
  // How the launcher was started, and what the caller adds around the runner's steps (each
  // hook's call is noted in the journal as "hook <name>").
  Environment env;
  std::optional<std::string> process_name;
  bool with_hooks = false;
  std::optional<std::string> fail_on_daemon;
  // The reactor has run and stopped before the runner's run (it cannot run again).
  bool reactor_used_up = false;
};

RunnerRun run_runner(FakeSyscalls& os, const Scenario& scenario) {
  RunnerRun run;
  os.make_dir(kPidDir, 0755, 65534, 65534);
  // The shell the launcher is started from: it outlives every process of the start, so the
  // objects the launcher made (reactor, log file) close their descriptors in a live process
  // as this function returns (they hold none of its numbers: EBADF, harmlessly).
  const pid_t shell = os.current_pid();
  if (scenario.in_shell) scenario.in_shell(os);
  os.script_fork(fake::ForkAs::kChild);
  if (!os.fork()) ADD_FAILURE() << "fork";
  run.first_parent = os.current_pid();
  (void)os.open("/dev/null", O_RDWR, 0);
  (void)os.open("/dev/null", O_RDWR, 0);
  (void)os.open(kParentStderr, O_WRONLY | O_CREAT | O_TRUNC, 0644);

  std::unique_ptr<Reactor> reactor = *Reactor::create(os);
  Application app("app");
  auto web = std::make_shared<PortService>(os, run.journal);
  web->fail_start = scenario.fail_start;
  web->hold_stop = scenario.hold_stop;
  EXPECT_TRUE(app.service().add(web));
  app.set_process_name(scenario.process_name);
  Runner runner(os, *reactor, app, scenario.options, scenario.env);
  if (scenario.with_hooks) {
    auto journal = [&os, &run](const std::string& what) {
      run.journal.push_back(fmt::format("hook {}@{}", what, os.transcript().size()));
    };
    RunnerHooks hooks;
    hooks.on_daemon = [journal, &scenario]() -> StepResult<void> {
      journal("on_daemon");
      if (scenario.fail_on_daemon) {
        return step_failed(StepError::plain(StepKind::kApplication, *scenario.fail_on_daemon));
      }
      return {};
    };
    hooks.on_ready = [journal] { journal("on_ready"); };
    hooks.on_stopping = [journal] { journal("on_stopping"); };
    hooks.on_stopped = [journal] { journal("on_stopped"); };
    runner.set_hooks(std::move(hooks));
  }

  if (scenario.reactor_used_up) {
    reactor->call_when_running([&] { EXPECT_TRUE(reactor->stop()); });
    EXPECT_TRUE(reactor->run());
  }
  if (scenario.setup) scenario.setup(os);
  os.clear_transcript();
  if (scenario.arm) scenario.arm(os);
  os.script_fork(fake::ForkAs::kChild);
  os.script_fork(fake::ForkAs::kChild);
  reactor->call_when_running([&] {
    if (scenario.while_running) scenario.while_running(os);
    if (scenario.stop_signal == 0 || !deliver(os, scenario.stop_signal)) {
      ASSERT_TRUE(reactor->stop());
    }
  });

  std::unique_ptr<DaemonContext> ctx;
  try {
    // In the foreground nothing forks: the whole of Runner::run() runs here.
    if (scenario.options.nodaemon) {
      run.daemon = os.current_pid();
      os.exit_now(runner.run());
    }
    if (auto logging = runner.start_logging(); !logging) exit_with_error(os, logging.error());
    ctx = runner.make_daemon_context();
    if (auto opened = ctx->open(); !opened) exit_with_error(os, opened.error());
    run.daemon = os.current_pid();
    const int status = runner.run_application(*ctx);
    os.exit_now(status);
  } catch (const fake::ProcessEnded& ended) {
    if (ended.pid == run.first_parent) run.first_parent_exit = ended.exit_code();
    run.daemon_status = ended.wait_status;
    if (run.daemon == 0) run.daemon = ended.pid;
  }

  const auto forks = std::count_if(os.transcript().begin(), os.transcript().end(),
                                   [](const CallRecord& r) { return r.name == "fork" && r.ok(); });
  if (forks >= 1) {
    const pid_t last = os.last_forked_pid();
    run.intermediate = forks >= 2 ? os.process(last).ppid : last;
    if (forks >= 2) run.daemon = last;
  }
  if (ctx && run.intermediate != 0 && os.process(run.intermediate).alive()) {
    os.switch_to(run.intermediate);
    try {
      ctx->finish_intermediate();
    } catch (const fake::ProcessEnded&) {
    }
  }
  if (ctx && os.process(run.first_parent).alive() && run.intermediate != 0) {
    os.switch_to(run.first_parent);
    try {
      ctx->run_first_parent(run.intermediate);
    } catch (const fake::ProcessEnded& ended) {
      run.first_parent_exit = ended.exit_code();
    }
  }
  run.first_parent_stderr = os.read_file(kParentStderr).value_or("");
  run.log = os.read_file(kLogFile).value_or("");
  os.switch_to(shell);
  return run;
}

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// The steps of a run as events, in transcript order: the calls that mark each of twistd's
// steps, and the service's own steps from its journal.
std::vector<std::string> events(const FakeSyscalls& os, const RunnerRun& run) {
  std::vector<std::pair<std::size_t, std::string>> marks;
  bool reactor_seen = false;
  for (const CallRecord& r : os.transcript()) {
    const std::string text = r.call_text();
    std::string label;
    if (r.name == "open" && r.args.at(0) == kLogFile) label = "log opened";
    if (r.name == "open" && r.args.at(0) == kPidFile && r.pid == run.first_parent) {
      label = "pid file checked";
    }
    if (r.name == "fork") label = "fork";
    if (r.name == "setsid") label = "setsid";
    if (r.name == "epoll_create1") label = r.pid == run.first_parent ? "reactor" : "reactor again";
    if (r.name == "umask") label = "umask";
    if (r.name == "chdir") label = "rundir";
    if (r.name == "write" && mentions(text, fmt::format("\"{}\\n\"", run.daemon))) {
      label = "pid written";
    }
    if (r.name == "bind") label = "bind :80";
    if (r.name == "setresuid") label = "privileges shed";
    if (r.name == "write" && mentions(text, "\"0\", 1")) label = "ready";
    if (r.name == "sigaction" && mentions(text, "SIGTERM, handler") && !reactor_seen) {
      reactor_seen = true;
      label = "reactor runs";
    }
    if (r.name == "write" && mentions(text, "Server Shut Down")) label = "shut down logged";
    if (r.name == "unlink" && r.args.at(0) == kPidFile) label = "pid file removed";
    if (r.name == "kill" && r.pid == run.daemon) label = "kill self " + r.args.at(1);
    if (r.name == "exit_now") {
      label = r.pid == run.first_parent ? "launcher exits " + r.args.at(0)
                                        : "intermediate exits " + r.args.at(0);
    }
    if (!label.empty()) marks.emplace_back(r.index * 2, label);
  }
  for (const std::string& entry : run.journal) {
    const auto at = entry.find('@');
    marks.emplace_back(std::stoul(entry.substr(at + 1)) * 2 - 1, entry.substr(0, at));
  }
  std::stable_sort(marks.begin(), marks.end());
  std::vector<std::string> out;
  for (auto& [index, label] : marks) out.push_back(label);
  return out;
}

TEST(Runner, RunsTwistdsStepsInTwistdsOrderAcrossTheThreeProcesses) {
  FakeSyscalls os;
  const RunnerRun run = run_runner(os, Scenario{});
  EXPECT_THAT(events(os, run),
              // The PID file is opened twice: the descriptor that holds the lock, and the one
              // the pid is written through. "reactor again": after_daemonize's new epoll fd.
              ElementsAre("log opened", "pid file checked", "pid file checked", "fork", "setsid",
                          "fork", "reactor again", "umask", "rundir", "pid written",
                          "privileged_start", "bind :80", "privileges shed", "start",
                          "reactor runs", "ready", "stop", "shut down logged", "pid file removed",
                          "kill self SIGTERM", "intermediate exits 0", "launcher exits 0"))
      << to_string(os.transcript());
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_EQ(run.first_parent_stderr, "");
}

// The profiler starts where on_daemon runs: in the daemon, as the dropped user (gperftools
// opens its file by name and follows symlinks), before the services, so it sees their start.
TEST(Runner, HooksRunInTheDaemonAfterSheddingAndAroundTheServicesLife) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.with_hooks = true;
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_THAT(events(os, run),
              ElementsAre("log opened", "pid file checked", "pid file checked", "fork", "setsid",
                          "fork", "reactor again", "umask", "rundir", "pid written",
                          "privileged_start", "bind :80", "privileges shed", "hook on_daemon",
                          "start", "reactor runs", "ready", "hook on_ready", "hook on_stopping",
                          "stop", "hook on_stopped", "shut down logged", "pid file removed",
                          "kill self SIGTERM", "intermediate exits 0", "launcher exits 0"))
      << to_string(os.transcript());
}

// The launcher exits 0 as soon as it reads "0", and whoever started it may send SIGTERM at
// once (a service manager's restart, a test's teardown). Reported before the reactor routed
// SIGTERM (twistd's order), that signal would kill the daemon by its default action: no
// services stopped, the PID file left behind.
TEST(Runner, ReadyIsReportedOnlyOnceTheReactorRoutesSigterm) {
  FakeSyscalls os;
  const RunnerRun run = run_runner(os, Scenario{});
  // SIGTERM's disposition when the status pipe's "0" is written, from the daemon's calls.
  bool sigterm_routed = false;
  std::vector<bool> routed_at_each_ready;
  for (const CallRecord& r : os.transcript()) {
    if (r.pid != run.daemon) continue;
    const std::string text = r.call_text();
    if (r.name == "sigaction" && mentions(text, "SIGTERM, handler")) sigterm_routed = true;
    if (r.name == "write" && mentions(text, "\"0\", 1")) {
      routed_at_each_ready.push_back(sigterm_routed);
    }
  }
  EXPECT_THAT(routed_at_each_ready, ElementsAre(true)) << to_string(os.transcript());
  EXPECT_EQ(run.first_parent_exit, 0);
}

TEST(Runner, AReactorThatCannotRunFailsTheStartThroughTheLauncher) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.reactor_used_up = true;
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("the reactor failed"));
  EXPECT_FALSE(os.stat_path(kPidFile)) << "a PID file remains after a failed start";
}

TEST(Runner, AFailingOnDaemonHookFailsTheStartBeforeTheServicesAndRemovesThePidFile) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.with_hooks = true;
  scenario.fail_on_daemon = "--profile /x: cannot start the profiler";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("cannot start the profiler"));
  EXPECT_FALSE(os.stat_path(kPidFile));
  EXPECT_THAT(run.journal, ::testing::Not(::testing::Contains(::testing::StartsWith("start@"))));
}

TEST(Runner, TheApplicationsProcessNameIsSetInTheDaemon) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.process_name = "app-worker";
  const RunnerRun run = run_runner(os, scenario);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  bool named = false;
  for (const CallRecord& r : os.transcript()) {
    if (r.name == "prctl") {
      EXPECT_EQ(r.pid, run.daemon) << "named in the launcher: the daemon would not keep it";
      named = named || mentions(r.call_text(), "app-worker");
    }
  }
  EXPECT_TRUE(named) << to_string(os.transcript());
}

// Started under a service manager (or a launcher that forked already), the runner stays in
// the process the manager tracks and says why.
TEST(Runner, UnderAServiceManagerItStaysInTheForegroundAndSaysWhy) {
  // The launcher's pid, which $LISTEN_PID must name, is the same in every fresh fake kernel.
  FakeSyscalls probe;
  const RunnerRun first = run_runner(probe, Scenario{});
  FakeSyscalls os;
  Scenario scenario;
  scenario.env.listen_pid = std::to_string(first.first_parent);
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.daemon, run.first_parent);
  EXPECT_TRUE(std::none_of(os.transcript().begin(), os.transcript().end(),
                           [](const CallRecord& r) { return r.name == "fork"; }));
  EXPECT_THAT(run.log, HasSubstr("LISTEN_PID"));
  ASSERT_TRUE(run.daemon_status);
  EXPECT_EQ(WTERMSIG(*run.daemon_status), SIGTERM);
  EXPECT_FALSE(os.stat_path(kPidFile));
}

// Sockets a service manager passed are opened before the runner and adopted by the services
// after the forks.
TEST(Runner, PreservedDescriptorsSurviveTheDaemonsClosingOfInheritedOnes) {
  int passed = -1;
  bool open_in_daemon = false;
  Scenario scenario;
  scenario.setup = [&](FakeSyscalls& fos) { passed = *fos.socket(AF_INET, SOCK_STREAM, 0); };
  scenario.while_running = [&](FakeSyscalls& fos) {
    // The number may be taken again by then (the reactor's new descriptors): the socket is
    // what must be there.
    const auto st = fos.fstat(passed);
    open_in_daemon = st && S_ISSOCK(st->st_mode);
  };
  FakeSyscalls without_it;
  (void)run_runner(without_it, scenario);
  ASSERT_GT(passed, 2);
  EXPECT_FALSE(open_in_daemon) << "closed like any inherited descriptor when not preserved";

  FakeSyscalls os;
  scenario.options.files_preserve = {passed};
  const RunnerRun run = run_runner(os, scenario);
  ASSERT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_TRUE(open_in_daemon);
}

TEST(Runner, ExitsByTheSignalThatStoppedTheReactorAndRemovesThePidFile) {
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig);
    FakeSyscalls os;
    Scenario scenario;
    scenario.stop_signal = sig;
    const RunnerRun run = run_runner(os, scenario);
    ASSERT_TRUE(run.daemon_status);
    EXPECT_TRUE(WIFSIGNALED(*run.daemon_status)) << *run.daemon_status;
    EXPECT_EQ(WTERMSIG(*run.daemon_status), sig);
    EXPECT_FALSE(os.stat_path(kPidFile));
    EXPECT_THAT(run.log, HasSubstr("Server Shut Down."));
  }
}

TEST(Runner, StoppedWithoutASignalExitsZero) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.stop_signal = 0;
  const RunnerRun run = run_runner(os, scenario);
  ASSERT_TRUE(run.daemon_status);
  EXPECT_TRUE(WIFEXITED(*run.daemon_status));
  EXPECT_EQ(WEXITSTATUS(*run.daemon_status), 0);
  EXPECT_FALSE(os.stat_path(kPidFile));
}

TEST(Runner, AStopThatNeverCompletesIsWaitedForOnlyUntilTheStopTimeout) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.hold_stop = true;
  scenario.options.stop_timeout = std::chrono::seconds(5);
  const RunnerRun run = run_runner(os, scenario);
  ASSERT_TRUE(run.daemon_status);
  EXPECT_EQ(WTERMSIG(*run.daemon_status), SIGTERM);
  EXPECT_THAT(run.log, HasSubstr("the services did not stop within 5000 ms"));
  EXPECT_FALSE(os.stat_path(kPidFile));
}

TEST(Runner, StartFailureReachesTheLauncherAndRemovesThePidFile) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.fail_start = "database unreachable: connect(10.0.0.5:5432) refused";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_EQ(run.first_parent_stderr,
            "An error has occurred: service 'web': database unreachable: connect(10.0.0.5:5432) "
            "refused\nPlease look at log file for more information.\n");
  EXPECT_FALSE(os.stat_path(kPidFile));
  ASSERT_TRUE(run.daemon_status);
  EXPECT_EQ(*run.daemon_status, W_EXITCODE(1, 0));
  EXPECT_THAT(run.log, HasSubstr("database unreachable"));
}

TEST(Runner, PrivilegedStartRunsAsRootSoPort80BindsBeforeShedding) {
  // Not root from the start: the bind in the privileged start fails, and says so.
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.uid.reset();
  scenario.options.pidfile.clear();
  scenario.options.logfile = "/tmp/user.log";
  scenario.arm = [](FakeSyscalls& fos) { ASSERT_TRUE(fos.setresuid(1000, 1000, 1000)); };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("bind(127.0.0.1:80): Permission denied (EACCES)"));
}

TEST(Runner, UidFromTheOptionsWinsOverTheApplications) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.uid = "65534";
  scenario.options.gid = "65534";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(run.log, HasSubstr("set uid/gid 65534/65534"));
}

TEST(Runner, EuidModeSetsOnlyTheEffectiveIds) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.euid = true;
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(run.log, HasSubstr("set euid/egid 65534/65534"));
}

TEST(Runner, ALivePidFileRefusesTheStartBeforeAnyFork) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.setup = [](FakeSyscalls& fos) {
    // Another instance: its lock on the file, held by another process.
    fos.write_file(kPidFile, "1\n");
    auto fd = fos.open(kPidFile, O_RDONLY, 0);
    ASSERT_TRUE(fd);
    ASSERT_TRUE(fos.flock(*fd, LOCK_EX | LOCK_NB));
    fos.script_fork(fake::ForkAs::kParent);
    ASSERT_TRUE(fos.fork());
    ASSERT_TRUE(fos.close(*fd));
  };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("Another server is running"));
  EXPECT_EQ(std::count_if(os.transcript().begin(), os.transcript().end(),
                          [](const CallRecord& r) { return r.name == "fork"; }),
            0);
}

TEST(Runner, AStalePidFileIsTakenOverWithANote) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.arm = [](FakeSyscalls& fos) { fos.write_file(kPidFile, "4242\n"); };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(run.log, HasSubstr("Removing stale pidfile " + std::string(kPidFile)));
}

TEST(Runner, DaemonsCannotLogToStdout) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.logfile = "-";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_EQ(run.first_parent_stderr, "Daemons cannot log to stdout, exiting!\n");
  EXPECT_FALSE(os.stat_path(kPidFile));
}

TEST(Runner, LogFileIsOpenedBeforeAnyForkWithItsStatedMode) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.arm = [](FakeSyscalls& fos) { (void)fos.umask(0); };
  const RunnerRun run = run_runner(os, scenario);
  const auto st = os.stat_path(kLogFile);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_mode & 07777, 0640u);
  EXPECT_THAT(run.log, HasSubstr("app starting up."));
}

// After a rotation by the dropped user the log file is that user's: the next start, as root,
// must take it (the rule refuses only files of users other than root and the daemon's).
TEST(Runner, ALogFileOfTheDaemonsUserIsTakenAndAnotherUsersRefused) {
  FakeSyscalls os;
  os.write_file(kLogFile, "an earlier run\n", 0640, 65534, 65534);
  const RunnerRun run = run_runner(os, Scenario{});
  EXPECT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  EXPECT_THAT(run.log, HasSubstr("an earlier run\n"));

  FakeSyscalls other;
  other.write_file(kLogFile, "", 0640, 1000, 1000);
  const RunnerRun refused = run_runner(other, Scenario{});
  EXPECT_EQ(refused.first_parent_exit, 1);
  EXPECT_THAT(refused.first_parent_stderr, HasSubstr(kLogFile));
}

TEST(Runner, ForegroundStartFailureRemovesThePidFile) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.nodaemon = true;
  scenario.fail_start = "no config";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 1);
  EXPECT_THAT(run.first_parent_stderr, HasSubstr("service 'web': no config"));
  EXPECT_FALSE(os.stat_path(kPidFile));
}

TEST(Runner, ForegroundRunExitsByTheSignal) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.nodaemon = true;
  const RunnerRun run = run_runner(os, scenario);
  ASSERT_TRUE(run.daemon_status);
  EXPECT_EQ(WTERMSIG(*run.daemon_status), SIGTERM);
  EXPECT_EQ(run.daemon, run.first_parent);
  EXPECT_FALSE(os.stat_path(kPidFile));
}

// twistd's setupEnvironment(chroot, rundir, nodaemon, umask, pidfile): the chroot entered
// first, the rundir taken inside it, the umask given applied.
TEST(Runner, SetupEnvironmentEntersTheChrootThenTheRundirWithTheUmask) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.uid.reset();
  scenario.options.chroot = "/srv/jail";
  scenario.options.rundir = "/data";
  scenario.options.umask = 027;
  scenario.setup = [](FakeSyscalls& fos) { fos.make_dir("/srv/jail/data"); };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  const fake::ProcessInfo daemon = os.process(run.daemon);
  EXPECT_EQ(daemon.root, "/srv/jail");
  EXPECT_EQ(daemon.cwd, "/data");
  EXPECT_EQ(daemon.umask, 027u);
}

TEST(Runner, ADaemonUmaskIs077UnlessGivenAndAForegroundOneIsLeftAlone) {
  for (bool nodaemon : {false, true}) {
    SCOPED_TRACE(nodaemon);
    FakeSyscalls os;
    Scenario scenario;
    scenario.options.nodaemon = nodaemon;
    const RunnerRun run = run_runner(os, scenario);
    EXPECT_EQ(os.process(run.daemon).umask, nodaemon ? 022u : 077u);
  }
}

// Syslog: the start-up lines sent before the forks, and the daemon's lines after them through
// a connection of its own (the launcher's went with the inherited descriptors).
TEST(Runner, SyslogCarriesTheLinesOfBothSidesOfTheForks) {
  FakeSyscalls os;
  int server = -1;
  Scenario scenario;
  scenario.options.syslog = true;
  scenario.options.prefix = "appd";
  scenario.in_shell = [&](FakeSyscalls& fos) {
    fos.make_dir("/dev", 0755);
    (void)fos.umask(0);  // /dev/log is writable by everyone, the daemon's user included
    server = *fos.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::strcpy(at.sun_path, "/dev/log");
    ASSERT_TRUE(fos.bind(server, reinterpret_cast<sockaddr*>(&at), sizeof at));
  };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0) << run.first_parent_stderr;
  std::vector<std::string> records;
  char buf[16384];
  while (auto n = os.recvfrom(server, buf, sizeof buf, 0, nullptr, nullptr)) {
    records.emplace_back(buf, *n);
  }
  auto has = [&](const std::string& what) {
    return std::any_of(records.begin(), records.end(),
                       [&](const std::string& r) { return mentions(r, what); });
  };
  EXPECT_TRUE(has(fmt::format("appd[{}]: [daemonkit.app#info] app starting up.", run.first_parent)))
      << ::testing::PrintToString(records);
  EXPECT_TRUE(
      has(fmt::format("appd[{}]: [daemonkit.app#info] set uid/gid 65534/65534", run.daemon)))
      << ::testing::PrintToString(records);
  EXPECT_TRUE(has(fmt::format("appd[{}]: [daemonkit.app#info] Server Shut Down.", run.daemon)));
}

// twistd redirects print and tracebacks into the log; here the daemon's fds 1 and 2 are pipes
// the loop reads into the log (after detaching they would go to /dev/null).
TEST(Runner, ADaemonsStdoutGoesIntoTheLog) {
  FakeSyscalls os;
  const RunnerRun run = run_runner(os, Scenario{});
  EXPECT_THAT(run.log, HasSubstr("[stdout#info] hello from start"));
}

// twistd's SIGUSR1 rotates the log file; SIGHUP reopens it (after logrotate moved it away).
TEST(Runner, Sigusr1RotatesTheLogFileAndSighupIsRoutedToIt) {
  FakeSyscalls os;
  Scenario scenario;
  // Staying root: a user may not rename root's files in the sticky /tmp (the log itself says
  // so: RotationRefusedIsLogged).
  scenario.options.uid.reset();
  scenario.while_running = [](FakeSyscalls& fos) {
    ASSERT_TRUE(deliver(fos, SIGUSR1));
    struct sigaction hup {};
    ASSERT_TRUE(fos.sigaction(SIGHUP, nullptr, &hup));
    EXPECT_EQ(hup.sa_handler, &SignalRouting::handle) << "SIGHUP does not reach the log";
  };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(os.read_file("/tmp/app.log.1").value_or(""), HasSubstr("app starting up."));
  // The lines after the rotation are in a new file by the log's name.
  EXPECT_THAT(run.log, HasSubstr("Server Shut Down."));
  EXPECT_THAT(run.log, ::testing::Not(HasSubstr("starting up")));
}

TEST(Runner, RotationRefusedIsLogged) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.while_running = [](FakeSyscalls& fos) { ASSERT_TRUE(deliver(fos, SIGUSR1)); };
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_THAT(run.log, HasSubstr("Log file /tmp/app.log not rotated: rename(/tmp/app.log): "
                                 "Operation not permitted (EPERM)"));
}

// twistd's H5: a PID file in a directory only root may write, and a daemon that shed root.
// The unlink is refused and logged; the file is left unlocked, so the next start takes it
// over as stale instead of refusing to start.
TEST(Runner, RemovalRefusedAfterSheddingLeavesAFileTheNextStartTakesOver) {
  FakeSyscalls os;
  Scenario scenario;
  scenario.options.pidfile = "/run/root-only.pid";
  const RunnerRun run = run_runner(os, scenario);
  EXPECT_EQ(run.first_parent_exit, 0);
  EXPECT_THAT(run.log, HasSubstr("No permission to delete pid file /run/root-only.pid"));
  std::vector<std::string> notes;
  auto next = PidFile::acquire(os, "/run/root-only.pid",
                               [&](std::string_view line) { notes.emplace_back(line); });
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_THAT(notes, ElementsAre("Removing stale pidfile /run/root-only.pid"));
  next->release();
}

// ---- The fault matrix ----------------------------------------------------------------------

// What each call of a run can really fail with (its man page, leaving out what only a bug
// causes). A call missing here fails the test, so a new call in the runner cannot go
// unexamined.
const std::map<std::string, std::vector<int>>& real_errnos() {
  static const std::map<std::string, std::vector<int>> kErrnos = {
      {"fork", {EAGAIN, ENOMEM}},
      {"setsid", {EPERM}},
      {"pipe2", {EMFILE, ENFILE}},
      {"open", {EACCES, EMFILE, ENFILE, ENOENT, ELOOP, ENOSPC, EROFS, ENOMEM, EINTR}},
      {"close", {}},  // Linux releases the descriptor even when close fails
      {"close_range", {ENOSYS, EPERM, ENOMEM}},
      {"getdents64", {EIO, ENOENT}},
      {"read", {EIO, EINTR}},
      {"write", {EIO, ENOSPC, EDQUOT, EINTR}},
      {"fstat", {EIO, ENOMEM}},
      {"lstat", {EACCES, ENOENT, ELOOP, ENOMEM}},
      {"flock", {EWOULDBLOCK, EINTR, ENOLCK}},
      {"ftruncate", {EIO, EINTR, EPERM}},
      {"dup2", {EBUSY, EINTR}},
      {"fcntl", {}},
      {"sigaction", {EINVAL}},
      {"sigprocmask", {}},
      {"chdir", {EACCES, ENOENT, ENOTDIR, ELOOP, EIO}},
      {"setrlimit", {EPERM}},
      {"getresuid", {}},
      {"getresgid", {}},
      {"setresuid", {EPERM, EAGAIN}},
      {"setresgid", {EPERM}},
      {"setgroups", {EPERM, ENOMEM}},
      {"setuid", {EPERM, EAGAIN}},
      {"getpwnam", {EIO, EMFILE, ENOMEM}},
      {"getpwuid", {EIO, EMFILE, ENOMEM}},
      {"getgrouplist", {ENOMEM, EINVAL}},
      {"getcwd", {ENOENT, EACCES}},
      {"unlink", {EACCES, EPERM, EBUSY, EIO, EROFS}},
      {"kill", {EPERM, ESRCH}},
      {"waitpid", {EINTR, ECHILD}},
      {"getpid", {}},
      {"getppid", {}},
      {"umask", {}},
      {"fchmod", {EIO, EPERM, EROFS}},
      {"exit_now", {}},
      {"clock_gettime", {}},
      {"socket", {EMFILE, ENFILE, ENOMEM, EACCES}},
      {"bind", {EADDRINUSE, EACCES, EADDRNOTAVAIL}},
      {"epoll_create1", {EMFILE, ENFILE, ENOMEM}},
      {"epoll_ctl", {ENOMEM, ENOSPC}},
      {"epoll_wait", {EINTR}},
      {"eventfd", {EMFILE, ENFILE, ENOMEM, ENODEV}},
  };
  return kErrnos;
}

// Failures a correct run survives: retried EINTR, a fd-closing strategy replaced by the next,
// setuid(0) failing as it must, a signal glibc reserves, the thread count left unknown.
bool survivable(const CallRecord& r, int error) {
  if (error == EINTR) return true;
  if (r.name == "getdents64") return true;
  if (r.name == "lstat" && error == ENOENT) return true;
  if (r.name == "open" && error == ENOENT && r.args.size() > 1 && mentions(r.args[1], "O_WRONLY")) {
    return true;
  }
  if (r.name == "open" && !r.args.empty() && mentions(r.args[0], "/proc/self")) return true;
  if (r.name == "close_range") return error == ENOSYS || error == EPERM;
  if (r.name == "setuid") return error == EPERM;
  if (r.name == "sigaction") return true;
  // decide_detach's look for inetd: a stdin it cannot see is not a socket.
  if (r.name == "fstat" && r.args.at(0) == "0") return true;
  // The service's own print, which it ignores.
  if (r.name == "write" && mentions(r.call_text(), "hello from start")) return true;
  // The waker's eventfd, written by SIGTERM's handler (this test sends it from the reactor's
  // startup, before ready goes out): the caught flag the handler set is read every turn.
  if (r.name == "write" &&
      mentions(r.call_text(), "\"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\", 8")) {
    return true;
  }
  // The log takes no write: the line waits in the backlog, the daemon goes on.
  if (r.name == "write" && r.args.at(0) == "5") return true;
  return false;
}

TEST(RunnerFaultMatrix, EveryFailureBeforeReadyReachesTheLauncherAndLeavesNoPidFile) {
  FakeSyscalls probe;
  const RunnerRun good = run_runner(probe, Scenario{});
  ASSERT_EQ(good.first_parent_exit, 0) << good.first_parent_stderr;
  const fake::Transcript baseline = probe.transcript();
  std::size_t ready_at = 0;
  std::size_t first_fork = baseline.size();
  for (const CallRecord& r : baseline) {
    if (r.name == "write" && mentions(r.call_text(), "\"0\", 1")) ready_at = r.index;
    if (r.name == "fork" && first_fork == baseline.size()) first_fork = r.index;
  }
  ASSERT_NE(ready_at, 0u);

  int cases = 0;
  int after_ready = 0;
  for (const CallRecord& call : baseline) {
    // What the shell does after the run (closing what the launcher's objects held) is not
    // the runner's.
    if (call.pid != good.first_parent && call.pid != good.intermediate && call.pid != good.daemon) {
      continue;
    }
    const auto known = real_errnos().find(call.name);
    ASSERT_NE(known, real_errnos().end()) << "no errno list for " << call.to_string();
    std::vector<int> errnos = known->second;
    // The launcher's reads after its fork are of the status pipe: only EINTR (retried).
    if (call.name == "read" && call.pid == good.first_parent && call.index > first_fork) {
      errnos = {EINTR};
    }
    for (int error : errnos) {
      SCOPED_TRACE(fmt::format("failing #{} {} with {}", call.index, call.call_text(),
                               sys::errno_name(error)));
      FakeSyscalls os;
      Scenario scenario;
      scenario.arm = [&](FakeSyscalls& fos) { fos.fail_call_at(call.index, error); };
      const RunnerRun run = run_runner(os, scenario);
      ++cases;
      // H1: the launcher never hangs, whatever failed.
      ASSERT_TRUE(run.first_parent_exit) << to_string(os.transcript());
      const bool daemon_alive = run.daemon != 0 && os.process(run.daemon).alive();
      EXPECT_FALSE(daemon_alive) << "the daemon outlived its run";
      if (call.index > ready_at) {
        // After ready the launcher has gone with 0; the daemon still ends in order.
        ++after_ready;
        EXPECT_EQ(*run.first_parent_exit, 0);
        // And gives the PID file back, unless the removal itself is what failed (then it is
        // emptied, or logged and left unlocked: stale to the next start).
        if (call.name != "unlink" && call.name != "lstat") {
          EXPECT_FALSE(os.stat_path(kPidFile)) << "a PID file remains after shutdown";
        }
        continue;
      }
      const std::string& said = run.first_parent_stderr;
      if (*run.first_parent_exit == 0) {
        EXPECT_TRUE(survivable(call, error)) << "a failure went unreported\n"
                                             << to_string(os.transcript());
        continue;
      }
      EXPECT_EQ(*run.first_parent_exit, 1);
      // The report is the one step the launcher cannot hear about: it learns that the daemon
      // ended without reporting.
      const bool report_lost = call.name == "write" && call.pid == run.daemon &&
                               mentions(said, "the daemon exited before reporting");
      EXPECT_TRUE(mentions(said, call.name) || report_lost ||
                  (call.name == "flock" && mentions(said, "Another server is running")) ||
                  (call.name == "epoll_ctl" && mentions(said, "epoll")) ||
                  (call.name == "eventfd" && mentions(said, "eventfd")))
          << "the message does not name the step: " << said;
      EXPECT_TRUE(mentions(said, sys::errno_name(error)) || report_lost ||
                  mentions(said, "Another server"))
          << said;
      const bool someone_elses = call.name == "flock" && error == EWOULDBLOCK;
      EXPECT_TRUE(someone_elses || !os.stat_path(kPidFile))
          << "a PID file remains after a failed start";
    }
  }
  std::printf("runner fault matrix: %d (call, errno) cases over %zu calls, %d after ready\n", cases,
              baseline.size(), after_ready);
  EXPECT_GT(cases, 100);
}

// In the foreground (--nodaemon) the whole of Runner::run() runs in one process: every failure
// before the reactor runs exits 1 naming its call on stderr, and leaves no PID file.
TEST(RunnerFaultMatrix, InTheForegroundEveryStartFailureExitsOneAndLeavesNoPidFile) {
  Scenario base;
  base.options.nodaemon = true;
  FakeSyscalls probe;
  const RunnerRun good = run_runner(probe, base);
  ASSERT_TRUE(good.daemon_status);
  ASSERT_EQ(WTERMSIG(*good.daemon_status), SIGTERM);
  const fake::Transcript baseline = probe.transcript();
  std::size_t running_at = 0;
  for (const CallRecord& r : baseline) {
    if (r.name == "sigaction" && mentions(r.call_text(), "SIGTERM, handler") && running_at == 0) {
      running_at = r.index;
    }
  }
  ASSERT_NE(running_at, 0u);

  int cases = 0;
  for (const CallRecord& call : baseline) {
    if (call.pid != good.first_parent || call.index >= running_at) continue;
    const auto known = real_errnos().find(call.name);
    ASSERT_NE(known, real_errnos().end()) << "no errno list for " << call.to_string();
    for (int error : known->second) {
      SCOPED_TRACE(fmt::format("failing #{} {} with {}", call.index, call.call_text(),
                               sys::errno_name(error)));
      FakeSyscalls os;
      Scenario scenario = base;
      scenario.arm = [&](FakeSyscalls& fos) { fos.fail_call_at(call.index, error); };
      const RunnerRun run = run_runner(os, scenario);
      ++cases;
      ASSERT_TRUE(run.daemon_status);
      // Survived: stopped by the signal, or by stop() when the reactor could not route it.
      if (WIFSIGNALED(*run.daemon_status) || *run.daemon_status == 0) {
        EXPECT_TRUE(survivable(call, error)) << "a failure went unreported\n"
                                             << to_string(os.transcript());
        EXPECT_FALSE(os.stat_path(kPidFile));
        continue;
      }
      EXPECT_EQ(*run.daemon_status, W_EXITCODE(1, 0));
      const std::string& said = run.first_parent_stderr;
      EXPECT_TRUE(mentions(said, call.name) ||
                  (call.name == "flock" && mentions(said, "Another server is running")))
          << said;
      const bool someone_elses = call.name == "flock" && error == EWOULDBLOCK;
      EXPECT_TRUE(someone_elses || !os.stat_path(kPidFile))
          << "a PID file remains after a failed start";
    }
  }
  std::printf("runner foreground fault matrix: %d (call, errno) cases\n", cases);
  EXPECT_GT(cases, 30);
}

}  // namespace
}  // namespace daemonkit::core
