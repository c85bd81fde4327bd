// LogObserver: where a daemon's log events go — a log file, syslog, or a test's list. One event
// is a level, a system (who speaks: "-", "stdout#info", "daemonkit.app#info") and a text that
// may span lines; each observer renders it in its own format.
#pragma once

#include <string>
#include <string_view>

#include "daemonkit/core/base/log_sink.h"

namespace daemonkit::core {

// Twisted's levels, in rising order of severity.
enum class LogLevel { kDebug, kInfo, kWarn, kError, kCritical };

// "debug", "info", "warn", "error", "critical": what Twisted's "<namespace>#<level>" uses.
[[nodiscard]] std::string_view to_string(LogLevel level);

class LogObserver {
 public:
  virtual ~LogObserver() = default;
  // One event. Called on the reactor's thread only. Never blocks for long and never throws:
  // what cannot be written now is kept or counted, as each observer documents.
  virtual void emit(LogLevel level, std::string_view system, std::string_view text) = 0;
};

// The reactor's (and every core component's) LogSink, speaking into `observer` as `system` at
// `level`. `observer` must outlive the sink.
[[nodiscard]] LogSink log_sink_to(LogObserver& observer, std::string system = "-",
                                  LogLevel level = LogLevel::kInfo);

}  // namespace daemonkit::core
