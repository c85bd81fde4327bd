// How a process ended, in words, from the raw status waitpid reports: what a user needs to
// read when a daemon died before it could say why.
#pragma once

#include <string>

namespace daemonkit::core {

// "exit status 3", "killed by signal 9 (SIGKILL)", "killed by signal 11 (SIGSEGV), core
// dumped"; "stopped by signal 19 (SIGSTOP)" and "continued" for the job-control reports.
[[nodiscard]] std::string describe_wait_status(int status);

}  // namespace daemonkit::core
