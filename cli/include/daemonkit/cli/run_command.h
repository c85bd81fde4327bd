// `daemonkit run`: the launcher. It takes the PID file, forks twice, and in the daemon applies
// the options (fds, signals, umask, stdio and log file, chroot, rundir, PID, privileges) before
// it execs PROGRAM; then it waits for readiness as --ready says and exits 0, or 1 with the
// reason. With --nodaemon it applies the options in its own process and execs PROGRAM there.
// Every OS effect goes through sys::Syscalls, so the launcher runs on the fake kernel too.
#pragma once

#include <string>
#include <vector>

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

// `environment` is the launcher's own (KEY=VALUE strings); PROGRAM gets it, adjusted for the
// --ready mode. Returns in the launcher only: the daemon execs PROGRAM or exits.
[[nodiscard]] CommandResult run_run(sys::Syscalls& os, const RunOptions& options,
                                    const std::vector<std::string>& environment);

// The two lines on stderr when a launch fails (twistd's words).
[[nodiscard]] std::string launch_failure_text(std::string_view message);

}  // namespace daemonkit::cli
