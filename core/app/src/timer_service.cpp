#include "daemonkit/core/app/timer_service.h"

#include <exception>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

TimerService::TimerService(Reactor& reactor, Duration interval, std::function<void()> fn,
                           LogSink log, std::string name)
    : TimerService(reactor, interval, AsyncCall{[fn = std::move(fn)] {
                     fn();
                     return Completion::done();
                   }},
                   std::move(log), std::move(name)) {}

TimerService::TimerService(Reactor& reactor, Duration interval, AsyncCall fn, LogSink log,
                           std::string name)
    : Service(std::move(name)),
      reactor_(reactor),
      interval_(interval),
      fn_(std::move(fn.fn)),
      log_(std::move(log)) {}

TimerService::~TimerService() {
  self_.reset();
  if (next_.active()) (void)next_.cancel();
}

StepResult<void> TimerService::do_start() {
  if (interval_ <= Duration::zero()) {
    return step_failed(service_misuse(
        fmt::format("{}: the interval must be positive, not {} ns", label(), interval_.count())));
  }
  self_ = std::make_shared<TimerService*>(this);
  failure_.reset();
  skipped_ = 0;
  beat_ = 0;
  in_flight_.reset();
  stop_.reset();
  anchor_ = reactor_.now();
  call();
  return {};
}

Completion TimerService::do_stop() {
  if (next_.active()) (void)next_.cancel();
  if (!in_flight_) {
    self_.reset();
    return Completion::done();
  }
  // Twisted's #6290: the stop waits for the call under way, which finished() completes.
  stop_.emplace();
  return *stop_;
}

void TimerService::call() {
  Completion done;
  try {
    done = fn_();
  } catch (const std::exception& e) {
    fail(e.what());
    return;
  } catch (...) {
    fail("an exception that is not a std::exception");
    return;
  }
  if (done.completed()) {
    finished(done.errors());
    return;
  }
  in_flight_ = done;
  done.on_complete([self = std::weak_ptr<TimerService*>(self_)](const Completion::Errors& errors) {
    if (const auto alive = self.lock()) (*alive)->finished(errors);
  });
}

void TimerService::finished(const Completion::Errors& errors) {
  in_flight_.reset();
  if (!errors.empty()) {
    fail(errors.front().message);
  } else if (!stop_ && running()) {
    schedule_next();
  }
  if (stop_) {
    Completion stop = *stop_;
    stop_.reset();
    self_.reset();
    stop.complete();
  }
}

void TimerService::fail(std::string why) {
  log_line(log_, fmt::format("{}: the timed call failed, no further calls: {}", label(), why));
  failure_ = std::move(why);
}

void TimerService::schedule_next() {
  // The next beat of the grid after now: a call that ran past one or more beats skips them.
  const Duration since = reactor_.now() - anchor_;
  const std::int64_t next_beat = since / interval_ + 1;
  if (next_beat > beat_ + 1) skipped_ += static_cast<std::uint64_t>(next_beat - beat_ - 1);
  beat_ = next_beat;
  const TimePoint due = anchor_ + next_beat * interval_;
  next_ = reactor_.call_later(due - reactor_.now(), [self = std::weak_ptr<TimerService*>(self_)] {
    if (const auto alive = self.lock()) (*alive)->call();
  });
}

}  // namespace daemonkit::core
