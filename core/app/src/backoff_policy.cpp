#include "daemonkit/core/app/backoff_policy.h"

#include <algorithm>
#include <cmath>

namespace daemonkit::core {

Duration BackoffPolicy::delay(unsigned retry) const {
  const unsigned exponent = std::min(100u, retry == 0 ? 0u : retry - 1);
  const double base_ns =
      static_cast<double>(initial.count()) * std::pow(factor, static_cast<double>(exponent));
  const double max_ns = static_cast<double>(max.count());
  // A NaN or infinity (factor below 0, or huge) falls back to the cap, as Twisted's OverflowError
  // does.
  const double capped = std::isfinite(base_ns) && base_ns >= 0 ? std::min(base_ns, max_ns) : max_ns;
  double j = jitter ? jitter() : 0.0;
  if (!(j >= 0.0)) j = 0.0;  // NaN too
  if (j >= 1.0) j = std::nextafter(1.0, 0.0);
  return Duration(static_cast<Duration::rep>(capped)) +
         std::chrono::duration_cast<Duration>(std::chrono::duration<double>(j));
}

}  // namespace daemonkit::core
