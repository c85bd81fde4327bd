// The daemonizer's only contact with the status pipe (design §4), kept in one private header so
// that switching to the status-pipe component (branch statuspipe: StatusReporter and
// wait_for_status) touches nothing else.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The daemon's side. Both close `fd`, whatever happens.
sys::Result<void> report_ready(sys::Syscalls& os, int fd);
sys::Result<void> report_failure(sys::Syscalls& os, int fd, std::string_view message);

// The waiting parent's side: what it exits with and what it prints on its stderr.
struct ParentVerdict {
  int exit_code = 1;
  std::string stderr_text;  // empty on success
};

// How the intermediate process (between the two forks) tells the first parent which step
// failed without writing to the pipe: its exit status carries the errno, plus this flag when
// the second fork failed (setsid otherwise). Allocation-free on the child's side.
inline constexpr int kIntermediateForkFailed = 0x80;

// Reads the status pipe until a verdict, EOF or `timeout_ms` (none: wait for ever). On EOF
// before any status it reaps `intermediate` (WNOHANG-free waitpid: it has exited or is about to)
// to say which step failed or how the daemon ended.
ParentVerdict wait_for_daemon(sys::Syscalls& os, int read_fd, pid_t intermediate,
                              std::optional<int> timeout_ms);

}  // namespace daemonkit::core
