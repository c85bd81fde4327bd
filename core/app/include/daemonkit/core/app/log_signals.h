// Wires a log file to the reactor's signals as twistd does, plus the reopen twistd lacks
// (Twisted #3363): SIGUSR1 rotates the file, SIGHUP reopens it after logrotate moved it away.
// Both run on the loop, between two whole lines, never inside the signal handler.
#pragma once

#include "daemonkit/core/app/log_file.h"
#include "daemonkit/core/reactor/reactor.h"

namespace daemonkit::core {

struct LogSignalOptions {
  bool rotate_on_sigusr1 = true;
  // Off for a daemon that has its own use for SIGHUP (a configuration reload): it then calls
  // LogFile::reopen from its own hook.
  bool reopen_on_sighup = true;
};

// Sets the reactor's hooks; call before Reactor::run. `file` must outlive the reactor's run.
// A failure is written in the log by the file itself (LogFile::rotate, LogFile::reopen).
void route_log_signals(Reactor& reactor, LogFile& file, LogSignalOptions options = {});

}  // namespace daemonkit::core
