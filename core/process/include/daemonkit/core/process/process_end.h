// ProcessEnd: why a spawned process is over, as its protocol hears it: how it exited, or why its
// program never started. An exec failure is not an exit code: a program that ran and exited
// 127 and one that could not be exec'd are different ends, and the second names the step and
// the errno ("exec /no/such: No such file or directory (ENOENT)").
#pragma once

#include <optional>
#include <string>

#include "daemonkit/core/process/exec_failure.h"
#include "daemonkit/core/process/process_exit.h"

namespace daemonkit::core {

class ProcessEnd {
 public:
  [[nodiscard]] static ProcessEnd exited(const ProcessExit& exit) { return ProcessEnd(exit); }
  [[nodiscard]] static ProcessEnd not_started(const ExecFailure& failure, std::string executable) {
    return ProcessEnd(failure, std::move(executable));
  }

  // False when the program never ran: exec_failure() says why.
  [[nodiscard]] bool started() const { return !failure_.has_value(); }
  // How the program exited; meaningful only when started().
  [[nodiscard]] const ProcessExit& exit() const { return exit_; }
  [[nodiscard]] const std::optional<ExecFailure>& exec_failure() const { return failure_; }
  // Twisted's ProcessDone: the program ran and exited with code 0.
  [[nodiscard]] bool clean() const { return started() && exit_.clean(); }

  // "exit status 0", "killed by signal 15 (SIGTERM)", "exec /no/such: No such file or directory
  // (ENOENT)", "chdir: Permission denied (EACCES)".
  [[nodiscard]] std::string describe() const {
    return failure_ ? core::describe(*failure_, executable_) : exit_.describe();
  }

 private:
  explicit ProcessEnd(const ProcessExit& exit) : exit_(exit) {}
  ProcessEnd(const ExecFailure& failure, std::string executable)
      : exit_(ProcessExit::reaped_elsewhere()),
        failure_(failure),
        executable_(std::move(executable)) {}

  ProcessExit exit_;
  std::optional<ExecFailure> failure_;
  std::string executable_;
};

}  // namespace daemonkit::core
