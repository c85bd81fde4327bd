// DaemonContext: turn the calling process into a well-behaved daemon. PEP 3143's options, in
// twistd's order and following daemon(7)'s steps, with a status pipe so the command that started
// the daemon exits only when it is ready (0) or has failed (1, with the reason on stderr).
//
// The three processes' work are separate functions joined by fork(), so a test can run the
// first parent, the intermediate and the daemon in one fake kernel (see tests/daemon_context_*).
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/daemon/environment.h"
#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/core/daemon/privileges.h"
#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What a signal does in the daemon (PEP 3143's signal_map values).
enum class SignalDisposition {
  kDefault,
  kIgnore,
  // An orderly stop: the signal is blocked and delivered through DaemonContext::stop_fd(), a
  // signalfd the program's loop (or reactor) watches; the program then calls close().
  kStop,
};

struct SignalMapping {
  int signal = 0;
  SignalDisposition disposition = SignalDisposition::kDefault;
};

// PEP 3143's default: SIGTSTP, SIGTTIN, SIGTTOU ignored (a daemon has no terminal to stop for);
// SIGTERM an orderly stop.
[[nodiscard]] std::vector<SignalMapping> default_signal_map();

struct DaemonOptions {
  // chroot into it (then chdir "/"), after which working_directory is taken inside the new
  // root: twistd's order, the same as `daemonkit run --chroot --rundir`.
  std::optional<std::string> chroot_directory;
  std::string working_directory = "/";
  // Unset: 0077 when detaching (twistd), untouched otherwise.
  std::optional<mode_t> umask;
  // uid/gid by name or number; euid mode. Resolved before the first fork (the user database is
  // rarely inside a chroot), applied in the daemon after the PID file is written.
  PrivilegeRequest privileges;
  // RLIMIT_CORE 0: a daemon that ran as root must not leave its memory in a core file.
  bool prevent_core = true;
  // Unset: decide_detach() (not under init, inetd, or a service manager).
  std::optional<bool> detach_process;
  // Descriptors to keep open besides 0, 1, 2 (only consulted when detaching: a foreground
  // process keeps what it has, socket-activated descriptors included).
  std::vector<int> files_preserve;
  std::optional<std::string> pidfile;
  PidFileOptions pidfile_options;
  // Keep the PID file's lock across exec (clear FD_CLOEXEC), for `daemonkit run`.
  bool pidfile_survives_exec = false;
  // Descriptors to put on 0, 1, 2. Unset: /dev/null when detaching, untouched otherwise.
  std::optional<int> stdin_fd;
  std::optional<int> stdout_fd;
  std::optional<int> stderr_fd;
  std::vector<SignalMapping> signal_map = default_signal_map();
  // How long the first parent waits for the daemon's report; unset: until it reports or dies.
  std::optional<int> start_timeout_ms;
  // Runs in the daemon after the PID file is written and before privileges are shed (twistd's
  // privilegedStartService: bind low ports here). Its error fails the start.
  std::function<StepResult<void>()> privileged_start;
  // Twisted's IReactorDaemonize: before_detach runs in the first parent before the status pipe
  // and the first fork (close what must not be shared, e.g. Reactor::before_daemonize);
  // after_detach runs in the daemon once inherited descriptors are closed (recreate them,
  // e.g. Reactor::after_daemonize). Only when detaching.
  std::function<void()> before_detach;
  std::function<StepResult<void>()> after_detach;
};

class DaemonContext {
 public:
  DaemonContext(sys::Syscalls& os, DaemonOptions options, Environment env, LogSink log);
  DaemonContext(const DaemonContext&) = delete;
  DaemonContext& operator=(const DaemonContext&) = delete;

  // PEP 3143's open(). Returns in the daemon (or, when not detaching, in this process) with
  // stdio redirected, descriptors closed, signals set, umask, directory and root changed, the
  // PID file written and privileges shed: ready for the program's own start-up, which it ends
  // with ready() or fail(). When detaching, the first parent waits for that report and _exits
  // 0 or 1, and the intermediate process _exits; neither returns. A failure before the first
  // fork is returned (nothing forked: print it and exit 1). A failure in the daemon is
  // reported to the first parent and the daemon _exits 1. Without detaching, every failure is
  // returned (after telling sd_notify).
  [[nodiscard]] StepResult<void> open();

