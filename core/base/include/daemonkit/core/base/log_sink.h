// LogSink: where the reactor and its helpers send their log lines.
// Injected, never global: a daemon routes it to its log file, a test collects the lines.
#pragma once

#include <functional>
#include <string_view>

namespace daemonkit::core {

// Receives one complete line, without a trailing newline. Called on the reactor's thread only.
// An empty sink drops the lines.
using LogSink = std::function<void(std::string_view line)>;

// Calls `sink` if it is set, so components log without checking at every call site.
inline void log_line(const LogSink& sink, std::string_view line) {
  if (sink) sink(line);
}

}  // namespace daemonkit::core
