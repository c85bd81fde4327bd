// UDP over IPv4 and IPv6: Twisted's IReactorUDP and IReactorMulticast. listen_udp binds a
// datagram socket and reads it on the reactor; the port it returns sends, connects, and joins
// multicast groups (see DatagramPort).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct UdpOptions {
  // A numeric address to bind: "" is every IPv4 address (Twisted's default), "::" every IPv6
  // one, "127.0.0.1" or "::1" loopback only. A multicast receiver binds "" (or the group) and
  // joins the group on the port.
  std::string interface;
  // SO_REUSEADDR, so that several multicast receivers on one host share the port (Twisted's
  // listenMulticast(listenMultiple=True)). Off by default: a second bind is EADDRINUSE.
  bool reuse_address = false;
  DatagramOptions port;
};

// Binds `port` (0: a free one, see DatagramPort::address) and starts `protocol`, which must
// outlive the port. Fails with the step and the address: "bind(0.0.0.0:53): Permission denied
// (EACCES)".
ReactorResult<std::unique_ptr<DatagramPort>> listen_udp(Reactor& reactor, sys::Syscalls& os,
                                                        std::uint16_t port,
                                                        DatagramProtocol& protocol,
                                                        UdpOptions options = {});

}  // namespace daemonkit::core
