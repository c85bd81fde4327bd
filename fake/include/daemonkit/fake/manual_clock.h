// The fake kernel's clock: time stands still until a test moves it, so timeouts and timers
// are tested without sleeping. FakeSyscalls::clock_gettime reads it.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace daemonkit::fake {

class ManualClock {
 public:
  // CLOCK_MONOTONIC starts at 1000 s (never at 0, so "unset" timestamps stand out) and
  // CLOCK_REALTIME at 2023-11-14T22:13:20Z (1'700'000'000 s).
  static constexpr std::int64_t kMonotonicStartNs = 1'000'000'000'000;
  static constexpr std::int64_t kRealtimeStartNs = 1'700'000'000'000'000'000;

  // Moves both clocks forward. A negative step is a programming error and aborts.
  void advance(std::chrono::nanoseconds step);
  // Steps CLOCK_REALTIME alone (as settimeofday would); CLOCK_MONOTONIC is unaffected.
  void set_realtime(std::chrono::nanoseconds since_epoch) { realtime_ns_ = since_epoch.count(); }

  [[nodiscard]] std::chrono::nanoseconds monotonic() const {
    return std::chrono::nanoseconds(monotonic_ns_);
  }
  [[nodiscard]] std::chrono::nanoseconds realtime() const {
    return std::chrono::nanoseconds(realtime_ns_);
  }
  [[nodiscard]] static timespec to_timespec(std::chrono::nanoseconds t);

 private:
  std::int64_t monotonic_ns_ = kMonotonicStartNs;
  std::int64_t realtime_ns_ = kRealtimeStartNs;
};

}  // namespace daemonkit::fake
