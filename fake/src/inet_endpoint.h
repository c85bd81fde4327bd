// An IPv4 address and port as the fake's TCP and UDP sockets compare them, and the rules both
// share: what counts as loopback, and which ports need privilege to bind.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "socket.h"

namespace daemonkit::fake::detail {

// Ports below this need CAP_NET_BIND_SERVICE (here: a privileged process) to bind.
constexpr std::uint16_t kFirstUnprivileged = 1024;

struct Endpoint {
  in_addr_t address = 0;   // network order
  std::uint16_t port = 0;  // host order
};

inline Endpoint endpoint_of(const SocketAddress& address) {
  sockaddr_in in{};
  std::memcpy(&in, address.data(), std::min(address.size(), sizeof in));
  return {in.sin_addr.s_addr, ntohs(in.sin_port)};
}

inline bool is_loopback(in_addr_t network_order) { return (ntohl(network_order) >> 24) == 127; }

}  // namespace daemonkit::fake::detail
