// UDP over AF_INET on the fake machine's loopback. Ports are a namespace of their own beside
// TCP's; port 0 (or a send or connect from an unbound socket) takes the next free ephemeral
// port; two sockets share a port only when both set SO_REUSEADDR. A datagram goes to the
// socket bound to its port and address (a connected socket hears only from its peer); when
// none is, the sender hears of it (ICMP port unreachable) only if it is connected: its next
// send or receive fails with ECONNREFUSED, as Linux reports a hard ICMP error on a connected
// socket. A sender without an address of its own sends from 127.0.0.1, the loopback route's
// source. Datagrams are at most 65507 bytes (65535 less the IP and UDP headers).
//
// Multicast: the machine's only device is lo, so a group is joined on lo (interface 0.0.0.0 or
// a 127/8 address; another is ENODEV) and a datagram to a group leaves by lo only when
// IP_MULTICAST_IF names it (with none set Linux routes the group by the default route, which
// the fake machine lacks: ENETUNREACH). lo brings every such datagram back whatever
// IP_MULTICAST_LOOP says (that option only keeps a copy from a real device), to every socket
// bound to the port (0.0.0.0 or the group) once any socket joined the group — Linux's
// IP_MULTICAST_ALL default, under which a socket need not be a member itself.
#include <arpa/inet.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "inet_endpoint.h"
#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

constexpr std::size_t kMaxUdpPayload = 65535 - 20 - 8;

bool is_any(in_addr_t network_order) { return network_order == htonl(INADDR_ANY); }
bool is_multicast(in_addr_t network_order) { return (ntohl(network_order) >> 28) == 0xe; }

// The sockets bound to `port`, live ones only.
std::vector<std::shared_ptr<Socket>> bound_to(Kernel& kernel, std::uint16_t port) {
  std::vector<std::shared_ptr<Socket>> out;
  auto it = kernel.udp_ports.find(port);
  if (it == kernel.udp_ports.end()) return out;
  std::erase_if(it->second, [](const std::weak_ptr<OpenFile>& w) { return w.expired(); });
  for (const auto& weak : it->second) {
    if (auto socket = std::dynamic_pointer_cast<Socket>(weak.lock())) out.push_back(socket);
  }
  return out;
}

void take(Kernel& kernel, const std::shared_ptr<Socket>& self, Endpoint at) {
  kernel.udp_ports[at.port].push_back(self);
  self->local = inet_address(at.address, htons(at.port));
}

// An ephemeral port no UDP socket holds, in order from where the last search stopped.
sys::Result<void> autobind(Kernel& kernel, const std::shared_ptr<Socket>& self, in_addr_t address,
                           const char* call) {
  for (int tried = 0; tried <= kLastEphemeralPort - kFirstEphemeralPort; ++tried) {
    const std::uint16_t port = kernel.next_ephemeral_port;
    kernel.next_ephemeral_port =
        port >= kLastEphemeralPort ? kFirstEphemeralPort : static_cast<std::uint16_t>(port + 1);
    if (!bound_to(kernel, port).empty()) continue;
    take(kernel, self, {address, port});
    return {};
  }
  return sys::fail(EAGAIN, call);  // udp_lib_get_port's exhausted range
}

// A destination as udp_sendmsg and ip4_datagram_connect check it: EINVAL if short,
// EAFNOSUPPORT for another family (AF_UNSPEC passes), ENETUNREACH off loopback. 0.0.0.0 means
// this host.
sys::Result<Endpoint> destination(const sockaddr* addr, socklen_t len, const char* call) {
  if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, call);
  sockaddr_in in{};
  std::memcpy(&in, addr, sizeof in);
  if (in.sin_family != AF_INET && in.sin_family != AF_UNSPEC) {
    return sys::fail(EAFNOSUPPORT, call);
  }
  Endpoint to{in.sin_addr.s_addr, ntohs(in.sin_port)};
  if (is_any(to.address)) to.address = htonl(INADDR_LOOPBACK);
  return to;
}

