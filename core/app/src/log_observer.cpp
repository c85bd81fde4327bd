#include "daemonkit/core/app/log_observer.h"

#include <utility>

namespace daemonkit::core {

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
  }
  return "info";
}

LogSink log_sink_to(LogObserver& observer, std::string system, LogLevel level) {
  return [&observer, system = std::move(system), level](std::string_view line) {
    observer.emit(level, system, line);
  };
}

}  // namespace daemonkit::core
