// TCP over AF_INET and AF_INET6 on a machine with only a loopback interface, and the address
// rules UDP shares (inet_endpoint.h). Sockets bind to 127.0.0.0/8, ::1 or a wildcard
// (EADDRNOTAVAIL for anything else), ports below 1024 need euid 0, port 0 takes the next free
// ephemeral port (32768-60999, in order rather than Linux's random walk), and two sockets may
// share a port only as Linux allows: both with SO_REUSEADDR and neither listening, or bound to
// addresses that do not overlap — where an AF_INET6 socket bound to :: covers IPv4's
// addresses too unless it is IPV6_V6ONLY. Connecting reaches a listener on 127.0.0.0/8 or ::1
// (a wildcard is taken as the local host; a dual-stack listener hears IPv4 clients as
// v4-mapped addresses); other destinations have no route (ENETUNREACH).
#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

#include "inet_endpoint.h"
#include "socket.h"

namespace daemonkit::fake::detail {
namespace {

// Linux's SIN6_LEN_RFC2133: a sockaddr_in6 without its scope id is long enough.
constexpr socklen_t kShortestIn6 = 24;

// Whether `test` holds for a live socket other than `socket` bound to `port` at an address
// overlapping what `mine` covers.
template <typename Test>
bool any_other_on(const Kernel& kernel, const Socket& socket, const Coverage& mine,
                  std::uint16_t port, Test test) {
  auto it = kernel.tcp_ports.find(port);
  if (it == kernel.tcp_ports.end()) return false;
  for (const auto& weak : it->second) {
    auto other_file = weak.lock();
    auto* other = dynamic_cast<Socket*>(other_file.get());
    if (other == nullptr || other == &socket) continue;
    if (overlaps(coverage_of(*other), mine) && test(*other)) return true;
  }
  return false;
}

// Whether `socket` may take `at` while the others bound to that port stay (inet_csk_bind_conflict
// without SO_REUSEPORT and TIME_WAIT).
bool conflicts(const Kernel& kernel, const Socket& socket, Endpoint at) {
  const Coverage mine = coverage_of(socket.domain(), at.address, socket.v6only);
  return any_other_on(kernel, socket, mine, at.port, [&](const Socket& other) {
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
  self->local = address_of(self->domain(), at);
}

// fe80::/10, and groups of interface-local or link-local scope: they name an address only
// with an interface (__ipv6_addr_needs_scope_id).
bool needs_scope(const in6_addr& a) {
  return IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_MC_NODELOCAL(&a) || IN6_IS_ADDR_MC_LINKLOCAL(&a);
}

}  // namespace

sys::Result<Endpoint> inet_bind_endpoint(const Process& p, const Socket& socket,
                                         const sockaddr* addr, socklen_t len, bool bound) {
  const bool datagram = !socket.is_stream();
  const auto privileged_port = [&](std::uint16_t port) {
    return port != 0 && port < kFirstUnprivileged && !p.privileged();
  };
  if (socket.domain() == AF_INET) {
    if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, "bind");
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof in);
    if (in.sin_family != AF_INET &&
        (in.sin_family != AF_UNSPEC || in.sin_addr.s_addr != htonl(INADDR_ANY))) {
      return sys::fail(EAFNOSUPPORT, "bind");
    }
    const Endpoint at{mapped(in.sin_addr.s_addr), ntohs(in.sin_port)};
    // A group's address may be bound by UDP (inet_bind takes RTN_MULTICAST): then only
    // datagrams to that group reach the socket.
    if (!is_any(at.address) && !is_loopback(at.address) &&
        !(datagram && is_multicast(at.address))) {
      return sys::fail(EADDRNOTAVAIL, "bind");  // the fake machine has only loopback
    }
    if (privileged_port(at.port)) return sys::fail(EACCES, "bind");
    if (bound) return sys::fail(EINVAL, "bind");
    return at;
  }
  if (len < kShortestIn6) return sys::fail(EINVAL, "bind");
  sockaddr_in6 in6{};
  std::memcpy(&in6, addr, std::min<std::size_t>(len, sizeof in6));
  if (in6.sin6_family != AF_INET6) return sys::fail(EAFNOSUPPORT, "bind");
  Endpoint at{in6.sin6_addr, ntohs(in6.sin6_port)};
  // An IPv6 group (a v4-mapped one is IPv4's to judge, below).
  if (IN6_IS_ADDR_MULTICAST(&at.address) && !datagram) return sys::fail(EINVAL, "bind");
  if (privileged_port(at.port)) return sys::fail(EACCES, "bind");
  if (bound) return sys::fail(EINVAL, "bind");
  if (is_mapped(at.address)) {
    if (socket.v6only) return sys::fail(EINVAL, "bind");
    if (!is_any(at.address) && !is_loopback(at.address) &&
        !(datagram && is_multicast(at.address))) {
      return sys::fail(EADDRNOTAVAIL, "bind");
    }
    return at;
  }
  if (is_v6_any(at.address)) return at;
  if (needs_scope(at.address)) {
    if (in6.sin6_scope_id == 0) return sys::fail(EINVAL, "bind");
    if (in6.sin6_scope_id != kLoopbackIndex) return sys::fail(ENODEV, "bind");
    at.scope = kLoopbackIndex;
  }
  if (!is_loopback(at.address) && !is_multicast(at.address)) {
    return sys::fail(EADDRNOTAVAIL, "bind");  // lo has ::1 alone
  }
  return at;
}

sys::Result<Endpoint> inet_destination(const Socket& socket, const sockaddr* addr, socklen_t len,
                                       const char* call) {
  const bool datagram = !socket.is_stream();
  Endpoint to;
  const auto v4 = [&]() -> sys::Result<Endpoint> {
    if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, call);
    sockaddr_in in{};
    std::memcpy(&in, addr, sizeof in);
    return Endpoint{mapped(in.sin_addr.s_addr), ntohs(in.sin_port)};
  };
  if (socket.domain() == AF_INET) {
    if (len < sizeof(sockaddr_in)) return sys::fail(EINVAL, call);
    const bool unspec_ok = datagram && std::string_view(call) == "sendto";
    if (addr->sa_family != AF_INET && !(unspec_ok && addr->sa_family == AF_UNSPEC)) {
      return sys::fail(EAFNOSUPPORT, call);
    }
    auto got = v4();
    if (!got) return got;
    to = *got;
  } else if (datagram && len >= sizeof(sa_family_t) && addr->sa_family == AF_INET) {
    // An AF_INET6 UDP socket sends to, or connects to, an IPv4 address as to its v4-mapped
    // form (udpv6_sendmsg's do_udp_sendmsg, ip6_datagram_connect).
    if (socket.v6only) {
      return sys::fail(std::string_view(call) == "connect" ? EAFNOSUPPORT : ENETUNREACH, call);
    }
    auto got = v4();
    if (!got) return got;
    to = *got;
  } else {
    if (len < kShortestIn6) return sys::fail(EINVAL, call);
    // udpv6_sendmsg takes no other family (EINVAL); connects say EAFNOSUPPORT.
    const bool send = datagram && std::string_view(call) == "sendto";
    if (addr->sa_family != AF_INET6) return sys::fail(send ? EINVAL : EAFNOSUPPORT, call);
    sockaddr_in6 in6{};
    std::memcpy(&in6, addr, std::min<std::size_t>(len, sizeof in6));
    to = {in6.sin6_addr, ntohs(in6.sin6_port)};
    // :: means this host, as in BSD.
    if (is_v6_any(to.address)) to.address = IN6ADDR_LOOPBACK_INIT;
    if (is_mapped(to.address) && socket.v6only) return sys::fail(ENETUNREACH, call);
  }
  if (is_mapped(to.address) && is_any(to.address)) to.address = mapped(htonl(INADDR_LOOPBACK));
  return to;
}

