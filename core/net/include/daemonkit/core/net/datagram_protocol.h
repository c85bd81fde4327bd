// DatagramProtocol: Twisted's DatagramProtocol (and ConnectedDatagramProtocol) for a datagram
// socket on the reactor — UDP, multicast or UNIX datagram. It hears the port start, each
// datagram whole with its sender, a refusal when the port is connected, and the stop; it sends
// through the DatagramPort it was given. An echo server is one method:
//
//   struct Echo : daemonkit::core::DatagramProtocol {
//     void datagram_received(std::span<const std::byte> d, const SocketAddress& from) override {
//       (void)port().write(d, from);
//     }
//   };
//   Echo echo;
//   auto port = daemonkit::core::listen_udp(reactor, os, 7000, echo);
#pragma once

#include <cassert>
#include <cstddef>
#include <span>

#include "daemonkit/core/base/socket_address.h"

namespace daemonkit::core {

class DatagramPort;

// Unlike a stream Protocol, a datagram protocol is not owned by its port (Twisted hands the
// same instance to listenUDP): it must outlive the port, and may be started again on another.
class DatagramProtocol {
 public:
  virtual ~DatagramProtocol() = default;

  // The port is reading (Twisted's startProtocol): port() is valid from here until stopped()
  // returns.
  virtual void started(DatagramPort& /*port*/) {}
  // One datagram as it arrived, never merged with another nor split; one longer than the
  // port's max_packet_size arrives cut to it (as recvfrom cuts it, and Twisted delivers it).
  // `from` is the sender: an IP address and port, or a UNIX name; unspecified (AF_UNSPEC) for
  // an unbound UNIX sender, which cannot be answered.
  virtual void datagram_received(std::span<const std::byte> datagram,
                                 const SocketAddress& from) = 0;
  // Only on a connected port: the peer's host said nobody listens there (ICMP port
  // unreachable for UDP, a closed peer for UNIX). The port goes on; a later datagram may be
  // answered. On an unconnected port the kernel does not report it and neither does Twisted.
  virtual void connection_refused() {}
  // The port stopped listening (Twisted's stopProtocol): its socket is closed, no datagram
  // follows. Called once, also when the port is destroyed while listening.
  virtual void stopped() {}

  // Twisted's self.transport.
  [[nodiscard]] DatagramPort& port() const {
    assert(port_ != nullptr && "DatagramProtocol::port() outside started..stopped");
    return *port_;
  }

 private:
  friend class DatagramPort;
  DatagramPort* port_ = nullptr;
};

}  // namespace daemonkit::core
