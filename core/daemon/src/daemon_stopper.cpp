#include "daemonkit/core/daemon/daemon_stopper.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;

// Without a pidfd to wake on, the wait looks again this often.
constexpr milliseconds kWaitStep{50};

void note(DaemonStop& stop, const std::string& trouble) {
  if (stop.trouble.empty()) stop.trouble = trouble;
}

// Reaps the daemon if it has ended. The pid is safe to wait for: it is our unreaped child.
sys::Result<bool> reap_if_ended(sys::Syscalls& os, pid_t pid) {
  auto waited = os.waitpid(pid, WNOHANG);
  if (!waited) return sys::fail(waited.error());
  return waited->pid == pid;
}

void send(sys::Syscalls& os, int pidfd, pid_t group, int sig, DaemonStop& stop) {
  (void)os.kill(-group, sig);  // ESRCH: nobody is left in the group
  if (pidfd < 0) return;
  if (auto sent = os.pidfd_send_signal(pidfd, sig, 0); !sent) {
    note(stop, fmt::format("{}", sent.error().about(
                                     fmt::format("PID {}, SIG{}", stop.pid, sigabbrev_np(sig)))));
  }
}

// Waits up to `limit` for the daemon to end, and reaps it. Counted in poll timeouts rather than
// by the clock, so it stays bounded whatever the clock does: each round sleeps at most its step
// and uses it up.
bool wait_for_end(sys::Syscalls& os, int pidfd, milliseconds limit, DaemonStop& stop) {
  for (milliseconds left = limit;;) {
    auto ended = reap_if_ended(os, stop.pid);
    if (!ended) {
      note(stop, fmt::format("{}", ended.error().about(std::to_string(stop.pid))));
      return false;
    }
    if (*ended) return true;
    if (left <= milliseconds(0)) return false;
    const milliseconds step = pidfd >= 0 ? left : std::min(left, kWaitStep);
    pollfd fd{pidfd, POLLIN, 0};
    auto ready = os.poll(&fd, pidfd >= 0 ? 1 : 0, static_cast<int>(step.count()));
    if (!ready && ready.error().code != EINTR) {
      note(stop, fmt::format("{}", ready.error()));
      return false;
    }
    left -= step;
  }
}

}  // namespace

DaemonStop stop_daemon(sys::Syscalls& os, pid_t daemon, pid_t group) {
  DaemonStop stop;
  stop.pid = daemon;
  if (daemon <= 0) {
    (void)os.kill(-group, SIGTERM);
    stop.gone = true;
    return stop;
  }
  auto ended = reap_if_ended(os, daemon);
  if (!ended) {
    // Whether it lives cannot be told, so it is not ours to signal by pid; the group is.
    (void)os.kill(-group, SIGTERM);
    note(stop, fmt::format("{}", ended.error().about(std::to_string(daemon))));
    return stop;
  }
  if (*ended) {
    // It ended on its own; what it left in its group goes the way it would have.
    (void)os.kill(-group, SIGTERM);
    stop.gone = true;
    return stop;
  }
  stop.was_alive = true;
  // It cannot have been reused: it is our child (the intermediate is gone and we are its
  // subreaper) and we have not reaped it.
  auto opened = os.pidfd_open(daemon, 0);
  const int pidfd = opened ? *opened : -1;
  if (!opened) note(stop, fmt::format("{}", opened.error().about(std::to_string(daemon))));
  send(os, pidfd, group, SIGTERM, stop);
  stop.gone = wait_for_end(os, pidfd, kLaunchStopGrace, stop);
  if (!stop.gone) {
    stop.sent_kill = true;
    send(os, pidfd, group, SIGKILL, stop);
    stop.gone = wait_for_end(os, pidfd, kLaunchKillWait, stop);
  }
  if (pidfd >= 0) (void)os.close(pidfd);
  return stop;
}

std::string describe_stop(const DaemonStop& stop) {
  if (!stop.was_alive) {
    return stop.gone ? ""
                     : fmt::format("; could not tell whether it still runs ({})", stop.trouble);
  }
  const char* sent = stop.sent_kill ? "SIGTERM, then SIGKILL" : "SIGTERM";
  if (stop.gone) return fmt::format("; sent it {}", sent);
  // A call that failed may be why the signals did not reach it: then they were only tried.
  if (stop.trouble.empty()) {
    return fmt::format("; sent it {}, but it is still running as PID {}", sent, stop.pid);
  }
  return fmt::format("; tried {}, but it is still running as PID {} ({})", sent, stop.pid,
                     stop.trouble);
}

}  // namespace daemonkit::core
