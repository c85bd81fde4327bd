// Resource limits (RLIMIT_NOFILE is enforced where descriptors are allocated) and the clock.
#include "kernel.h"

namespace daemonkit::fake::detail {

sys::Result<struct rlimit> Kernel::getrlimit(Process& p, int resource) {
  if (resource < 0 || resource >= RLIM_NLIMITS) return sys::fail(EINVAL, "getrlimit");
  return p.rlimits[static_cast<std::size_t>(resource)];
}

sys::Result<void> Kernel::setrlimit(Process& p, int resource, const struct rlimit& limit) {
  if (resource < 0 || resource >= RLIM_NLIMITS) return sys::fail(EINVAL, "setrlimit");
  if (limit.rlim_cur > limit.rlim_max) return sys::fail(EINVAL, "setrlimit");
  auto& slot = p.rlimits[static_cast<std::size_t>(resource)];
  if (limit.rlim_max > slot.rlim_max && !p.privileged()) return sys::fail(EPERM, "setrlimit");
  if (resource == RLIMIT_NOFILE && limit.rlim_max > kNrOpen) return sys::fail(EPERM, "setrlimit");
  slot = limit;
  return {};
}

sys::Result<struct timespec> Kernel::clock_gettime(clockid_t which) {
  switch (which) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
      return ManualClock::to_timespec(clock.realtime());
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_BOOTTIME:
      // The fake never suspends, so boot time and monotonic time agree.
      return ManualClock::to_timespec(clock.monotonic());
    default:
      return sys::fail(EINVAL, "clock_gettime");
  }
}

}  // namespace daemonkit::fake::detail
