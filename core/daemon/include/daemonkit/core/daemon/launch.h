// Launching a daemon that runs a program, exactly as `daemonkit run` does: the PID file taken,
// two vforks (launcher, intermediate, daemon), the daemon's steps (descriptors, signals, umask,
// stdio and log file, chroot then rundir, PID, privileges) and exec; then the launcher waits
// until the program is ready as `ready` says, or stops it and says why not. With `detach` off,
// the same steps apply to the calling process, which then execs the program itself.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/daemon/privileges.h"
#include "daemonkit/core/daemon/readiness_waiter.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct LaunchOptions {
  // PROGRAM then its arguments. A PROGRAM without '/' is searched along the environment's
  // PATH (or /usr/local/bin:/usr/bin:/bin), as execvp does.
  std::vector<std::string> command;
  // PROGRAM's environment (KEY=VALUE). When detaching, NOTIFY_SOCKET and DAEMONKIT_STATUS_FD
  // are the launch's own: what is given is dropped, and set again as `ready` needs.
  std::vector<std::string> environment;
  // Off: the options apply to this process, which execs PROGRAM in place (`--nodaemon`).
  bool detach = true;
  // Empty: none. A relative path is taken from the current directory, before any chdir.
  std::string pidfile;
  // PROGRAM's stdout and stderr, appended; judged by log_file_refusal before it is used.
  // Empty: /dev/null when detaching, the inherited ones otherwise.
  std::string logfile;
  // Empty: no chroot. Entered before `rundir`, which is then taken inside it.
  std::string chroot;
  std::string rundir = "/";
  // Unset: none is applied.
  std::optional<mode_t> umask;
  // Resolved before anything forks, shed in the daemon after the PID file is written.
  PrivilegeRequest privileges;
  ReadyMode ready = ReadyMode::kExec;
  // Unset: wait as long as it takes.
  std::optional<std::chrono::milliseconds> timeout;
  // Starts the lines the daemon writes to its log ("daemonkit: set uid/gid 65534/65534").
  std::string name = "daemonkit";
};

struct LaunchReport {
  // Lines for the caller's user that are not failures ("Removing stale pidfile ...").
  std::string notes;
  // Why the launch failed; unset once PROGRAM is ready. A detached launch that fails leaves
  // no PID file and no daemon behind, unless `failure` says so.
  std::optional<StepError> failure;
  // Where the caller's user reads the failure: 2, or, when an in-place run failed after its
  // log file took 2, a copy of the caller's stderr made before (notes were printed to 2 then).
  int error_fd = 2;
};

// Returns in the launcher (or, in place, only on failure). Every failure is a value: nothing
// is printed, except the notes of an in-place run, which go to 2 before the log file takes it.
[[nodiscard]] LaunchReport launch(sys::Syscalls& os, const LaunchOptions& options);

}  // namespace daemonkit::core
