// Stopping the daemon of a launch that `daemonkit run` gave up on (--timeout, a failure PROGRAM
// reported while it runs on, an error of the launcher's own): SIGTERM to its process group and to
// the daemon itself, a bounded wait, SIGKILL to what is left, another bounded wait. The launcher
// gives the PID file up only once the daemon is known to be gone.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// How long the daemon has to end after SIGTERM before it is sent SIGKILL.
inline constexpr std::chrono::milliseconds kLaunchStopGrace{2000};
// How long to wait for it to end after SIGKILL, which it cannot ignore (it may be stuck in the
// kernel, in uninterruptible sleep).
inline constexpr std::chrono::milliseconds kLaunchKillWait{1000};

struct DaemonStop {
  bool was_alive = false;  // it had not ended when the stop began, so was sent SIGTERM
  bool sent_kill = false;  // it outlived kLaunchStopGrace and was sent SIGKILL
  bool gone = false;       // it has ended and been reaped (or there was none)
  pid_t pid = 0;
  std::string trouble;  // the first call that failed, "" when none did
};

// `daemon` must be a child of this process that it has not reaped, so that its pid cannot have
// been reused; 0 when there is none to stop. `group` is the process group the daemon was started
// in (the intermediate's pid): it is sent what the daemon is sent, for the processes PROGRAM
// forked there. The daemon itself is signalled through a pidfd as well, since it may have left
// the group.
[[nodiscard]] DaemonStop stop_daemon(sys::Syscalls& os, pid_t daemon, pid_t group);

// What was done, as the end of the launcher's message: "" when the daemon had ended already,
// "; sent it SIGTERM", "; sent it SIGTERM, then SIGKILL"; when that did not end it, "; sent it
// SIGTERM, then SIGKILL, but it is still running as PID 12", or "; tried ..." followed by the
// call that failed; "; could not tell whether it still runs (<call>)" when that is so.
[[nodiscard]] std::string describe_stop(const DaemonStop& stop);

}  // namespace daemonkit::core
