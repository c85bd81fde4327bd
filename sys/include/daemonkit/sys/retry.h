// The one place where daemonkit retries a call interrupted by a signal.
// Callers opt in per call site; `close` must never go through here, because Linux releases the
// descriptor even when close reports EINTR, and a retry could close a descriptor that another
// thread has just been given.
#pragma once

#include <cerrno>
#include <utility>

namespace daemonkit::sys {

// Calls `call()` until it returns anything but an EINTR error; returns that result.
template <typename Call>
[[nodiscard]] auto retry_on_eintr(Call&& call) -> decltype(call()) {
  for (;;) {
    auto result = call();
    if (result || result.error().code != EINTR) return result;
  }
}

}  // namespace daemonkit::sys
