// The command line every echo server of bench/net shares, so the driver starts them all alike:
//   PROGRAM [--port N] [--backlog N]
// Each listens on 127.0.0.1:N (0, the default: a free port), echoes every byte back, prints
// the port it got as one line on stdout once it accepts, and serves until a signal ends it.
#pragma once

#include <cstdint>
#include <optional>

namespace daemonkit::bench {

struct EchoServerArgs {
  std::uint16_t port = 0;
  // The kernel's default ceiling (net.core.somaxconn is 4096 on Linux >= 5.4): a burst of
  // 10,000 connects overflows Twisted's 50 and stalls on SYN retransmits instead of measuring.
  int backlog = 4096;
};

// The arguments, or nothing after printing the usage line on stderr.
std::optional<EchoServerArgs> parse_echo_server_args(int argc, char** argv);

// Raises the soft RLIMIT_NOFILE to the hard one, so the 10,000 idle connections fit; a server
// that cannot hold them fails that case, and the driver says so.
void raise_descriptor_limit();

// Prints the port as the line the driver waits for, and flushes it.
void announce_port(std::uint16_t port);

}  // namespace daemonkit::bench
