#include "daemonkit/core/pid_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A PID file is a line of digits; anything longer than this is not one.
constexpr std::size_t kMaxContentBytes = 64;
// How often acquire() starts over when the path stops naming the inode it locked. Each retry
// needs another process to unlink the file in the window between our open and our flock.
constexpr int kMaxLockAttempts = 8;

constexpr int kOpenFlags = O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;

// Reads the whole (small) file from the current offset. A file longer than kMaxContentBytes
// is returned cut, which parse_pid_file then rejects as non-numeric.
sys::Result<std::string> read_content(sys::Syscalls& os, int fd) {
  std::array<char, kMaxContentBytes + 1> buffer{};
  std::size_t used = 0;
  while (used < buffer.size()) {
    auto got = sys::retry_on_eintr(
        [&] { return os.read(fd, buffer.data() + used, buffer.size() - used); });
    if (!got) return sys::fail(got.error());
    if (*got == 0) break;
    used += *got;
  }
  return std::string(buffer.data(), used);
}

// Gives up a file acquire() opened. One it created is removed, so a failed start leaves no PID
// file behind, but only under the lock and only while the path still names it: a concurrent
// starter may have opened it meanwhile, and it re-checks the path after locking, so it then
// starts over with a fresh file instead of keeping an orphan.
void abandon(sys::Syscalls& os, int fd, bool created, const std::string& path) {
  if (created) {
    auto ours = os.flock(fd, LOCK_EX | LOCK_NB);
    auto st = ours ? os.fstat(fd) : sys::Result<struct stat>(sys::fail(EWOULDBLOCK, "flock"));
    auto named = st ? os.lstat(path.c_str()) : st;
    if (named && st && named->st_dev == st->st_dev && named->st_ino == st->st_ino &&
        st->st_size == 0) {
      (void)os.unlink(path.c_str());
    }
  }
  (void)os.close(fd);
}

}  // namespace

PidFileContent parse_pid_file(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.empty()) return {PidFileContent::Kind::kEmpty, 0};
  const bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty()) return {PidFileContent::Kind::kNonNumeric, 0};
  for (char c : text) {
    if (c < '0' || c > '9') return {PidFileContent::Kind::kNonNumeric, 0};
  }
  pid_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return {PidFileContent::Kind::kNonNumeric, 0};
  }
  return {PidFileContent::Kind::kPid, negative ? -value : value};
}

