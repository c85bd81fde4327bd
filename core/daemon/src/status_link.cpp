#include "status_link.h"

#include <sys/wait.h>

#include <variant>

#include "daemonkit/core/status/status_reporter.h"
#include "daemonkit/core/status/status_waiter.h"
#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

sys::Result<void> report_ready(sys::Syscalls& os, int fd) {
  StatusReporter reporter(os, fd);
  return reporter.ready();
}

sys::Result<void> report_failure(sys::Syscalls& os, int fd, std::string_view message) {
  StatusReporter reporter(os, fd);
  return reporter.fail(message);
}

DaemonVerdict wait_for_daemon(sys::Syscalls& os, int read_fd, int write_fd, pid_t intermediate,
                              std::optional<std::chrono::milliseconds> timeout) {
  StatusWaitOptions options;
  options.timeout = timeout;
  StatusOutcome outcome = wait_for_status(os, read_fd, write_fd, options);
  // Only an EOF without a report can mean the intermediate failed: it exits before the daemon
  // exists or right after forking it, so this wait is short.
  auto* failed = std::get_if<Failed>(&outcome);
  if (failed && failed->cause == FailureCause::kNoReport) {
    auto reaped = sys::retry_on_eintr([&] { return os.waitpid(intermediate, 0); });
    if (reaped && WIFEXITED(reaped->status) && WEXITSTATUS(reaped->status) != 0) {
      const int code = WEXITSTATUS(reaped->status);
      const bool fork_failed = (code & kIntermediateForkFailed) != 0;
      const char* call = fork_failed ? "fork" : "setsid";
      failed->message = sys::describe_failure(call, code & ~kIntermediateForkFailed);
    }
  }
  // The only outcome after which the daemon may still live.
  const bool timed_out = failed && failed->cause == FailureCause::kTimeout;
  return DaemonVerdict{parent_exit(outcome), timed_out};
}

}  // namespace daemonkit::core
