// RunnerOptions: what the UnixApplicationRunner is told on the command line (twistd's global
// options). Plain fields, one per option, so app::run's parser fills them directly; every
// default is what the runner does when the option is not given.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace daemonkit::core {

struct RunnerOptions {
  // --nodaemon: stay in the foreground (no forks, no status pipe); the umask is then left alone
  // unless --umask is given. Without it the process daemonizes unless something already
  // supervises it (decide_detach: a service manager's $NOTIFY_SOCKET or $LISTEN_PID, a
  // launcher's $DAEMONKIT_STATUS_FD, init as the parent, inetd): forking away from those would
  // lose the process they track. The log says why it stayed.
  bool nodaemon = false;
  // --pidfile: empty for none. A relative path is taken from the current directory at start,
  // before any chroot or chdir, and then names the same file throughout.
  std::string pidfile;
  // --logfile: "-" is stdout (refused when daemonizing: "Daemons cannot log to stdout,
  // exiting!"). Empty: stdout with --nodaemon, else "<application name>.log" in the current
  // directory (twistd's twistd.log). Opened before any fork, made absolute, with logfile_mode.
  std::string logfile;
  // The mode of a new log file, exactly (not the umask's leftover: twistd's H8).
  mode_t logfile_mode = 0640;
  // A log file is rotated on SIGUSR1 (twistd) and reopened on SIGHUP, for logrotate; off for
  // a daemon that keeps SIGHUP for itself (a configuration reload) and reopens from its hook.
  bool reopen_log_on_sighup = true;
  // --syslog: log to syslog instead of a file; --prefix is its ident (empty: the application's
  // name). syslog_facility is one of <syslog.h>'s LOG_USER, LOG_DAEMON, LOG_LOCAL0 ...
  bool syslog = false;
  std::string prefix;
  int syslog_facility = 1 << 3;  // LOG_USER
  // --chroot: empty for none. Entered before rundir, which is then taken inside it.
  std::string chroot;
  // --rundir: the daemon's working directory (daemon(7)'s "/", as `daemonkit run`).
  std::string rundir = "/";
  // --umask: unset applies 0077 when daemonizing (twistd) and nothing with --nodaemon.
  std::optional<mode_t> umask;
  // --uid / --gid, by name or number; unset: the application's user and group. A uid without a
  // gid takes the user's primary group. --euid sets only the effective ids (recoverable).
  std::optional<std::string> uid;
  std::optional<std::string> gid;
  bool euid = false;
  // Descriptors the daemon keeps through its closing of inherited ones: sockets a service
  // manager passed (socket activation), which the services adopt after the forks.
  std::vector<int> files_preserve;
  // How long the launching process waits for the daemon's report; unset: until it reports or
  // dies (it never hangs on a daemon that died: the pipe's EOF tells).
  std::optional<std::chrono::milliseconds> start_timeout;
  // How long shutdown waits for the services' stop to complete (connections draining) before
  // it goes on without them: a stuck stop must not keep a stopped daemon's PID file forever.
  std::chrono::milliseconds stop_timeout{30'000};
  // For the start-up line: "<application> <version> (<executable>) starting up."; empty parts
  // are left out.
  std::string version;
  std::string executable;
};

}  // namespace daemonkit::core
