// The references and peers of the spawn bench, each doing what daemonkit_cases.h does: raw
// posix_spawn + waitpid and a raw poll loop (the references), fork + exec + waitpid, libuv's
// uv_spawn, and Twisted's spawnProcess (a Python process of its own; see twisted_spawn.py).
#pragma once

#include <uv.h>

#include <cstddef>
#include <optional>
#include <string>

namespace daemonkit::bench {

// One /bin/true (argv[0]) started and reaped; false, with a message on stderr, unless it exited
// 0. The reference: what glibc's posix_spawn (clone CLONE_VM|CLONE_VFORK) and a blocking
// waitpid cost.
[[nodiscard]] bool spawn_and_reap_posix_spawn(char* const argv[], char* const envp[]);
// The same through fork, whose cost grows with the parent's mapped memory.
[[nodiscard]] bool spawn_and_reap_fork(char* const argv[], char* const envp[]);
// The same through uv_spawn on `loop`, the child inheriting fds 0-2 as the others' do, reaped
// by libuv's SIGCHLD watcher and its exit callback.
[[nodiscard]] bool spawn_and_reap_uv(uv_loop_t& loop, char* const argv[], char* const envp[]);

// How the raw pipe loop learns that its descriptors are ready.
// Each turn serves every ready descriptor once; they differ in how readiness is learnt and in
// the order two ready descriptors are served.
enum class RawWait {
  kPoll,   // poll(2) on both each turn, the write served first: the reference
  kEpoll,  // both registered once, level-triggered, in an epoll set; the write served first
  // The same epoll set, served in the order epoll_wait lists them, as a reactor dispatches
  // (daemonkit's, libuv's, Twisted's): the order alone moves the rate (see spawn_bench.cpp).
  kEpollKernelOrder,
};

// The pipe reference: /bin/cat started by posix_spawn on two pipes and one loop writing
// `total` bytes in writes of at most `chunk` and reading them back, one write or read per ready
// descriptor as a reactor does it. Same contract as pump_through_cat_daemonkit.
[[nodiscard]] bool pump_through_cat_raw(std::size_t total, std::size_t chunk, char* const envp[],
                                        RawWait wait, int cat_cpu);

// Moves `pid`, a child just started, onto `cpu` alone; nothing for a negative cpu. The pipe
// cases put cat on the CPU the bench is not pinned to, so that every case runs with the two
// ends of the pipe on two CPUs: left to the scheduler, where they landed moved a case's rate
// by more than the 10% the target allows, from one round to the next.
void move_to_cpu(pid_t pid, int cpu);

// Twisted's side: runs `python script --spawns N --resident-mib M`, which times N sequential
// spawnProcess + reap of /bin/true on Twisted's reactor and prints one line
// "twisted <version> python <version> spawns_per_s <rate>". Returns the rate, and the versions
// in `versions`; nothing, with a message on stderr, if the script failed or took over 5 minutes.
[[nodiscard]] std::optional<double> twisted_spawn_rate(const std::string& python,
                                                       const std::string& script, int spawns,
                                                       int resident_mib, std::string& versions);

}  // namespace daemonkit::bench
