#include "daemonkit/core/process/child_watch.h"

#include <sys/wait.h>

#include <cerrno>
#include <utility>

namespace daemonkit::core {

ChildWatch::ChildWatch(Reactor& reactor, sys::Syscalls& os, pid_t pid, OwnedFd pidfd,
                       OnExit on_exit)
    : reactor_(reactor),
      os_(os),
      pid_(pid),
      pidfd_(std::move(pidfd)),
      on_exit_(std::move(on_exit)) {}

ReactorResult<std::unique_ptr<ChildWatch>> ChildWatch::start(Reactor& reactor, sys::Syscalls& os,
                                                             pid_t pid, OwnedFd pidfd,
                                                             OnExit on_exit) {
  std::unique_ptr<ChildWatch> watch(
      new ChildWatch(reactor, os, pid, std::move(pidfd), std::move(on_exit)));
  ChildWatch* self = watch.get();
  if (self->pidfd_.valid()) {
    if (auto added = reactor.add_reader(self->pidfd_.get(), [self] { self->on_pidfd_readable(); });
        !added) {
      return tl::unexpected(added.error());
    }
  } else {
    // watch_child runs the callback at once for a child that has exited already; on_exit then
    // waits for the next turn, so that it never runs (and never destroys the watch) before
    // the caller has it.
    self->starting_ = true;
    auto watched = reactor.watch_child(pid, [self](int status) {
      const ProcessExit exit = ProcessExit::from_wait_status(status);
      self->watching_ = false;
      if (!self->starting_) {
        self->finish(exit);
        return;
      }
      self->reaped_ = true;
      self->early_exit_ =
          self->reactor_.call_later(Duration::zero(), [self, exit] { self->finish(exit); });
    });
    self->starting_ = false;
    if (!watched) return tl::unexpected(watched.error());
    if (self->reaped_) return watch;
  }
  self->watching_ = true;
  return watch;
}

ChildWatch::~ChildWatch() {
  if (early_exit_.active()) (void)early_exit_.cancel();
  if (!watching_) return;
  if (pidfd_.valid()) {
    (void)reactor_.remove_reader(pidfd_.get());
  } else {
    (void)reactor_.unwatch_child(pid_);
  }
}

sys::Result<void> ChildWatch::signal(int sig) {
  if (reaped_) return sys::fail(ESRCH, pidfd_.valid() ? "pidfd_send_signal" : "kill");
  if (pidfd_.valid()) return os_.pidfd_send_signal(pidfd_.get(), sig, 0);
  return os_.kill(pid_, sig);
}

void ChildWatch::on_pidfd_readable() {
  auto waited = os_.waitpid(pid_, WNOHANG);
  // Not exited after all, or a failure other than ECHILD (none is expected for our own child
  // with WNOHANG): the level-triggered pidfd brings us back.
  if (waited ? waited->pid == 0 : waited.error().code != ECHILD) return;
  (void)reactor_.remove_reader(pidfd_.get());
  watching_ = false;
  // ECHILD: something else in this process reaped our child, which has exited (the pidfd
  // said so); how is lost.
  finish(waited ? ProcessExit::from_wait_status(waited->status) : ProcessExit::reaped_elsewhere());
}

void ChildWatch::finish(const ProcessExit& exit) {
  reaped_ = true;
  // The pid may be a stranger's from now on; the pidfd is useless. on_exit may destroy us, so
  // it is moved out and called last.
  pidfd_.reset();
  OnExit on_exit = std::move(on_exit_);
  on_exit_ = nullptr;
  if (on_exit) on_exit(exit);
}

}  // namespace daemonkit::core
