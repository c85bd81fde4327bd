// The spawned child's side, from vfork to exec: it carries out a ChildPlan step by step and
// execs the program, or reports the step and errno that failed through the exec-failure pipe
// (exec_failure.h) and exits. It runs in memory it shares with the parent, so it allocates
// nothing, takes no lock and makes only async-signal-safe calls.
#pragma once

#include "daemonkit/core/process/child_plan.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The exit status of a child that could not exec, after it reported why. The parent learns
// the reason from the report, never from this number; 127 is what a shell uses for "command
// not found", so a report lost on the way still reads sensibly where only the status is seen.
inline constexpr int kChildCannotExecStatus = 127;

// In the vfork child. The steps, in order, each reported as its ChildStep on failure:
//   1. kSignals: every signal's disposition to SIG_DFL, handlers and SIG_IGN alike (the parent's
//      handlers must not run here, on memory the parent owns, nor be mistaken for the program's;
//      an ignored signal would stay ignored across exec);
//   2. kSession, kTerminal when the plan has a controlling terminal: setsid, TIOCSCTTY;
//   3. kGroups, kGid, kUid when the plan has ids: setgroups, setresgid, setresuid;
//   4. kChdir when the plan has a working directory;
//   5. kDescriptors: the fd map, which also closes every other descriptor but `report_fd`
//      (moved above the map first if the map could land on it; it stays close-on-exec);
//   6. kSignals: the program's signal mask (the child runs with every signal blocked, see
//      Syscalls::vfork, until here);
//   7. kExec: execve.
// `report_fd` is the write end of a close-on-exec pipe. Never returns: the exec replaces the
// child, or it writes the failure and exits with kChildCannotExecStatus.
// Not noexcept only because the fake kernel ends a process by unwinding (fake::ProcessEnded);
// on the real kernel nothing here throws: every call returns a Result and nothing allocates.
[[noreturn]] void run_child(sys::Syscalls& os, const ChildPlan& plan, int report_fd);

}  // namespace daemonkit::core
