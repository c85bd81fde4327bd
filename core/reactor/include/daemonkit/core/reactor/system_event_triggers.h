// SystemEventTriggers: Twisted's three-phase system events, sans I/O.
// Triggers run before/during/after an event ("startup", "shutdown"), FIFO, once each; a
// before-trigger may hold the event until it completes; a failing trigger is logged and the
// others still run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/reactor/reactor_error.h"

namespace daemonkit::core {

enum class Phase { kBefore, kDuring, kAfter };

// Names a registered trigger, for remove().
struct TriggerId {
  std::uint64_t value = 0;
  friend bool operator==(TriggerId, TriggerId) = default;
};

namespace detail {
struct EventState;
}

// Keeps an event in its before-phase until released (Twisted: a before-trigger returning an
// unfired Deferred). Release it by calling release() or by destroying it; copies are not
// allowed, so exactly one release happens. Use it on the reactor's thread only.
class EventHold {
 public:
  EventHold() = default;
  EventHold(EventHold&& other) noexcept;
  // Both release the hold, which runs the event's triggers: see the .cpp on what may escape.
  EventHold& operator=(EventHold&& other) noexcept;  // NOLINT(bugprone-exception-escape)
  EventHold(const EventHold&) = delete;
  EventHold& operator=(const EventHold&) = delete;
  ~EventHold();  // NOLINT(bugprone-exception-escape)

  // Lets the event go on to its during- and after-phases once no other hold remains. These
  // phases run inside this call.
  void release();
  [[nodiscard]] bool held() const { return !state_.expired(); }

 private:
  friend struct detail::EventState;
  explicit EventHold(std::weak_ptr<detail::EventState> state) : state_(std::move(state)) {}
  std::weak_ptr<detail::EventState> state_;
};

class SystemEventTriggers {
 public:
  explicit SystemEventTriggers(LogSink log);
  ~SystemEventTriggers();
  SystemEventTriggers(const SystemEventTriggers&) = delete;
  SystemEventTriggers& operator=(const SystemEventTriggers&) = delete;

  TriggerId add(Phase phase, std::string_view event, std::function<void()> fn);
  // A before-trigger that may hold the event: the event's during-phase waits until the hold it
  // receives is released.
  TriggerId add_holding(std::string_view event, std::function<void(EventHold)> fn);
  // Fails with kNotRegistered if the trigger already ran or was never added.
  ReactorResult<void> remove(TriggerId id);

  // Runs the event's before-triggers, then (once every hold is released, possibly at once) its
  // during- and after-triggers. Triggers added to a phase while the event fires run in this
  // firing if that phase has not finished. Returns false, doing nothing, if the event is
  // already firing.
  bool fire(std::string_view event);
  // True from fire() until the after-phase finished.
  [[nodiscard]] bool firing(std::string_view event) const;

 private:
  std::shared_ptr<detail::EventState>& state_for(std::string_view event);

  LogSink log_;
  std::map<std::string, std::shared_ptr<detail::EventState>, std::less<>> events_;
  std::uint64_t next_id_ = 1;
};

}  // namespace daemonkit::core
