// Protocol: Twisted's IProtocol for a network connection. It hears the connection made, the
// bytes that arrive, the half-closes, and the one loss at the end, and writes back through the
// Connection it was given. An echo server is one method:
//
//   struct Echo : daemonkit::core::Protocol {
//     void data_received(std::span<const std::byte> data) override { connection().write(data); }
//   };
//   daemonkit::core::ServerFactoryOf<Echo> factory;
//   auto port = daemonkit::core::listen_tcp(reactor, os, 7000, factory);
#pragma once

#include <cassert>

#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/core/reactor/stream_handler.h"

namespace daemonkit::core {

class Connection;

// data_received, read_eof, write_eof and connection_lost are StreamHandler's, with its rules:
// bytes in order, connection_lost once and last. The protocol belongs to its connection and is
// destroyed with it, after connection_lost has returned.
class Protocol : public StreamHandler {
 public:
  // The connection is up: called once, before anything else. connection() is valid from here
  // until connection_lost returns.
  virtual void connection_made(Connection& /*connection*/) {}
  void connection_lost(const LossReason& /*reason*/) override {}

  // Twisted's self.transport.
  [[nodiscard]] Connection& connection() const {
    assert(connection_ != nullptr && "Protocol::connection() before connection_made");
    return *connection_;
  }

 private:
  friend class Connection;
  Connection* connection_ = nullptr;
};

}  // namespace daemonkit::core
