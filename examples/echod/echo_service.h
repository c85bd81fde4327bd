// echod as a daemonkit application: the "echo" command of its command line (a ServiceMaker),
// which app::run turns into a daemon with twistd's options:
//   echod [--nodaemon] [--pidfile F] [--logfile F] [--uid U] [--ready] ... echo [--port ENDPOINT]
// The service is a StreamServerService of Echo protocols on the endpoint (an endpoint string:
// "tcp:7007:interface=127.0.0.1", "unix:/run/echod.sock", "systemd:domain=INET:index=0"; a bare
// number N means tcp:N on 127.0.0.1). Started by a service manager that passed sockets and
// given no --port, it serves on the first one. It logs "listening on ADDRESS" once it listens.
#pragma once

#include "daemonkit/core/app/service_maker.h"

namespace echod {

inline constexpr const char* kDefaultEndpoint = "tcp:7007:interface=127.0.0.1";

[[nodiscard]] daemonkit::core::ServiceMaker echo_maker();

}  // namespace echod
