#include "daemonkit/cli/status_command.h"

#include <fmt/format.h>

#include "daemonkit/cli/pid_probe.h"

namespace daemonkit::cli {

CommandResult run_status(sys::Syscalls& os, const StatusOptions& options) {
  const PidFileState state = inspect_pid_file(os, options.pidfile);
  switch (state.kind) {
    case PidFileState::Kind::kRunning:
      if (state.pid <= 0) {
        // Locked but still empty: the daemon is between taking the lock and writing its pid.
        return {kStatusRunning, "", "daemonkit status: running, PID not written yet\n"};
      }
      return {kStatusRunning, fmt::format("{}\n", state.pid), ""};
    case PidFileState::Kind::kDead:
      return {kStatusDeadPidFileExists, "",
              fmt::format("daemonkit status: not running, but PID file {} exists (PID {})\n",
                          options.pidfile, state.pid)};
    case PidFileState::Kind::kNonNumeric:
      // Nobody holds it, so nothing runs under it: dead, with a file left behind.
      return {kStatusDeadPidFileExists, "", non_numeric_pidfile_message(options.pidfile) + "\n"};
    case PidFileState::Kind::kUnreadable:
      return {kStatusUnknown, "", fmt::format("daemonkit status: {}\n", state.error)};
    case PidFileState::Kind::kMissing:
      break;
  }
  return {kStatusNotRunning, "", "daemonkit status: not running\n"};
}

}  // namespace daemonkit::cli
