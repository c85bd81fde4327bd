#include "daemonkit/cli/pid_probe.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <climits>
#include <optional>

#include <fmt/format.h>

#include "daemonkit/core/pid_file.h"

namespace daemonkit::cli {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

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

bool is_zombie(sys::Syscalls& os, pid_t pid) {
  const std::string path = fmt::format("/proc/{}/stat", pid);
  auto fd = os.open(path.c_str(), O_RDONLY | O_CLOEXEC, 0);
  if (!fd) return false;
  char buffer[512];
  auto n = os.read(*fd, buffer, sizeof buffer);
  (void)os.close(*fd);
  if (!n) return false;
  // "pid (comm) S ...": the state follows the last ')', since comm may itself hold one.
  const std::string_view stat(buffer, *n);
  const std::size_t paren = stat.rfind(')');
  return paren != std::string_view::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

std::optional<pid_t> parse_pid_text(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 10) return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > INT_MAX) return std::nullopt;
  return static_cast<pid_t>(negative ? -value : value);
}

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
  const std::optional<pid_t> pid = parse_pid_text(*text);
  if (!lock && lock.error().code == EWOULDBLOCK) {
    state.kind = PidFileState::Kind::kRunning;
    state.locked = true;
    state.pid = pid.value_or(0);
    return state;
  }
  if (!pid) {
    state.kind = PidFileState::Kind::kNonNumeric;
    return state;
  }
  state.pid = *pid;
  state.kind = PidFileState::Kind::kDead;
  // kill(0, 0) and kill(-1, 0) "succeed", and a pid equal to ours is a leftover of an earlier
  // life of this pid (a restarted container's PID 1): none of them is a running daemon.
  if (*pid <= 0 || *pid == os.getpid()) return state;
  auto alive = os.kill(*pid, 0);
  if ((alive && !is_zombie(os, *pid)) || (!alive && alive.error().code == EPERM)) {
    state.kind = PidFileState::Kind::kRunning;
  }
  return state;
}

std::string non_numeric_pidfile_message(std::string_view path) {
  return core::non_numeric_message(path);
}

std::string stale_pidfile_message(std::string_view path) {
  return core::stale_pidfile_message(path);
}

}  // namespace daemonkit::cli
