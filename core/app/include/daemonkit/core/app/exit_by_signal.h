// Exit "by" a signal, as twistd's _exitWithSignal: a daemon stopped by SIGTERM should end with
// the wait status of a process killed by SIGTERM (shell status 143), so that whoever waits for
// it (a shell, a service manager) sees why it ended.
#pragma once

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// Sets `sig` to SIG_DFL, unblocks it and sends it to this process, which then ends by it. If it
// is still alive afterwards (the kernel refused, or the signal's default is not to terminate),
// returns the status a shell would have shown, 128 + sig, for the caller to exit with.
[[nodiscard]] int exit_by_signal(sys::Syscalls& os, int sig);

}  // namespace daemonkit::core
