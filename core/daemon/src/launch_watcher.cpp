#include "launch_watcher.h"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace daemonkit::core::detail {
namespace {

using std::chrono::milliseconds;

sys::Result<milliseconds> monotonic(sys::Syscalls& os) {
  return os.clock_gettime(CLOCK_MONOTONIC).map([](const timespec& ts) {
    return milliseconds(static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000);
  });
}

}  // namespace

sys::Result<NotifySocket> open_notify_socket(sys::Syscalls& os) {
  auto fd = os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (!fd) return sys::fail(fd.error());
  const int on = 1;
  if (auto set = os.setsockopt(*fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on); !set) {
    (void)os.close(*fd);
    return sys::fail(set.error());
  }
  auto now = os.clock_gettime(CLOCK_MONOTONIC);
  const long long nanos = now ? now->tv_sec * 1000000000LL + now->tv_nsec : 0;
  const std::string name = fmt::format("daemonkit/notify/{}/{:x}", os.getpid(), nanos);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  addr.sun_path[0] = '\0';
  std::copy(name.begin(), name.end(), addr.sun_path + 1);
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (auto bound = os.bind(*fd, reinterpret_cast<const sockaddr*>(&addr), len); !bound) {
    (void)os.close(*fd);
    return sys::fail(bound.error());
  }
  return NotifySocket{*fd, "@" + name};
}

LaunchOutcome LaunchWatcher::wait() {
  LaunchOutcome outcome = wait_for_outcome();
  if (auto* failed = std::get_if<LaunchFailed>(&outcome); failed != nullptr && ignored_ > 0) {
    failed->message += ignored_ == 1
                           ? "; ignored 1 notification from a process outside the daemon's "
                             "session"
                           : fmt::format(
                                 "; ignored {} notifications from processes outside "
                                 "the daemon's session",
                                 ignored_);
  }
  return outcome;
}

LaunchOutcome LaunchWatcher::wait_for_outcome() {
  auto start = monotonic(os_);
  if (!start) return LaunchFailed{fmt::format("{}", start.error()), true};
  for (;;) {
    auto now = monotonic(os_);
    if (!now) return LaunchFailed{fmt::format("{}", now.error()), true};
    const milliseconds elapsed = *now - *start;
    if (auto outcome = waiter_.on_time(elapsed)) return *outcome;
    const auto wake = waiter_.wake_after(elapsed);

    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    int pipe_slot = -1;
    int notify_slot = -1;
    if (waiter_.pipe_open()) {
      pipe_slot = static_cast<int>(count);
      fds[count++] = pollfd{pipe_fd_, POLLIN, 0};
    }
    if (notify_fd_ >= 0) {
      notify_slot = static_cast<int>(count);
      fds[count++] = pollfd{notify_fd_, POLLIN, 0};
    }
    const auto signal_slot = static_cast<int>(count);
    fds[count++] = pollfd{signal_fd_, POLLIN, 0};
    const int timeout_ms =
        wake ? static_cast<int>(std::min<long long>(wake->count() + 1, 1 << 30)) : -1;
    auto ready = os_.poll(fds.data(), count, timeout_ms);
    if (!ready) {
      if (ready.error().code == EINTR) continue;
      return LaunchFailed{fmt::format("{}", ready.error()), true};
    }
    // The pipe and the socket first: what the daemon said before it died counts.
    if (pipe_slot >= 0 && fds[static_cast<std::size_t>(pipe_slot)].revents != 0) {
      if (auto outcome = drain_pipe()) return *outcome;
    }
    if (notify_slot >= 0 && fds[static_cast<std::size_t>(notify_slot)].revents != 0) {
      if (auto outcome = drain_notify()) return *outcome;
    }
    if (fds[static_cast<std::size_t>(signal_slot)].revents != 0) {
      if (auto outcome = reap()) return *outcome;
    }
  }
}

