#include "daemonkit/cli/pid_probe.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "daemonkit/core/daemon/pid_file.h"

namespace daemonkit::cli {
namespace {

// Reads up to 64 bytes: a pid is never longer, and a huge file is garbage anyway.
sys::Result<std::string> read_small(sys::Syscalls& os, int fd) {
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

PidFileState inspect_pid_file(sys::Syscalls& os, const std::string& path) {
  PidFileState state;
  auto unreadable = [&](const sys::Error& error) {
    state.kind = PidFileState::Kind::kUnreadable;
    state.error = error.about(path);
    return state;
  };
  auto fd = os.open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0);
  if (!fd) {
    if (fd.error().code == ENOENT) return state;  // kMissing
    return unreadable(fd.error());
  }
  struct Closer {
    sys::Syscalls& os;
    int fd;
    ~Closer() { (void)os.close(fd); }
  } closer{os, *fd};
  auto st = os.fstat(*fd);
  if (!st) return unreadable(st.error());
  if (!S_ISREG(st->st_mode)) {
    state.kind = PidFileState::Kind::kNotRegular;
    return state;
  }
  state.dev = st->st_dev;
  state.ino = st->st_ino;
  // A shared lock is granted unless the daemon holds its exclusive one; it is dropped at close.
  auto lock = os.flock(*fd, LOCK_SH | LOCK_NB);
  if (!lock && lock.error().code != EWOULDBLOCK) return unreadable(lock.error());
  auto text = read_small(os, *fd);
  if (!text) return unreadable(text.error());
  const core::PidFileContent content = core::parse_pid_file(*text);
  const std::optional<pid_t> pid =
      content.kind == core::PidFileContent::Kind::kPid ? std::optional(content.pid) : std::nullopt;
  if (!lock) {
    state.kind = PidFileState::Kind::kLocked;
    state.pid = pid && *pid > 0 ? *pid : 0;
    if (state.pid == 0) return state;
    state.truth = core::judge_lock(os, state.pid, state.dev, state.ino);
    // Nobody seen holding it and no error: perhaps the instance ended while we looked.
    const bool unseen = state.truth.kind == core::LockTruth::Kind::kUnknown && !state.truth.error;
    if (!unseen || !os.flock(*fd, LOCK_SH | LOCK_NB)) return state;
    state.truth = {};
  }
  // An empty file nobody locks is as useless as garbage: twistd's int("") fails the same way.
  if (!pid) {
    state.kind = PidFileState::Kind::kNonNumeric;
    return state;
  }
  state.pid = *pid;
  auto liveness = core::probe_pid(os, *pid, os.getpid());
  if (!liveness) {
    state.kind = PidFileState::Kind::kUnreadable;
    state.error = liveness.error().about(std::to_string(*pid));
    return state;
  }
  state.kind = *liveness == core::PidLiveness::kRunning ? PidFileState::Kind::kUnlockedAlive
                                                        : PidFileState::Kind::kDead;
  return state;
}

std::string not_regular_message(std::string_view path) {
  return fmt::format("{} is not a regular file; not reading it", path);
}

std::string unlocked_alive_message(std::string_view path, pid_t pid) {
  return fmt::format(
      "PID file {} is not locked by any process; PID {} is alive but may not be "
      "the daemon (an older tool's file, one written by hand, or a reused pid)",
      path, pid);
}

std::string non_numeric_pidfile_message(std::string_view path) {
  return core::non_numeric_message(path);
}

std::string stale_pidfile_message(std::string_view path) {
  return core::stale_pidfile_message(path);
}

}  // namespace daemonkit::cli