bool is_zombie(sys::Syscalls& os, pid_t pid) {
  const std::string path = fmt::format("/proc/{}/stat", pid);
  auto fd = os.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (!fd) return false;
  // The state follows the comm, which is at most 15 bytes but may hold ')' and spaces.
  std::array<char, 128> buffer{};
  auto got = sys::retry_on_eintr([&] { return os.read(*fd, buffer.data(), buffer.size()); });
  (void)os.close(*fd);
  if (!got) return false;
  const std::string_view stat(buffer.data(), *got);
  const std::size_t paren = stat.rfind(')');
  return paren != std::string_view::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

sys::Result<PidLiveness> probe_pid(sys::Syscalls& os, pid_t pid, pid_t own_pid) {
  if (pid <= 0 || pid == own_pid) return PidLiveness::kStale;
  auto probed = os.kill(pid, 0);
  if (!probed && probed.error().code == ESRCH) return PidLiveness::kStale;
  if (!probed && probed.error().code != EPERM) return sys::fail(probed.error());
  return is_zombie(os, pid) ? PidLiveness::kStale : PidLiveness::kRunning;
}

std::string another_server_message(std::optional<pid_t> pid) {
  const std::string head = pid ? fmt::format("Another server is running, PID {}", *pid)
                               : std::string("Another server is running (it holds the lock)");
  return head +
         "\n\n"
         "This could either be a previously started instance of your application or a\n"
         "different application entirely. To start a new one, either run it in some other\n"
         "directory, or use the --pidfile and --logfile parameters to avoid clashes.\n";
}

std::string non_numeric_message(std::string_view path) {
  return fmt::format("Pidfile {} contains non-numeric value", path);
}

std::string stale_pidfile_message(std::string_view path) {
  return fmt::format("Removing stale pidfile {}", path);
}

PidFile::PidFile(sys::Syscalls& os, std::string path, std::string reach_path, int fd, LogSink log,
                 dev_t dev, ino_t ino)
    : os_(&os),
      path_(std::move(path)),
      reach_path_(std::move(reach_path)),
      fd_(fd),
      log_(std::move(log)),
      dev_(dev),
      ino_(ino) {}

PidFile::PidFile(PidFile&& other) noexcept
    : os_(other.os_),
      path_(std::move(other.path_)),
      reach_path_(std::move(other.reach_path_)),
      fd_(std::exchange(other.fd_, -1)),
      log_(std::move(other.log_)),
      dev_(other.dev_),
      ino_(other.ino_) {}

PidFile& PidFile::operator=(PidFile&& other) noexcept {
  if (this != &other) {
    os_ = other.os_;
    path_ = std::move(other.path_);
    reach_path_ = std::move(other.reach_path_);
    fd_ = std::exchange(other.fd_, -1);
    log_ = std::move(other.log_);
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

StepResult<PidFile> PidFile::acquire(sys::Syscalls& os, std::string path, LogSink log,
                                     PidFileOptions options) {
  if (path.empty()) return step_failed(StepError::plain("pidfile", "The pidfile path is empty"));
  if (path.front() != '/') {
    auto cwd = os.getcwd();
    if (!cwd) return step_failed(StepError::from("getcwd", cwd.error()));
    path = (cwd->size() > 1 ? *cwd : std::string()) + "/" + path;
  }

  // Open, lock, then make sure the path still names what we locked. Without the re-check, a
  // daemon that unlinks the file on exit between our open and our flock would leave us holding
  // a lock on an orphan inode while the next starter creates and locks a fresh file.
  int fd = -1;
  bool created = false;
  struct stat locked {};
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMaxLockAttempts) {
      return step_failed(StepError::plain(
          "pidfile", fmt::format("Pidfile {} kept being replaced while it was locked", path)));
    }
    // O_EXCL first, to know whether the file is ours to remove should the start fail.
    auto opened = sys::retry_on_eintr(
        [&] { return os.open(path.c_str(), kOpenFlags | O_EXCL, options.mode); });
    created = static_cast<bool>(opened);
    if (!opened && opened.error().code == EEXIST) {
      opened = sys::retry_on_eintr(
          [&] { return os.open(path.c_str(), kOpenFlags & ~O_CREAT, 0); });
      // Removed between the two opens: start over.
      if (!opened && opened.error().code == ENOENT) continue;
    }
    if (!opened) return step_failed(StepError::from(call_on("open", path), opened.error()));
    fd = *opened;
    auto fail_closing = [&](StepError error) {
      abandon(os, fd, created, path);
      return step_failed(std::move(error));
    };

    auto st = os.fstat(fd);
    if (!st) return fail_closing(StepError::from(call_on("fstat", path), st.error()));
    if (!S_ISREG(st->st_mode)) {
      return fail_closing(
          StepError::plain("pidfile", fmt::format("Pidfile {} is not a regular file", path)));
    }

    auto locked_now = sys::retry_on_eintr([&] { return os.flock(fd, LOCK_EX | LOCK_NB); });
    if (!locked_now) {
      if (locked_now.error().code != EWOULDBLOCK) {
        return fail_closing(StepError::from(call_on("flock", path), locked_now.error()));
      }
      // Someone holds the lock: that is the running instance, whatever the file says.
      std::optional<pid_t> holder;
      if (auto text = read_content(os, fd)) {
        const PidFileContent content = parse_pid_file(*text);
        if (content.kind == PidFileContent::Kind::kPid && content.pid > 0) holder = content.pid;
      }
      (void)os.close(fd);
      return step_failed(StepError::plain("pidfile", another_server_message(holder)));
    }

    auto named = os.lstat(path.c_str());
    if (!named) {
      if (named.error().code == ENOENT) {
        (void)os.close(fd);
        continue;
      }
      return fail_closing(StepError::from(call_on("lstat", path), named.error()));
    }
    if (named->st_dev != st->st_dev || named->st_ino != st->st_ino) {
      (void)os.close(fd);
      continue;
    }
    locked = *st;
    break;
  }

  auto fail_closing = [&](StepError error) {
    abandon(os, fd, created, path);
    return step_failed(std::move(error));
  };
  auto text = read_content(os, fd);
  if (!text) return fail_closing(StepError::from(call_on("read", path), text.error()));
  const PidFileContent content = parse_pid_file(*text);
  switch (content.kind) {
    case PidFileContent::Kind::kEmpty:
      break;
    case PidFileContent::Kind::kNonNumeric:
      return fail_closing(StepError::plain("pidfile", non_numeric_message(path)));
    case PidFileContent::Kind::kPid: {
      PidLiveness liveness = PidLiveness::kStale;
      if (options.unlocked == UnlockedPidFilePolicy::kProbeWithKill) {
        auto probed = probe_pid(os, content.pid, os.getpid());
        if (!probed) {
          return fail_closing(StepError::plain(
              "pidfile", fmt::format("Can't check status of PID {} from pidfile {}: {}",
                                     content.pid, path,
                                     StepError::from(call_on("kill", std::to_string(content.pid)),
                                                     probed.error())
                                         .message)));
        }
        liveness = *probed;
      }
      if (liveness == PidLiveness::kRunning) {
        return fail_closing(StepError::plain("pidfile", another_server_message(content.pid)));
      }
      log_line(log, stale_pidfile_message(path));
      // Emptied in place rather than unlinked: we hold the lock on this inode, and unlinking it
      // would let a concurrent starter create and lock a second file under the same name.
      auto emptied = os.ftruncate(fd, 0);
      if (!emptied) return fail_closing(StepError::from(call_on("ftruncate", path), emptied.error()));
      break;
    }
  }
  std::string reach = path;
  return PidFile(os, std::move(path), std::move(reach), fd, std::move(log), locked.st_dev,
                 locked.st_ino);
}

StepResult<void> PidFile::write_pid(pid_t pid) {
  if (fd_ < 0) return step_failed(StepError::plain("pidfile", "The pidfile is not held"));
  auto emptied = os_->ftruncate(fd_, 0);
  if (!emptied) return step_failed(StepError::from(call_on("ftruncate", path_), emptied.error()));
  // O_APPEND puts this write at offset 0 of the now empty file, wherever reading left the
  // offset; there is no lseek in the seam to need.
  const std::string line = fmt::format("{}\n", pid);
  std::size_t done = 0;
  while (done < line.size()) {
    auto wrote = sys::retry_on_eintr(
        [&] { return os_->write(fd_, line.data() + done, line.size() - done); });
    if (!wrote) return step_failed(StepError::from(call_on("write", path_), wrote.error()));
    if (*wrote == 0) {
      return step_failed(StepError::from(call_on("write", path_), sys::Error{EIO, "write", {}}));
    }
    done += *wrote;
  }
  return {};
}

StepResult<void> PidFile::keep_across_exec() {
  if (fd_ < 0) return step_failed(StepError::plain("pidfile", "The pidfile is not held"));
  auto set = os_->fcntl(fd_, F_SETFD, 0);
  if (!set) return step_failed(StepError::from(call_on("fcntl", path_), set.error()));
  return {};
}

void PidFile::relocate_for_chroot(std::string_view chroot_dir) {
  while (chroot_dir.size() > 1 && chroot_dir.back() == '/') chroot_dir.remove_suffix(1);
  if (chroot_dir == "/" || chroot_dir.empty()) return;
  const std::string_view current = reach_path_;
  if (current.size() > chroot_dir.size() && current.substr(0, chroot_dir.size()) == chroot_dir &&
      current[chroot_dir.size()] == '/') {
    reach_path_ = std::string(current.substr(chroot_dir.size()));
  } else {
    reach_path_.clear();
  }
}

void PidFile::release() {
  if (fd_ < 0) return;
  bool removed = false;
  if (reach_path_.empty()) {
    log_line(log_, fmt::format(
                       "PID file {} is outside the chroot; emptied it instead of removing it",
                       path_));
  } else if (auto named = os_->lstat(reach_path_.c_str()); !named) {
    // ENOENT: someone removed it already; emptying our inode below costs nothing.
    if (named.error().code != ENOENT) {
      log_line(log_, fmt::format("Failed to unlink PID file: {}",
                                 StepError::from(call_on("lstat", path_), named.error()).message));
    }
  } else if (named->st_dev != dev_ || named->st_ino != ino_) {
    log_line(log_, fmt::format("PID file {} now names another file; left it alone", path_));
  } else if (auto unlinked = os_->unlink(reach_path_.c_str()); unlinked) {
    removed = true;
  } else if (unlinked.error().code == EACCES || unlinked.error().code == EPERM) {
    log_line(log_, fmt::format("Warning: No permission to delete pid file {}; emptied it instead",
                               path_));
  } else {
    log_line(log_, fmt::format("Failed to unlink PID file: {}",
                               StepError::from(call_on("unlink", path_), unlinked.error()).message));
  }
  // Whatever is left of our inode must not name a live pid any more. Through the descriptor we
  // hold, this needs no permission on the directory.
  if (!removed) {
    if (auto emptied = os_->ftruncate(fd_, 0); !emptied) {
      log_line(log_, fmt::format("Failed to empty PID file: {}",
                                 StepError::from(call_on("ftruncate", path_), emptied.error()).message));
    }
  }
  (void)os_->close(fd_);
  fd_ = -1;
}

}  // namespace daemonkit::core