std::optional<LaunchOutcome> LaunchWatcher::drain_pipe() {
  while (waiter_.pipe_open()) {
    char buffer[128];
    auto n = os_.read(pipe_fd_, buffer, sizeof buffer);
    if (!n) {
      if (n.error().code == EINTR) continue;
      if (n.error().code == EAGAIN) return waiter_.on_pipe_drained();
      return LaunchFailed{fmt::format("reading the status pipe: {}", n.error()), true};
    }
    if (*n == 0) {
      // Under --ready=exec this end is the verdict; a death already known is part of it.
      if (auto died = reap_daemon_if_ended()) return died;
      return waiter_.on_pipe_eof();
    }
    if (auto outcome = waiter_.on_pipe_bytes(std::string_view(buffer, *n))) return outcome;
  }
  return std::nullopt;
}

// The control buffer has room for the credentials alone: descriptors a sender attaches
// (SCM_RIGHTS) find no room and the kernel closes them rather than install them here.
std::optional<LaunchOutcome> LaunchWatcher::drain_notify() {
  if (notify_fd_ < 0) return std::nullopt;
  for (;;) {
    char buffer[4096];
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buffer, sizeof buffer};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    auto n = os_.recvmsg(notify_fd_, &msg, MSG_DONTWAIT);
    if (!n) {
      if (n.error().code == EINTR) continue;
      if (n.error().code == EAGAIN) return std::nullopt;  // nothing more queued
      // Anything else would come back at every poll, and the launcher would spin on it.
      return LaunchFailed{fmt::format("reading the notify socket: {}", n.error()), true};
    }
    if (!sent_by_the_daemons_session(msg)) {
      ++ignored_;
      continue;
    }
    const std::size_t length = std::min(*n, sizeof buffer);
    if (auto outcome = waiter_.on_notify(std::string_view(buffer, length))) return outcome;
  }
}

bool LaunchWatcher::sent_by_the_daemons_session(msghdr& msg) {
  const cmsghdr* header = CMSG_FIRSTHDR(&msg);
  if (header == nullptr || header->cmsg_level != SOL_SOCKET ||
      header->cmsg_type != SCM_CREDENTIALS || header->cmsg_len < CMSG_LEN(sizeof(ucred))) {
    return false;
  }
  ucred sender{};
  std::memcpy(&sender, CMSG_DATA(header), sizeof sender);
  // Pid 0: a sender outside our pid namespace, or a datagram queued before SO_PASSCRED;
  // getsid(0) would answer with the launcher's own session.
  if (sender.pid <= 0) return false;
  auto session = os_.getsid(sender.pid);
  return session && *session == intermediate_;
}

std::optional<LaunchOutcome> LaunchWatcher::reap() {
  signalfd_siginfo info{};
  while (os_.read(signal_fd_, &info, sizeof info)) {
  }
  // Before any waitpid: a dead sender can only be placed in its session while a zombie.
  if (auto said = drain_notify()) return said;
  for (;;) {
    auto waited = os_.waitpid(-1, WNOHANG);
    if (!waited) {
      if (waited.error().code == EINTR) continue;
      return std::nullopt;  // ECHILD: nobody left to wait for
    }
    if (waited->pid == 0) return std::nullopt;
    std::optional<LaunchOutcome> outcome;
    if (waited->pid == intermediate_) {
      outcome = waiter_.on_intermediate_exit(waited->status);
    } else if (waited->pid == daemon_) {
      // The daemon, reparented to us (we are its subreaper). Whatever it wrote before it
      // died is read first.
      daemon_reaped_ = true;
      if (auto said = drain_pipe()) return said;
      if (auto said = drain_notify()) return said;
      outcome = waiter_.on_daemon_exit(waited->status);
    }
    // Anything else is an orphan of PROGRAM's, come to us as the subreaper: collected, and
    // no concern of the launch's.
    if (outcome) return outcome;
  }
}

std::optional<LaunchOutcome> LaunchWatcher::reap_daemon_if_ended() {
  if (daemon_ <= 0 || daemon_reaped_) return std::nullopt;
  // Before waitpid: a dead sender can only be placed in its session while a zombie.
  if (auto said = drain_notify()) return said;
  auto waited = os_.waitpid(daemon_, WNOHANG);
  // A failure tells nothing of the daemon; the launch goes on as if it lived.
  if (!waited || waited->pid != daemon_) return std::nullopt;
  daemon_reaped_ = true;
  return waiter_.on_daemon_exit(waited->status);
}

}  // namespace daemonkit::core::detail
