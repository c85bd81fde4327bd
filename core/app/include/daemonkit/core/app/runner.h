// Runner: twistd's UnixApplicationRunner for a daemonkit Application, in twistd's order:
//   PID file checked (by its lock) -> logging set up, before any fork -> setup_environment
//   (stdio, chroot, rundir, umask, PID file written) inside the daemonizing forks, with the
//   reactor's before/after hooks -> privileged start (bind port 80 here) -> privileges shed
//   (uid/gid from the options, else the application's) -> start -> the reactor starts (its
//   signals routed) -> "0" on the status pipe -> the loop runs -> shutdown stops the services (bounded wait) -> PID file removed ->
//   exit by the signal that stopped the reactor.
// The forks and the steps inside them are DaemonContext's; this class adds the application.
//
// twistd defects this runner does not have (tests/runner_test.cpp pins each):
//   H1  the launcher hangs when the daemon dies unreported: it closes its write end, so EOF
//       is a failure ("the daemon exited before reporting").
//   H2  failures that skip the report and leave the PID file: every failure before ready is
//       reported and removes the PID file, in the foreground too.
//   H3  early daemonize failures unreported: the status pipe exists before the first fork.
//   H4  stdio clobbering: closed std descriptors are filled before anything is opened.
//   H5  a PID file the dropped user cannot remove blocks the next start: it is left unlocked
//       (emptied where the user may write it), so the next start takes it over as stale.
//   H6  the daemon keeps the status pipe's read end: closed first thing.
//   H7  pid 0, negative pids, our own pid and EPERM misread: liveness is the lock.
//   H8  the log file's mode follows the invoker's umask: its mode is stated.
//   H9  "0" reported before SIGTERM is routed: a SIGTERM sent as the launcher exits killed the
//       daemon by its default action, its services unstopped and its PID file left.
//   And the report is cut to 100 bytes without splitting a character or an escape.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/log_capture.h"
#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/core/app/log_relay.h"
#include "daemonkit/core/app/runner_options.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/core/daemon/environment.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What a caller adds around the runner's steps (app::run: the CPU profiler and the sd_notify
// keep-alives), each called in the process that runs the services.
struct RunnerHooks {
  // After the forks and after privileges were shed (nothing it opens is root's), before the
  // services start. An error fails the start like any step's: reported, PID file removed.
  std::function<StepResult<void>()> on_daemon;
  // Once "ready" was reported.
  std::function<void()> on_ready;
  // Shutdown begins, before the services are told to stop.
  std::function<void()> on_stopping;
  // The reactor returned and the services stopped; before the PID file goes and the exit
  // (which may be by a signal, so nothing after this runs).
  std::function<void()> on_stopped;
};

class Runner {
 public:
  // The reactor is the one the application's services were made with; it may be created before
  // daemonizing (its descriptors are replaced in the daemon). `env` is how the process was
  // started ($NOTIFY_SOCKET, $LISTEN_PID), read from environ by main.
  Runner(sys::Syscalls& os, Reactor& reactor, Application& app, RunnerOptions options,
         Environment env = {});
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  ~Runner();

  // Runs the application to the end. Returns the process's exit status: 1 when the start
  // failed (the message on stderr, or on the launcher's stderr when daemonizing), 0 after an
  // orderly shutdown. When daemonizing, the launching process and the intermediate never
  // return (they _exit: 0 once the daemon reported ready, 1 with its message otherwise); the
  // daemon returns. When a signal stopped the reactor, the process ends by that signal and
  // run() does not return (see exit_by_signal).
  [[nodiscard]] int run();

  // The log the runner set up (null before run()); the application may log through it.
  [[nodiscard]] LogObserver* log() { return log_.get(); }
  // Makes `relay` (whose sink the reactor, say, was made with before the log existed) speak
  // into the runner's log once it is set up, and stop when the runner is destroyed. Call
  // before run(); `relay` must outlive the runner.
  void relay_into_log(LogRelay& relay) { relay_ = &relay; }
  // Call before run().
  void set_hooks(RunnerHooks hooks) { hooks_ = std::move(hooks); }

  // ---- The steps, for tests that drive the three processes of a daemonizing start. --------

  // Logging, before any fork: the log file opened (or syslog, or stdout) and the start-up lines.
  [[nodiscard]] StepResult<void> start_logging();
  // The DaemonContext that carries out setup_environment, the forks and the report, with the
  // application's privileged start and the reactor's daemonize hooks wired in.
  [[nodiscard]] std::unique_ptr<DaemonContext> make_daemon_context();
  // In the daemon (or the foreground process) once DaemonContext::open() returned: capture
  // stdout and stderr into the log (daemon only), start the services, run the reactor (ready
  // is reported from its startup), stop the services, remove the PID file. Returns
  // the exit status; exits by the stopping signal when there was one.
  [[nodiscard]] int run_application(DaemonContext& ctx);

 private:
  [[nodiscard]] LogSink sink(LogLevel level = LogLevel::kInfo);
  void note(LogLevel level, std::string_view text);
  [[nodiscard]] StepResult<void> after_detach();
  [[nodiscard]] PrivilegeRequest privileges() const;
  void stop_on_shutdown();
  // A daemon's stdout and stderr into the log (twistd's redirection of print and tracebacks):
  // after detaching they would otherwise go to /dev/null.
  [[nodiscard]] StepResult<void> capture_stdio();
  // A start failure the daemon itself reports: logged, the PID file removed, the launcher told.
  [[nodiscard]] int start_failed(DaemonContext& ctx, const StepError& error);

  sys::Syscalls& os_;
  Reactor& reactor_;
  Application& app_;
  RunnerOptions options_;
  Environment env_;
  std::unique_ptr<LogObserver> log_;
  // The log file's descriptor, kept open through the daemon's descriptor closing; -1 for none.
  int log_fd_ = -1;
  LogRelay* relay_ = nullptr;
  std::vector<std::unique_ptr<LogCapture>> captures_;
  RunnerHooks hooks_;
};

}  // namespace daemonkit::core
