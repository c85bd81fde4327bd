// Which files `run --logfile` may hand to PROGRAM. The launcher opens the log as root, before
// privileges are dropped, in a directory the operator named but someone else may control; so
// what it opened is judged from the open descriptor (fstat, no window between check and use)
// before it becomes PROGRAM's stdout and stderr.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>

namespace daemonkit::core {

// Why the opened file `opened` must not be PROGRAM's log, or nothing when it may be. The
// rule, for PROGRAM running as `program_uid`:
//   - a regular file must have exactly one link (a hard link planted to /etc/shadow has two)
//     and belong to root or to `program_uid`;
//   - a FIFO must belong to root or to `program_uid`;
//   - a character device must belong to root (/dev/null, /dev/console);
//   - anything else (a directory, a socket, a block device) is refused.
// The reason reads after the path: "--logfile PATH " + reason, e.g. "has 2 hard links;
// refused (must have exactly 1)". It stays short: it crosses the status pipe, 98 bytes at most.
[[nodiscard]] std::optional<std::string> log_file_refusal(const struct stat& opened,
                                                          uid_t program_uid);

// The reason for a log path whose last component is a symbolic link, never followed.
[[nodiscard]] std::string log_file_symlink_refusal();

}  // namespace daemonkit::core
