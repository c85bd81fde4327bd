// The command line of app::run (twistd for a C++ program): the daemon options shared with
// `daemonkit run` (core/options), app::run's own (--syslog, --prefix, --profile, --ready), and
// one subcommand naming the service maker to run, followed by that maker's own options:
//
//   echod [--nodaemon] [--pidfile PATH] ... [--syslog [--prefix NAME]] COMMAND [ITS OPTIONS]
//
// Parsing is pure (no I/O, no OS calls): it says what was asked; the runner does it.
#pragma once

#include <span>
#include <string>
#include <variant>
#include <vector>

#include "daemonkit/core/app/service_maker.h"
#include "daemonkit/core/options/daemon_options.h"

namespace daemonkit::core {

// What the command line asks of the runner, and the maker to make the service with. The
// shared daemon options are the base's fields (nodaemon, pidfile, rundir, chroot, umask, uid,
// gid, euid, logfile); logfile "-" is standard output, and only ever set with nodaemon.
struct AppCommandLine : DaemonOptionValues {
  // The program's name as invoked, without its directory: the application's name (its log
  // file is "<program>.log" by default) and the name in messages.
  std::string program;
  bool syslog = false;  // Log to syslog instead of a file.
  // syslog's ident: --prefix, else the program's name as invoked (argv[0] without its path).
  std::string prefix;
  std::string profile;  // --profile: where the CPU profile goes at shutdown; empty: none.
  bool ready = false;   // --ready: speak sd_notify (READY=1, STOPPING=1, WATCHDOG=1).
  const ServiceMaker* maker = nullptr;  // One of the makers given to the parser; never null.
  MakerOptions maker_options;
};

// Parsing ended without a service to run: --help (code 0, text on stdout) or a usage error
// (code kUsageExit, the problem and a hint to --help on stderr).
struct AppExit {
  int code = 0;
  std::string out;
  std::string err;
};

using AppParsed = std::variant<AppCommandLine, AppExit>;

// Parses a whole command line; args[0] is the program's name. `makers` must outlive the result
// (it points at the one chosen).
[[nodiscard]] AppParsed parse_app_command_line(const std::vector<std::string>& args,
                                               std::span<const ServiceMaker> makers);

}  // namespace daemonkit::core
