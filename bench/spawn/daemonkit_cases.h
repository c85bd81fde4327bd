// daemonkit's side of the spawn bench: one spawn + reap of a program, and one stdin -> cat ->
// stdout pump, each through core::Process::spawn on a core::Reactor, the way a daemon runs its
// children (the pump feeds cat's stdin with a pull producer on its stream transport).
#pragma once

#include <cstddef>
#include <memory>

#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::bench {

// What a daemon holds for the whole run: its one RealSyscalls and one reactor, made once and
// reused by every spawn, as a daemon's are.
struct DaemonkitLoop {
  sys::RealSyscalls os;
  std::unique_ptr<core::Reactor> reactor;
};

// Makes the loop (no signal handlers: the pidfd needs no SIGCHLD); null with a message on
// stderr if the reactor cannot be made.
[[nodiscard]] std::unique_ptr<DaemonkitLoop> make_daemonkit_loop();

// Starts argv[0] with `envp` and every signal unblocked, waits on the reactor for its exit, and
// reaps it. False, with a message on stderr, when a step fails, the child does not exit 0, or
// ten seconds pass.
[[nodiscard]] bool spawn_and_reap_daemonkit(DaemonkitLoop& loop, char* const argv[],
                                            char* const envp[]);

// Starts /bin/cat with pipes on its stdin and stdout, writes `total` bytes in writes of at most
// `chunk` while reading what comes back, then closes its stdin and reaps it. False, with a
// message on stderr, unless every byte came back, cat exited 0, and it took under a minute.
// With `cat_cpu` 0 or more, cat runs on that CPU alone (move_to_cpu).
[[nodiscard]] bool pump_through_cat_daemonkit(DaemonkitLoop& loop, std::size_t total,
                                              std::size_t chunk, char* const envp[], int cat_cpu);

}  // namespace daemonkit::bench
