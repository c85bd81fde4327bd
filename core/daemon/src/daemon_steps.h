// The daemon's own steps, in one place for the two ways daemonkit makes a daemon: DaemonContext
// (the calling process becomes the daemon) and the launch (a daemon that execs PROGRAM).
#pragma once

#include <array>
#include <optional>
#include <string>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

// daemon(7) steps 2 and 3: every handler back to its default, then nothing blocked, so none of
// the starter's handlers can run in the daemon. sigaction's EINVAL for the real-time signals
// glibc keeps is expected; a failed sigprocmask is not.
[[nodiscard]] StepResult<void> reset_signals(sys::Syscalls& os);

// Points each of 0, 1, 2 at its source. An unset source means /dev/null when `null_for_unset`,
// and the descriptor left as it is otherwise. The sources stay open: they are the caller's.
[[nodiscard]] StepResult<void> redirect_stdio(sys::Syscalls& os,
                                              const std::array<std::optional<int>, 3>& sources,
                                              bool null_for_unset);

// twistd's order: chroot first, then the working directory, taken inside the new root. The
// chdir("/") between them leaves no cwd outside the root even for a relative `directory`
// (twistd chdirs from where it was, and a cwd outside the root can walk out with "..").
[[nodiscard]] StepResult<void> enter_directories(sys::Syscalls& os,
                                                 const std::optional<std::string>& root,
                                                 const std::string& directory);

}  // namespace daemonkit::core::detail
