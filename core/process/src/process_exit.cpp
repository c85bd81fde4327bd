#include "daemonkit/core/process/process_exit.h"

#include <sys/wait.h>

#include "daemonkit/core/status/wait_status.h"

namespace daemonkit::core {

bool ProcessExit::exited() const { return known_ && WIFEXITED(status_); }

int ProcessExit::exit_code() const { return exited() ? WEXITSTATUS(status_) : 0; }

bool ProcessExit::killed() const { return known_ && WIFSIGNALED(status_); }

int ProcessExit::signal() const { return killed() ? WTERMSIG(status_) : 0; }

bool ProcessExit::core_dumped() const { return killed() && WCOREDUMP(status_); }

std::string ProcessExit::describe() const {
  if (!known_) return "reaped elsewhere: how it ended is unknown";
  return describe_wait_status(status_);
}

}  // namespace daemonkit::core
