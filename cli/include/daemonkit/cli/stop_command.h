// `daemonkit stop --pidfile P`: SIGTERM to the daemon through a pidfd, SIGKILL if it outlives
// the timeout, then the PID file goes. A pidfd, once open, names that process and no other, so
// a pid reused while we wait can never receive the SIGKILL.
#pragma once

#include "daemonkit/cli/command_result.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

// Exit 0 when it stopped the daemon; 1 with a message when nothing was running (a stale PID file
// is removed and said so) or when the daemon could not be signalled.
[[nodiscard]] CommandResult run_stop(sys::Syscalls& os, const StopOptions& options);

}  // namespace daemonkit::cli
