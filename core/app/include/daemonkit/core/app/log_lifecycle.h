// The lines a daemon's log opens and closes with, as twistd writes them, so that one look at a
// log tells where each run began and whether it ended in order:
//   ... [daemonkit.app#info] echod 1.2 (/usr/sbin/echod) starting up.
//   ... [daemonkit.app#info] reactor class: daemonkit::core::Reactor.
//   ... [-] Received SIGTERM, shutting down.            (the reactor's own)
//   ... [-] Main loop terminated.                       (the reactor's own)
//   ... [daemonkit.app#info] Server Shut Down.
// The runner calls these; the reactor writes the two lines between them itself.
#pragma once

#include <string_view>

#include "daemonkit/core/app/log_observer.h"

namespace daemonkit::core {

// The system the runner's own lines carry (twistd's "…UnixAppLogger#info").
inline constexpr std::string_view kLifecycleSystem = "daemonkit.app#info";

// "<program> <version> (<executable>) starting up." then "reactor class: daemonkit::core::Reactor."
// (twistd's "twistd 22.4.0 (/usr/bin/python3 3.11.2) starting up."). An empty version or
// executable is left out with its separator.
void log_start_up(LogObserver& log, std::string_view program, std::string_view version,
                  std::string_view executable);

// "Server Shut Down.", after the reactor has returned and the services have stopped.
void log_shut_down(LogObserver& log);

}  // namespace daemonkit::core
