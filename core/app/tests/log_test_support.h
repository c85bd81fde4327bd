// What the logging tests share: a fake kernel with a log directory and a wall clock set to a
// known instant, and an observer that keeps what it is told.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core::testing_support {

// 2026-12-02T11:00:00Z.
inline constexpr std::chrono::seconds kNoon{1'796'209'200};

struct Event {
  LogLevel level;
  std::string system;
  std::string text;
  friend bool operator==(const Event&, const Event&) = default;
};

struct Collector final : LogObserver {
  std::vector<Event> events;
  void emit(LogLevel level, std::string_view system, std::string_view text) override {
    events.push_back(Event{level, std::string(system), std::string(text)});
  }
};

inline void set_noon(fake::FakeSyscalls& os) { os.clock().set_realtime(kNoon); }

}  // namespace daemonkit::core::testing_support
