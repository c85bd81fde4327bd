#include "daemonkit/core/daemon/pid_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/daemon/pid_lock_holder.h"
#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Every failure here is the PID file step's: a call that failed on it, or a refusal with no
// errno behind it (another instance runs, the file is not a PID file), which `daemonkit run`
// prints as twistd prints its own.
StepError pid_file_failed(std::string_view step, const sys::Error& error) {
  return StepError::from(StepKind::kPidFile, step, error);
}
StepError pid_file_refused(std::string message) {
  return StepError::plain(StepKind::kPidFile, std::move(message));
}

// A PID file is a line of digits; anything longer than this is not one.
constexpr std::size_t kMaxContentBytes = 64;
// How often acquire() starts over when the path stops naming the inode it locked. Each retry
// needs another process to unlink the file in the window between our open and our flock.
constexpr int kMaxLockAttempts = 8;

// The lock is taken, and kept for the daemon's life, on a read-only descriptor: flock needs no
// write access, and a daemon that sheds privileges must not keep a way to rewrite what `stop`
// and `status` read. O_NONBLOCK: a FIFO planted at the path must not hang the open.
constexpr int kOpenFlags = O_RDONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
// The short-lived descriptor that writes the pid (and empties the file), opened by path.
constexpr int kWriteFlags = O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;

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
void abandon(sys::Syscalls& os, OwnedFd fd, OwnedFd write_fd, bool created,
             const std::string& path) {
  write_fd.reset();
  if (created) {
    auto ours = os.flock(fd.get(), LOCK_EX | LOCK_NB);
    auto st = ours ? os.fstat(fd.get()) : sys::Result<struct stat>(sys::fail(EWOULDBLOCK, "flock"));
    auto named = st ? os.lstat(path.c_str()) : st;
    if (named && st && named->st_dev == st->st_dev && named->st_ino == st->st_ino &&
        st->st_size == 0) {
      (void)os.unlink(path.c_str());
    }
  }
}

// Opens `path` for writing and proves it is the inode (dev, ino) we locked: the name may have
// been replaced since, and writing our pid into another file would be a lie about it.
StepResult<OwnedFd> open_locked_inode_for_writing(sys::Syscalls& os, const std::string& path,
                                                  dev_t dev, ino_t ino) {
  auto opened = sys::retry_on_eintr([&] { return os.open(path.c_str(), kWriteFlags, 0); });
  if (!opened) return step_failed(pid_file_failed(call_on("open", path), opened.error()));
  OwnedFd fd(os, *opened);
  auto st = os.fstat(fd.get());
  if (!st) return step_failed(pid_file_failed(call_on("fstat", path), st.error()));
  if (st->st_dev != dev || st->st_ino != ino) {
    return step_failed(
        pid_file_refused(fmt::format("Pidfile {} no longer names the file we locked", path)));
  }
  return fd;
}

// Empties the file through `fd`, then writes `text` from offset 0 (the descriptor was opened
// without O_APPEND and has not moved).
sys::Result<void> replace_contents(sys::Syscalls& os, int fd, std::string_view text) {
  auto emptied = os.ftruncate(fd, 0);
  if (!emptied) return sys::fail(emptied.error());
  std::size_t done = 0;
  while (done < text.size()) {
    auto wrote =
        sys::retry_on_eintr([&] { return os.write(fd, text.data() + done, text.size() - done); });
    if (!wrote) return sys::fail(wrote.error());
    if (*wrote == 0) return sys::fail(EIO, "write");
    done += *wrote;
  }
  return {};
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
  auto opened = os.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (!opened) return false;
  OwnedFd fd(os, *opened);
  // The state follows the comm, which is at most 15 bytes but may hold ')' and spaces.
  std::array<char, 128> buffer{};
  auto got = sys::retry_on_eintr([&] { return os.read(fd.get(), buffer.data(), buffer.size()); });
  fd.reset();
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
  return another_server_message_with(
      pid ? fmt::format("Another server is running, PID {}", *pid)
          : std::string("Another server is running (it holds the lock)"));
}

std::string another_server_message_with(std::string_view head) {
  return std::string(head) +
         "\n\n"
         "This could either be a previously started instance of your application or a\n"
         "different application entirely. To start a new one, either run it in some other\n"
         "directory, or use the --pidfile and --logfile parameters to avoid clashes.\n";
}

std::string held_lock_message(sys::Syscalls& os, std::string_view path, std::optional<pid_t> named,
                              dev_t dev, ino_t ino) {
  if (!named) return another_server_message(std::nullopt);
  const LockTruth truth = judge_lock(os, *named, dev, ino);
  switch (truth.kind) {
    case LockTruth::Kind::kNamedHolds:
      return another_server_message(named);
    case LockTruth::Kind::kNamedExited:
    case LockTruth::Kind::kNamedNotHolder:
      return another_server_message_with(
          fmt::format("Another server is running: {}", lock_truth_message(path, *named, truth)));
    case LockTruth::Kind::kUnknown:
      break;
  }
  return another_server_message_with(fmt::format(
      "Another server is running (it holds the lock on {}); its file names PID {}, which could "
      "not be proven to hold it{}",
      path, *named, truth.error ? fmt::format(": {}", *truth.error) : std::string()));
}

