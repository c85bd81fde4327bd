// The user and group `daemonkit run` gives PROGRAM: resolved from names or numbers in the
// launcher (so an unknown user is reported before anything forks), applied in the daemon after
// the PID file and log file are open, and proved afterwards.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "daemonkit/cli/launch_error.h"
#include "daemonkit/cli/options.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::cli {

struct Credentials {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;   // the user's primary group when only --uid was given
  std::string user_name;      // for initgroups; empty when the uid has no passwd entry
  bool euid = false;

  [[nodiscard]] bool empty() const { return !uid && !gid; }
};

// Numbers are taken as they are; names must exist. A uid without passwd entry and no --gid
// has no group to use and is an error.
[[nodiscard]] LaunchResult<Credentials> resolve_credentials(sys::Syscalls& os,
                                                            const std::optional<IdSpec>& uid,
                                                            const std::optional<IdSpec>& gid,
                                                            bool euid);

// Supplementary groups (initgroups, or setgroups to the gid alone) when privileged, then
// setresgid, then setresuid; with euid only the effective ids. In full mode it then checks
// that getresuid reports the new uid everywhere and that setuid(0) fails.
[[nodiscard]] LaunchResult<void> apply_credentials(sys::Syscalls& os, const Credentials& creds);

}  // namespace daemonkit::cli
