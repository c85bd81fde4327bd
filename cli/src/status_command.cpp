#include "daemonkit/cli/status_command.h"

#include <fmt/format.h>

#include "daemonkit/cli/pid_probe.h"

namespace daemonkit::cli {

namespace {

// A held lock: the instance runs. Whether the file's pid is part of it is what /proc proved.
CommandResult locked_status(const PidFileState& state, const std::string& path) {
  if (state.pid <= 0) {
    // Locked but still empty: the daemon is between taking the lock and writing its pid.
    return {kStatusRunning, "", "daemonkit status: running, PID not written yet\n"};
  }
  switch (state.truth.kind) {
    case core::LockTruth::Kind::kNamedHolds:
      return {kStatusRunning, fmt::format("{}\n", state.pid), ""};
    case core::LockTruth::Kind::kNamedExited:
    case core::LockTruth::Kind::kNamedNotHolder:
      // The daemon the file names is not running; what it left behind is said, not hidden.
      return {kStatusDeadPidFileExists, "",
              fmt::format("daemonkit status: {}\n",
                          core::lock_truth_message(path, state.pid, state.truth))};
    case core::LockTruth::Kind::kUnknown:
      break;
  }
  // Running (the lock says so), but the pid is not printed: it is not proven to be the daemon.
  return {kStatusRunning, "",
          fmt::format("daemonkit status: running (the lock on {} is held), but PID {} could not "
                      "be proven to hold it{}\n",
                      path, state.pid,
                      state.truth.error ? fmt::format(": {}", *state.truth.error)
                                        : std::string(" (no process we can see holds it)"))};
}

}  // namespace

CommandResult run_status(sys::Syscalls& os, const StatusOptions& options) {
  const PidFileState state = inspect_pid_file(os, options.pidfile);
  switch (state.kind) {
    case PidFileState::Kind::kLocked:
      return locked_status(state, options.pidfile);
    case PidFileState::Kind::kUnlockedAlive:
      // Alive, but nothing proves it is the daemon: LSB's "unknown".
      return {kStatusUnknown, "",
              fmt::format("daemonkit status: {}\n",
                          unlocked_alive_message(options.pidfile, state.pid))};
    case PidFileState::Kind::kDead:
      return {kStatusDeadPidFileExists, "",
              fmt::format("daemonkit status: not running, but PID file {} exists (PID {})\n",
                          options.pidfile, state.pid)};
    case PidFileState::Kind::kNonNumeric:
      // Nobody holds it, so nothing runs under it: dead, with a file left behind.
      return {kStatusDeadPidFileExists, "", non_numeric_pidfile_message(options.pidfile) + "\n"};
    case PidFileState::Kind::kNotRegular:
      return {kStatusUnknown, "",
              fmt::format("daemonkit status: {}\n", not_regular_message(options.pidfile))};
    case PidFileState::Kind::kUnreadable:
      return {kStatusUnknown, "", fmt::format("daemonkit status: {}\n", state.error)};
    case PidFileState::Kind::kMissing:
      break;
  }
  return {kStatusNotRunning, "", "daemonkit status: not running\n"};
}

}  // namespace daemonkit::cli
