// The fake's auto-reap against the kernel's: a parent whose SIGCHLD is ignored (SIG_IGN) or that
// set SA_NOCLDWAIT never sees its child as a zombie, and with SIG_IGN is not sent SIGCHLD either.
// The same observations are made on FakeSyscalls and, in a forked helper, on the real kernel.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ostream>
#include <thread>

#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::fake {
namespace {

enum class Disposition { kDefault, kIgnore, kNoCldWait };

struct Seen {
  bool sigchld = false;  // a SIGCHLD was queued (read from a signalfd)
  int wait_error = 0;    // waitpid(child, WNOHANG)'s errno, 0 if it returned the child
  int exit_code = -1;    // the child's exit status, when waitpid returned it
  friend bool operator==(const Seen&, const Seen&) = default;
};

std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  return out << "{sigchld " << seen.sigchld << ", wait errno " << seen.wait_error << ", exit "
             << seen.exit_code << "}";
}

// Sets the disposition, blocks SIGCHLD and returns a signalfd for it.
int prepare(sys::Syscalls& os, Disposition how) {
  struct sigaction action {};
  sigemptyset(&action.sa_mask);
  action.sa_handler = how == Disposition::kIgnore ? SIG_IGN : SIG_DFL;
  if (how == Disposition::kNoCldWait) action.sa_flags = SA_NOCLDWAIT;
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  if (!os.sigaction(SIGCHLD, &action, nullptr) || !os.sigprocmask(SIG_BLOCK, &child, nullptr)) {
    return -1;
  }
  return os.signalfd(-1, child, SFD_NONBLOCK | SFD_CLOEXEC).value_or(-1);
}

// What the parent sees once the child has exited.
Seen observe(sys::Syscalls& os, int signal_fd, pid_t child) {
  Seen seen;
  signalfd_siginfo info{};
  seen.sigchld = static_cast<bool>(os.read(signal_fd, &info, sizeof info));
  auto waited = os.waitpid(child, WNOHANG);
  if (!waited) {
    seen.wait_error = waited.error().code;
  } else if (waited->pid == child) {
    seen.exit_code = WEXITSTATUS(waited->status);
  }
  return seen;
}

Seen on_fake(Disposition how) {
  FakeSyscalls os;
  const int signal_fd = prepare(os, how);
  const pid_t child = *os.fork();  // the fork continues as the parent
  os.end_process(child, 7);
  return observe(os, signal_fd, child);
}

// In a forked helper, so the test process keeps its own SIGCHLD disposition.
Seen on_kernel(Disposition how) {
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return {};
  const pid_t helper = ::fork();
  if (helper == 0) {
    sys::RealSyscalls os;
    const int signal_fd = prepare(os, how);
    const pid_t child = ::fork();
    if (child == 0) ::_exit(7);
    // Until it has exited: its SIGCHLD is queued, or (reaped at once) its pid is gone. Bounded.
    for (int i = 0; i < 2000; ++i) {
      pollfd fd{signal_fd, POLLIN, 0};
      if (::poll(&fd, 1, 1) > 0 || (::kill(child, 0) != 0 && errno == ESRCH)) break;
    }
    const Seen seen = observe(os, signal_fd, child);
    (void)!::write(report[1], &seen, sizeof seen);
    ::_exit(0);
  }
  ::close(report[1]);
  Seen seen;
  seen.wait_error = -1;
  (void)!::read(report[0], &seen, sizeof seen);
  ::close(report[0]);
  ::waitpid(helper, nullptr, 0);
  return seen;
}

TEST(DifferentialSigchld, DefaultLeavesAZombieAndSendsSigchld) {
  const Seen expected{true, 0, 7};
  EXPECT_EQ(on_kernel(Disposition::kDefault), expected);
  EXPECT_EQ(on_fake(Disposition::kDefault), expected);
}

TEST(DifferentialSigchld, IgnoredSigchldReapsAtOnceAndSendsNothing) {
  const Seen expected{false, ECHILD, -1};
  EXPECT_EQ(on_kernel(Disposition::kIgnore), expected);
  EXPECT_EQ(on_fake(Disposition::kIgnore), expected);
}

TEST(DifferentialSigchld, NoCldWaitReapsAtOnceYetSendsSigchld) {
  const Seen expected{true, ECHILD, -1};
  EXPECT_EQ(on_kernel(Disposition::kNoCldWait), expected);
  EXPECT_EQ(on_fake(Disposition::kNoCldWait), expected);
}

}  // namespace
}  // namespace daemonkit::fake
