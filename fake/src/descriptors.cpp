// Descriptor tables: allocation of the lowest free number, close and close_range, dup*,
// fcntl, and the calls that go through a descriptor to its open file description.
#include <linux/close_range.h>
#include <sys/file.h>

#include <climits>

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "kernel.h"

namespace daemonkit::fake::detail {

sys::Result<void> Kernel::close(Process& p, int fd) {
  auto it = p.fds.find(fd);
  if (it == p.fds.end()) return sys::fail(EBADF, "close");
  // Dropping the entry may release the description (and with it a pipe end or a lock).
  auto keep = std::move(it->second.file);
  p.fds.erase(it);
  return {};
}

sys::Result<void> Kernel::close_range(Process& p, unsigned first, unsigned last, int flags) {
  if (flags & ~(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) {
    return sys::fail(EINVAL, "close_range");
  }
  if (first > last) return sys::fail(EINVAL, "close_range");
  auto in_range = [&](int fd) {
    return static_cast<unsigned>(fd) >= first && static_cast<unsigned>(fd) <= last;
  };
  for (auto it = p.fds.begin(); it != p.fds.end();) {
    if (!in_range(it->first)) {
      ++it;
    } else if (flags & CLOSE_RANGE_CLOEXEC) {
      it->second.cloexec = true;
      ++it;
    } else {
      it = p.fds.erase(it);
    }
  }
  return {};
}

sys::Result<int> Kernel::dup(Process& p, int fd) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "dup");
  return allocate_fd(p, entry->file, false, 0, "dup");
}

sys::Result<int> Kernel::dup3(Process& p, int oldfd, int newfd, int flags, const char* call) {
  const bool is_dup3 = std::string_view(call) == "dup3";
  if (is_dup3) {
    if (flags & ~O_CLOEXEC) return sys::fail(EINVAL, call);
    if (oldfd == newfd) return sys::fail(EINVAL, call);
  }
  if (newfd < 0 || static_cast<rlim_t>(newfd) >= p.rlimits[RLIMIT_NOFILE].rlim_cur) {
    return sys::fail(EBADF, call);
  }
  auto* entry = fd_entry(p, oldfd);
  if (entry == nullptr) return sys::fail(EBADF, call);
  if (oldfd == newfd) return newfd;  // dup2 on itself: nothing changes, not even FD_CLOEXEC
  auto file = entry->file;
  p.fds[newfd] = FdEntry{std::move(file), (flags & O_CLOEXEC) != 0};
  return newfd;
}

sys::Result<int> Kernel::fcntl(Process& p, int fd, int cmd, int arg) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "fcntl");
  switch (cmd) {
    case F_GETFD:
      return entry->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD:
      entry->cloexec = (arg & FD_CLOEXEC) != 0;
      return 0;
    case F_GETFL:
      return entry->file->status_flags();
    case F_SETFL: {
      // Only these status flags can change after open; the access mode never does.
      constexpr int kSettable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
      auto& file = *entry->file;
      file.set_status_flags((file.status_flags() & ~kSettable) | (arg & kSettable));
      return 0;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      if (arg < 0 || static_cast<rlim_t>(arg) >= p.rlimits[RLIMIT_NOFILE].rlim_cur) {
        return sys::fail(EINVAL, "fcntl");
      }
      return allocate_fd(p, entry->file, cmd == F_DUPFD_CLOEXEC, arg, "fcntl");
    default:
      return sys::fail(EINVAL, "fcntl");
  }
}

sys::Result<std::size_t> Kernel::read(Process& p, int fd, void* buf, std::size_t count) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "read");
  auto file = entry->file;
  if (!file->can_read()) return sys::fail(EBADF, "read");
  auto result = file->read(*this, p, {static_cast<std::byte*>(buf), count});
  if (!result && result.error().code == EAGAIN && !file->nonblocking()) {
    return would_block<std::size_t>("read",
                                    fmt::format("fd {}: {}", fd, file->blocked_reason(*this)));
  }
  return result;
}

sys::Result<std::size_t> Kernel::write(Process& p, int fd, const void* buf, std::size_t count) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "write");
  auto file = entry->file;
  if (!file->can_write()) return sys::fail(EBADF, "write");
  return write_to(p, fd, *file, {static_cast<const std::byte*>(buf), count}, "write");
}