// The socket a datagram from `from` to `to` reaches: the best match as Linux scores them (a
// connected socket whose peer is the sender, then one bound to the address, then one bound to
// 0.0.0.0); null when none.
std::shared_ptr<Socket> receiver(Kernel& kernel, Endpoint from, Endpoint to) {
  std::shared_ptr<Socket> best;
  int best_score = 0;
  for (const auto& socket : bound_to(kernel, to.port)) {
    const Endpoint bound = endpoint_of(socket->local);
    if (!is_any(bound.address) && bound.address != to.address) continue;
    int score = is_any(bound.address) ? 1 : 2;
    if (socket->datagram_connected) {
      const Endpoint peer = endpoint_of(socket->peer_address);
      if (peer.address != from.address || peer.port != from.port) continue;
      score += 4;
    }
    if (score >= best_score) {
      best = socket;
      best_score = score;
    }
  }
  return best;
}

// Whether the socket holds a port (a disconnect may leave the address bind() chose, port 0).
bool has_port(const Socket& socket) {
  return !socket.local.empty() && endpoint_of(socket.local).port != 0;
}

// The address an unbound socket's autobind keeps: the one bind() chose, or 0.0.0.0.
in_addr_t kept_address(const Socket& socket) {
  return socket.local.empty() ? htonl(INADDR_ANY) : endpoint_of(socket.local).address;
}

std::size_t queued_bytes(const Socket& socket) {
  std::size_t n = 0;
  for (const auto& d : socket.inbox) n += d.bytes.size();
  return n;
}

}  // namespace

namespace {

constexpr std::size_t kMaxMemberships = 20;  // net.ipv4.igmp_max_memberships

// Whether some live socket joined `group`: only then does lo accept the group's datagrams.
bool host_joined(Kernel& kernel, in_addr_t group) {
  bool joined = false;
  std::erase_if(kernel.udp_multicast_members, [&](const std::weak_ptr<OpenFile>& weak) {
    auto socket = std::dynamic_pointer_cast<Socket>(weak.lock());
    if (!socket || socket->multicast_groups.empty()) return true;
    joined = joined ||
             std::ranges::find(socket->multicast_groups, group) != socket->multicast_groups.end();
    return false;
  });
  return joined;
}

// An option's value as do_ip_setsockopt reads it: an int, or one byte when shorter.
int option_value(const void* value, socklen_t len) {
  if (len >= sizeof(int)) {
    int v = 0;
    std::memcpy(&v, value, sizeof v);
    return v;
  }
  unsigned char c = 0;
  std::memcpy(&c, value, 1);
  return c;
}

}  // namespace

sys::Result<void> udp_set_ip_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                    const void* value, socklen_t len) {
  const char* call = "setsockopt";
  switch (name) {
    case IP_ADD_MEMBERSHIP:
    case IP_DROP_MEMBERSHIP: {
      if (len < sizeof(ip_mreq)) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      // An ip_mreqn when long enough; its imr_address sits where ip_mreq's imr_interface does.
      ip_mreq request{};
      std::memcpy(&request, value, sizeof request);
      const in_addr_t group = request.imr_multiaddr.s_addr;
      const in_addr_t device = request.imr_interface.s_addr;
      auto& groups = self->multicast_groups;
      const auto found = std::ranges::find(groups, group);
      if (name == IP_DROP_MEMBERSHIP) {
        if (found == groups.end()) return sys::fail(EADDRNOTAVAIL, call);
        groups.erase(found);
        return {};
      }
      if (!is_multicast(group)) return sys::fail(EINVAL, call);
      if (!is_any(device) && !is_loopback(device)) return sys::fail(ENODEV, call);
      if (found != groups.end()) return sys::fail(EADDRINUSE, call);
      if (groups.size() >= kMaxMemberships) return sys::fail(ENOBUFS, call);
      groups.push_back(group);
      kernel.udp_multicast_members.push_back(self);
      return {};
    }
    case IP_MULTICAST_LOOP:
    case IP_MULTICAST_TTL: {
      if (len < 1) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      int v = option_value(value, len);
      if (name == IP_MULTICAST_LOOP) {
        self->multicast_loop = v != 0;
        return {};
      }
      if (v == -1) v = 1;
      if (v < 0 || v > 255) return sys::fail(EINVAL, call);
      self->multicast_ttl = v;
      return {};
    }
    case IP_MULTICAST_IF: {
      if (len < sizeof(in_addr)) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      // An in_addr, an ip_mreq (its interface) or an ip_mreqn (its address); no index here.
      in_addr_t device = 0;
      const socklen_t at = len >= sizeof(ip_mreq) ? sizeof(in_addr) : 0;
      std::memcpy(&device, static_cast<const char*>(value) + at, sizeof device);
      if (!is_any(device) && !is_loopback(device)) return sys::fail(EADDRNOTAVAIL, call);
      self->multicast_interface = device;
      return {};
    }
    default:
      return sys::fail(ENOPROTOOPT, call);
  }
}

