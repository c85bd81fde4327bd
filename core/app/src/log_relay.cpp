#include "daemonkit/core/app/log_relay.h"

#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

LogRelay::LogRelay() : state_(std::make_shared<State>()) {}

LogSink LogRelay::sink(std::string system, LogLevel level) const {
  std::weak_ptr<State> weak = state_;
  return [weak, system = std::move(system), level](std::string_view line) {
    const std::shared_ptr<State> state = weak.lock();
    if (!state) return;
    if (state->target != nullptr) {
      state->target->emit(level, system, line);
    } else if (state->pending.size() < kMaxPending) {
      state->pending.push_back({level, system, std::string(line)});
    } else {
      ++state->dropped;
    }
  };
}

void LogRelay::attach(LogObserver* observer) {
  state_->target = observer;
  if (observer == nullptr) return;
  std::vector<Line> pending = std::exchange(state_->pending, {});
  for (const Line& line : pending) observer->emit(line.level, line.system, line.text);
  if (state_->dropped > 0) {
    observer->emit(LogLevel::kWarn, "-",
                   fmt::format("{} lines said before the log was open were lost",
                               std::exchange(state_->dropped, 0)));
  }
}

}  // namespace daemonkit::core
