// Service: something a daemon starts and stops (Twisted's IService). It has a name, a parent (the
// MultiService that holds it) and a state; privileged_start runs while the process is still
// privileged (bind port 80), start when it is not, and stop may finish later, through the
// Completion it returns (connections draining), never by blocking.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/base/step_error.h"

namespace daemonkit::core {

class MultiService;

// Where a service is in its life. A service holds resources from privileged_start (or start)
// until its stop completes.
enum class ServiceState {
  kStopped,     // never started, or stopped completely
  kPrivileged,  // privileged_start succeeded; start has not run yet
  kRunning,     // started
  kStopping,    // a stop (or the undoing of a failed start) has begun and not completed
};

[[nodiscard]] std::string_view to_string(ServiceState state);

class Service {
 public:
  explicit Service(std::string name = {});
  virtual ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Empty for an unnamed service (a parent holds any number of those).
  [[nodiscard]] const std::string& name() const { return name_; }
  // Refused while the service has a parent (Twisted: "cannot change name when parent exists"),
  // since the parent indexes its children by name.
  StepResult<void> set_name(std::string name);
  // The MultiService holding this one (set by MultiService::add), or null.
  [[nodiscard]] MultiService* parent() const { return parent_; }
  // parent()->remove(*this) (Twisted's disownServiceParent): the stop's completion when the
  // service held anything. Refused without a parent.
  StepResult<Completion> disown_parent();

  [[nodiscard]] ServiceState state() const { return state_; }
  [[nodiscard]] bool running() const { return state_ == ServiceState::kRunning; }

  // The part of starting that needs privileges. Only from kStopped; leaves kPrivileged.
  StepResult<void> privileged_start();
  // From kStopped or kPrivileged; leaves kRunning. Unlike Twisted, a second start is refused
  // (Twisted starts twice, #4649), and so is a start while a stop is still under way.
  //
  // When either start fails, the service undoes what it had done (undo_failed_start): it is in
  // kStopping until that completes, and a stop() meanwhile returns that completion. The error is
  // returned here; the undoing's own errors come in that completion.
  StepResult<void> start();
  // Stops a service that holds anything (kPrivileged or kRunning): the state is kStopping until
  // the returned completion completes, then kStopped. While stopping, every stop returns the same
  // completion. A stopped service completes at once and does nothing (Twisted's TimerService
  // fails here, #6202).
  Completion stop();
  // The stop under way, or a completed completion when there is none.
  [[nodiscard]] Completion stopping() const;

 protected:
  // What a service type does at each step. The base changes the state around them.
  virtual StepResult<void> do_privileged_start() { return {}; }
  virtual StepResult<void> do_start() { return {}; }
  virtual Completion do_stop() { return Completion::done(); }
  // Called after do_privileged_start or do_start failed, to release what the failed step left;
  // a service whose steps clean up after themselves keeps the default.
  virtual Completion undo_failed_start() { return Completion::done(); }

  // "service 'web'", or "service" for an unnamed one: how messages name this service.
  [[nodiscard]] std::string label() const;

 private:
  friend class MultiService;
  void enter_stopping(Completion completion);

  std::string name_;
  MultiService* parent_ = nullptr;
  ServiceState state_ = ServiceState::kStopped;
  Completion stopping_ = Completion::done();
  // Points at this service until it is destroyed: what a stop that completes later checks
  // before it touches the service, so dropping a stopping service is safe.
  std::shared_ptr<Service*> self_;
  std::uint64_t stop_generation_ = 0;
};

// A misuse of the service tree (duplicate name, a second parent, a second start): kOptions,
// with Twisted's wording where it has one.
[[nodiscard]] StepError service_misuse(std::string message);

// `error` with "<label>: " in front of its message, keeping its kind and cause: how a parent
// reports which child failed ("service 'web': bind(0.0.0.0:80): ...").
[[nodiscard]] StepError error_in(std::string_view label, StepError error);

}  // namespace daemonkit::core
