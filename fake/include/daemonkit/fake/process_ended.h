// What the fake kernel and the mock throw where a real process would stop running code:
// _exit, a fatal signal, and an execve that succeeded. Code under test unwinds to the test
// that drove it.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>

namespace daemonkit::fake {

// Deliberately not derived from std::exception: a `catch (const std::exception&)` in the code
// under test must not be able to swallow the end of its own process.
struct ProcessEnded {
  pid_t pid = 0;
  // The wait status a parent would see for this process (as built by W_EXITCODE, or the
  // signal number for a fatal signal), or 0 for an exec, after which the process goes on
  // running another program.
  int wait_status = 0;
  bool by_exec = false;

  [[nodiscard]] bool exited() const { return !by_exec && WIFEXITED(wait_status); }
  [[nodiscard]] int exit_code() const { return WEXITSTATUS(wait_status); }
  [[nodiscard]] bool killed() const { return !by_exec && WIFSIGNALED(wait_status); }
  [[nodiscard]] int signal() const { return WTERMSIG(wait_status); }
};

}  // namespace daemonkit::fake
