#include "daemonkit/cli/pid_probe.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "daemonkit/core/pid_file.h"

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
  auto fd = os.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0);
  if (!fd) {
    if (fd.error().code == ENOENT) return state;  // kMissing
    state.kind = PidFileState::Kind::kUnreadable;
    state.error = fd.error().about(path);
    return state;
  }
  // A shared lock is granted unless the daemon holds its exclusive one; it is dropped at close.
  auto lock = os.flock(*fd, LOCK_SH | LOCK_NB);
  auto text = read_small(os, *fd);
  (void)os.close(*fd);
  if (!text) {
    state.kind = PidFileState::Kind::kUnreadable;
    state.error = text.error().about(path);
    return state;
  }
  const core::PidFileContent content = core::parse_pid_file(*text);
  const std::optional<pid_t> pid =
      content.kind == core::PidFileContent::Kind::kPid ? std::optional(content.pid) : std::nullopt;
  if (!lock && lock.error().code == EWOULDBLOCK) {
    state.kind = PidFileState::Kind::kRunning;
    state.locked = true;
    state.pid = pid.value_or(0);
    return state;
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
  state.kind = *liveness == core::PidLiveness::kRunning ? PidFileState::Kind::kRunning
                                                         : PidFileState::Kind::kDead;
  return state;
}

std::string non_numeric_pidfile_message(std::string_view path) {
  return core::non_numeric_message(path);
}

std::string stale_pidfile_message(std::string_view path) {
  return core::stale_pidfile_message(path);
}

}  // namespace daemonkit::cli
