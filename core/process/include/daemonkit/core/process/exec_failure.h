// How a spawned child that could not exec tells its parent why. The parent passes a pipe whose
// write end is close-on-exec: a successful execve closes it with nothing written, and a child
// that fails before or at exec writes one fixed-size record (the step and the errno) and exits.
// So "exec failed" is an error with a reason ("exec /no/such: No such file or directory
// (ENOENT)"), never confused with a program that ran and exited 127.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The child's steps between fork and exec, in the order it takes them.
enum class ChildStep : std::uint8_t {
  kSignals = 1,  // resetting every disposition and the mask
  kSession,      // setsid, for a PTY
  kTerminal,     // making the PTY the controlling terminal, its window size
  kGroups,       // setgroups
  kGid,          // setgid / setresgid
  kUid,          // setuid / setresuid
  kChdir,        // the working directory
  kDescriptors,  // the child fd map
  kExec,         // execve itself
};

[[nodiscard]] std::string_view to_string(ChildStep step);

struct ExecFailure {
  ChildStep step = ChildStep::kExec;
  int error = 0;

  friend bool operator==(const ExecFailure&, const ExecFailure&) = default;
};

// The record's size: one write of it is atomic on a pipe (far below PIPE_BUF).
inline constexpr std::size_t kExecFailureRecordSize = 8;

// In the child: one write of the record to `fd`. Async-signal-safe; allocates nothing. A failed
// or short write is not reported: the child exits next, and the parent then sees a malformed
// or empty report (and the exit status).
void write_exec_failure(sys::Syscalls& os, int fd, ExecFailure failure);

// In the parent, once the child has exec'd or exited (vfork semantics: the parent resumes only
// then) and the parent's own write end is closed: nothing (the exec succeeded), the failure, or
// EPROTO for a report that is short, too long or names no known step. Reads at most one byte
// past a record, so a child cannot make the parent read without end. On a non-blocking pipe,
// EAGAIN ends the report like EOF: the child wrote all of it before the parent resumed.
[[nodiscard]] sys::Result<std::optional<ExecFailure>> read_exec_failure(sys::Syscalls& os, int fd);

// What the user reads: "exec /no/such: No such file or directory (ENOENT)",
// "chdir: Permission denied (EACCES)".
[[nodiscard]] std::string describe(const ExecFailure& failure, std::string_view executable);

}  // namespace daemonkit::core
