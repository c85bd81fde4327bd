// Dropping privileges: resolve a user and group given by name or number, then set supplementary
// groups, gid and uid in that order (each later step needs the privilege the earlier ones keep),
// and prove afterwards that root cannot be regained. The log lines are twistd's
// ("set uid/gid 65534/65534", "failed to set ... (are you root?) -- exiting.").
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// What the user asked for, as typed: "nobody" or "65534".
struct PrivilegeRequest {
  std::optional<std::string> user;
  std::optional<std::string> group;
  // twistd's --euid: set only the effective ids, keeping the real and saved ones, so the
  // process can take its privileges back (deliberately weaker; no proof of loss is possible).
  bool euid = false;
};

// A request resolved against the user database.
struct PrivilegePlan {
  std::optional<uid_t> uid;
  // The user's primary group when only the user was given (twistd: pwd.getpwuid(uid).pw_gid).
  std::optional<gid_t> gid;
  // The passwd name of the uid; empty when it has none.
  std::string user_name;
  // The supplementary groups, resolved here before any fork (getgrouplist: the gid, then the
  // user's groups in the database) so that the child sets them with setgroups alone; the
  // database is not async-signal-safe to read, and may be missing inside a chroot. Empty when
  // there is no user name or no gid: then the groups become the gid alone.
  std::vector<gid_t> groups;
  bool euid = false;

  [[nodiscard]] bool empty() const { return !uid && !gid; }
  // twistd's words for it: "uid/gid 65534/65534", "euid/egid 65534/None".
  [[nodiscard]] std::string description() const;
};

// Numbers are taken as they are (an unknown uid is fine when a gid is given too); names must
// exist. Unknown names and a uid without passwd entry nor gid are errors that say so. A user
// with a passwd entry also gets its supplementary groups ("getgrouplist(nobody, 65534)" names a
// failure).
[[nodiscard]] StepResult<PrivilegePlan> resolve_privileges(sys::Syscalls& os,
                                                           const PrivilegeRequest& request);

// Applies the plan: supplementary groups (setgroups to the resolved list, or to the gid alone)
// when running as root, then setresgid, then setresuid (only the effective ids in euid mode).
// It reads no user or group database (resolve_privileges did, in the parent). Asking for the
// uid the process already has changes nothing and logs twistd's warning. In full mode it then
// checks that setuid(0) fails and that getresuid/getresgid report the new ids. Logs
// "set <description>" on success, twistd's "failed to set ..." line on failure; the error
// names the step ("setresuid(65534)", "setgroups(65534, 27)").
[[nodiscard]] StepResult<void> shed_privileges(sys::Syscalls& os, const PrivilegePlan& plan,
                                               const LogSink& log);

}  // namespace daemonkit::core
