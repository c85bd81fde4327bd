// echod's server: a TCP echo service on core/net. One Echo protocol per connection (made by a
// ServerFactoryOf), a ListeningPort from listen_tcp, all on the caller's Reactor, which routes
// SIGTERM and SIGINT through its loop: run() returns on either and exit_signal() says which.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace echod {

// Writes back every byte it receives. It is also the producer of what its connection sends:
// once more than the high-water mark waits for a peer that does not read, the connection
// pauses it, and it stops reading that peer until the backlog is sent. A client that sends
// and never reads thus costs a bounded amount of memory.
struct Echo : daemonkit::core::Protocol, daemonkit::core::Producer {
  void connection_made(daemonkit::core::Connection& connection) override;
  void data_received(std::span<const std::byte> data) override;
  bool read_eof() override;
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override {}
};

class EchoServer {
 public:
  // Listens on host:port (a numeric IPv4 or IPv6 address; port 0 picks a free one). Errors
  // name the step: "bind(127.0.0.1:7007): Address already in use (EADDRINUSE)". Accept errors
  // go to `log`.
  [[nodiscard]] static daemonkit::core::StepResult<std::unique_ptr<EchoServer>> listen(
      daemonkit::core::Reactor& reactor, daemonkit::sys::Syscalls& os, const std::string& host,
      std::uint16_t port, daemonkit::core::LogSink log = {});
  // Serves on a listening socket handed over by a service manager (socket activation); the
  // server owns it from here, also when this fails.
  [[nodiscard]] static daemonkit::core::StepResult<std::unique_ptr<EchoServer>> adopt(
      daemonkit::core::Reactor& reactor, daemonkit::sys::Syscalls& os,
      daemonkit::core::OwnedFd listening, daemonkit::core::LogSink log = {});

  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;

  // The address actually bound, e.g. "127.0.0.1:40123".
  [[nodiscard]] std::string address() const;
  // Clients connected now.
  [[nodiscard]] std::size_t connections() const { return port_->connections(); }

 private:
  EchoServer() = default;

  daemonkit::core::ServerFactoryOf<Echo> factory_;
  // Declared after the factory: destroyed first, closing its connections while their
  // factory still exists.
  std::unique_ptr<daemonkit::core::ListeningPort> port_;
};

}  // namespace echod
