#include "daemonkit/core/reactor/system_event_triggers.h"

#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace detail {

struct Trigger {
  TriggerId id;
  std::function<void()> fn;
  std::function<void(EventHold)> holding_fn;
};

struct EventState : std::enable_shared_from_this<EventState> {
  enum class Stage { kIdle, kBefore, kWaiting, kDuringAfter };

  const LogSink* log = nullptr;
  std::deque<Trigger> phases[3];
  Stage stage = Stage::kIdle;
  std::size_t holds = 0;

  std::deque<Trigger>& list(Phase p) { return phases[static_cast<int>(p)]; }

  void run(Trigger& trigger) {
    try {
      if (trigger.holding_fn) {
        ++holds;
        trigger.holding_fn(EventHold(weak_from_this()));
      } else if (trigger.fn) {
        trigger.fn();
      }
    } catch (const std::exception& e) {
      if (*log) (*log)(fmt::format("While calling system event trigger handler: {}", e.what()));
    }
  }

  // Pops before running, so a trigger that adds or removes others sees a consistent list.
  void drain(Phase p) {
    auto& triggers = list(p);
    while (!triggers.empty()) {
      Trigger trigger = std::move(triggers.front());
      triggers.pop_front();
      run(trigger);
    }
  }

  void release_one() {
    if (holds == 0 || --holds != 0) return;
    // Keep this state alive even if the last trigger destroys the owner's map.
    auto self = shared_from_this();
    stage = Stage::kDuringAfter;
    drain(Phase::kDuring);
    drain(Phase::kAfter);
    stage = Stage::kIdle;
  }
};

}  // namespace detail

EventHold::EventHold(EventHold&& other) noexcept : state_(std::move(other.state_)) {
  other.state_.reset();
}

// release() runs the event's triggers, and run() catches every std::exception they throw. What
// else escapes is let through on purpose (the fake kernel's ProcessEnded must end the process
// under test), and from here it ends in std::terminate, which ends it too.
EventHold& EventHold::operator=(EventHold&& other) noexcept {  // NOLINT(bugprone-exception-escape)
  if (this != &other) {
    release();
    state_ = std::move(other.state_);
    other.state_.reset();
  }
  return *this;
}

EventHold::~EventHold() { release(); }  // NOLINT(bugprone-exception-escape): as operator=.

void EventHold::release() {
  auto state = state_.lock();
  state_.reset();
  if (state) state->release_one();
}

SystemEventTriggers::SystemEventTriggers(LogSink log) : log_(std::move(log)) {}
SystemEventTriggers::~SystemEventTriggers() = default;

std::shared_ptr<detail::EventState>& SystemEventTriggers::state_for(std::string_view event) {
  auto it = events_.find(event);
  if (it == events_.end()) {
    auto state = std::make_shared<detail::EventState>();
    state->log = &log_;
    it = events_.emplace(std::string(event), std::move(state)).first;
  }
  return it->second;
}

TriggerId SystemEventTriggers::add(Phase phase, std::string_view event, std::function<void()> fn) {
  const TriggerId id{next_id_++};
  state_for(event)->list(phase).push_back(detail::Trigger{id, std::move(fn), {}});
  return id;
}

TriggerId SystemEventTriggers::add_holding(std::string_view event,
                                           std::function<void(EventHold)> fn) {
  const TriggerId id{next_id_++};
  state_for(event)->list(Phase::kBefore).push_back(detail::Trigger{id, {}, std::move(fn)});
  return id;
}

ReactorResult<void> SystemEventTriggers::remove(TriggerId id) {
  for (auto& [name, state] : events_) {
    for (auto& triggers : state->phases) {
      for (auto it = triggers.begin(); it != triggers.end(); ++it) {
        if (it->id == id) {
          triggers.erase(it);
          return {};
        }
      }
    }
  }
  return reactor_fail(ReactorErrc::kNotRegistered);
}

bool SystemEventTriggers::fire(std::string_view event) {
  auto state = state_for(event);  // a copy: triggers may not erase it, but stay safe
  if (state->stage != detail::EventState::Stage::kIdle) return false;
  state->stage = detail::EventState::Stage::kBefore;
  // The firing itself counts as a hold until every before-trigger ran.
  state->holds = 1;
  state->drain(Phase::kBefore);
  state->stage = detail::EventState::Stage::kWaiting;
  state->release_one();
  return true;
}

bool SystemEventTriggers::firing(std::string_view event) const {
  auto it = events_.find(event);
  return it != events_.end() && it->second->stage != detail::EventState::Stage::kIdle;
}

}  // namespace daemonkit::core
