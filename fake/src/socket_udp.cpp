// UDP over AF_INET and AF_INET6 on the fake machine's loopback. Ports are a namespace of their
// own beside
// TCP's; port 0 (or a send or connect from an unbound socket) takes the next free ephemeral
// port; two sockets share a port only when both set SO_REUSEADDR or their addresses do not
// overlap (an AF_INET6 socket bound to :: covers IPv4's too unless IPV6_V6ONLY, and then
// hears IPv4 datagrams from v4-mapped senders; inet_endpoint.h). A datagram goes to the
// socket bound to its port and address (a connected socket hears only from its peer); when
// none is, the sender hears of it (ICMP port unreachable) only if it is connected: its next
// send or receive fails with ECONNREFUSED, as Linux reports a hard ICMP error on a connected
// socket. A sender without an address of its own sends from 127.0.0.1 (::1 to an IPv6
// address), the loopback route's source. Datagrams are at most 65507 bytes over IPv4 (65535
// less the IP and UDP headers) and 65527 over IPv6 (whose payload length leaves out its header).
//
// Multicast: the machine's only device is lo, so a group is joined on lo (interface 0.0.0.0 or
// a 127/8 address; another is ENODEV) and a datagram to a group leaves by lo only when
// IP_MULTICAST_IF names it (with none set Linux routes the group by the default route, which
// the fake machine lacks: ENETUNREACH). lo brings every such datagram back whatever
// IP_MULTICAST_LOOP says (that option only keeps a copy from a real device), to every socket
// bound to the port (0.0.0.0 or the group) once any socket joined the group — Linux's
// IP_MULTICAST_ALL default, under which a socket need not be a member itself.
//
// IPv6 multicast follows the same model: IPV6_JOIN_GROUP on lo (index 1, or 0 for the route's
// device, which on this machine is lo), and a datagram to an IPv6 group leaves by lo only when
// IPV6_MULTICAST_IF or the destination's scope id names it (ENETUNREACH otherwise); once any
// socket joined, every AF_INET6 socket bound to the port (:: or the group) hears it (IPv6's
// MC6_ALL default). This machine is one whose lo carries ff00::/8, which Linux gives lo only
// when told (lo is not multicast-capable by default, and a real kernel without that route
// answers ENETUNREACH: the differential test skips there).
#include <arpa/inet.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "inet_endpoint.h"
#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

constexpr std::size_t kMaxUdpPayload = 65535 - 20 - 8;
constexpr std::size_t kMaxUdp6Payload = 65535 - 8;

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
  self->local = address_of(self->domain(), at);
}

// An ephemeral port no UDP socket holds, in order from where the last search stopped, at
// `address` (and the scope it was bound with).
sys::Result<void> autobind(Kernel& kernel, const std::shared_ptr<Socket>& self,
                           const in6_addr& address, const char* call, unsigned scope = 0) {
  for (int tried = 0; tried <= kLastEphemeralPort - kFirstEphemeralPort; ++tried) {
    const std::uint16_t port = kernel.next_ephemeral_port;
    kernel.next_ephemeral_port =
        port >= kLastEphemeralPort ? kFirstEphemeralPort : static_cast<std::uint16_t>(port + 1);
    if (!bound_to(kernel, port).empty()) continue;
    take(kernel, self, {address, port, scope});
    return {};
  }
  return sys::fail(EAGAIN, call);  // udp_lib_get_port's exhausted range
}

bool same_endpoint(const Endpoint& a, const Endpoint& b) {
  return same(a.address, b.address) && a.port == b.port;
}

// Whether `socket` takes a datagram from `from` to `to` at all: bound to the address (or a
// wildcard covering its family) and, when connected, connected to the sender.
int score_for(const Socket& socket, Endpoint from, Endpoint to) {
  int score = match_score(coverage_of(socket), socket.domain(), to.address);
  if (score == 0) return 0;
  if (socket.datagram_connected) {
    if (!same_endpoint(endpoint_of(socket.peer_address), from)) return 0;
    score += 8;
  }
  return score;
}

