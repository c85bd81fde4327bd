#include "daemon_steps.h"

#include <fcntl.h>
#include <signal.h>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core::detail {

StepResult<void> reset_signals(sys::Syscalls& os) {
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    (void)os.sigaction(sig, &fallback, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  if (auto done = os.sigprocmask(SIG_SETMASK, &none, nullptr); !done) {
    return step_failed(StepError::from(StepKind::kSignals, "sigprocmask", done.error()));
  }
  return {};
}

StepResult<void> redirect_stdio(sys::Syscalls& os, const std::array<std::optional<int>, 3>& sources,
                                bool null_for_unset) {
  const bool any_null = null_for_unset && (!sources[0] || !sources[1] || !sources[2]);
  int null_fd = -1;
  OwnedFd null_owner;
  if (any_null) {
    // O_NOCTTY: a daemon must never gain a controlling terminal, whatever /dev/null turns out
    // to be inside a container.
    auto opened =
        sys::retry_on_eintr([&] { return os.open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY, 0); });
    if (!opened)
      return step_failed(StepError::from(StepKind::kStdio, "open(/dev/null)", opened.error()));
    null_fd = *opened;
    // When a standard descriptor was closed at launch, /dev/null itself landed on it: closing
    // it then would undo the redirection (twistd closes it unconditionally).
    if (null_fd > 2) null_owner = OwnedFd(os, null_fd);
  }
  for (int target = 0; target <= 2; ++target) {
    const std::size_t slot = static_cast<std::size_t>(target);
    const int source = sources[slot] ? *sources[slot] : (null_for_unset ? null_fd : target);
    if (source == target) continue;
    // dup2 clears FD_CLOEXEC on the copy.
    auto duped = sys::retry_on_eintr([&] { return os.dup2(source, target); });
    if (!duped) {
      return step_failed(StepError::from(
          StepKind::kStdio, fmt::format("dup2({}, {})", source, target), duped.error()));
    }
  }
  return {};
}

StepResult<void> enter_directories(sys::Syscalls& os, const std::optional<std::string>& root,
                                   const std::string& directory) {
  if (root) {
    if (auto done = os.chroot(root->c_str()); !done) {
      return step_failed(
          StepError::from(StepKind::kChroot, call_on("chroot", *root), done.error()));
    }
    if (auto done = os.chdir("/"); !done) {
      return step_failed(StepError::from(StepKind::kChroot, call_on("chdir", "/"), done.error()));
    }
  }
  if (auto done = os.chdir(directory.c_str()); !done) {
    return step_failed(
        StepError::from(StepKind::kChdir, call_on("chdir", directory), done.error()));
  }
  return {};
}

}  // namespace daemonkit::core::detail
