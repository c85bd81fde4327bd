#include "daemonkit/core/app/service.h"

#include <cstdint>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/app/multi_service.h"

namespace daemonkit::core {

std::string_view to_string(ServiceState state) {
  switch (state) {
    case ServiceState::kStopped:
      return "stopped";
    case ServiceState::kPrivileged:
      return "privileged";
    case ServiceState::kRunning:
      return "running";
    case ServiceState::kStopping:
      return "stopping";
  }
  return "?";
}

StepError service_misuse(std::string message) {
  return StepError::plain(StepKind::kOptions, std::move(message));
}

StepError error_in(std::string_view label, StepError error) {
  error.message = fmt::format("{}: {}", label, error.message);
  return error;
}

Service::Service(std::string name)
    : name_(std::move(name)), self_(std::make_shared<Service*>(this)) {}

Service::~Service() = default;

std::string Service::label() const {
  return name_.empty() ? std::string("service") : fmt::format("service '{}'", name_);
}

StepResult<void> Service::set_name(std::string name) {
  if (parent_ != nullptr) {
    return step_failed(service_misuse("cannot change name when parent exists"));
  }
  name_ = std::move(name);
  return {};
}

StepResult<Completion> Service::disown_parent() {
  if (parent_ == nullptr) {
    return step_failed(service_misuse(fmt::format("{} has no parent", label())));
  }
  return parent_->remove(*this);
}

StepResult<void> Service::privileged_start() {
  if (state_ != ServiceState::kStopped) {
    return step_failed(
        service_misuse(fmt::format("{}: privileged start while {}", label(), to_string(state_))));
  }
  state_ = ServiceState::kPrivileged;
  auto started = do_privileged_start();
  if (!started) enter_stopping(undo_failed_start());
  return started;
}

StepResult<void> Service::start() {
  if (state_ != ServiceState::kStopped && state_ != ServiceState::kPrivileged) {
    return step_failed(
        service_misuse(fmt::format("{}: start while {}", label(), to_string(state_))));
  }
  // Running before the children start, as Twisted's MultiService: a child added from inside a
  // sibling's start is then started by add (once), not missed.
  state_ = ServiceState::kRunning;
  auto started = do_start();
  if (!started) enter_stopping(undo_failed_start());
  return started;
}

Completion Service::stop() {
  if (state_ == ServiceState::kStopping) return stopping_;
  if (state_ == ServiceState::kStopped) return Completion::done();
  enter_stopping(do_stop());
  return stopping_;
}

Completion Service::stopping() const { return stopping_; }

void Service::enter_stopping(Completion completion) {
  state_ = ServiceState::kStopping;
  stopping_ = completion;
  // A completion that completed already runs this at once; a later one may find the service
  // gone, and then has nothing to update.
  // The generation, not the completion, identifies this stop: a completion holding a copy of
  // itself in its own callback would never be freed if it never completed.
  const std::uint64_t generation = ++stop_generation_;
  completion.on_complete(
      [self = std::weak_ptr<Service*>(self_), generation](const Completion::Errors&) {
        const auto alive = self.lock();
        if (!alive) return;
        Service& service = **alive;
        if (service.stop_generation_ == generation) service.state_ = ServiceState::kStopped;
      });
}

}  // namespace daemonkit::core
