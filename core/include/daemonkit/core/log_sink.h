// Where core components send the lines twistd would log ("set uid/gid 65534/65534",
// "Removing stale pidfile /run/x.pid"). Core owns no logger: the program decides where lines go
// (stderr before daemonizing, a log file after), and tests capture them.
#pragma once

#include <functional>
#include <string_view>

namespace daemonkit::core {

enum class LogLevel { kInfo, kWarning, kError };

// Receives one complete line, without a trailing newline. May be empty (lines are dropped).
using LogSink = std::function<void(LogLevel, std::string_view)>;

// Calls `sink` if it is set; lets components log without checking at every call site.
inline void log_line(const LogSink& sink, LogLevel level, std::string_view line) {
  if (sink) sink(level, line);
}

}  // namespace daemonkit::core
