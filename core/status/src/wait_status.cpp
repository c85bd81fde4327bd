#include "daemonkit/core/status/wait_status.h"

#include <string.h>
#include <sys/wait.h>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

std::string signal_with_name(int sig) {
  // sigabbrev_np (glibc >= 2.32) is locale-independent and gives "KILL" for SIGKILL.
  if (const char* name = ::sigabbrev_np(sig)) return fmt::format("{} (SIG{})", sig, name);
  return fmt::format("{}", sig);
}

}  // namespace

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {}{}", signal_with_name(WTERMSIG(status)),
                       WCOREDUMP(status) ? ", core dumped" : "");
  }
  if (WIFSTOPPED(status))
    return fmt::format("stopped by signal {}", signal_with_name(WSTOPSIG(status)));
  if (WIFCONTINUED(status)) return "continued";
  return fmt::format("unknown wait status {:#x}", status);
}

}  // namespace daemonkit::core
