#include "unix_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include <fmt/format.h>

namespace daemonkit::core::detail {

sys::Result<UnixLock> UnixLock::acquire(sys::Syscalls& os, std::string path) {
  // Each retry follows a holder that released between our open and our flock; three in a row
  // would take three servers starting and stopping in that window.
  constexpr int kAttempts = 3;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto opened = os.open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (!opened) return sys::fail(opened.error().about(path));
    OwnedFd fd(os, *opened);
    if (auto locked = os.flock(fd.get(), LOCK_EX | LOCK_NB); !locked) {
      return sys::fail(locked.error().about(path));
    }
    // Held from here: a failure removes the file too, so that it is not left behind (while
    // held, nobody else can be using it).
    const auto failed = [&](const sys::Error& error) {
      (void)os.unlink(path.c_str());
      return sys::fail(error.about(path));
    };
    auto held = os.fstat(fd.get());
    if (!held) return failed(held.error());
    auto named = os.lstat(path.c_str());
    if (!named) {
      if (named.error().code == ENOENT) continue;
      return failed(named.error());
    }
    if (named->st_dev != held->st_dev || named->st_ino != held->st_ino) continue;
    const std::string pid = fmt::format("{}\n", os.getpid());
    if (auto cut = os.ftruncate(fd.get(), 0); !cut) return failed(cut.error());
    if (auto wrote = os.write(fd.get(), pid.data(), pid.size()); !wrote) {
      return failed(wrote.error());
    }
    return UnixLock(os, std::move(path), std::move(fd));
  }
  return sys::fail(sys::Error{EAGAIN, "flock", path + ", replaced while locking"});
}

UnixLock::~UnixLock() {
  if (!fd_) return;
  (void)os_->unlink(path_.c_str());
  fd_.reset();
}

}  // namespace daemonkit::core::detail
