// app::run: twistd for a C++ program. One call in main reads the command line (the daemon
// options shared with `daemonkit run`, app::run's own, and a subcommand naming one of the
// program's service makers), makes that maker's service, and runs it with the Runner:
//
//   int main(int argc, char** argv) { return daemonkit::app::run(argc, argv, echod::makers()); }
//
//   echod --pidfile /run/echod.pid --logfile /var/log/echod.log --uid nobody echo --port 7007
//
// What it adds to the Runner, in the order it happens:
//   1. the sockets a service manager passed ($LISTEN_FDS) are taken first, before anything
//      opens a descriptor, and kept through the daemon's closing of inherited ones;
//   2. the reactor is made with a log that speaks into the daemon's log once that exists;
//   3. the maker builds the service (a refusal is a usage error: exit 2);
//   4. the Runner runs it; in the daemon, after privileges were shed, --profile starts the CPU
//      profiler (its file is then the dropped user's, and a symlink planted for root's open
//      gains nothing) and --ready the sd_notify keep-alives; at shutdown STOPPING=1 is sent
//      and the profile written.
// Exit statuses: 0 after an orderly stop (or by the signal that stopped it), 1 when the start
// failed (with the reason on stderr), 2 for a usage error.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "daemonkit/core/app/notifier.h"
#include "daemonkit/core/app/service_maker.h"
#include "daemonkit/core/daemon/environment.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// --profile's profiler as run_app drives it; tests give their own, the default is CpuProfiler.
struct ProfilerHooks {
  // Starts sampling into the file; the error is the sentence to report.
  std::function<tl::expected<void, std::string>(const std::string& path)> start;
  // Stops and writes the profile.
  std::function<void()> stop;
};

// How the process was started, read at the edge (main) so that run_app never reads the
// process's own environment.
struct AppInvocation {
  std::vector<std::string> args;   // argv
  Environment environment;         // $NOTIFY_SOCKET, $LISTEN_PID, $DAEMONKIT_STATUS_FD
  NotifyVariables notify;          // $NOTIFY_SOCKET, $WATCHDOG_USEC, $WATCHDOG_PID
  ActivationVariables activation;  // $LISTEN_PID, $LISTEN_FDS, $LISTEN_FDNAMES
  std::string version;             // for the start-up line; empty: left out
  std::string executable;          // for the start-up line; empty: left out
  ProfilerHooks profiler;          // unset members: gperftools' CpuProfiler
  // For the services' ssl: endpoints (ServiceContext::listen_ssl); null: no TLS is linked.
  SslEndpointListener listen_ssl = nullptr;
};

// The whole of app::run on any Syscalls. Returns the exit status (see above); when
// daemonizing, only the daemon returns (the launcher and the intermediate exit inside).
[[nodiscard]] int run_app(sys::Syscalls& os, const AppInvocation& invocation,
                          std::span<const ServiceMaker> makers);

}  // namespace daemonkit::core

namespace daemonkit::app {

// run_app on the real kernel with this process's arguments and environment. Reads and removes
// $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES (sd_listen_fds(1)'s unset): call it from main,
// before any thread starts.
// `listen_ssl`: core::listen_ssl_endpoint to let the services serve ssl: endpoints (which links
// OpenSSL); without it they refuse them.
[[nodiscard]] int run(int argc, char** argv, std::span<const core::ServiceMaker> makers,
                      std::string version = {}, core::SslEndpointListener listen_ssl = nullptr);

}  // namespace daemonkit::app
