// Fd hygiene: close every descriptor a daemon inherited except the ones it must keep.
// close_range(2) first, whose cost does not depend on RLIMIT_NOFILE; then /proc/self/fd
// (listed with getdents64, without allocating); only then a loop bounded by the soft limit,
// which the caller should log as degraded: containers raise that limit to 2^20 or 2^30, where
// python-daemon ran out of memory and others took minutes (peers.md §1.3).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

enum class CloseFdsStrategy { kCloseRange, kProcSelfFd, kBoundedLoop };

struct CloseFdsOutcome {
  CloseFdsStrategy strategy = CloseFdsStrategy::kCloseRange;
  // For the loop: the descriptors it tried, [0, loop_bound).
  unsigned int loop_bound = 0;
  // Why the better strategies were not used (close_range's error, then /proc's), if they failed.
  sys::Error close_range_error{};
  sys::Error proc_error{};

  [[nodiscard]] bool degraded() const { return strategy == CloseFdsStrategy::kBoundedLoop; }
};

// The most descriptors `preserve` may name; they are sorted in a fixed array on the stack.
inline constexpr std::size_t kMaxPreservedFds = 256;
// The loop never goes past this, whatever the soft limit says (RLIM_INFINITY included).
inline constexpr unsigned int kCloseLoopCap = 1U << 20;

// Closes every descriptor not in `preserve` (negative entries and duplicates are ignored).
// Async-signal-safe and allocation-free, so it may run between fork and exec. close_range is
// given up for ENOSYS (kernel < 5.9) or EPERM (a seccomp filter); other errors are returned.
// Errors of close itself are ignored: the descriptor is gone either way (and is never retried).
[[nodiscard]] sys::Result<CloseFdsOutcome> close_inherited_fds(sys::Syscalls& os,
                                                               std::span<const int> preserve);

// A log line for a degraded outcome, naming the bound and why the others failed.
[[nodiscard]] std::string describe(const CloseFdsOutcome& outcome);

}  // namespace daemonkit::core
