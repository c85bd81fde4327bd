// The lock file of a UNIX port: "<path>.lock", held with an exclusive flock for as long as the
// port listens. Twisted uses a symlink naming its pid and breaks it when that pid is dead; a
// lock the kernel drops with its holder needs no such guess, and cannot name a recycled pid.
#pragma once

#include <string>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

class UnixLock {
 public:
  // Creates or opens `path` (O_NOFOLLOW), takes the lock without waiting (EWOULDBLOCK: another
  // process holds it), checks that the path still names the locked file (a holder that removed
  // it meanwhile leaves us a lock on a file nobody else can find: try again), then writes our
  // pid in it for people to read.
  [[nodiscard]] static sys::Result<UnixLock> acquire(sys::Syscalls& os, std::string path);
  UnixLock(UnixLock&&) noexcept = default;
  UnixLock& operator=(UnixLock&&) = delete;
  UnixLock(const UnixLock&) = delete;
  UnixLock& operator=(const UnixLock&) = delete;
  // Releases: unlinks the file while still holding the lock (so that whoever opens the path
  // next makes a new file, and the inode check above catches one who opened the old one),
  // then closes it.
  ~UnixLock();

 private:
  UnixLock(sys::Syscalls& os, std::string path, OwnedFd fd)
      : os_(&os), path_(std::move(path)), fd_(std::move(fd)) {}
  sys::Syscalls* os_;
  std::string path_;
  OwnedFd fd_;
};

}  // namespace daemonkit::core::detail
