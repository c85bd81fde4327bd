#include "daemonkit/core/process/child_plan.h"

#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {
namespace {

tl::unexpected<StepError> refused(std::string message) {
  return step_failed(StepError::plain(StepKind::kOptions, std::move(message)));
}

}  // namespace

sigset_t ChildOptions::empty_signal_set() {
  sigset_t none;
  sigemptyset(&none);
  return none;
}

StepResult<ChildPlan> ChildPlan::make(ExecArguments exec, ChildFdMap fds, ChildOptions options) {
  if (options.working_directory) {
    const std::string& dir = *options.working_directory;
    if (dir.empty())
      return refused("working directory: empty (leave it unset to keep the parent's)");
    if (std::string_view(dir).find('\0') != std::string_view::npos) {
      return refused("working directory: contains a NUL byte");
    }
  }
  if (options.ids) {
    const ChildIds& ids = *options.ids;
    if (ids.uid == static_cast<uid_t>(-1)) return refused("uid: -1 would leave the uid unchanged");
    if (ids.gid == static_cast<gid_t>(-1)) return refused("gid: -1 would leave the gid unchanged");
    if (ids.groups.size() > kMaxGroups) {
      return refused(fmt::format("groups: {} given, at most {}", ids.groups.size(), kMaxGroups));
    }
  }
  return ChildPlan(std::move(exec), std::move(fds), std::move(options));
}

ChildPlan::ChildPlan(ExecArguments exec, ChildFdMap fds, ChildOptions options)
    : exec_(std::move(exec)),
      fds_(std::move(fds)),
      options_(std::move(options)),
      first_user_realtime_signal_(SIGRTMIN) {
  if (options_.ids) {
    groups_ =
        options_.ids->groups.empty() ? std::vector<gid_t>{options_.ids->gid} : options_.ids->groups;
  }
}

}  // namespace daemonkit::core
