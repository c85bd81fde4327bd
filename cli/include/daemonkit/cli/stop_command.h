// `daemonkit stop --pidfile P`: SIGTERM through a pidfd to every process proven to hold the PID
// file's lock (the daemon, then the children that inherited it), SIGKILL to those that outlive
// the timeout, then the PID file goes, once nobody holds the lock. The pidfd is opened before
// the proof, so a pid reused meanwhile can never receive a signal; a process that does not hold
// the lock is never signalled, whatever the file says.
#pragma once

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

// Exit 0 when it stopped the instance; 1 with a message when nothing was running (a stale PID
// file is removed and said so), when the file is not locked (its pid is never signalled), when
// no holder could be proven, or when the instance could not be stopped.
[[nodiscard]] CommandResult run_stop(sys::Syscalls& os, const StopOptions& options);

}  // namespace daemonkit::cli
