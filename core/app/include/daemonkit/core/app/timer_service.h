// TimerService: calls a function every interval on the reactor while running (Twisted's
// TimerService over a LoopingCall). The first call is made inside start, as Twisted's; later
// ones keep to the grid start + k * interval, so a slow call skips the beats it overran instead
// of piling them up. A call may finish later (it returns a Completion): the next one then waits
// for it, and a stop completes only once it has.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/service.h"
#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"

namespace daemonkit::core {

class TimerService : public Service {
 public:
  // A call that finishes when its Completion does; errors in it count as a failed call.
  struct AsyncCall {
    std::function<Completion()> fn;
  };

  // `interval` must be positive (a start with another one fails, kOptions). `log` hears a
  // failed call.
  TimerService(Reactor& reactor, Duration interval, std::function<void()> fn, LogSink log = {},
               std::string name = {});
  TimerService(Reactor& reactor, Duration interval, AsyncCall fn, LogSink log = {},
               std::string name = {});
  ~TimerService() override;

  // Why the calls stopped: the exception a call threw or the first error its completion carried.
  // As in Twisted, a failed call is logged and ends the calls; the service stays running and
  // its stop still succeeds. Cleared by the next start.
  [[nodiscard]] const std::optional<std::string>& failure() const { return failure_; }
  // Beats skipped because a call overran them, since start.
  [[nodiscard]] std::uint64_t skipped_beats() const { return skipped_; }

 protected:
  StepResult<void> do_start() override;
  Completion do_stop() override;

 private:
  void call();
  void finished(const Completion::Errors& errors);
  void fail(std::string why);
  void schedule_next();

  Reactor& reactor_;
  Duration interval_;
  std::function<Completion()> fn_;
  LogSink log_;
  TimePoint anchor_{};
  DelayedCall next_;
  // The call in flight, while an asynchronous one has not finished.
  std::optional<Completion> in_flight_;
  // What a stop waits for when a call is in flight.
  std::optional<Completion> stop_;
  std::optional<std::string> failure_;
  std::uint64_t skipped_ = 0;
  std::int64_t beat_ = 0;  // which beat of the grid the current call is
  // Invalidated by each start and by the destructor, so that a completion or timer of an earlier
  // run, or of a destroyed service, finds nothing to act on.
  std::shared_ptr<TimerService*> self_;
};

}  // namespace daemonkit::core