std::string non_numeric_message(std::string_view path) {
  return fmt::format("Pidfile {} contains non-numeric value", path);
}

std::string stale_pidfile_message(std::string_view path) {
  return fmt::format("Removing stale pidfile {}", path);
}

PidFile::PidFile(sys::Syscalls& os, std::string path, std::string reach_path, int fd, int write_fd,
                 LogSink log, dev_t dev, ino_t ino)
    : os_(&os),
      path_(std::move(path)),
      reach_path_(std::move(reach_path)),
      fd_(fd),
      write_fd_(write_fd),
      log_(std::move(log)),
      dev_(dev),
      ino_(ino) {}

PidFile::PidFile(PidFile&& other) noexcept
    : os_(other.os_),
      path_(std::move(other.path_)),
      reach_path_(std::move(other.reach_path_)),
      fd_(std::exchange(other.fd_, -1)),
      write_fd_(std::exchange(other.write_fd_, -1)),
      log_(std::move(other.log_)),
      dev_(other.dev_),
      ino_(other.ino_) {}

PidFile& PidFile::operator=(PidFile&& other) noexcept {
  if (this != &other) {
    os_ = other.os_;
    path_ = std::move(other.path_);
    reach_path_ = std::move(other.reach_path_);
    fd_ = std::exchange(other.fd_, -1);
    write_fd_ = std::exchange(other.write_fd_, -1);
    log_ = std::move(other.log_);
    dev_ = other.dev_;
    ino_ = other.ino_;
  }
  return *this;
}

