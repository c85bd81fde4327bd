#include "daemonkit/core/process/child_fd_map.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "daemonkit/core/daemon/close_fds.h"

namespace daemonkit::core {

StepResult<ChildFdMap> ChildFdMap::make(std::span<const FdAssignment> assignments) {
  if (assignments.size() > kMaxAssignments) {
    return step_failed(StepError::plain(
        StepKind::kOptions, "child fds: " + std::to_string(assignments.size()) +
                                " descriptors given, at most " + std::to_string(kMaxAssignments)));
  }
  ChildFdMap map;
  int highest = -1;
  for (const FdAssignment& entry : assignments) {
    const std::string which = "child fd " + std::to_string(entry.child);
    if (entry.child < 0 || entry.child >= kMaxChildFd) {
      return step_failed(StepError::plain(
          StepKind::kOptions,
          which + ": a child descriptor is from 0 to " + std::to_string(kMaxChildFd - 1)));
    }
    if (entry.parent < 0) {
      return step_failed(StepError::plain(
          StepKind::kOptions,
          which + ": parent descriptor " + std::to_string(entry.parent) + " is not a descriptor"));
    }
    const auto given = map.assignments();
    if (std::any_of(given.begin(), given.end(),
                    [&](const FdAssignment& other) { return other.child == entry.child; })) {
      return step_failed(StepError::plain(StepKind::kOptions, which + " is given twice"));
    }
    map.entries_[map.count_++] = entry;
    highest = std::max({highest, entry.child, entry.parent});
  }
  map.scratch_floor_ = highest + 1;
  return map;
}

sys::Result<void> ChildFdMap::apply(sys::Syscalls& os, int keep_open) const {
  if (keep_open >= 0 && keep_open < scratch_floor_) return sys::fail(EINVAL, "child fds");
  // Copies of the sources, above every number in the map: nothing below can overwrite them.
  // They are close-on-exec and not kept, so the close below or the exec removes them.
  std::array<int, kMaxAssignments> copies{};
  for (std::size_t i = 0; i < count_; ++i) {
    auto copy = os.fcntl(entries_[i].parent, F_DUPFD_CLOEXEC, scratch_floor_);
    if (!copy) return sys::fail(copy.error());
    copies[i] = *copy;
  }
  // dup2 gives each child number a fresh descriptor without close-on-exec, also where the child
  // number equals its parent number (dup2 of a descriptor onto itself would change nothing).
  std::array<int, kMaxAssignments + 1> keep{};
  for (std::size_t i = 0; i < count_; ++i) {
    auto placed = os.dup2(copies[i], entries_[i].child);
    if (!placed) return sys::fail(placed.error());
    keep[i] = entries_[i].child;
  }
  keep[count_] = keep_open;  // a negative entry is ignored
  auto closed = close_inherited_fds(os, std::span<const int>(keep.data(), count_ + 1));
  if (!closed) return sys::fail(closed.error());
  return {};
}

}  // namespace daemonkit::core
