// The launcher's side of a launch (launch.h), once the intermediate has ended: the socket
// PROGRAM may send sd_notify datagrams to, and the loop that watches the status pipe, that
// socket and SIGCHLD until the readiness waiter has a verdict.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "daemonkit/core/daemon/readiness_waiter.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

struct NotifySocket {
  int fd = -1;
  std::string address;  // as NOTIFY_SOCKET spells it: "@name" for an abstract socket
};

// An abstract datagram socket: nothing to clean up in the filesystem, and reachable from
// inside a chroot and after privileges are dropped. Being abstract, its name is listed in
// /proc/net/unix for every local user to see and send to, so it asks the kernel to attach
// each sender's credentials (SO_PASSCRED, before the name exists) for drain_notify to judge.
sys::Result<NotifySocket> open_notify_socket(sys::Syscalls& os);

// Watches the status pipe, the notify socket (or -1) and a signalfd for SIGCHLD, and feeds
// what it sees to the waiter until the waiter decides.
class LaunchWatcher {
 public:
  // `daemon` is 0 when the intermediate made none.
  LaunchWatcher(sys::Syscalls& os, ReadinessWaiter& waiter, int pipe_fd, int notify_fd,
                int signal_fd, pid_t intermediate, pid_t daemon)
      : os_(os),
        waiter_(waiter),
        pipe_fd_(pipe_fd),
        notify_fd_(notify_fd),
        signal_fd_(signal_fd),
        intermediate_(intermediate),
        daemon_(daemon) {}

  // Whether the daemon's end has been collected: its pid may then name another process.
  [[nodiscard]] bool daemon_reaped() const { return daemon_reaped_; }
  // The outcome, with a note on the notifications that were refused when the launch failed:
  // an operator whose service "never got ready" learns that something else spoke for it.
  [[nodiscard]] LaunchOutcome wait();

 private:
  LaunchOutcome wait_for_outcome();
  std::optional<LaunchOutcome> drain_pipe();
  // Passes on what the daemon's session says and counts what others say.
  std::optional<LaunchOutcome> drain_notify();
  // systemd's NotifyAccess= for a launch: a notification counts only when the kernel names
  // its sender (SCM_CREDENTIALS; a process can claim another's pid only with CAP_SYS_ADMIN)
  // and that sender is in the session the intermediate made with setsid, whose id is the
  // intermediate's pid: the daemon, or a helper it forked that stayed in its session (as
  // systemd-notify run from a script), which is NotifyAccess=all within the launch. The id
  // cannot name anyone else while a member lives, because Linux hands out no pid still in
  // use as a session or group id: no other process can have it or make a session of it.
  // A sender gone before getsid looks (ESRCH) cannot be placed and is refused; the daemon's
  // own last words are read while it is still an unreaped zombie (see reap).
  bool sent_by_the_daemons_session(msghdr& msg);
  std::optional<LaunchOutcome> reap();
  std::optional<LaunchOutcome> reap_daemon_if_ended();

  sys::Syscalls& os_;
  ReadinessWaiter& waiter_;
  int pipe_fd_;
  int notify_fd_;
  int signal_fd_;
  pid_t intermediate_;
  std::size_t ignored_ = 0;  // notifications from outside the daemon's session
  pid_t daemon_;
  bool daemon_reaped_ = false;
};

}  // namespace daemonkit::core::detail
