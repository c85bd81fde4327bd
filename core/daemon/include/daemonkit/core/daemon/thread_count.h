// How many threads the calling process has, read from /proc/self/status through Syscalls.
// The daemonizer refuses to fork a multithreaded process: only the forking thread survives
// fork(), so locks other threads held (malloc's, stdio's) stay locked forever in the child.
#pragma once

#include <optional>
#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The value of the "Threads:" line of a /proc/<pid>/status text, if there is a valid one.
[[nodiscard]] std::optional<int> parse_status_threads(std::string_view status_text);

// Reads /proc/self/status. An unreadable file is an error (say, /proc is not mounted); a file
// without a "Threads:" line is EINVAL from "read".
[[nodiscard]] sys::Result<int> count_threads(sys::Syscalls& os);

}  // namespace daemonkit::core