sys::Result<int> udp_ip_option(const Socket& socket, int name) {
  switch (name) {
    case IP_MULTICAST_LOOP:
      return socket.multicast_loop ? 1 : 0;
    case IP_MULTICAST_TTL:
      return socket.multicast_ttl;
    case IP_MULTICAST_IF: {
      int v = 0;
      std::memcpy(&v, &socket.multicast_interface, sizeof v);
      return v;
    }
    default:
      return sys::fail(ENOPROTOOPT, "getsockopt");
  }
}

sys::Result<void> udp_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                           const sockaddr* addr, socklen_t len) {
  if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, "bind");
  sockaddr_in in{};
  std::memcpy(&in, addr, sizeof in);
  if (in.sin_family != AF_INET && (in.sin_family != AF_UNSPEC || !is_any(in.sin_addr.s_addr))) {
    return sys::fail(EAFNOSUPPORT, "bind");
  }
  const Endpoint at{in.sin_addr.s_addr, ntohs(in.sin_port)};
  // A group's address may be bound too (inet_bind takes RTN_MULTICAST): then only datagrams
  // to that group reach the socket.
  if (!is_any(at.address) && !is_loopback(at.address) && !is_multicast(at.address)) {
    return sys::fail(EADDRNOTAVAIL, "bind");
  }
  if (at.port != 0 && at.port < kFirstUnprivileged && !p.privileged()) {
    return sys::fail(EACCES, "bind");
  }
  if (has_port(*self)) return sys::fail(EINVAL, "bind");
  self->udp_address_chosen = !is_any(at.address);
  if (at.port == 0) return autobind(kernel, self, at.address, "bind");
  for (const auto& other : bound_to(kernel, at.port)) {
    const in_addr_t theirs = endpoint_of(other->local).address;
    const bool overlap = theirs == at.address || is_any(theirs) || is_any(at.address);
    if (overlap && !(self->reuse_address && other->reuse_address)) {
      return sys::fail(EADDRINUSE, "bind");
    }
  }
  self->udp_port_chosen = true;
  take(kernel, self, at);
  return {};
}

sys::Result<void> udp_connect(Kernel& kernel, const std::shared_ptr<Socket>& self,
                              const sockaddr* addr, socklen_t len) {
  if (len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
    // udp_disconnect: the peer goes, and so do an address and a port bind() did not choose.
    self->datagram_connected = false;
    self->peer_address.clear();
    if (has_port(*self)) {
      const Endpoint at = endpoint_of(self->local);
      const in_addr_t address = self->udp_address_chosen ? at.address : htonl(INADDR_ANY);
      if (!self->udp_port_chosen) {
        auto& list = kernel.udp_ports[at.port];
        std::erase_if(list, [&](const std::weak_ptr<OpenFile>& w) {
          return w.expired() || w.lock().get() == self.get();
        });
        self->local = inet_address(address, 0);
      } else {
        self->local = inet_address(address, htons(at.port));
      }
    }
    return {};
  }
  if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, "connect");
  if (addr->sa_family != AF_INET) return sys::fail(EAFNOSUPPORT, "connect");
  auto to = destination(addr, len, "connect");
  if (!to) return sys::fail(to.error());
  if (!is_loopback(to->address)) return sys::fail(ENETUNREACH, "connect");
  const in_addr_t source = htonl(INADDR_LOOPBACK);
  if (!has_port(*self)) {
    const in_addr_t kept = kept_address(*self);
    if (auto bound = autobind(kernel, self, is_any(kept) ? source : kept, "connect"); !bound) {
      return bound;
    }
  } else if (is_any(endpoint_of(self->local).address)) {
    self->local = inet_address(source, htons(endpoint_of(self->local).port));
  }
  self->peer_address = inet_address(to->address, htons(to->port));
  self->datagram_connected = true;
  return {};
}

