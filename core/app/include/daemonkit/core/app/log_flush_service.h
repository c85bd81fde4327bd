// LogFlushService: retries a LogFile's backlog on a timer, so that lines kept back by a full
// disk (or a FIFO nobody drained) reach the file once it takes writes again even when the
// daemon logs nothing more. Without it the backlog waits for the next line, which on a quiet
// daemon may be hours away, and the last words before a crash would stay in memory.
//
// A tick with nothing kept back costs no system call (LogFile::flush returns at once), so the
// timer runs for as long as the service does instead of being armed by the file: one wake-up
// per interval is the whole price. Stop makes one last attempt.
#pragma once

#include <chrono>
#include <string>

#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/log_file.h"
#include "daemonkit/core/app/timer_service.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/reactor/reactor.h"

namespace daemonkit::core {

class LogFlushService final : public TimerService {
 public:
  static constexpr Duration kDefaultInterval = std::chrono::seconds(1);

  // `file` must outlive the service.
  LogFlushService(Reactor& reactor, LogFile& file, Duration interval = kDefaultInterval,
                  std::string name = "log-flush");

 protected:
  Completion do_stop() override;

 private:
  LogFile& file_;
};

}  // namespace daemonkit::core
