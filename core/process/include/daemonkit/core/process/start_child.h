// Starting a child from a ChildPlan: the parent's side of fork-and-exec. The child is made with
// vfork semantics (Syscalls::vfork), so its cost does not grow with the parent's memory, and by
// the time this returns the child has either exec'd the program or failed and said why.
#pragma once

#include <sys/types.h>

#include <variant>

#include "daemonkit/core/process/child_plan.h"
#include "daemonkit/core/process/exec_failure.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The program runs as `pid`, which is the caller's to reap. `pidfd` (close-on-exec, the
// caller's to close) was made with the child, so it can only ever name this child; -1 on a
// kernel without CLONE_PIDFD (before 5.2).
struct ChildStarted {
  pid_t pid = 0;
  int pidfd = -1;
};

// The child could not exec: `failure` names the step and the errno (describe() in
// exec_failure.h gives "exec /no/such: No such file or directory (ENOENT)"). The child is dead
// and already reaped; `pid` is only for the record.
struct ChildNotStarted {
  pid_t pid = 0;
  ExecFailure failure;
};

using ChildStart = std::variant<ChildStarted, ChildNotStarted>;

// Makes the report pipe (close-on-exec and non-blocking), vforks (with a pidfd) a child that runs
// run_child(plan), closes the pipe and reads the report. Errors are the parent's own calls
// (pipe2, vfork), EBADF when the plan's fd map names one of the two descriptors the pipe just
// got (the map then named a descriptor that was not open: the child would get the report
// pipe), and the report's own error, EPROTO when it is malformed: that child, which may or may
// not run the program, is killed (it is still ours: not reaped, so its pid is not reused) and
// reaped. No error leaves a descriptor open or a child unreaped.
// Safe to call while other threads run, fork or spawn (see Syscalls::vfork); never waits on a
// process but the one it made, which has already exec'd or exited when the report is read.
[[nodiscard]] sys::Result<ChildStart> start_child(sys::Syscalls& os, const ChildPlan& plan);

}  // namespace daemonkit::core
