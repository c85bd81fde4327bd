#include "daemonkit/core/app/log_flush_service.h"

#include <utility>

namespace daemonkit::core {

LogFlushService::LogFlushService(Reactor& reactor, LogFile& file, Duration interval,
                                 std::string name)
    : TimerService(
          reactor, interval, [&file] { (void)file.flush(); }, {}, std::move(name)),
      file_(file) {}

Completion LogFlushService::do_stop() {
  (void)file_.flush();
  return TimerService::do_stop();
}

}  // namespace daemonkit::core