  // Start-up done: "0" to the first parent, READY=1 to a service manager. When the first
  // parent cannot be told (any error but EPIPE, which means it is gone), it will report a
  // failure and remove the PID file, so a detached daemon must not run on: ready() then logs,
  // releases the PID file and _exits 1.
  void ready(std::string_view status = {});
  // Start-up failed: removes the PID file first (so the parent never sees a failure while a
  // PID file remains), then reports. The caller exits afterwards.
  void fail(const StepError& error);
  // Orderly exit: removes the PID file (a failure is logged, never raised).
  void close();

  // For a program exec'd in the daemon's place that reports its own start-up (`daemonkit run
  // --ready=pipe`): clears FD_CLOEXEC on the status pipe's write end and returns it; ready()
  // and fail() no longer write to it. -1 when there is no status pipe (not detached).
  [[nodiscard]] StepResult<int> hand_over_status_fd();

  // Readable when a kStop signal arrived (SIGTERM by default); -1 if the map has none.
  [[nodiscard]] int stop_fd() const { return stop_fd_; }
  [[nodiscard]] bool detached() const { return detached_; }
  // The daemon's handle on the PID file (null without one).
  [[nodiscard]] PidFile* pidfile() { return own_pidfile_ ? &*own_pidfile_ : nullptr; }

  // ---- The steps, one per process, for tests that drive each process in a fake kernel. ----

  // First parent, before the first fork: validates options, decides whether to detach,
  // refuses a multithreaded process, resolves privileges, acquires the PID file, makes the
  // status pipe.
  [[nodiscard]] StepResult<void> prepare();
  // First parent, after fork returned `intermediate`: closes its write end, waits for the
  // verdict, removes the PID file unless the daemon is ready, prints and _exits.
  [[noreturn]] void run_first_parent(pid_t intermediate);
  // Intermediate, after the first fork: setsid and fork again. Returns in the daemon only.
  void run_intermediate();
  // Intermediate, after the second fork returned: its work is done.
  [[noreturn]] void finish_intermediate();
  // The daemon (or the only process when not detaching): everything after the forks.
  [[nodiscard]] StepResult<void> run_daemon();

 private:
  [[nodiscard]] StepResult<void> redirect_stdio();
  [[nodiscard]] StepResult<void> close_inherited();
  [[nodiscard]] StepResult<void> set_signals();
  [[nodiscard]] StepResult<void> enter_directories();
  [[noreturn]] void exit_daemon_failed(const StepError& error);

  sys::Syscalls& os_;
  DaemonOptions options_;
  Environment env_;
  LogSink log_;
  bool detached_ = false;
  PrivilegePlan plan_;
  // Each process acts on its own state, as it would after a real fork, even where the fake
  // kernel runs all three on this one object: the first parent's PID file handle, and the
  // daemon's copy of it (made when the daemon starts).
  std::optional<PidFile> pidfile_;
  std::optional<PidFile> own_pidfile_;
  // Numbers, not OwnedFds: each process closes its own copies at its own step (the first
  // parent in the wait, the daemon first thing and when reporting), and a destructor could not
  // tell which process it closes for where the fake kernel shares this object between them.
  int status_read_ = -1;
  int status_write_ = -1;
  int stop_fd_ = -1;
  std::optional<Readiness> readiness_;
};

// Fills each of 0, 1, 2 that is closed with /dev/null. Call it first thing in main(): a file
// the program opens later then cannot land on a standard descriptor, where daemonizing would
// point it at /dev/null (twistd's H4). Returns how many it filled.
[[nodiscard]] sys::Result<int> reserve_stdio(sys::Syscalls& os);

// What a first parent does with a failure of prepare(): the message on fd 2, then _exit(1).
[[noreturn]] void exit_with_error(sys::Syscalls& os, const StepError& error);

}  // namespace daemonkit::core
