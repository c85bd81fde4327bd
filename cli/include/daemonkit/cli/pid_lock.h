// The PID file `daemonkit run` holds for PROGRAM: taken by the launcher before it forks (so a
// clash is reported in the user's shell), written by the daemon with its own pid before it is
// reported ready, and kept across exec so the lock lives exactly as long as PROGRAM.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "daemonkit/cli/launch_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

class PidLock {
 public:
  // Opens `path` (absolute) with O_CREAT|O_NOFOLLOW|O_CLOEXEC, takes an exclusive non-blocking
  // flock, checks that the path still names the locked inode (a previous owner may have
  // unlinked it between our open and our lock), then judges what the file holds: nothing is
  // fine; a pid nobody locks is stale ("Removing stale pidfile <path>" goes to `note`) unless
  // kill(pid, 0) finds it alive (a file from a tool that never locks); anything else is
  // "Pidfile <path> contains non-numeric value". A held lock is "Another server is running".
  [[nodiscard]] static LaunchResult<PidLock> acquire(sys::Syscalls& os, std::string path,
                                                     const std::function<void(std::string_view)>& note);

  PidLock(PidLock&& other) noexcept;
  PidLock& operator=(PidLock&& other) noexcept;
  PidLock(const PidLock&) = delete;
  PidLock& operator=(const PidLock&) = delete;
  ~PidLock() = default;  // No I/O: see release().

  // Replaces the contents with "<pid>\n".
  [[nodiscard]] LaunchResult<void> write_pid(pid_t pid);
  // Lets the descriptor, and so the lock, survive exec.
  [[nodiscard]] LaunchResult<void> keep_across_exec();
  // Removes the file if the path still names our inode, then closes it. For a launch that
  // failed: the lock is ours until the close, so no other daemon can have taken the file.
  void release();
  // Closes our descriptor without touching the file: the daemon's copy keeps the lock.
  void forget();

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  PidLock(sys::Syscalls& os, std::string path, int fd, dev_t dev, ino_t ino);

  sys::Syscalls* os_;
  std::string path_;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// twistd's message with its hint, without the trailing newline.
[[nodiscard]] std::string another_server_message(pid_t pid);

}  // namespace daemonkit::cli
