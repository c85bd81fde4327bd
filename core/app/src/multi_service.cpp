#include "daemonkit/core/app/multi_service.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

MultiService::~MultiService() {
  for (auto& child : children_) child->parent_ = nullptr;
}

StepResult<void> MultiService::add(std::shared_ptr<Service> child) {
  if (!child) return step_failed(service_misuse("cannot add a null service"));
  if (child->parent_ != nullptr) {
    return step_failed(service_misuse(
        fmt::format("{} already has a parent, {}", child->label(), child->parent_->label())));
  }
  for (const Service* s = this; s != nullptr; s = s->parent_) {
    if (s == child.get()) {
      return step_failed(service_misuse(
          fmt::format("cannot add {} to itself or to a service inside it", child->label())));
    }
  }
  if (!child->name().empty() && find(child->name()) != nullptr) {
    return step_failed(
        service_misuse(fmt::format("cannot have two services with same name '{}'", child->name())));
  }
  child->parent_ = this;
  children_.push_back(child);
  if (!running()) return {};

  auto started = child->privileged_start().and_then([&] { return child->start(); });
  if (!started) {
    // The child undoes its own failed start; it only leaves the list.
    children_.erase(std::find(children_.begin(), children_.end(), child));
    child->parent_ = nullptr;
    return step_failed(error_in(child->label(), std::move(started.error())));
  }
  return {};
}

StepResult<Completion> MultiService::remove(Service& child) {
  const auto it = std::find_if(children_.begin(), children_.end(),
                               [&](const auto& c) { return c.get() == &child; });
  if (it == children_.end()) {
    return step_failed(
        service_misuse(fmt::format("{} is not a child of {}", child.label(), label())));
  }
  std::shared_ptr<Service> kept = *it;
  children_.erase(it);
  kept->parent_ = nullptr;
  Completion stopped = kept->stop();
  // Owned by its own completion until it completes: the caller may drop the child at once.
  stopped.on_complete([kept](const Completion::Errors&) mutable { kept.reset(); });
  return stopped;
}

Service* MultiService::find(std::string_view name) const {
  for (const auto& child : children_) {
    if (child->name() == name) return child.get();
  }
  return nullptr;
}

StepResult<void> MultiService::do_privileged_start() {
  // By index: a child's start may add a sibling (it joins the end of this loop).
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const auto child = children_[i];
    auto started = child->privileged_start();
    if (!started) return step_failed(error_in(child->label(), std::move(started.error())));
  }
  return {};
}

StepResult<void> MultiService::do_start() {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const auto child = children_[i];
    if (child->running()) continue;
    auto started = child->start();
    if (!started) return step_failed(error_in(child->label(), std::move(started.error())));
  }
  return {};
}

Completion MultiService::do_stop() { return stop_in_reverse(children_); }

Completion MultiService::undo_failed_start() {
  std::vector<std::shared_ptr<Service>> holding;
  for (const auto& child : children_) {
    if (child->state() == ServiceState::kPrivileged || child->state() == ServiceState::kRunning) {
      holding.push_back(child);
    }
  }
  return stop_in_reverse(std::move(holding));
}

Completion MultiService::stop_in_reverse(std::vector<std::shared_ptr<Service>> children) {
  // One step per child, from the back: stop it, and when its stop completes, record its errors
  // and take the next. The chain owns the children, so a child removed meanwhile still stops.
  struct Chain : std::enable_shared_from_this<Chain> {
    std::vector<std::shared_ptr<Service>> children;
    Completion::Errors errors;
    Completion whole;

    void next() {
      if (children.empty()) {
        whole.complete(std::move(errors));
        return;
      }
      const std::shared_ptr<Service> child = std::move(children.back());
      children.pop_back();
      const std::string label = child->label();
      child->stop().on_complete(
          [self = shared_from_this(), label](const Completion::Errors& child_errors) {
            for (const auto& e : child_errors) self->errors.push_back(error_in(label, e));
            self->next();
          });
    }
  };
  auto chain = std::make_shared<Chain>();
  chain->children = std::move(children);
  Completion whole = chain->whole;
  chain->next();
  return whole;
}

}  // namespace daemonkit::core
