// Ready-made fake programs for FakeSyscalls::install_program: the children a test of
// spawn_process or of a supervisor needs (cat, a program that exits, one that never reads),
// written as any fake program is, through the Syscalls of the process that runs them.
#pragma once

#include <string>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake::programs {

// Copies its stdin to its stdout until EOF, then exits 0. It waits while its stdin is empty
// and, holding what it read, while its stdout is full; it exits 1 when a read or a write
// fails otherwise, and dies of SIGPIPE when nobody reads its stdout any more.
FakeProgram cat();

// Exits with `code` on its first turn.
FakeProgram exit_with(int code);

// Writes `out` to its stdout, then `err` to its stderr, waiting whenever a pipe is full; then
// exits with `code`. Exits 1 when a write fails (other than by waiting).
FakeProgram write_then_exit(std::string out, std::string err = {}, int code = 0);

// Writes `text` to its descriptor `fd` (one a child_fds map gave it, say), as write_then_exit
// writes, then exits with `code`.
FakeProgram write_to_fd(int fd, std::string text, int code = 0);

// Keeps every descriptor it inherited open, never reads, never exits: it runs until a signal
// kills it, so its stdin fills up and its stdout never ends.
FakeProgram never_reads();

// Writes its arguments, one a line, then an empty line, then its environment, one entry a
// line, to its stdout; then exits 0 ("echo\nhi\n\nHOME=/\n").
FakeProgram echo_args();

}  // namespace daemonkit::fake::programs