StepResult<PidFile> PidFile::acquire(sys::Syscalls& os, std::string path, LogSink log,
                                     PidFileOptions options) {
  if (path.empty()) return step_failed(pid_file_refused("The pidfile path is empty"));
  if (path.front() != '/') {
    auto cwd = os.getcwd();
    if (!cwd) return step_failed(pid_file_failed("getcwd", cwd.error()));
    path = (cwd->size() > 1 ? *cwd : std::string()) + "/" + path;
  }

  // Open, lock, then make sure the path still names what we locked. Without the re-check, a
  // daemon that unlinks the file on exit between our open and our flock would leave us holding
  // a lock on an orphan inode while the next starter creates and locks a fresh file.
  OwnedFd fd;
  OwnedFd write_fd;
  bool created = false;
  struct stat locked {};
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMaxLockAttempts) {
      return step_failed(pid_file_refused(
          fmt::format("Pidfile {} kept being replaced while it was locked", path)));
    }
    // O_EXCL first, to know whether the file is ours to remove should the start fail.
    auto opened = sys::retry_on_eintr(
        [&] { return os.open(path.c_str(), kOpenFlags | O_EXCL, options.mode); });
    created = static_cast<bool>(opened);
    if (!opened && opened.error().code == EEXIST) {
      opened = sys::retry_on_eintr([&] { return os.open(path.c_str(), kOpenFlags & ~O_CREAT, 0); });
      // Removed between the two opens: start over.
      if (!opened && opened.error().code == ENOENT) continue;
    }
    if (!opened) return step_failed(pid_file_failed(call_on("open", path), opened.error()));
    fd = OwnedFd(os, *opened);
    auto fail_closing = [&](StepError error) {
      abandon(os, std::move(fd), {}, created, path);
      return step_failed(std::move(error));
    };

    auto st = os.fstat(fd.get());
    if (!st) return fail_closing(pid_file_failed(call_on("fstat", path), st.error()));
    if (!S_ISREG(st->st_mode)) {
      return fail_closing(pid_file_refused(fmt::format("Pidfile {} is not a regular file", path)));
    }

    auto locked_now = sys::retry_on_eintr([&] { return os.flock(fd.get(), LOCK_EX | LOCK_NB); });
    if (!locked_now) {
      if (locked_now.error().code != EWOULDBLOCK) {
        return fail_closing(pid_file_failed(call_on("flock", path), locked_now.error()));
      }
      // Someone holds the lock: that is the running instance, whatever the file says. The pid
      // in the file is named only once proven to hold the lock (its children may hold it after
      // it died, and the pid may since have been reused).
      std::optional<pid_t> named;
      if (auto text = read_content(os, fd.get())) {
        const PidFileContent content = parse_pid_file(*text);
        if (content.kind == PidFileContent::Kind::kPid && content.pid > 0) named = content.pid;
      }
      fd.reset();
      return step_failed(
          pid_file_refused(held_lock_message(os, path, named, st->st_dev, st->st_ino)));
    }

    auto named = os.lstat(path.c_str());
    if (!named) {
      if (named.error().code == ENOENT) {
        fd.reset();
        continue;
      }
      return fail_closing(pid_file_failed(call_on("lstat", path), named.error()));
    }
    if (named->st_dev != st->st_dev || named->st_ino != st->st_ino) {
      fd.reset();
      continue;
    }
    // The writing descriptor is opened now, before any chroot or privilege drop, while the
    // path is reachable and writable; write_pid closes it once the pid is in.
    auto writer = open_locked_inode_for_writing(os, path, st->st_dev, st->st_ino);
    if (!writer) {
      // Replaced or removed since the check: start over, as above.
      if (!writer.error().cause || writer.error().cause->code == ENOENT) {
        fd.reset();
        continue;
      }
      return fail_closing(writer.error());
    }
    write_fd = std::move(*writer);
    locked = *st;
    break;
  }

  auto fail_closing = [&](StepError error) {
    abandon(os, std::move(fd), std::move(write_fd), created, path);
    return step_failed(std::move(error));
  };
  auto text = read_content(os, fd.get());
  if (!text) return fail_closing(pid_file_failed(call_on("read", path), text.error()));
  const PidFileContent content = parse_pid_file(*text);
  switch (content.kind) {
    case PidFileContent::Kind::kEmpty:
      break;
    case PidFileContent::Kind::kNonNumeric:
      return fail_closing(pid_file_refused(non_numeric_message(path)));
    case PidFileContent::Kind::kPid: {
      PidLiveness liveness = PidLiveness::kStale;
      if (options.unlocked == UnlockedPidFilePolicy::kProbeWithKill) {
        auto probed = probe_pid(os, content.pid, os.getpid());
        if (!probed) {
          return fail_closing(pid_file_refused(
              fmt::format("Can't check status of PID {} from pidfile {}: {}", content.pid, path,
                          sys::describe_failure(call_on("kill", std::to_string(content.pid)),
                                                probed.error().code))));
        }
        liveness = *probed;
      }
      if (liveness == PidLiveness::kRunning) {
        return fail_closing(pid_file_refused(another_server_message(content.pid)));
      }
      log_line(log, stale_pidfile_message(path));
      // Emptied in place rather than unlinked: we hold the lock on this inode, and unlinking it
      // would let a concurrent starter create and lock a second file under the same name.
      auto emptied = os.ftruncate(write_fd.get(), 0);
      if (!emptied)
        return fail_closing(pid_file_failed(call_on("ftruncate", path), emptied.error()));
      break;
    }
  }
  std::string reach = path;
  // The PidFile takes both descriptors over and closes them in release() (see its note on why
  // it holds them as numbers).
  return PidFile(os, std::move(path), std::move(reach), fd.release(), write_fd.release(),
                 std::move(log), locked.st_dev, locked.st_ino);
}

StepResult<void> PidFile::write_pid(pid_t pid) {
  if (fd_ < 0) return step_failed(pid_file_refused("The pidfile is not held"));
  if (write_fd_ < 0) {
    if (reach_path_.empty()) {
      return step_failed(pid_file_refused(
          fmt::format("Pidfile {} is outside the chroot; cannot write it", path_)));
    }
    auto writer = open_locked_inode_for_writing(*os_, reach_path_, dev_, ino_);
    if (!writer) return step_failed(writer.error());
    write_fd_ = writer->release();
  }
  auto written = replace_contents(*os_, write_fd_, fmt::format("{}\n", pid));
  // Closed whatever happened: after this, nothing this process keeps can change the file.
  (void)os_->close(std::exchange(write_fd_, -1));
  if (!written) {
    return step_failed(pid_file_failed(call_on(written.error().call, path_), written.error()));
  }
  return {};
}

void PidFile::close_writer(int fd) {
  if (fd >= 0) (void)os_->close(fd);
  write_fd_ = -1;
}

