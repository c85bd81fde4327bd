#include "daemonkit/cli/pid_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/cli/pid_probe.h"

namespace daemonkit::cli {
namespace {

std::string call_on(std::string_view call, std::string_view subject) {
  return fmt::format("{}({})", call, subject);
}

sys::Result<std::string> read_all_small(sys::Syscalls& os, int fd) {
  char buffer[64];
  std::size_t used = 0;
  while (used < sizeof buffer) {
    auto n = os.read(fd, buffer + used, sizeof buffer - used);
    if (!n) {
      if (n.error().code == EINTR) continue;
      return sys::fail(n.error());
    }
    if (*n == 0) break;
    used += *n;
  }
  return std::string(buffer, used);
}

}  // namespace

std::string another_server_message(pid_t pid) {
  return fmt::format(
      "Another server is running, PID {}\n\n"
      "This could either be a previously started instance of your application or a\n"
      "different application entirely. To start a new one, either run it in some other\n"
      "directory, or use the --pidfile and --logfile parameters to avoid clashes.\n",
      pid);
}

PidLock::PidLock(sys::Syscalls& os, std::string path, int fd, dev_t dev, ino_t ino)
    : os_(&os), path_(std::move(path)), fd_(fd), dev_(dev), ino_(ino) {}

PidLock::PidLock(PidLock&& other) noexcept
    : os_(other.os_), path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)),
      dev_(other.dev_), ino_(other.ino_) {}

PidLock& PidLock::operator=(PidLock&& other) noexcept {
  os_ = other.os_;
  path_ = std::move(other.path_);
  fd_ = std::exchange(other.fd_, -1);
  dev_ = other.dev_;
  ino_ = other.ino_;
  return *this;
}

LaunchResult<PidLock> PidLock::acquire(sys::Syscalls& os, std::string path,
                                       const std::function<void(std::string_view)>& note) {
  // O_APPEND: writes land at the end, which after ftruncate(0) is the start, so no lseek is
  // needed to rewrite the file from the top.
  constexpr int kFlags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_APPEND;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto fd = os.open(path.c_str(), kFlags, 0644);
    if (!fd) return launch_failed(LaunchError::from(call_on("open", path), fd.error()));
    auto lock = os.flock(*fd, LOCK_EX | LOCK_NB);
    if (!lock) {
      const sys::Error error = lock.error();
      std::optional<pid_t> holder;
      if (error.code == EWOULDBLOCK) {
        auto text = read_all_small(os, *fd);
        if (text) holder = parse_pid_text(*text);
      }
      (void)os.close(*fd);
      if (error.code != EWOULDBLOCK) {
        return launch_failed(LaunchError::from(call_on("flock", path), error));
      }
      return launch_failed(LaunchError{
          holder ? another_server_message(*holder)
                 : fmt::format("Another server is running; it has not written its pid to {} yet\n",
                               path),
          0, true});
    }
    // The previous owner may have removed the file between our open and our lock: then we
    // locked an orphan inode and must open the path again.
    auto ours = os.fstat(*fd);
    auto named = os.lstat(path.c_str());
    if (!ours) {
      (void)os.close(*fd);
      return launch_failed(LaunchError::from(call_on("fstat", path), ours.error()));
    }
    if (!named || named->st_dev != ours->st_dev || named->st_ino != ours->st_ino) {
      (void)os.close(*fd);
      continue;
    }
    PidLock held(os, path, *fd, ours->st_dev, ours->st_ino);
    auto text = read_all_small(os, *fd);
    if (!text) {
      held.forget();
      return launch_failed(LaunchError::from(call_on("read", path), text.error()));
    }
    bool blank = true;
    for (char c : *text) {
      if (c != ' ' && c != '\n' && c != '\t' && c != '\r') blank = false;
    }
    if (blank) return held;
    const std::optional<pid_t> pid = parse_pid_text(*text);
    if (!pid) {
      held.forget();
      return launch_failed(LaunchError{non_numeric_pidfile_message(path) + "\n", 0, true});
    }
    // Nobody locks it. A tool that never locks may still run under that pid: ask the kernel,
    // minus twistd's bugs (pid 0, negative pids and our own pid are not running; EPERM is).
    if (*pid > 0 && *pid != os.getpid()) {
      auto alive = os.kill(*pid, 0);
      if ((alive && !is_zombie(os, *pid)) || (!alive && alive.error().code == EPERM)) {
        held.forget();
        return launch_failed(LaunchError{another_server_message(*pid), 0, true});
      }
    }
    note(stale_pidfile_message(path));
    // Emptied in place rather than unlinked, so the lock stays on the inode the path names.
    auto emptied = os.ftruncate(*fd, 0);
    if (!emptied) {
      held.forget();
      return launch_failed(LaunchError::from(call_on("ftruncate", path), emptied.error()));
    }
    return held;
  }
  return launch_failed(LaunchError{
      fmt::format("{}: the file keeps being replaced while we lock it", path), 0, false});
}

LaunchResult<void> PidLock::write_pid(pid_t pid) {
  auto emptied = os_->ftruncate(fd_, 0);
  if (!emptied) return launch_failed(LaunchError::from(call_on("ftruncate", path_), emptied.error()));
  const std::string text = fmt::format("{}\n", pid);
  std::size_t done = 0;
  while (done < text.size()) {
    auto n = os_->write(fd_, text.data() + done, text.size() - done);
    if (!n) {
      if (n.error().code == EINTR) continue;
      return launch_failed(LaunchError::from(call_on("write", path_), n.error()));
    }
    done += *n;
  }
  return {};
}

LaunchResult<void> PidLock::keep_across_exec() {
  auto flags = os_->fcntl(fd_, F_GETFD, 0);
  if (flags) flags = os_->fcntl(fd_, F_SETFD, *flags & ~FD_CLOEXEC);
  if (!flags) return launch_failed(LaunchError::from(call_on("fcntl", path_), flags.error()));
  return {};
}

void PidLock::release() {
  if (fd_ < 0) return;
  auto named = os_->lstat(path_.c_str());
  if (named && named->st_dev == dev_ && named->st_ino == ino_) {
    if (!os_->unlink(path_.c_str())) (void)os_->ftruncate(fd_, 0);
  }
  forget();
}

void PidLock::forget() {
  if (fd_ < 0) return;
  (void)os_->close(fd_);
  fd_ = -1;
}

}  // namespace daemonkit::cli
