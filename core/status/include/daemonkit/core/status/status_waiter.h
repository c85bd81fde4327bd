// The waiting parent's end of the status pipe: it blocks until the daemon reports, the daemon
// goes away, or an optional timeout passes, and always comes back with Ready or a Failed whose
// message a user can act on. It never hangs on its own copy of the write end (twisted#7745).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string_view>
#include <variant>

#include "daemonkit/core/status/status_codec.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What the parent concludes: the daemon is up, or it is not and here is why.
using StatusOutcome = std::variant<Ready, Failed>;

// Two of the waiter's messages, for tests and for callers that quote them (branch on
// Failed::cause, not on these): the pipe closed with nothing in it and how the daemon ended is
// unknown (the message is exactly this; with a known end it continues ": exit status 3"), and
// the timeout passed (the message starts with this).
inline constexpr std::string_view kDaemonExitedBeforeReporting =
    "the daemon exited before reporting its status";
inline constexpr std::string_view kStatusTimeoutPrefix = "timed out after ";

struct StatusWaitOptions {
  // Gives up after this long without a complete report (zero: take only what is already in
  // the pipe). Without it the parent waits as long as some process holds the write end open.
  std::optional<std::chrono::milliseconds> timeout = std::nullopt;
  // The daemon's pid, if the parent can wait for it (it is a child, or the parent is its
  // subreaper). Used only when the pipe closes without a report, to say how the daemon ended.
  std::optional<pid_t> pid = std::nullopt;
};

// Closes `write_fd` (the parent's own copy of the write end, or -1 if it has none) before
// anything else: while it is open the parent can never see EOF. Then reads `read_fd` (retrying
// on EINTR) until end of file or kMaxStatusBytes bytes, or until the bytes cannot be a report,
// and closes `read_fd`. Every failure, of the daemon or of a call made here, is a Failed whose
// message names it; nothing is thrown.
[[nodiscard]] StatusOutcome wait_for_status(sys::Syscalls& os, int read_fd, int write_fd,
                                            const StatusWaitOptions& options = {});

}  // namespace daemonkit::core
