// ProcessExit: how a spawned child ended, as its parent learns it when it reaps it. Twisted
// splits this into ProcessDone (exit code 0) and ProcessTerminated (anything else); here one
// value answers both questions and says it in words.
#pragma once

#include <string>

namespace daemonkit::core {

class ProcessExit {
 public:
  // From the raw status waitpid reported for the child.
  [[nodiscard]] static ProcessExit from_wait_status(int status) { return ProcessExit(status); }
  // The child was reaped by someone else in this process (a waitpid(-1), SIGCHLD set to
  // SIG_IGN) before its parent could: it has ended, but how is lost.
  [[nodiscard]] static ProcessExit reaped_elsewhere() { return ProcessExit(); }

  [[nodiscard]] bool exited() const;
  // The exit code; 0 unless exited().
  [[nodiscard]] int exit_code() const;
  [[nodiscard]] bool killed() const;
  // The signal that killed it; 0 unless killed().
  [[nodiscard]] int signal() const;
  [[nodiscard]] bool core_dumped() const;
  [[nodiscard]] bool known() const { return known_; }
  // Twisted's ProcessDone: exited with code 0.
  [[nodiscard]] bool clean() const { return exited() && exit_code() == 0; }
  // The raw wait status; meaningless unless known().
  [[nodiscard]] int wait_status() const { return status_; }

  // "exit status 3", "killed by signal 15 (SIGTERM)", "killed by signal 11 (SIGSEGV), core
  // dumped", "reaped elsewhere: how it ended is unknown".
  [[nodiscard]] std::string describe() const;

  friend bool operator==(const ProcessExit&, const ProcessExit&) = default;

 private:
  explicit ProcessExit(int status) : status_(status), known_(true) {}
  ProcessExit() = default;

  int status_ = 0;
  bool known_ = false;
};

}  // namespace daemonkit::core
