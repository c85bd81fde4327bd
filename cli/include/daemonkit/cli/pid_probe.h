// Looking at a PID file without touching it: is the daemon it names alive? `status` and `stop`
// ask this; unlike starting a daemon, they must never take the file over. Liveness is the file's
// lock, and a pid is believed only once /proc proves it holds that lock (core's
// pid_lock_holder.h): the lock belongs to the instance (the daemon and the children that
// inherited its descriptor), the file's pid names the daemon. A file nobody locks proves
// nothing about its pid; it is probed with kill(pid, 0) only to say whether it looks stale.
#pragma once

#include <sys/types.h>

#include <string>

#include "daemonkit/core/daemon/pid_lock_holder.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

struct PidFileState {
  enum class Kind {
    kMissing,        // no file at the path
    kNotRegular,     // something else is at the path (a FIFO, a device): never opened blocking
    kLocked,         // someone holds the lock: `truth` says who (pid 0: not written yet)
    kUnlockedAlive,  // nobody holds the lock, yet the pid names a live process: not proven ours
    kDead,           // nobody holds the lock and the pid names no process (or a zombie)
    kNonNumeric,     // nobody holds the lock and the contents are not a pid
    kUnreadable,     // the file could not be opened, examined or read, or the probe failed
  };
  Kind kind = Kind::kMissing;
  pid_t pid = 0;          // the pid the file holds (0 when it holds none)
  core::LockTruth truth;  // kLocked with pid > 0
  dev_t dev = 0;          // the file's identity, for proving lock holders later
  ino_t ino = 0;
  sys::Error error;  // kUnreadable
};

// Opens the path with O_RDONLY|O_NOFOLLOW|O_NONBLOCK (a FIFO cannot hang it), refuses anything
// but a regular file, tries a shared lock (granted unless the daemon holds its exclusive one),
// reads the pid, and for a locked file judges the pid against /proc (core::judge_lock).
[[nodiscard]] PidFileState inspect_pid_file(sys::Syscalls& os, const std::string& path);

// "Pidfile <path> contains non-numeric value" and "Removing stale pidfile <path>", twistd's words.
[[nodiscard]] std::string non_numeric_pidfile_message(std::string_view path);
[[nodiscard]] std::string stale_pidfile_message(std::string_view path);
// "<path> is not a regular file; not reading it"
[[nodiscard]] std::string not_regular_message(std::string_view path);
// "PID file <path> is not locked by any process; PID <pid> is alive but may not be the daemon"
[[nodiscard]] std::string unlocked_alive_message(std::string_view path, pid_t pid);

}  // namespace daemonkit::cli
