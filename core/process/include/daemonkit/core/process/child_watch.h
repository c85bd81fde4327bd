// ChildWatch: learns, on the reactor, that one spawned child has exited, reaps exactly that
// child, and signals it without ever reaching another process.
//
// With a pidfd (made with the child by vfork_with_pidfd) the watch is a reader on the pidfd:
// it becomes readable when the child exits, and then waitpid(pid, WNOHANG) reaps it. No SIGCHLD
// handler and no waitpid(-1), so children that other code in this process spawned are never
// taken from it, and a signal goes through the pidfd, which cannot name a recycled pid.
// Without a pidfd (a kernel older than 5.2) it falls back to Reactor::watch_child: a
// waitpid(pid, WNOHANG) on each SIGCHLD the reactor routes (install_signal_handlers), and
// kill(pid), which is safe only while the child is unreaped and nothing else in this process
// reaps children it does not own.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/process/process_exit.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class ChildWatch {
 public:
  using OnExit = std::function<void(const ProcessExit&)>;

  // Watches `pid`, this process's unreaped child; takes `pidfd` (empty: the fallback). on_exit
  // runs once, on the reactor, after the child is reaped; it may destroy this watch. A child
  // that has exited already is reaped at the reactor's next look at its descriptors (with a
  // pidfd) or now (the fallback, as Twisted's registerReapProcessHandler). Fails when the
  // reactor cannot watch the pidfd (epoll_ctl), or kAlreadyRegistered in the fallback.
  [[nodiscard]] static ReactorResult<std::unique_ptr<ChildWatch>> start(Reactor& reactor,
                                                                        sys::Syscalls& os,
                                                                        pid_t pid, OwnedFd pidfd,
                                                                        OnExit on_exit);

  // Stops watching. A child still running is left to run, and stays unreaped: a watch never
  // kills what it was only told to watch.
  ~ChildWatch();
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;

  // Sends `sig` (0 checks that the child still exists). Once the child is reaped this fails
  // with ESRCH without any system call: its pid may already be someone else's.
  [[nodiscard]] sys::Result<void> signal(int sig);

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool reaped() const { return reaped_; }
  [[nodiscard]] bool has_pidfd() const { return pidfd_.valid(); }

 private:
  ChildWatch(Reactor& reactor, sys::Syscalls& os, pid_t pid, OwnedFd pidfd, OnExit on_exit);

  void on_pidfd_readable();
  // Marks the child reaped, drops what watched it, and runs on_exit last.
  void finish(const ProcessExit& exit);

  Reactor& reactor_;
  sys::Syscalls& os_;
  pid_t pid_;
  OwnedFd pidfd_;
  OnExit on_exit_;
  DelayedCall early_exit_;  // the fallback's exit of a child that had ended before start
  bool reaped_ = false;
  bool watching_ = false;
  bool starting_ = false;  // inside start's watch_child call
};

}  // namespace daemonkit::core