sys::Result<std::size_t> udp_send(Kernel& kernel, const std::shared_ptr<Socket>& self,
                                  std::span<const std::byte> bytes, const sockaddr* addr,
                                  socklen_t len) {
  // inet_send_prepare binds an unbound socket before udp_sendmsg looks at anything.
  if (!has_port(*self)) {
    if (auto bound = autobind(kernel, self, kept_address(*self), "sendto"); !bound) {
      return sys::fail(bound.error());
    }
  }
  if (bytes.size() > 0xffff) return sys::fail(EMSGSIZE, "sendto");
  Endpoint to;
  if (addr != nullptr) {
    auto found = destination(addr, len, "sendto");
    if (!found) return sys::fail(found.error());
    if (found->port == 0) return sys::fail(EINVAL, "sendto");
    to = *found;
  } else {
    if (!self->datagram_connected) return sys::fail(EDESTADDRREQ, "sendto");
    to = endpoint_of(self->peer_address);
  }
  const bool multicast = addr != nullptr && is_multicast(to.address);
  if (multicast ? !is_loopback(self->multicast_interface) : !is_loopback(to.address)) {
    return sys::fail(ENETUNREACH, "sendto");
  }
  if (bytes.size() > kMaxUdpPayload) return sys::fail(EMSGSIZE, "sendto");
  // sock_alloc_send_skb reports (and clears) an error an ICMP message left.
  if (self->error != 0) return sys::fail(std::exchange(self->error, 0), "sendto");
  Endpoint from = endpoint_of(self->local);
  if (is_any(from.address)) {
    from.address = multicast ? self->multicast_interface : htonl(INADDR_LOOPBACK);
  }
  if (multicast) {
    // Dropped unless this host joined the group; no ICMP answers a group.
    if (!host_joined(kernel, to.address)) return bytes.size();
    for (const auto& socket : bound_to(kernel, to.port)) {
      const Endpoint bound = endpoint_of(socket->local);
      if (!is_any(bound.address) && bound.address != to.address) continue;
      if (socket->datagram_connected) {
        const Endpoint peer = endpoint_of(socket->peer_address);
        if (peer.address != from.address || peer.port != from.port) continue;
      }
      if (queued_bytes(*socket) + bytes.size() > kSocketBuffer) continue;
      socket->inbox.push_back(
          Datagram{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                   inet_address(from.address, htons(from.port)),
                   std::nullopt,
                   {}});
      kernel.wake(socket.get(), EPOLLIN | EPOLLRDNORM);
    }
    return bytes.size();
  }
  auto to_socket = receiver(kernel, from, to);
  if (!to_socket) {
    // Port unreachable: a hard error, kept only by a connected socket (__udp4_lib_err).
    if (self->datagram_connected) {
      self->error = ECONNREFUSED;
      kernel.wake(self.get(), EPOLLERR);
    }
    return bytes.size();
  }
  // A full receive buffer drops the datagram, as UDP does.
  if (queued_bytes(*to_socket) + bytes.size() > kSocketBuffer) return bytes.size();
  to_socket->inbox.push_back(
      Datagram{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
               inet_address(from.address, htons(from.port)),
               std::nullopt,
               {}});
  kernel.wake(to_socket.get(), EPOLLIN | EPOLLRDNORM);
  return bytes.size();
}

}  // namespace daemonkit::fake::detail
