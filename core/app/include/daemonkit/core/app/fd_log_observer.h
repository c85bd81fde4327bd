// FdLogObserver: twistd's classic log lines written to a descriptor the daemon does not own,
// stdout under --nodaemon (--logfile=- or no --logfile).
#pragma once

#include <chrono>

#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class FdLogObserver final : public LogObserver {
 public:
  FdLogObserver(sys::Syscalls& os, int fd, std::chrono::minutes utc_offset = {})
      : os_(os), fd_(fd), utc_offset_(utc_offset) {}

  // One line, written whole (EINTR and short writes retried). A failed write drops the line:
  // a foreground daemon's terminal that went away must not stop the daemon.
  void emit(LogLevel level, std::string_view system, std::string_view text) override;

 private:
  sys::Syscalls& os_;
  int fd_;
  std::chrono::minutes utc_offset_;
};

}  // namespace daemonkit::core
