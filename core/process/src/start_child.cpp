#include "daemonkit/core/process/start_child.h"

#include <fcntl.h>
#include <signal.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/process/child_steps.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

// Reaps `pid`, our own child, which has exited or is about to: vfork returned, so it has left
// its last instruction behind and only the kernel's exit work remains. waitpid on that one pid,
// never -1, so that no other child of this process is taken from its owner. Errors are dropped:
// ECHILD means someone set SIGCHLD to SIG_IGN and the kernel reaped it already.
void reap(sys::Syscalls& os, pid_t pid) {
  (void)sys::retry_on_eintr([&] { return os.waitpid(pid, 0); });
}

}  // namespace

sys::Result<ChildStart> start_child(sys::Syscalls& os, const ChildPlan& plan) {
  // Non-blocking, for the read below: when vfork returns, a failed child has written its
  // report already, but the write end may still be open elsewhere for a moment: in the child
  // itself (the kernel wakes the parent at the exec's or exit's release of the memory, before
  // it closes the descriptors), and in any process another thread forks while the pipe exists.
  // Waiting for EOF would wait for those; what is in the pipe now is all there will be.
  auto pipe = os.pipe2(O_CLOEXEC | O_NONBLOCK);
  if (!pipe) return sys::fail(pipe.error());
  OwnedFd reader(os, pipe->read_end);
  OwnedFd writer(os, pipe->write_end);
  for (const FdAssignment& entry : plan.fds().assignments()) {
    if (entry.parent == reader.get() || entry.parent == writer.get()) {
      return sys::fail(EBADF, "child fds");
    }
  }
  const int report_fd = writer.get();
  auto made = os.vfork_with_pidfd([&]() -> int { run_child(os, plan, report_fd); });
  writer.reset();
  if (!made) return sys::fail(made.error());
  const pid_t child = made->pid;
  OwnedFd pidfd(os, made->pidfd);
  auto report = read_exec_failure(os, reader.get());
  reader.reset();
  if (report && !report->has_value()) return ChildStarted{child, pidfd.release()};
  if (!report) {
    // Whether it runs the program is unknown, and it must not run unowned. The pid is still
    // ours: an unreaped child's pid is not reused.
    (void)os.kill(child, SIGKILL);
    reap(os, child);
    return sys::fail(report.error());
  }
  reap(os, child);
  return ChildNotStarted{child, **report};
}

}  // namespace daemonkit::core
