// AF_INET addresses on a machine with only a loopback interface: TCP sockets bind to
// 127.0.0.0/8 or 0.0.0.0 (EADDRNOTAVAIL for anything else), ports below 1024 need euid 0,
// port 0 takes the next free ephemeral port (32768-60999, in order rather than Linux's
// random walk), and two sockets may share a port only as Linux allows: both with SO_REUSEADDR
// and neither listening. Connecting reaches a listener on 127.0.0.0/8 (or 0.0.0.0, which
// Linux takes as the local host); other destinations have no route (ENETUNREACH).
#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

#include "inet_endpoint.h"
#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

constexpr std::uint16_t kFirstEphemeral = 32768;
constexpr std::uint16_t kLastEphemeral = 60999;

bool overlaps(in_addr_t a, in_addr_t b) {
  return a == b || a == htonl(INADDR_ANY) || b == htonl(INADDR_ANY);
}

// Whether `test` holds for a live socket other than `socket` bound to `at`'s port at an address
// overlapping `at`'s.
template <typename Test>
bool any_other_on(const Kernel& kernel, const Socket& socket, Endpoint at, Test test) {
  auto it = kernel.tcp_ports.find(at.port);
  if (it == kernel.tcp_ports.end()) return false;
  for (const auto& weak : it->second) {
    auto other_file = weak.lock();
    auto* other = dynamic_cast<Socket*>(other_file.get());
    if (other == nullptr || other == &socket) continue;
    if (overlaps(endpoint_of(other->local).address, at.address) && test(*other)) return true;
  }
  return false;
}

// Whether `socket` may take `at` while the others bound to that port stay (inet_csk_bind_conflict
// without SO_REUSEPORT and TIME_WAIT).
bool conflicts(const Kernel& kernel, const Socket& socket, Endpoint at) {
  return any_other_on(kernel, socket, at, [&](const Socket& other) {
    const bool shared =
        socket.reuse_address && other.reuse_address && other.state != Socket::State::kListening;
    return !shared;
  });
}

bool port_in_use(const Kernel& kernel, std::uint16_t port) {
  auto it = kernel.tcp_ports.find(port);
  if (it == kernel.tcp_ports.end()) return false;
  for (const auto& weak : it->second) {
    if (!weak.expired()) return true;
  }
  return false;
}

void take(Kernel& kernel, const std::shared_ptr<Socket>& self, Endpoint at) {
  auto& list = kernel.tcp_ports[at.port];
  std::erase_if(list, [](const std::weak_ptr<OpenFile>& w) { return w.expired(); });
  list.push_back(self);
  self->local = inet_address(at.address, htons(at.port));
}

}  // namespace

SocketAddress inet_address(in_addr_t address, in_port_t port) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = address;
  in.sin_port = port;
  return SocketAddress(reinterpret_cast<const char*>(&in), sizeof in);
}

std::string inet_address_text(const SocketAddress& address) {
  const Endpoint at = endpoint_of(address);
  in_addr in{};
  in.s_addr = at.address;
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &in, text, sizeof text);
  return fmt::format("tcp:{}:{}", text, at.port);
}

sys::Result<void> inet_autobind(Kernel& kernel, const std::shared_ptr<Socket>& self,
                                in_addr_t address, const char* call) {
  const int range = kLastEphemeral - kFirstEphemeral + 1;
  for (int tried = 0; tried < range; ++tried) {
    const std::uint16_t port = kernel.next_ephemeral_port;
    kernel.next_ephemeral_port =
        port >= kLastEphemeral ? kFirstEphemeral : static_cast<std::uint16_t>(port + 1);
    if (port_in_use(kernel, port)) continue;
    take(kernel, self, {address, port});
    return {};
  }
  // bind(port 0) reports an exhausted range as EADDRINUSE; connect as EADDRNOTAVAIL.
  return sys::fail(std::string_view(call) == "connect" ? EADDRNOTAVAIL : EADDRINUSE, call);
}

sys::Result<void> inet_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                            const sockaddr* addr, socklen_t len) {
  if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, "bind");
  sockaddr_in in{};
  std::memcpy(&in, addr, sizeof in);
  if (in.sin_family != AF_INET) {
    // Linux tolerates AF_UNSPEC with INADDR_ANY, for old programs.
    if (in.sin_family != AF_UNSPEC || in.sin_addr.s_addr != htonl(INADDR_ANY)) {
      return sys::fail(EAFNOSUPPORT, "bind");
    }
  }
  const in_addr_t address = in.sin_addr.s_addr;
  if (address != htonl(INADDR_ANY) && !is_loopback(address)) {
    return sys::fail(EADDRNOTAVAIL, "bind");  // the fake machine has only loopback
  }
  const std::uint16_t port = ntohs(in.sin_port);
  if (port != 0 && port < kFirstUnprivileged && !p.privileged()) {
    return sys::fail(EACCES, "bind");
  }
  if (!self->local.empty()) return sys::fail(EINVAL, "bind");
  if (port == 0) return inet_autobind(kernel, self, address, "bind");
  if (conflicts(kernel, *self, {address, port})) return sys::fail(EADDRINUSE, "bind");
  take(kernel, self, {address, port});
  return {};
}

bool inet_listen_conflict(const Kernel& kernel, const Socket& socket) {
  return any_other_on(kernel, socket, endpoint_of(socket.local),
                      [](const Socket& other) { return other.state == Socket::State::kListening; });
}

sys::Result<std::shared_ptr<Socket>> inet_find_listener(Kernel& kernel, const sockaddr* addr,
                                                        socklen_t len, in_addr_t* destination,
                                                        const char* call) {
  if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, call);
  sockaddr_in in{};
  std::memcpy(&in, addr, sizeof in);
  if (in.sin_family != AF_INET) return sys::fail(EAFNOSUPPORT, call);
  in_addr_t to = in.sin_addr.s_addr;
  if (to == htonl(INADDR_ANY)) to = htonl(INADDR_LOOPBACK);
  if (!is_loopback(to)) return sys::fail(ENETUNREACH, call);
  *destination = to;
  const std::uint16_t port = ntohs(in.sin_port);
  auto it = kernel.tcp_ports.find(port);
  if (port == 0 || it == kernel.tcp_ports.end()) return sys::fail(ECONNREFUSED, call);
  for (const auto& weak : it->second) {
    auto socket = std::dynamic_pointer_cast<Socket>(weak.lock());
    if (!socket || socket->state != Socket::State::kListening) continue;
    const in_addr_t bound = endpoint_of(socket->local).address;
    if (bound == to || bound == htonl(INADDR_ANY)) return socket;
  }
  return sys::fail(ECONNREFUSED, call);
}

void inet_register(Kernel& kernel, const std::shared_ptr<Socket>& socket) {
  kernel.tcp_ports[endpoint_of(socket->local).port].push_back(socket);
}

}  // namespace daemonkit::fake::detail
