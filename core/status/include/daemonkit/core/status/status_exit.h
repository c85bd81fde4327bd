// How the waiting parent leaves once it knows the outcome, with twistd's exit codes and words:
// 0 and silence when the daemon is up; otherwise 1 and two lines on stderr.
#pragma once

#include <string>

#include "daemonkit/core/status/status_waiter.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct ParentExit {
  int code = 0;
  std::string stderr_text;
  friend bool operator==(const ParentExit&, const ParentExit&) = default;
};

// Ready: {0, ""}. Failed: {1, "An error has occurred: <message>\n"
//                             "Please look at log file for more information.\n"}.
// The message is printed as it is (Twisted printed Python's repr of the bytes): the decoder
// has already made it safe for a terminal.
[[nodiscard]] ParentExit parent_exit(const StatusOutcome& outcome);

// Writes parent_exit(outcome)'s text to fd 2 through `os` and returns its exit code, for the
// caller to pass to exit. A stderr that cannot be written is not reported: there is nowhere
// left to report it, and the exit code still tells the outcome.
[[nodiscard]] int write_parent_exit(sys::Syscalls& os, const StatusOutcome& outcome);

}  // namespace daemonkit::core
