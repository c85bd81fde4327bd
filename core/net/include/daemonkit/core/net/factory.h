// Factories: Twisted's IProtocolFactory and ClientFactory. A server factory makes one protocol
// per accepted connection and may refuse one; a client factory makes the protocol of the one
// connection its connector makes, and hears when that connection could not be made.
#pragma once

#include <memory>
#include <utility>

#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::core {

class ServerFactory {
 public:
  virtual ~ServerFactory() = default;
  // A protocol for the connection accepted from `peer`, or null to refuse it: the connection
  // is then closed at once and nobody hears of it again (Twisted's buildProtocol returning
  // None).
  virtual std::unique_ptr<Protocol> build_protocol(const SocketAddress& peer) = 0;
};

class ClientFactory {
 public:
  virtual ~ClientFactory() = default;
  // The protocol for the connection made to `peer`, or null: the connection is then closed
  // and nothing more is heard.
  virtual std::unique_ptr<Protocol> build_protocol(const SocketAddress& peer) = 0;
  // The connection could not be made. `reason` names the step, what it was about and the
  // errno: "connect(127.0.0.1:1): Connection refused (ECONNREFUSED)"; a timeout is
  // ETIMEDOUT and stop_connecting ECANCELED, on "connect" like the kernel's own failures.
  // Called once, from the loop, never from inside a call the owner made.
  virtual void connection_failed(const sys::Error& reason) = 0;
  // The connection that was made ended, after its protocol heard connection_lost (Twisted's
  // clientConnectionLost, in Twisted's order).
  virtual void connection_lost(const LossReason& /*reason*/) {}
};

// A server factory that default-constructs a P for every connection.
template <typename P>
class ServerFactoryOf final : public ServerFactory {
 public:
  std::unique_ptr<Protocol> build_protocol(const SocketAddress& /*peer*/) override {
    return std::make_unique<P>();
  }
};

}  // namespace daemonkit::core
