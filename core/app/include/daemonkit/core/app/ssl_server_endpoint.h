// Listening on an ssl: endpoint (TLS over TCP, Twisted's ssl: server strings), for
// StreamServerService. In a file of its own, handed to the service as a function, so that a
// program that never serves TLS links and loads no OpenSSL: libssl and libcrypto cost a daemon
// about a third of its start (bench/app). A service serves ssl: endpoints when its
// StreamServerOptions::listen_ssl is this function; app::run's services when app::run is
// given it:
//   return daemonkit::app::run(argc, argv, makers, "1.0", &daemonkit::core::listen_ssl_endpoint);
#pragma once

#include <memory>

#include "daemonkit/core/app/endpoint.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

using SslEndpointListener = StepResult<std::unique_ptr<ListeningPort>> (*)(
    Reactor& reactor, sys::Syscalls& os, const SslServerEndpoint& endpoint, ServerFactory& factory,
    const PortOptions& port);

// A server TLS context from the endpoint's privateKey and certKey files (read through `os`),
// then listen_ssl on its port and interface. Errors begin with the endpoint string. Refuses
// extraCertChain and dhParameters, which Twisted loads: ignoring them would serve without what
// the operator asked for.
[[nodiscard]] StepResult<std::unique_ptr<ListeningPort>> listen_ssl_endpoint(
    Reactor& reactor, sys::Syscalls& os, const SslServerEndpoint& endpoint, ServerFactory& factory,
    const PortOptions& port);

}  // namespace daemonkit::core
