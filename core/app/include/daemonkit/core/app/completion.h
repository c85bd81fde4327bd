// Completion: how a service says that its stop has finished, now or later (a one-shot Deferred
// without chaining). A stop that drains connections completes when the last one is gone; the
// caller registers what to do then and never blocks. Copies share one state: the service keeps
// one to complete, the caller holds another to wait on.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "daemonkit/core/base/step_error.h"

namespace daemonkit::core {

class Completion {
 public:
  // The errors a stop ran into; empty when it went cleanly. A stop with errors still finished.
  using Errors = std::vector<StepError>;
  using Callback = std::function<void(const Errors& errors)>;

  // A pending completion.
  Completion();
  // One that has completed already (a stop with nothing to wait for).
  [[nodiscard]] static Completion done(Errors errors = {});
  // Completes when every one of `parts` has, with their errors in the order of `parts`.
  [[nodiscard]] static Completion all(const std::vector<Completion>& parts);

  // Completes and runs the callbacks registered so far, in order. Only the first call counts:
  // a later one changes nothing and returns false, so two paths racing to finish one stop
  // (a drain and a cancel) cannot report it twice.
  bool complete(Errors errors = {});
  bool fail(StepError error);

  // Runs `fn` when the completion completes, or now if it has.
  void on_complete(Callback fn) const;

  [[nodiscard]] bool completed() const { return state_->completed; }
  // The errors once completed; empty before.
  [[nodiscard]] const Errors& errors() const { return state_->errors; }
  // Whether the two handles share one state (the same stop).
  [[nodiscard]] bool same_as(const Completion& other) const { return state_ == other.state_; }

 private:
  struct State {
    bool completed = false;
    Errors errors;
    std::vector<Callback> callbacks;
  };
  std::shared_ptr<State> state_;
};

}  // namespace daemonkit::core