std::string inet_address_text(const SocketAddress& address) {
  const Endpoint at = endpoint_of(address);
  sa_family_t family = AF_UNSPEC;
  if (address.size() >= sizeof family) std::memcpy(&family, address.data(), sizeof family);
  if (family != AF_INET6) {
    in_addr in{};
    in.s_addr = v4_of(at.address);
    char text[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &in, text, sizeof text);
    return fmt::format("tcp:{}:{}", text, at.port);
  }
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET6, &at.address, text, sizeof text);
  return fmt::format("tcp:[{}]:{}", text, at.port);
}

SocketAddress inet_unbound(int domain) { return address_of(domain, {any_of(domain), 0}); }

SocketAddress inet_accepted_address(const Socket& listener, const in6_addr& destination) {
  return address_of(listener.domain(), {destination, endpoint_of(listener.local).port});
}

SocketAddress inet_as_seen_by(const Socket& socket, const SocketAddress& address) {
  return address_of(socket.domain(), endpoint_of(address));
}

sys::Result<void> inet_autobind(Kernel& kernel, const std::shared_ptr<Socket>& self,
                                const in6_addr& address, const char* call) {
  const int range = kLastEphemeralPort - kFirstEphemeralPort + 1;
  for (int tried = 0; tried < range; ++tried) {
    const std::uint16_t port = kernel.next_ephemeral_port;
    kernel.next_ephemeral_port =
        port >= kLastEphemeralPort ? kFirstEphemeralPort : static_cast<std::uint16_t>(port + 1);
    if (port_in_use(kernel, port)) continue;
    take(kernel, self, {address, port});
    return {};
  }
  // bind(port 0) reports an exhausted range as EADDRINUSE; connect as EADDRNOTAVAIL.
  return sys::fail(std::string_view(call) == "connect" ? EADDRNOTAVAIL : EADDRINUSE, call);
}