namespace daemonkit::core {

StepResult<void> release_unless_locked(sys::Syscalls& os, PidFile file,
                                       std::chrono::milliseconds patience) {
  constexpr std::chrono::milliseconds kLockRetry{10};
  if (!file.held()) return {};
  const std::string& path = file.path();
  // The PidFile's destructor does no I/O; closing its descriptor here is all it gets.
  auto ours = os.fstat(file.fd());
  (void)os.close(file.fd());
  if (!ours) return step_failed(StepError::from(call_on("fstat", path), ours.error()));

  auto fresh = sys::retry_on_eintr(
      [&] { return os.open(path.c_str(), (kOpenFlags & ~(O_CREAT | O_APPEND)), 0); });
  if (!fresh) {
    if (fresh.error().code == ENOENT) return {};
    return step_failed(StepError::from(call_on("open", path), fresh.error()));
  }
  auto result = [&]() -> StepResult<void> {
    auto locked = sys::retry_on_eintr([&] { return os.flock(*fresh, LOCK_EX | LOCK_NB); });
    // Counted in sleeps, not by the clock, so it stays bounded whatever the clock does.
    for (auto waited = std::chrono::milliseconds(0);
         !locked && locked.error().code == EWOULDBLOCK && waited < patience; waited += kLockRetry) {
      (void)os.poll(nullptr, 0, static_cast<int>(kLockRetry.count()));
      locked = sys::retry_on_eintr([&] { return os.flock(*fresh, LOCK_EX | LOCK_NB); });
    }
    if (!locked && locked.error().code == EWOULDBLOCK) {
      return step_failed(StepError::plain(
          "pidfile",
          fmt::format("the PID file {} is still locked by another process; left it in place",
                      path)));
    }
    if (!locked) return step_failed(StepError::from(call_on("flock", path), locked.error()));
    auto st = os.fstat(*fresh);
    if (!st) return step_failed(StepError::from(call_on("fstat", path), st.error()));
    if (st->st_dev != ours->st_dev || st->st_ino != ours->st_ino) return {};
    auto named = os.lstat(path.c_str());
    if (!named) {
      if (named.error().code == ENOENT) return {};
      return step_failed(StepError::from(call_on("lstat", path), named.error()));
    }
    if (named->st_dev != st->st_dev || named->st_ino != st->st_ino) return {};
    if (auto unlinked = os.unlink(path.c_str()); !unlinked) {
      (void)os.ftruncate(*fresh, 0);
      return step_failed(StepError::from(call_on("unlink", path), unlinked.error()));
    }
    return {};
  }();
  (void)os.close(*fresh);
  return result;
}

}  // namespace daemonkit::core