// The socket a datagram from `from` to `to` reaches: the best match as Linux scores them (a
// connected socket whose peer is the sender, then one bound to the address, then one bound to
// a wildcard, an AF_INET one before a dual-stack one); null when none.
std::shared_ptr<Socket> receiver(Kernel& kernel, Endpoint from, Endpoint to) {
  std::shared_ptr<Socket> best;
  int best_score = 0;
  for (const auto& socket : bound_to(kernel, to.port)) {
    const int score = score_for(*socket, from, to);
    if (score > 0 && score >= best_score) {
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

// The address an unbound socket's autobind keeps: the one bind() chose, or the wildcard.
in6_addr kept_address(const Socket& socket) {
  return socket.local.empty() ? any_of(socket.domain()) : endpoint_of(socket.local).address;
}

std::size_t queued_bytes(const Socket& socket) {
  std::size_t n = 0;
  for (const auto& d : socket.inbox) n += d.bytes.size();
  return n;
}

// Queues a datagram for `to` from `from` (named as `to`'s family names it) and wakes its
// readers; a full receive buffer drops it, as UDP does.
void deliver(Kernel& kernel, Socket& to, Endpoint from, std::span<const std::byte> bytes) {
  if (queued_bytes(to) + bytes.size() > kSocketBuffer) return;
  to.inbox.push_back(
      Datagram{std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
               address_of(to.domain(), from),
               std::nullopt,
               {}});
  kernel.wake(&to, EPOLLIN | EPOLLRDNORM);
}

}  // namespace

namespace {

constexpr std::size_t kMaxMemberships = 20;  // net.ipv4.igmp_max_memberships

// Whether some live socket joined `group`: only then does lo accept the group's datagrams.
bool host_joined(Kernel& kernel, const in6_addr& group) {
  bool joined = false;
  std::erase_if(kernel.udp_multicast_members, [&](const std::weak_ptr<OpenFile>& weak) {
    auto socket = std::dynamic_pointer_cast<Socket>(weak.lock());
    if (!socket || socket->multicast_groups.empty()) return true;
    joined = joined || std::ranges::any_of(socket->multicast_groups,
                                           [&](const in6_addr& g) { return same(g, group); });
    return false;
  });
  return joined;
}

auto find_group(std::vector<in6_addr>& groups, const in6_addr& group) {
  return std::ranges::find_if(groups, [&](const in6_addr& g) { return same(g, group); });
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
      const in6_addr group = mapped(request.imr_multiaddr.s_addr);
      const in6_addr device = mapped(request.imr_interface.s_addr);
      auto& groups = self->multicast_groups;
      const auto found = find_group(groups, group);
      if (name == IP_DROP_MEMBERSHIP) {
        if (found == groups.end()) return sys::fail(EADDRNOTAVAIL, call);
        groups.erase(found);
        return {};
      }
      if (!is_multicast(group)) return sys::fail(EINVAL, call);
      if (!is_any(device) && !is_loopback(device)) return sys::fail(ENODEV, call);
      if (found != groups.end()) return sys::fail(EADDRINUSE, call);
      const auto v4_groups =
          std::ranges::count_if(groups, [](const in6_addr& g) { return is_mapped(g); });
      if (static_cast<std::size_t>(v4_groups) >= kMaxMemberships) return sys::fail(ENOBUFS, call);
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
      if (device != htonl(INADDR_ANY) && !is_loopback(device)) {
        return sys::fail(EADDRNOTAVAIL, call);
      }
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

// do_ipv6_setsockopt's multicast options (and its answers to TCP, which takes only
// IPV6_MULTICAST_LOOP of them): memberships on lo by index, the loop flag as 0 or 1, hops
// -1..255 (-1: the default), the outgoing interface by index.
sys::Result<void> udp_set_ipv6_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                      const void* value, socklen_t len) {
  const char* call = "setsockopt";
  const bool stream = self->is_stream();
  int v = 0;
  if (value != nullptr && len >= sizeof(int)) std::memcpy(&v, value, sizeof v);
  switch (name) {
    case IPV6_ADD_MEMBERSHIP:
    case IPV6_DROP_MEMBERSHIP: {
      if (len < sizeof(ipv6_mreq)) return sys::fail(EINVAL, call);
      if (stream) return sys::fail(EPROTO, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      ipv6_mreq request{};
      std::memcpy(&request, value, sizeof request);
      const in6_addr group = request.ipv6mr_multiaddr;
      const unsigned index = request.ipv6mr_interface;
      // A v4-mapped group is no IPv6 multicast address.
      if (!IN6_IS_ADDR_MULTICAST(&group)) return sys::fail(EINVAL, call);
      auto& groups = self->multicast_groups;
      const auto found = find_group(groups, group);
      if (name == IPV6_DROP_MEMBERSHIP) {
        // Index 0 leaves the group on whichever interface it was joined (every one is lo).
        if (found == groups.end() || (index != 0 && index != kLoopbackIndex)) {
          return sys::fail(EADDRNOTAVAIL, call);
        }
        groups.erase(found);
        return {};
      }
      // ipv6_sock_mc_join compares the index as given with the one recorded (lo's), so a join
      // by index 0 of a group joined by lo's index is a second membership, as on Linux.
      if (found != groups.end() && index == kLoopbackIndex) return sys::fail(EADDRINUSE, call);
      if (index != 0 && index != kLoopbackIndex) return sys::fail(ENODEV, call);
      groups.push_back(group);
      kernel.udp_multicast_members.push_back(self);
      return {};
    }
    case IPV6_MULTICAST_LOOP:
      if (len < sizeof(int)) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      if (v != 0 && v != 1) return sys::fail(EINVAL, call);
      self->multicast6_loop = v != 0;
      return {};
    case IPV6_MULTICAST_HOPS:
      if (stream) return sys::fail(ENOPROTOOPT, call);
      if (len < sizeof(int)) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      if (v < -1 || v > 255) return sys::fail(EINVAL, call);
      self->multicast6_hops = v;
      return {};
    case IPV6_MULTICAST_IF:
      if (stream) return sys::fail(ENOPROTOOPT, call);
      if (len < sizeof(int)) return sys::fail(EINVAL, call);
      if (value == nullptr) return sys::fail(EFAULT, call);
      if (v != 0 && static_cast<unsigned>(v) != kLoopbackIndex) return sys::fail(ENODEV, call);
      self->multicast6_interface = static_cast<unsigned>(v);
      return {};
    default:
      return sys::fail(ENOPROTOOPT, call);
  }
}

sys::Result<int> udp_ipv6_option(const Socket& socket, int name) {
  switch (name) {
    case IPV6_MULTICAST_LOOP:
      return socket.multicast6_loop ? 1 : 0;
    case IPV6_MULTICAST_HOPS:
      return socket.multicast6_hops < 0 ? 1 : socket.multicast6_hops;
    case IPV6_MULTICAST_IF:
      return static_cast<int>(socket.multicast6_interface);
    default:
      return sys::fail(ENOPROTOOPT, "getsockopt");
  }
}

sys::Result<void> udp_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                           const sockaddr* addr, socklen_t len) {
  auto at = inet_bind_endpoint(p, *self, addr, len, has_port(*self));
  if (!at) return sys::fail(at.error());
  self->udp_address_chosen = !is_any(at->address);
  if (at->port == 0) return autobind(kernel, self, at->address, "bind", at->scope);
  const Coverage mine = coverage_of(self->domain(), at->address, self->v6only);
  for (const auto& other : bound_to(kernel, at->port)) {
    if (overlaps(coverage_of(*other), mine) && !(self->reuse_address && other->reuse_address)) {
      return sys::fail(EADDRINUSE, "bind");
    }
  }
  self->udp_port_chosen = true;
  take(kernel, self, *at);
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
      const in6_addr address = self->udp_address_chosen ? at.address : any_of(self->domain());
      if (!self->udp_port_chosen) {
        auto& list = kernel.udp_ports[at.port];
        std::erase_if(list, [&](const std::weak_ptr<OpenFile>& w) {
          return w.expired() || w.lock().get() == self.get();
        });
        self->local = address_of(self->domain(), {address, 0});
      } else {
        self->local = address_of(self->domain(), {address, at.port});
      }
    }
    return {};
  }
  auto to = inet_destination(*self, addr, len, "connect");
  if (!to) return sys::fail(to.error());
  if (!is_loopback(to->address)) return sys::fail(ENETUNREACH, "connect");
  const in6_addr source = loopback_source(to->address);
  if (!has_port(*self)) {
    const in6_addr kept = kept_address(*self);
    if (auto bound = autobind(kernel, self, is_any(kept) ? source : kept, "connect"); !bound) {
      return bound;
    }
  } else if (is_any(endpoint_of(self->local).address)) {
    self->local = address_of(self->domain(), {source, endpoint_of(self->local).port});
  }
  self->peer_address = address_of(self->domain(), *to);
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
  // udpv6_sendmsg takes an AF_UNSPEC address as none (after a length check).
  if (addr != nullptr && self->domain() == AF_INET6) {
    if (len < offsetof(sockaddr, sa_data)) return sys::fail(EINVAL, "sendto");
    if (addr->sa_family == AF_UNSPEC) addr = nullptr;
  }
  Endpoint to;
  unsigned scope = 0;  // a destination's sin6_scope_id: the interface it names
  if (addr != nullptr) {
    auto found = inet_destination(*self, addr, len, "sendto");
    if (!found) return sys::fail(found.error());
    if (found->port == 0) return sys::fail(EINVAL, "sendto");
    to = *found;
    if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
      sockaddr_in6 in6{};
      std::memcpy(&in6, addr, sizeof in6);
      scope = in6.sin6_scope_id;
    }
  } else {
    if (!self->datagram_connected) return sys::fail(EDESTADDRREQ, "sendto");
    to = endpoint_of(self->peer_address);
  }
  const bool multicast = addr != nullptr && is_multicast(to.address);
  const bool v4 = is_mapped(to.address);
  if (multicast) {
    // A group leaves by lo only when the socket (or the destination's scope) names lo.
    const bool by_lo = v4 ? is_loopback(self->multicast_interface)
                          : (scope != 0 ? scope : self->multicast6_interface) == kLoopbackIndex;
    if (!by_lo) return sys::fail(ENETUNREACH, "sendto");
  } else if (!is_loopback(to.address)) {
    return sys::fail(ENETUNREACH, "sendto");
  }
  if (bytes.size() > (v4 ? kMaxUdpPayload : kMaxUdp6Payload)) return sys::fail(EMSGSIZE, "sendto");
  // sock_alloc_send_skb reports (and clears) an error an ICMP message left.
  if (self->error != 0) return sys::fail(std::exchange(self->error, 0), "sendto");
  Endpoint from = endpoint_of(self->local);
  if (is_any(from.address)) {
    from.address =
        multicast && v4 ? mapped(self->multicast_interface) : loopback_source(to.address);
  }
  if (multicast) {
    // Dropped unless this host joined the group; no ICMP answers a group.
    if (!host_joined(kernel, to.address)) return bytes.size();
    for (const auto& socket : bound_to(kernel, to.port)) {
      if (score_for(*socket, from, to) > 0) deliver(kernel, *socket, from, bytes);
    }
    return bytes.size();
  }
  auto to_socket = receiver(kernel, from, to);
  if (!to_socket) {
    // Port unreachable: a hard error, kept only by a connected socket (__udp4_lib_err,
    // __udp6_lib_err).
    if (self->datagram_connected) {
      self->error = ECONNREFUSED;
      kernel.wake(self.get(), EPOLLERR);
    }
    return bytes.size();
  }
  deliver(kernel, *to_socket, from, bytes);
  return bytes.size();
}

}  // namespace daemonkit::fake::detail
