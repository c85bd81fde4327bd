// ChildPlan: everything a spawned child does between vfork and exec, prepared in the parent.
// Every allocation, every look-up (the user's groups, the signal numbers glibc reserves) and
// every check happens here, before anything is created; the child only reads the plan (see
// child_steps.h), so it allocates nothing and calls nothing that is not async-signal-safe.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/process/child_fd_map.h"
#include "daemonkit/core/process/exec_arguments.h"

namespace daemonkit::core {

// The ids the program runs with. The switch is complete and cannot be undone: real, effective
// and saved ids all change, so it needs root (or CAP_SETUID and CAP_SETGID).
struct ChildIds {
  uid_t uid = 0;
  gid_t gid = 0;
  // The supplementary groups, already resolved (getgrouplist, in the parent: the user and
  // group databases are not async-signal-safe to read). Empty means the gid alone, never the
  // parent's groups: the program must not keep groups of the user it no longer is.
  std::vector<gid_t> groups;
};

// What a caller may leave unset; the defaults are what execve alone would give, minus what
// the parent had set up for itself (its handlers, its mask, its other descriptors).
struct ChildOptions {
  // chdir here before exec (relative to the parent's directory); unset keeps the parent's.
  std::optional<std::string> working_directory;
  std::optional<ChildIds> ids;
  // The mask the program starts with. Empty by default, whatever the spawning thread blocks.
  sigset_t signal_mask = empty_signal_set();
  // A terminal (the parent's descriptor of a PTY's slave) the child makes its controlling
  // terminal, as the leader of a new session: setsid, then TIOCSCTTY. -1: neither.
  int controlling_terminal = -1;

  [[nodiscard]] static sigset_t empty_signal_set();
};

class ChildPlan {
 public:
  // setgroups refuses more than the kernel's NGROUPS_MAX.
  static constexpr std::size_t kMaxGroups = 65536;

  // The plan, or a kOptions error naming the field: an empty working directory or one with a
  // NUL byte, more than kMaxGroups groups, a uid or gid of -1 (which set*id reads as "leave
  // unchanged", so the switch would silently not happen).
  [[nodiscard]] static StepResult<ChildPlan> make(ExecArguments exec, ChildFdMap fds,
                                                  ChildOptions options = {});

  [[nodiscard]] const ExecArguments& exec() const { return exec_; }
  [[nodiscard]] const ChildFdMap& fds() const { return fds_; }
  // Null when the child keeps the parent's directory.
  [[nodiscard]] const char* working_directory() const {
    return options_.working_directory ? options_.working_directory->c_str() : nullptr;
  }
  [[nodiscard]] const ChildIds* ids() const { return options_.ids ? &*options_.ids : nullptr; }
  // setgroups' list: the groups given, or the gid alone.
  [[nodiscard]] const std::vector<gid_t>& groups() const { return groups_; }
  [[nodiscard]] const sigset_t& signal_mask() const { return options_.signal_mask; }
  // -1 when the child keeps the parent's session.
  [[nodiscard]] int controlling_terminal() const { return options_.controlling_terminal; }
  // The first signal number above the ones glibc keeps for itself (SIGRTMIN): glibc's
  // sigaction refuses 32 up to here. Read once in the parent, where calling SIGRTMIN (a
  // function in glibc) is allowed.
  [[nodiscard]] int first_user_realtime_signal() const { return first_user_realtime_signal_; }

 private:
  ChildPlan(ExecArguments exec, ChildFdMap fds, ChildOptions options);

  ExecArguments exec_;
  ChildFdMap fds_;
  ChildOptions options_;
  std::vector<gid_t> groups_;
  int first_user_realtime_signal_ = 0;
};

}  // namespace daemonkit::core
