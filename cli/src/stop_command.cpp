#include "daemonkit/cli/stop_command.h"

#include <poll.h>
#include <signal.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>

#include "daemonkit/cli/pid_probe.h"

namespace daemonkit::cli {
namespace {

using std::chrono::milliseconds;

// After SIGKILL the kernel ends the process promptly; this only bounds a wait that should
// never be long (an uninterruptible sleep on a dead NFS server, say).
constexpr milliseconds kKillWait{10000};

sys::Result<milliseconds> now(sys::Syscalls& os) {
  return os.clock_gettime(CLOCK_MONOTONIC).map([](const timespec& ts) {
    return milliseconds(static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
  });
}

// Waits until the process behind `pidfd` has exited (its pidfd polls readable), or `limit`.
sys::Result<bool> wait_exit(sys::Syscalls& os, int pidfd, milliseconds limit) {
  auto start = now(os);
  if (!start) return sys::fail(start.error());
  for (;;) {
    auto current = now(os);
    if (!current) return sys::fail(current.error());
    const milliseconds left = limit - (*current - *start);
    if (left.count() <= 0) return false;
    pollfd p{pidfd, POLLIN, 0};
    auto ready = os.poll(&p, 1, static_cast<int>(left.count()));
    if (!ready) {
      if (ready.error().code == EINTR) continue;
      return sys::fail(ready.error());
    }
    if (*ready > 0) return true;
  }
}

// Removes the PID file unless it has meanwhile been taken by another daemon.
void remove_pid_file(sys::Syscalls& os, const std::string& path, pid_t pid, std::string& err) {
  const PidFileState after = inspect_pid_file(os, path);
  if (after.kind == PidFileState::Kind::kMissing) return;  // the daemon removed it itself
  if (after.kind == PidFileState::Kind::kRunning && after.pid != pid) return;
  auto removed = os.unlink(path.c_str());
  if (!removed && removed.error().code != ENOENT) {
    err += fmt::format("daemonkit stop: {}\n", removed.error().about(path));
  }
}

}  // namespace

CommandResult run_stop(sys::Syscalls& os, const StopOptions& options) {
  const std::string& path = options.pidfile;
  const PidFileState state = inspect_pid_file(os, path);
  switch (state.kind) {
    case PidFileState::Kind::kMissing:
      return {1, "", fmt::format("daemonkit stop: no daemon is running (no PID file at {})\n",
                                 path)};
    case PidFileState::Kind::kNonNumeric:
      return {1, "", non_numeric_pidfile_message(path) + "\n"};
    case PidFileState::Kind::kUnreadable:
      return {1, "", fmt::format("daemonkit stop: {}\n", state.error)};
    case PidFileState::Kind::kDead: {
      std::string err = stale_pidfile_message(path) + "\n";
      auto removed = os.unlink(path.c_str());
      if (!removed && removed.error().code != ENOENT) {
        err += fmt::format("daemonkit stop: {}\n", removed.error().about(path));
      }
      err += "daemonkit stop: no daemon is running\n";
      return {1, "", err};
    }
    case PidFileState::Kind::kRunning:
      break;
  }
  if (state.pid <= 0) {
    return {1, "", fmt::format("daemonkit stop: the daemon holding {} has not written its pid "
                               "yet; try again\n",
                               path)};
  }

  auto pidfd = os.pidfd_open(state.pid, 0);
  if (!pidfd) {
    if (pidfd.error().code == ESRCH) {
      // It ended between our look at the file and now.
      std::string err;
      remove_pid_file(os, path, state.pid, err);
      return {0, "", err};
    }
    return {1, "", fmt::format("daemonkit stop: {}\n", pidfd.error().about(std::to_string(state.pid)))};
  }
  // The pid could have been reused between reading the file and opening the pidfd. If the file
  // still names it under the daemon's lock, the pidfd is the daemon's.
  if (state.locked) {
    const PidFileState again = inspect_pid_file(os, path);
    if (again.kind != PidFileState::Kind::kRunning || again.pid != state.pid) {
      (void)os.close(*pidfd);
      return {0, "", ""};  // it exited meanwhile, taking its lock with it
    }
  }

  CommandResult result;
  auto term = os.pidfd_send_signal(*pidfd, SIGTERM, 0);
  if (!term && term.error().code != ESRCH) {
    (void)os.close(*pidfd);
    return {1, "", fmt::format("daemonkit stop: {}\n", term.error().about(fmt::format(
                                                             "PID {}, SIGTERM", state.pid)))};
  }
  auto gone = wait_exit(os, *pidfd, options.timeout);
  if (gone && !*gone) {
    result.err += fmt::format("daemonkit stop: PID {} did not exit within {} seconds of SIGTERM; "
                              "sent SIGKILL\n",
                              state.pid, seconds_text(options.timeout));
    auto kill = os.pidfd_send_signal(*pidfd, SIGKILL, 0);
    if (kill || kill.error().code == ESRCH) gone = wait_exit(os, *pidfd, kKillWait);
  }
  (void)os.close(*pidfd);
  if (!gone) {
    result.code = 1;
    result.err += fmt::format("daemonkit stop: waiting for PID {}: {}\n", state.pid, gone.error());
    return result;
  }
  if (!*gone) {
    result.code = 1;
    result.err += fmt::format("daemonkit stop: PID {} is still running after SIGKILL\n",
                              state.pid);
    return result;
  }
  remove_pid_file(os, path, state.pid, result.err);
  return result;
}

}  // namespace daemonkit::cli
