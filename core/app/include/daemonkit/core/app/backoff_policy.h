// BackoffPolicy: how long a client waits before its next attempt to connect (Twisted's
// backoffPolicy): exponential, capped, plus a random jitter so that many clients cut off at once
// do not all come back at the same instant.
#pragma once

#include <chrono>
#include <functional>

#include "daemonkit/core/base/monotonic_time.h"

namespace daemonkit::core {

struct BackoffPolicy {
  Duration initial = std::chrono::seconds(1);
  double factor = 1.5;
  Duration max = std::chrono::seconds(60);
  // Returns a number in [0, 1): the jitter, in seconds, added to each delay. Values outside are
  // clamped into it. Unset: no jitter (ClientService fills it with its own random source).
  std::function<double()> jitter;

  // The wait before retry number `retry` (1 for the first): min(initial * factor^(retry-1), max)
  // plus jitter. Twisted computes initial * factor^retry, so its first retry waits 1.5 s and its
  // `initialDelay` is never waited; here the first retry waits `initial`. The exponent stops
  // growing at 100 (Twisted's guard against overflow), so any retry number is safe.
  [[nodiscard]] Duration delay(unsigned retry) const;
};

}  // namespace daemonkit::core
