// LogRelay: lets components made before the daemon's log exists (the reactor, which the
// services need at construction, before the runner opens the log file) speak into that log
// once it does. Lines said before are kept and written when the log arrives, as twistd
// buffers the events it sees before logging begins.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/core/base/log_sink.h"

namespace daemonkit::core {

class LogRelay {
 public:
  // Lines kept before a log is attached; more are counted and the count is written instead.
  static constexpr std::size_t kMaxPending = 1000;

  LogRelay();

  // A sink for a component (ReactorOptions::log). Copies share the relay, and may outlive it
  // (they then drop what they are told).
  [[nodiscard]] LogSink sink(std::string system = "-", LogLevel level = LogLevel::kInfo) const;

  // From now on lines go to `observer` (null: kept again); what was kept is written first.
  // `observer` must stay valid until it is replaced.
  void attach(LogObserver* observer);

 private:
  struct Line {
    LogLevel level;
    std::string system;
    std::string text;
  };
  struct State {
    LogObserver* target = nullptr;
    std::vector<Line> pending;
    std::size_t dropped = 0;
  };
  std::shared_ptr<State> state_;
};

}  // namespace daemonkit::core
