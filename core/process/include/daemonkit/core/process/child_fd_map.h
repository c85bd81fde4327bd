// ChildFdMap: which of the parent's descriptors a spawned child gets, and as which numbers
// (Twisted's childFDs once the parent has made its pipes): "child fd 0 is the read end of this
// pipe, 1 and 2 are one pipe's write end, 5 is the parent's 9". Any child numbers, not only
// 0-2, and any overlap with the parent's numbers: 3 -> 4 with 4 -> 3 swaps two descriptors.
//
// Checked in the parent, before anything is created; applied in the child between fork and
// exec, where it allocates nothing and calls only async-signal-safe functions.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// Child descriptor `child` is a copy of the parent's descriptor `parent`.
struct FdAssignment {
  int child = -1;
  int parent = -1;

  friend bool operator==(const FdAssignment&, const FdAssignment&) = default;
};

class ChildFdMap {
 public:
  // More than any child needs (Twisted's tests use a handful); fixed so that applying the map
  // needs no memory but the map's own.
  static constexpr std::size_t kMaxAssignments = 64;
  // Child descriptor numbers stay below this: the child's descriptor table must hold them.
  static constexpr int kMaxChildFd = 1 << 16;

  // The map for `assignments`, or a kOptions error that says which entry is wrong: a negative
  // descriptor, a child number given twice or too large, or too many entries. A parent
  // descriptor may be given to several child numbers (stdout and stderr on one pipe).
  [[nodiscard]] static StepResult<ChildFdMap> make(std::span<const FdAssignment> assignments);

  // In the child: afterwards each child number refers to what its parent descriptor referred
  // to, without close-on-exec, and no other descriptor is open but `keep_open`. Every source
  // is first copied above all the numbers involved, so no dup2 overwrites a source still to be
  // copied, whatever cycles the map holds. Fails with the first call that fails (fcntl, dup2
  // or close_range).
  // `keep_open` (-1 for none) is a descriptor the child still needs after the map and that the
  // program must not get, such as the exec-failure report: it is left as it is, close-on-exec
  // included, so execve closes it. It must be at least first_free_fd(), where no dup2 of the
  // map can land on it (EINVAL otherwise, before anything is changed).
  [[nodiscard]] sys::Result<void> apply(sys::Syscalls& os, int keep_open = -1) const;

  // The lowest descriptor number the map neither gives the child nor reads from the parent.
  [[nodiscard]] int first_free_fd() const { return scratch_floor_; }

  [[nodiscard]] std::span<const FdAssignment> assignments() const {
    return {entries_.data(), count_};
  }

 private:
  ChildFdMap() = default;

  std::array<FdAssignment, kMaxAssignments> entries_{};
  std::size_t count_ = 0;
  // The lowest number the copies may take: above every child and parent number of the map.
  int scratch_floor_ = 0;
};

}  // namespace daemonkit::core
