#include "daemonkit/core/app/completion.h"

#include <cstddef>
#include <utility>

namespace daemonkit::core {

Completion::Completion() : state_(std::make_shared<State>()) {}

Completion Completion::done(Errors errors) {
  Completion c;
  c.complete(std::move(errors));
  return c;
}

Completion Completion::all(const std::vector<Completion>& parts) {
  Completion whole;
  if (parts.empty()) {
    whole.complete();
    return whole;
  }
  // Each part's errors land in its own slot, so the order is that of `parts` whatever order
  // they complete in.
  struct Join {
    std::vector<Errors> errors;
    std::size_t pending = 0;
  };
  auto join = std::make_shared<Join>();
  join->errors.resize(parts.size());
  join->pending = parts.size();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    parts[i].on_complete([join, whole, i](const Errors& errors) mutable {
      join->errors[i] = errors;
      if (--join->pending != 0) return;
      Errors all;
      for (auto& part : join->errors) {
        for (auto& e : part) all.push_back(std::move(e));
      }
      whole.complete(std::move(all));
    });
  }
  return whole;
}

bool Completion::complete(Errors errors) {
  if (state_->completed) return false;
  state_->completed = true;
  state_->errors = std::move(errors);
  // A callback may register another one (it then runs at once) or drop the last handle but
  // this one; the list is taken out first and the state kept alive by the local copy.
  const auto keep = state_;
  auto callbacks = std::move(keep->callbacks);
  keep->callbacks.clear();
  for (auto& fn : callbacks) fn(keep->errors);
  return true;
}

bool Completion::fail(StepError error) {
  Errors errors;
  errors.push_back(std::move(error));
  return complete(std::move(errors));
}

void Completion::on_complete(Callback fn) const {
  if (state_->completed) {
    fn(state_->errors);
    return;
  }
  state_->callbacks.push_back(std::move(fn));
}

}  // namespace daemonkit::core
