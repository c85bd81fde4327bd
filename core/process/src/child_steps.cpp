#include "daemonkit/core/process/child_steps.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>

#include <cstdlib>
#include <span>

#include "daemonkit/core/process/exec_failure.h"

namespace daemonkit::core {

// ---- ASYNC-SIGNAL-SAFE REGION ---------------------------------------------------------------
// Everything below runs in the vfork child, on the parent's memory: only async-signal-safe
// calls through `os`, no allocation, no lock, nothing written but the child's own stack (and
// errno, which is the suspended parent thread's). It reads the plan, which nothing else
// changes while the parent thread that owns it sleeps in vfork.
namespace {

// The kernel's first real-time signal (its __SIGRTMIN). glibc keeps 32 and 33 (thread
// cancellation and set*id broadcasts) and makes SIGRTMIN start above them.
constexpr int kFirstRealtimeSignal = 32;

[[noreturn]] void fail(sys::Syscalls& os, int report_fd, ChildStep step, int error) {
  write_exec_failure(os, report_fd, ExecFailure{step, error});
  os.exit_now(kChildCannotExecStatus);
  std::abort();  // GCC cannot see [[noreturn]] through the virtual call.
}

// Every signal to SIG_DFL, not only the ignored ones as Twisted does: a handler of the parent's
// left in place would run here, in the parent's memory, for a signal arriving once the mask is
// lowered and before exec replaces the handlers. Skipped, because they cannot be changed:
// SIGKILL and SIGSTOP (the kernel refuses, and they are always SIG_DFL anyway), and the
// signals glibc reserves (its sigaction refuses them; their handlers are glibc's own, which
// act only on a sender of this process's pid and exec resets them as any handler).
sys::Result<void> reset_dispositions(sys::Syscalls& os, const ChildPlan& plan) {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (sig >= kFirstRealtimeSignal && sig < plan.first_user_realtime_signal()) continue;
    if (auto done = os.sigaction(sig, &fallback, nullptr); !done) return done;
  }
  return {};
}

// Groups first, then the gid, then the uid: each needs the privilege the next one gives up.
// All three ids of each kind change, so the program cannot take back what it was started
// without.
void switch_ids(sys::Syscalls& os, const ChildPlan& plan, int report_fd) {
  const ChildIds* ids = plan.ids();
  if (ids == nullptr) return;
  if (auto done = os.setgroups(std::span<const gid_t>(plan.groups())); !done) {
    fail(os, report_fd, ChildStep::kGroups, done.error().code);
  }
  if (auto done = os.setresgid(ids->gid, ids->gid, ids->gid); !done) {
    fail(os, report_fd, ChildStep::kGid, done.error().code);
  }
  if (auto done = os.setresuid(ids->uid, ids->uid, ids->uid); !done) {
    fail(os, report_fd, ChildStep::kUid, done.error().code);
  }
}

// The fd map, keeping the report: if its number could be one the map gives the child (or reads
// from), it moves above them first, still close-on-exec. The old number is closed by the map
// with every other descriptor, or overwritten by it.
void place_descriptors(sys::Syscalls& os, const ChildPlan& plan, int& report_fd) {
  const ChildFdMap& map = plan.fds();
  if (report_fd < map.first_free_fd()) {
    auto moved = os.fcntl(report_fd, F_DUPFD_CLOEXEC, map.first_free_fd());
    if (!moved) fail(os, report_fd, ChildStep::kDescriptors, moved.error().code);
    report_fd = *moved;
  }
  if (auto done = map.apply(os, report_fd); !done) {
    fail(os, report_fd, ChildStep::kDescriptors, done.error().code);
  }
}

}  // namespace

void run_child(sys::Syscalls& os, const ChildPlan& plan, int report_fd) {
  if (auto done = reset_dispositions(os, plan); !done) {
    fail(os, report_fd, ChildStep::kSignals, done.error().code);
  }
  // A PTY's program leads a session of its own, with the terminal as its controlling terminal
  // (the fd map then puts it on 0-2; the parent set its window size). Before the ids change:
  // TIOCSCTTY on a terminal opened by root needs no more than being a session leader.
  if (const int terminal = plan.controlling_terminal(); terminal >= 0) {
    if (auto led = os.setsid(); !led) fail(os, report_fd, ChildStep::kSession, led.error().code);
    if (auto made = os.ioctl(terminal, TIOCSCTTY, nullptr); !made) {
      fail(os, report_fd, ChildStep::kTerminal, made.error().code);
    }
  }
  switch_ids(os, plan, report_fd);
  if (const char* dir = plan.working_directory(); dir != nullptr) {
    if (auto done = os.chdir(dir); !done) fail(os, report_fd, ChildStep::kChdir, done.error().code);
  }
  place_descriptors(os, plan, report_fd);
  // Last before exec: until here every signal stays blocked (Syscalls::vfork), so none is
  // acted on in the parent's memory; from here one ends the child as it would the program.
  if (auto done = os.sigprocmask(SIG_SETMASK, &plan.signal_mask(), nullptr); !done) {
    fail(os, report_fd, ChildStep::kSignals, done.error().code);
  }
  const ExecArguments& exec = plan.exec();
  auto done = os.execve(exec.executable(), exec.argv(), exec.envp());
  fail(os, report_fd, ChildStep::kExec, done ? 0 : done.error().code);
}
// ---- End of the async-signal-safe region ----------------------------------------------------

}  // namespace daemonkit::core
