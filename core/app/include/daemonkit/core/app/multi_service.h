// MultiService: a service made of services (Twisted's MultiService). Children start in the order
// they were added and stop in the reverse order, each stop beginning when the later child's has
// completed; the parent's stop completes when all have, carrying every child's errors.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/app/completion.h"
#include "daemonkit/core/app/service.h"

namespace daemonkit::core {

class MultiService : public Service {
 public:
  using Service::Service;
  ~MultiService() override;

  // Adds `child` at the end. Refused (the child unchanged, not added): a null child, a child
  // that has a parent already (Twisted would move it silently), this service or one of its
  // ancestors (a cycle), and a name another child has ("cannot have two services with same
  // name 'web'"; Twisted leaves the refused child pointing at the parent, we do not).
  // If this service is running, the child's privileged_start and start run now; if either
  // fails the child is taken out again and the error, naming it, is returned.
  StepResult<void> add(std::shared_ptr<Service> child);
  // Takes `child` out and stops it if it holds anything; the completion is that stop's (done at
  // once for a stopped child). The child is kept alive until its stop completes. Refused for a
  // service that is not a child of this one.
  StepResult<Completion> remove(Service& child);

  // The child named `name`, or null (Twisted's getServiceNamed raises KeyError).
  [[nodiscard]] Service* find(std::string_view name) const;
  [[nodiscard]] const std::vector<std::shared_ptr<Service>>& children() const { return children_; }

 protected:
  // Each child's privileged_start, in order.
  StepResult<void> do_privileged_start() override;
  // Each child's start, in order (a child started already, by add, is skipped).
  StepResult<void> do_start() override;
  // Every child's stop, last child first, one after the other.
  Completion do_stop() override;
  // After a child failed to start, Twisted leaves the children before it running and the
  // parent marked running. Here the parent stops every child that holds anything, in reverse
  // order, and is stopped when that completes: a failed start leaves nothing behind.
  Completion undo_failed_start() override;

 private:
  // Stops `children` from the last to the first, each after the previous stop completed;
  // errors gathered with each child's label in front.
  static Completion stop_in_reverse(std::vector<std::shared_ptr<Service>> children);

  std::vector<std::shared_ptr<Service>> children_;
};

}  // namespace daemonkit::core
