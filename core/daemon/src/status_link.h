// The daemonizer's only contact with the status pipe (design §4, status_pipe.h), kept in one
// private header: the daemon's report, and the first parent's wait, which adds what only the
// daemonizer knows (the intermediate process's exit status names its failed step).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string_view>

#include "daemonkit/core/status/status_exit.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The daemon's side. Both close `fd`, whatever happens.
sys::Result<void> report_ready(sys::Syscalls& os, int fd);
sys::Result<void> report_failure(sys::Syscalls& os, int fd, std::string_view message);

// How the intermediate process (between the two forks) tells the first parent which step
// failed without formatting text after fork: its exit status carries the errno, plus this flag
// when the second fork failed (setsid otherwise).
inline constexpr int kIntermediateForkFailed = 0x80;

struct DaemonVerdict {
  ParentExit exit;
  // The wait gave up on a silent daemon that may still be starting (and owns its PID file).
  bool timed_out = false;
};

// Closes `write_fd`, then waits for the report on `read_fd` (see wait_for_status). When the
// pipe closed without a report, reaps `intermediate` to say which of its steps failed, if one
// did. Returns the exit code and stderr text of the first parent.
DaemonVerdict wait_for_daemon(sys::Syscalls& os, int read_fd, int write_fd, pid_t intermediate,
                              std::optional<std::chrono::milliseconds> timeout);

}  // namespace daemonkit::core
