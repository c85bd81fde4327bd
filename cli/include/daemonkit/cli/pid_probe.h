// Looking at a PID file without touching it: is the daemon it names alive? `status` and `stop`
// ask this; unlike starting a daemon, they must never take the file over. Liveness is the file's
// lock (held by the daemon for its whole life); a file nobody locks may come from a tool that
// never locks, so its pid is probed with kill(pid, 0) by twistd's rules minus its bugs.
#pragma once

#include <sys/types.h>

#include <string>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

struct PidFileState {
  enum class Kind {
    kMissing,     // no file at the path
    kRunning,     // the lock is held, or kill(pid, 0) finds a live (non-zombie) process
    kDead,        // nobody holds the lock and the pid names no process
    kNonNumeric,  // nobody holds the lock and the contents are not a pid
    kUnreadable,  // the file could not be opened or read, or the probe failed: `error`
  };
  Kind kind = Kind::kMissing;
  pid_t pid = 0;        // the pid the file holds (0 when it holds none yet)
  bool locked = false;  // kRunning: the lock said so (not a kill probe)
  sys::Error error;     // kUnreadable
};

// The lock first; then, for a file nobody locks, core's parse_pid_file and probe_pid (kill(pid, 0)
// by twistd's rules minus its bugs, and a zombie is not running). A probe that fails with an
// unexpected errno makes the state kUnreadable, with the error.
[[nodiscard]] PidFileState inspect_pid_file(sys::Syscalls& os, const std::string& path);

// "Pidfile <path> contains non-numeric value" and "Removing stale pidfile <path>", twistd's words.
[[nodiscard]] std::string non_numeric_pidfile_message(std::string_view path);
[[nodiscard]] std::string stale_pidfile_message(std::string_view path);

}  // namespace daemonkit::cli