sys::Result<void> inet_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                            const sockaddr* addr, socklen_t len) {
  auto at = inet_bind_endpoint(p, *self, addr, len, !self->local.empty());
  if (!at) return sys::fail(at.error());
  if (at->port == 0) return inet_autobind(kernel, self, at->address, "bind");
  if (conflicts(kernel, *self, *at)) return sys::fail(EADDRINUSE, "bind");
  take(kernel, self, *at);
  return {};
}

bool inet_listen_conflict(const Kernel& kernel, const Socket& socket) {
  return any_other_on(kernel, socket, coverage_of(socket), endpoint_of(socket.local).port,
                      [](const Socket& other) { return other.state == Socket::State::kListening; });
}

sys::Result<std::shared_ptr<Socket>> inet_find_listener(Kernel& kernel, const Socket& socket,
                                                        const sockaddr* addr, socklen_t len,
                                                        in6_addr* destination, const char* call) {
  auto to = inet_destination(socket, addr, len, call);
  if (!to) return sys::fail(to.error());
  if (!is_loopback(to->address)) return sys::fail(ENETUNREACH, call);
  *destination = to->address;
  auto it = kernel.tcp_ports.find(to->port);
  if (to->port == 0 || it == kernel.tcp_ports.end()) return sys::fail(ECONNREFUSED, call);
  std::shared_ptr<Socket> best;
  int best_score = 0;
  for (const auto& weak : it->second) {
    auto listener = std::dynamic_pointer_cast<Socket>(weak.lock());
    if (!listener || listener->state != Socket::State::kListening) continue;
    const int score = match_score(coverage_of(*listener), listener->domain(), to->address);
    if (score > best_score) {
      best = listener;
      best_score = score;
    }
  }
  if (!best) return sys::fail(ECONNREFUSED, call);
  return best;
}

// do_ipv6_setsockopt: IPV6_V6ONLY on any AF_INET6 socket until it is bound; the rest is
// multicast, UDP's (socket_udp.cpp), which also answers what TCP refuses.
sys::Result<void> inet6_set_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                   const void* value, socklen_t len) {
  if (name != IPV6_V6ONLY) return udp_set_ipv6_option(kernel, self, name, value, len);
  if (len < sizeof(int) || !self->local.empty()) return sys::fail(EINVAL, "setsockopt");
  if (value == nullptr) return sys::fail(EFAULT, "setsockopt");
  int v = 0;
  std::memcpy(&v, value, sizeof v);
  self->v6only = v != 0;
  return {};
}

sys::Result<int> inet6_option(const Socket& socket, int name) {
  if (name == IPV6_V6ONLY) return socket.v6only ? 1 : 0;
  return udp_ipv6_option(socket, name);
}

void inet_register(Kernel& kernel, const std::shared_ptr<Socket>& socket) {
  kernel.tcp_ports[endpoint_of(socket->local).port].push_back(socket);
}

}  // namespace daemonkit::fake::detail
