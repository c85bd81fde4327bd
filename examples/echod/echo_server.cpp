#include "echo_server.h"

#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/tcp.h"

namespace echod {

namespace core = daemonkit::core;
using core::StepError;
using core::StepKind;
using core::StepResult;

namespace {

// The server's start-up is the daemon's own work, after DaemonContext's steps. core/net's
// errors already name the step and its address: "bind(127.0.0.1:7007): ...".
StepError start_failed(const core::ReactorError& error) {
  StepError failed = StepError::plain(StepKind::kApplication, core::to_string(error));
  if (error.code == core::ReactorErrc::kOs) failed.cause = error.os;
  return failed;
}

}  // namespace

void Echo::connection_made(core::Connection& connection) {
  // Only misuse fails here (a second producer), and this is the only one.
  (void)connection.register_producer(*this, /*streaming=*/true);
}

void Echo::data_received(std::span<const std::byte> data) { connection().write(data); }

bool Echo::read_eof() {
  // The peer is done sending: close once its echo is sent, without waiting for a producer.
  connection().unregister_producer();
  return false;
}

void Echo::pause_producing() { connection().pause_reading(); }

void Echo::resume_producing() { connection().resume_reading(); }

StepResult<std::unique_ptr<EchoServer>> EchoServer::listen(core::Reactor& reactor,
                                                           daemonkit::sys::Syscalls& os,
                                                           const std::string& host,
                                                           std::uint16_t port, core::LogSink log) {
  std::unique_ptr<EchoServer> server(new EchoServer());
  core::ListenOptions options;
  options.interface = host;
  options.port.log = std::move(log);
  auto listening = core::listen_tcp(reactor, os, port, server->factory_, std::move(options));
  if (!listening) return core::step_failed(start_failed(listening.error()));
  server->port_ = std::move(*listening);
  return server;
}

StepResult<std::unique_ptr<EchoServer>> EchoServer::adopt(core::Reactor& reactor,
                                                          daemonkit::sys::Syscalls& os,
                                                          core::OwnedFd listening,
                                                          core::LogSink log) {
  std::unique_ptr<EchoServer> server(new EchoServer());
  core::PortOptions options;
  options.log = std::move(log);
  auto adopted =
      core::adopt_stream_port(reactor, os, std::move(listening), server->factory_, options);
  if (!adopted) return core::step_failed(start_failed(adopted.error()));
  server->port_ = std::move(*adopted);
  return server;
}

std::string EchoServer::address() const { return core::to_string(port_->address()); }

}  // namespace echod
