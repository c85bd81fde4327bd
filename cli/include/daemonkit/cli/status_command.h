// `daemonkit status --pidfile P`: whether the daemon a PID file names is alive, with the exit
// codes of LSB init scripts' status action.
#pragma once

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

// LSB: "program is running or service is OK", "program is dead and /var/run pid file exists",
// "program is not running", "program or service status is unknown".
inline constexpr int kStatusRunning = 0;
inline constexpr int kStatusDeadPidFileExists = 1;
inline constexpr int kStatusNotRunning = 3;
inline constexpr int kStatusUnknown = 4;

// Running: the pid on stdout (only once proven to hold the lock), exit 0. Otherwise a line on
// stderr saying which case it is: 1 when the file's pid is dead (also when others it left
// behind still hold the lock), 4 when the file is not locked yet its pid lives (nothing proves
// that process is the daemon) or when the path is not a regular file.
[[nodiscard]] CommandResult run_status(sys::Syscalls& os, const StatusOptions& options);

}  // namespace daemonkit::cli
