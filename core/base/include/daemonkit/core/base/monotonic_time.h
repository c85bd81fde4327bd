// The reactor's notion of time: nanoseconds on CLOCK_MONOTONIC, read through Syscalls so the
// fake kernel's manual clock drives timers in tests. Time points and durations are distinct types.
#pragma once

#include <chrono>
#include <cstdint>
#include <ratio>

namespace daemonkit::core {

// A tag clock: it has no now(), because time is always read through sys::Syscalls.
struct MonotonicClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<MonotonicClock>;
  static constexpr bool is_steady = true;
};

using Duration = std::chrono::nanoseconds;
using TimePoint = MonotonicClock::time_point;

}  // namespace daemonkit::core
