// OwnedFd: one open descriptor and the duty to close it, through the Syscalls& it came from.
// Whatever path a function leaves by, an early return or an exception, a descriptor held in an
// OwnedFd is closed once, so no error path can leak one.
#pragma once

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// Move-only. Empty (get() == -1) when default-constructed, moved from, released or reset.
//
// When the owner goes away it closes, and the result of that close is dropped: a destructor
// cannot return it, and there is nothing to do with it. Linux releases the descriptor even when
// close fails (EINTR, EIO), so retrying could close a descriptor another thread has just been
// given, and the descriptor is gone either way. An error from close matters only where data was
// written that a later close may report as lost (EIO, ENOSPC, EDQUOT on network filesystems);
// code that writes and cares calls close() itself and handles its result. No logging here
// either: the owner has no log, and a log line for a descriptor nobody can still use tells the
// reader nothing they can act on.
//
// Where a process stops running code without returning (a real _exit or exec) no destructor
// runs, so the owner never closes for a process that is gone. The fake kernel instead unwinds
// the ended process with fake::ProcessEnded; a close an owner makes during that unwinding is not
// made (no process is current; see fake/README.md), so an owner on that stack closes nothing
// in the process that runs next. Still hand the descriptor over with release() where it stops
// being this owner's to close: passed to another object, to the kernel (kept across an exec on
// purpose), or closed in bulk (close_range) by the process, after which its number may be
// given to another file that the owner would then close.
class OwnedFd {
 public:
  OwnedFd() noexcept = default;
  // Takes `fd` (a negative one leaves the owner empty).
  OwnedFd(sys::Syscalls& os, int fd) noexcept : os_(&os), fd_(fd < 0 ? -1 : fd) {}
  OwnedFd(OwnedFd&& other) noexcept : os_(other.os_), fd_(other.release()) {}
  // Closes what this owner held, then takes the other's descriptor. Self-move is a no-op.
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Lets go without closing and returns the descriptor (-1 if empty): the caller, another
  // object or the kernel now decides its fate.
  [[nodiscard]] int release() noexcept;
  // Closes the descriptor, if any, dropping close's error (see above), and leaves the owner
  // empty. Idempotent. The empty case, every moved-from owner's destruction, is inline.
  void reset() noexcept {
    if (fd_ >= 0) close_now();
  }
  // Closes now and returns close's result, for code that must know a write was lost. The
  // owner is empty afterwards whatever the result, as the descriptor is (Linux frees it even
  // when close fails). Closing an empty owner succeeds.
  sys::Result<void> close();

 private:
  void close_now() noexcept;

  sys::Syscalls* os_ = nullptr;
  int fd_ = -1;
};

}  // namespace daemonkit::core
