#include "daemonkit/fake/manual_clock.h"

#include <cstdio>
#include <cstdlib>

namespace daemonkit::fake {

void ManualClock::advance(std::chrono::nanoseconds step) {
  if (step.count() < 0) {
    std::fprintf(stderr, "daemonkit::fake::ManualClock: advance() by a negative step\n");
    std::abort();
  }
  monotonic_ns_ += step.count();
  realtime_ns_ += step.count();
}

timespec ManualClock::to_timespec(std::chrono::nanoseconds t) {
  constexpr std::int64_t kBillion = 1'000'000'000;
  std::int64_t sec = t.count() / kBillion;
  std::int64_t nsec = t.count() % kBillion;
  if (nsec < 0) {
    nsec += kBillion;
    --sec;
  }
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(nsec);
  return ts;
}

}  // namespace daemonkit::fake
