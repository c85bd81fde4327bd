#include "daemonkit/core/app/fd_log_observer.h"

#include <string>

#include "daemonkit/core/app/log_format.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

void FdLogObserver::emit(LogLevel /*level*/, std::string_view system, std::string_view text) {
  const std::string line = format_log_line(wall_clock_now(os_), system, text, utc_offset_);
  std::string_view rest = line;
  while (!rest.empty()) {
    auto wrote = sys::retry_on_eintr([&] { return os_.write(fd_, rest.data(), rest.size()); });
    if (!wrote || *wrote == 0) return;
    rest.remove_prefix(*wrote);
  }
}

}  // namespace daemonkit::core