// vfs_writev: the descriptor, then the vector (import_iovec: EINVAL past UIO_MAXIOV), then a
// total of 0 returns before the file is asked. Otherwise the file sees one write of the
// concatenation, as Linux's iov_iter hands it the bytes. A null buffer is EFAULT here at once;
// Linux finds it only while copying, so a full pipe would say EAGAIN first.
sys::Result<std::size_t> Kernel::writev(Process& p, int fd, std::span<const struct iovec> iov) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "writev");
  auto file = entry->file;
  if (!file->can_write()) return sys::fail(EBADF, "writev");
  if (iov.size() > static_cast<std::size_t>(IOV_MAX)) return sys::fail(EINVAL, "writev");
  std::size_t total = 0;
  for (const struct iovec& v : iov) {
    if (v.iov_len > static_cast<std::size_t>(SSIZE_MAX) - total) {
      return sys::fail(EINVAL, "writev");
    }
    if (v.iov_base == nullptr && v.iov_len != 0) return sys::fail(EFAULT, "writev");
    total += v.iov_len;
  }
  if (total == 0) return std::size_t{0};
  std::vector<std::byte> joined;
  joined.reserve(total);
  for (const struct iovec& v : iov) {
    const auto* bytes = static_cast<const std::byte*>(v.iov_base);
    joined.insert(joined.end(), bytes, bytes + v.iov_len);
  }
  return write_to(p, fd, *file, joined, "writev");
}

sys::Result<std::size_t> Kernel::write_to(Process& p, int fd, OpenFile& file,
                                          std::span<const std::byte> bytes, const char* call) {
  auto result = file.write(*this, p, bytes);
  if (!result) result = sys::fail(result.error().code, call);
  if (!result && result.error().code == EAGAIN && !file.nonblocking()) {
    return would_block<std::size_t>(call, fmt::format("fd {}: {}", fd, file.blocked_reason(*this)));
  }
  // Writing to a pipe nobody reads raises SIGPIPE in the writer as well as failing.
  if (!result && result.error().code == EPIPE) deliver(p, SIGPIPE, 0);
  return result;
}

sys::Result<void> Kernel::fsync(Process& p, int fd) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "fsync");
  return entry->file->fsync();
}

sys::Result<void> Kernel::ftruncate(Process& p, int fd, off_t length) {
  // Linux refuses a negative length before it looks at the descriptor.
  if (length < 0) return sys::fail(EINVAL, "ftruncate");
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "ftruncate");
  if (!entry->file->can_write()) return sys::fail(EINVAL, "ftruncate");
  auto truncated = entry->file->truncate(*this, length);
  if (truncated) drop_setid_bits(p, entry->file->inode());
  return truncated;
}

sys::Result<struct stat> Kernel::fstat(Process& p, int fd) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "fstat");
  return stat_of(entry->file->inode());
}

// Every descriptor names an inode (a pipe or socket too) whose mode fchmod sets, as chmod does.
sys::Result<void> Kernel::fchmod(Process& p, int fd, mode_t mode) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "fchmod");
  return change_mode(p, entry->file->inode(), mode, "fchmod");
}

// Linux's flock: locks belong to open file descriptions. Converting a lock first drops the
// old one, so a failed LOCK_NB conversion leaves the description holding nothing.
sys::Result<void> Kernel::flock(Process& p, int fd, int operation) {
  // The operation is checked before the descriptor, and taking a lock needs a description
  // opened for reading or writing (not O_PATH-like access mode 3), as in Linux.
  const int cmd = operation & ~LOCK_NB;
  if (cmd != LOCK_SH && cmd != LOCK_EX && cmd != LOCK_UN) return sys::fail(EINVAL, "flock");
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "flock");
  if (cmd != LOCK_UN && !entry->file->can_read() && !entry->file->can_write()) {
    return sys::fail(EBADF, "flock");
  }
  const OpenFile* owner = entry->file.get();
  auto& locks = entry->file->inode().flocks;
  auto mine = std::find_if(locks.begin(), locks.end(),
                           [&](const Flock& lock) { return lock.owner == owner; });
  if (cmd == LOCK_UN) {
    if (mine != locks.end()) locks.erase(mine);
    return {};
  }
  const bool exclusive = cmd == LOCK_EX;
  if (mine != locks.end()) {
    if (mine->exclusive == exclusive) return {};
    locks.erase(mine);
  }
  const bool conflict = std::any_of(locks.begin(), locks.end(),
                                    [&](const Flock& lock) { return exclusive || lock.exclusive; });
  if (conflict) {
    if (operation & LOCK_NB) return sys::fail(EWOULDBLOCK, "flock");
    return would_block<void>(
        "flock", fmt::format("fd {}: {} is locked through another open file description", fd,
                             entry->file->describe()));
  }
  locks.push_back(Flock{owner, exclusive, p.pid});
  return {};
}

sys::Result<std::size_t> Kernel::getdents64(Process& p, int fd, void* buf, std::size_t count) {
  auto* entry = fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, "getdents64");
  auto file = entry->file;
  return file->getdents64(*this, p, {static_cast<std::byte*>(buf), count});
}

}  // namespace daemonkit::fake::detail
