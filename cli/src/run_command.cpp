#include "daemonkit/cli/run_command.h"

#include <string_view>
#include <utility>

#include "daemonkit/cli/launch_error.h"
#include "daemonkit/cli/terminal_text.h"
#include "daemonkit/core/daemon/launch.h"
#include "daemonkit/core/status/status_exit.h"

namespace daemonkit::cli {

std::string launch_failure_text(std::string_view message) {
  return core::parent_exit(core::Failed{std::string(message)}).stderr_text;
}

// The options are the command's; the launch, every step of it, is core's (core::launch).
CommandResult run_run(sys::Syscalls& os, const RunOptions& options,
                      const std::vector<std::string>& environment) {
  core::LaunchOptions launch;
  launch.command = options.command;
  launch.environment = environment;
  launch.detach = !options.nodaemon;
  launch.pidfile = options.pidfile;
  launch.logfile = options.logfile;
  launch.chroot = options.chroot;
  launch.rundir = options.rundir;
  launch.umask = options.effective_umask();
  if (options.uid) launch.privileges.user = options.uid->text;
  if (options.gid) launch.privileges.group = options.gid->text;
  launch.privileges.euid = options.euid;
  launch.ready = options.ready;
  launch.timeout = options.timeout;

  core::LaunchReport report = core::launch(os, launch);
  if (!report.failure) return {0, "", std::move(report.notes)};
  const LaunchError error = LaunchError::from_step(*report.failure);
  std::string err = std::move(report.notes);
  err += error.plain ? error.message : launch_failure_text(error.message);
  if (report.error_fd != 2) {
    // An in-place run whose log file took 2: the user's stderr is this copy.
    print(os, report.error_fd, err);
    err.clear();
  }
  return {1, "", std::move(err)};
}

}  // namespace daemonkit::cli
