#include "daemonkit/core/app/log_lifecycle.h"

#include <string>

namespace daemonkit::core {

void log_start_up(LogObserver& log, std::string_view program, std::string_view version,
                  std::string_view executable) {
  std::string line(program);
  if (!version.empty()) (line += ' ') += version;
  if (!executable.empty()) ((line += " (") += executable) += ')';
  line += " starting up.";
  log.emit(LogLevel::kInfo, kLifecycleSystem, line);
  log.emit(LogLevel::kInfo, kLifecycleSystem, "reactor class: daemonkit::core::Reactor.");
}

void log_shut_down(LogObserver& log) {
  log.emit(LogLevel::kInfo, kLifecycleSystem, "Server Shut Down.");
}

}  // namespace daemonkit::core
