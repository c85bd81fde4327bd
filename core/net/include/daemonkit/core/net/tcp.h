// TCP over IPv4 and IPv6: Twisted's IReactorTCP (and IReactorSSL). listen_tcp binds, listens and
// accepts on the reactor; connect_tcp connects without blocking. Both take numeric addresses.
// listen_ssl and connect_ssl are the same with TLS started on every connection before its
// protocol hears connection_made: the protocol writes and reads plaintext through the same
// Connection calls.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct ListenOptions {
  // Connections the kernel queues for accept. Twisted's 50 overflows under a burst: with
  // 10,000 clients connecting at once the SYNs beyond it are dropped and retried after a
  // second, then three, so the burst stalls for seconds while the server idles. SOMAXCONN
  // (4096) asks for the most the kernel gives by default; the kernel clamps any value to
  // net.core.somaxconn, so raising that sysctl raises it further.
  int backlog = SOMAXCONN;
  // A numeric address to listen on: "" is every IPv4 address (Twisted's default), "::" every
  // IPv6 one (and IPv4 through mapped addresses, unless the system says otherwise),
  // "127.0.0.1" or "::1" loopback only.
  std::string interface;
  PortOptions port;
};

// Listens on `port` (0: a free one, see ListeningPort::address) with SO_REUSEADDR, so that a
// restarted server binds while its old connections sit in TIME_WAIT (Twisted's choice).
// Fails with the step and the address: "bind(0.0.0.0:80): Permission denied (EACCES)".
ReactorResult<std::unique_ptr<ListeningPort>> listen_tcp(Reactor& reactor, sys::Syscalls& os,
                                                         std::uint16_t port, ServerFactory& factory,
                                                         ListenOptions options = {});

// Connects to `host` and `port`: a numeric address ("127.0.0.1", "::1") at once, a name
// through options.resolver (without one it fails with EINVAL). Every outcome reaches
// `factory` from the loop.
std::unique_ptr<Connector> connect_tcp(Reactor& reactor, sys::Syscalls& os, std::string_view host,
                                       std::uint16_t port, ClientFactory& factory,
                                       ConnectOptions options = {});

// listen_tcp with TLS as a server with `context` (a server context; copied, so it may be
// dropped) on every accepted connection. A failed handshake reaches the protocol as a kTls
// loss: "TLS handshake: ...".
ReactorResult<std::unique_ptr<ListeningPort>> listen_ssl(Reactor& reactor, sys::Syscalls& os,
                                                         std::uint16_t port, ServerFactory& factory,
                                                         const TlsContext& context,
                                                         ListenOptions options = {});

// connect_tcp with TLS as a client with `context`: the server's certificate must name `host`
// (unless the context says otherwise), which is also sent as SNI. A certificate that does not
// (or a failed handshake) reaches the protocol's and then the factory's connection_lost as a
// kTls reason naming the cause; connection_failed is for a connection never made.
std::unique_ptr<Connector> connect_ssl(Reactor& reactor, sys::Syscalls& os, std::string_view host,
                                       std::uint16_t port, ClientFactory& factory,
                                       const TlsContext& context, ConnectOptions options = {});

}  // namespace daemonkit::core