StepResult<void> PidFile::keep_across_exec() {
  if (fd_ < 0) return step_failed(pid_file_refused("The pidfile is not held"));
  auto set = os_->fcntl(fd_, F_SETFD, 0);
  if (!set) return step_failed(pid_file_failed(call_on("fcntl", path_), set.error()));
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
    log_line(log_, fmt::format("PID file {} is outside the chroot; cannot remove it", path_));
  } else if (auto named = os_->lstat(reach_path_.c_str()); !named) {
    // ENOENT: someone removed it already; emptying our inode below costs nothing.
    if (named.error().code != ENOENT) {
      log_line(log_, fmt::format("Failed to unlink PID file: {}",
                                 sys::to_string(named.error().about(path_))));
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
                               sys::to_string(unlinked.error().about(path_))));
  }
  // Whatever is left of our inode should not name our pid any more. The descriptor we keep is
  // read-only (see kOpenFlags), so the file is opened for writing again by its path, which
  // needs write permission on the file (not on its directory).
  if (!removed) {
    std::optional<StepError> failed;
    if (write_fd_ < 0 && reach_path_.empty()) {
      failed = pid_file_refused("its path is outside the chroot");
    } else if (write_fd_ < 0) {
      auto writer = open_locked_inode_for_writing(*os_, reach_path_, dev_, ino_);
      if (writer) {
        write_fd_ = writer->release();
      } else {
        failed = writer.error();
      }
    }
    if (!failed) {
      if (auto emptied = os_->ftruncate(write_fd_, 0); !emptied) {
        failed = pid_file_failed(call_on("ftruncate", path_), emptied.error());
      }
    }
    if (failed) {
      log_line(log_, fmt::format("Failed to empty PID file {}: {}; it is left unlocked, so the "
                                 "next start finds it stale unless its PID names a live process",
                                 path_, failed->message));
    }
  }
  if (write_fd_ >= 0) (void)os_->close(std::exchange(write_fd_, -1));
  (void)os_->close(fd_);
  fd_ = -1;
}

}  // namespace daemonkit::core

namespace daemonkit::core {

StepResult<PidFileRemoval> remove_pid_file_if_unlocked(sys::Syscalls& os, const std::string& path,
                                                       dev_t dev, ino_t ino,
                                                       std::chrono::milliseconds patience) {
  constexpr std::chrono::milliseconds kLockRetry{10};
  // For writing, so that a file it may not remove can at least be emptied (the lock's own
  // descriptor is read-only); flock does not care about the mode.
  auto opened = sys::retry_on_eintr([&] { return os.open(path.c_str(), kWriteFlags, 0); });
  if (!opened) {
    if (opened.error().code == ENOENT) return PidFileRemoval::kNotOurs;
    return step_failed(pid_file_failed(call_on("open", path), opened.error()));
  }
  // Held, and so the lock with it, until the function returns: after the unlink.
  const OwnedFd fresh(os, *opened);
  auto locked = sys::retry_on_eintr([&] { return os.flock(fresh.get(), LOCK_EX | LOCK_NB); });
  // Counted in sleeps, not by the clock, so it stays bounded whatever the clock does.
  for (auto waited = std::chrono::milliseconds(0);
       !locked && locked.error().code == EWOULDBLOCK && waited < patience; waited += kLockRetry) {
    (void)os.poll(nullptr, 0, static_cast<int>(kLockRetry.count()));
    locked = sys::retry_on_eintr([&] { return os.flock(fresh.get(), LOCK_EX | LOCK_NB); });
  }
  if (!locked && locked.error().code == EWOULDBLOCK) return PidFileRemoval::kStillLocked;
  if (!locked) return step_failed(pid_file_failed(call_on("flock", path), locked.error()));
  auto st = os.fstat(fresh.get());
  if (!st) return step_failed(pid_file_failed(call_on("fstat", path), st.error()));
  if (st->st_dev != dev || st->st_ino != ino) return PidFileRemoval::kNotOurs;
  auto named = os.lstat(path.c_str());
  if (!named) {
    if (named.error().code == ENOENT) return PidFileRemoval::kNotOurs;
    return step_failed(pid_file_failed(call_on("lstat", path), named.error()));
  }
  if (named->st_dev != st->st_dev || named->st_ino != st->st_ino) return PidFileRemoval::kNotOurs;
  if (auto unlinked = os.unlink(path.c_str()); !unlinked) {
    if (unlinked.error().code == ENOENT) return PidFileRemoval::kNotOurs;
    (void)os.ftruncate(fresh.get(), 0);
    return step_failed(pid_file_failed(call_on("unlink", path), unlinked.error()));
  }
  return PidFileRemoval::kRemoved;
}

StepResult<void> release_unless_locked(sys::Syscalls& os, PidFile file,
                                       std::chrono::milliseconds patience) {
  if (!file.held()) return {};
  const std::string& path = file.path();
  // The PidFile's destructor does no I/O; closing its descriptor here is all it gets.
  auto ours = os.fstat(file.fd());
  (void)os.close(file.fd());
  if (!ours) return step_failed(pid_file_failed(call_on("fstat", path), ours.error()));
  auto removed = remove_pid_file_if_unlocked(os, path, ours->st_dev, ours->st_ino, patience);
  if (!removed) return step_failed(removed.error());
  if (*removed == PidFileRemoval::kStillLocked) {
    return step_failed(pid_file_refused(
        fmt::format("the PID file {} is still locked by another process; left it in place", path)));
  }
  return {};
}

}  // namespace daemonkit::core
