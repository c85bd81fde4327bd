// bench/net's echo server on daemonkit: core/net's listen_tcp with a Protocol that writes back
// what it receives, on the reactor, with the command line of echo_server_args.h. Built only
// when core/net is (bench/net/CMakeLists.txt); SIGTERM stops the reactor, which ends it.
#include <fmt/format.h>

#include <cstdio>
#include <span>

#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/real_syscalls.h"
#include "echo_server_args.h"

namespace daemonkit::bench {
namespace {

struct Echo : core::Protocol {
  // The other servers set TCP_NODELAY on each connection too: without it a 64-byte echo waits
  // for the peer's delayed ACK.
  void connection_made(core::Connection& connection) override {
    (void)connection.set_no_delay(true);
  }
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

int serve(const EchoServerArgs& args) {
  raise_descriptor_limit();
  sys::RealSyscalls os;
  auto reactor = core::Reactor::create(os);
  if (!reactor) {
    fmt::print(stderr, "daemonkit_echo_server: {}\n", reactor.error());
    return 1;
  }
  core::ServerFactoryOf<Echo> factory;
  core::ListenOptions options;
  options.backlog = args.backlog;
  options.interface = "127.0.0.1";
  auto port = core::listen_tcp(**reactor, os, args.port, factory, options);
  if (!port) {
    fmt::print(stderr, "daemonkit_echo_server: {}\n", port.error());
    return 1;
  }
  announce_port((*port)->address().port());
  if (auto ran = (*reactor)->run(); !ran) {
    fmt::print(stderr, "daemonkit_echo_server: {}\n", ran.error());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto args = daemonkit::bench::parse_echo_server_args(argc, argv);
  if (!args) return 2;
  return daemonkit::bench::serve(*args);
}
