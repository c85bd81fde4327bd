// An IP address and port as the fake's TCP and UDP sockets compare them, for both families,
// and the rules both protocols share: what counts as loopback, which ports need privilege, and
// which sockets a bound address covers.
//
// Addresses are kept in IPv6's 16 bytes, an IPv4 address as its v4-mapped form
// (::ffff:a.b.c.d), which is how Linux's dual-stack sockets see IPv4 traffic: one rule set then
// serves AF_INET sockets, AF_INET6 sockets and the IPv4 traffic an AF_INET6 socket bound to ::
// hears while IPV6_V6ONLY is off (the default, net.ipv6.bindv6only = 0).
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
// The fake machine's only interface, lo, by index (as if_nametoindex("lo") gives it).
constexpr unsigned kLoopbackIndex = 1;

struct Endpoint {
  in6_addr address{};      // IPv4 as ::ffff:a.b.c.d
  std::uint16_t port = 0;  // host order
  // The interface a link-local address (or group) was bound with: what getsockname reports
  // as sin6_scope_id. Never compared: lo is the only interface.
  unsigned scope = 0;
};

inline bool is_mapped(const in6_addr& a) { return IN6_IS_ADDR_V4MAPPED(&a) != 0; }

inline in6_addr mapped(in_addr_t network_order) {
  in6_addr a{};
  a.s6_addr[10] = 0xff;
  a.s6_addr[11] = 0xff;
  std::memcpy(&a.s6_addr[12], &network_order, sizeof network_order);
  return a;
}

// The IPv4 address of a v4-mapped one (network order).
inline in_addr_t v4_of(const in6_addr& a) {
  in_addr_t v4 = 0;
  std::memcpy(&v4, &a.s6_addr[12], sizeof v4);
  return v4;
}

inline bool same(const in6_addr& a, const in6_addr& b) { return IN6_ARE_ADDR_EQUAL(&a, &b) != 0; }

// :: (IPv6's wildcard, which a dual-stack socket also takes as 0.0.0.0).
inline bool is_v6_any(const in6_addr& a) { return IN6_IS_ADDR_UNSPECIFIED(&a) != 0; }

// A wildcard of either family: :: or 0.0.0.0.
inline bool is_any(const in6_addr& a) {
  return is_v6_any(a) || (is_mapped(a) && v4_of(a) == htonl(INADDR_ANY));
}

inline bool is_loopback(in_addr_t network_order) { return (ntohl(network_order) >> 24) == 127; }

// 127.0.0.0/8 or ::1: the addresses lo has.
inline bool is_loopback(const in6_addr& a) {
  return is_mapped(a) ? is_loopback(v4_of(a)) : IN6_IS_ADDR_LOOPBACK(&a) != 0;
}

// 224.0.0.0/4 or ff00::/8.
inline bool is_multicast(const in6_addr& a) {
  return is_mapped(a) ? (ntohl(v4_of(a)) >> 28) == 0xe : IN6_IS_ADDR_MULTICAST(&a) != 0;
}

// The loopback address a socket sends from when it has no address of its own: 127.0.0.1 to
// IPv4 destinations (mapped ones included), ::1 to IPv6 ones.
inline in6_addr loopback_source(const in6_addr& destination) {
  return is_mapped(destination) ? mapped(htonl(INADDR_LOOPBACK)) : in6_addr(IN6ADDR_LOOPBACK_INIT);
}

// The wildcard address of a socket family: 0.0.0.0 or ::.
inline in6_addr any_of(int domain) {
  return domain == AF_INET ? mapped(htonl(INADDR_ANY)) : in6_addr(IN6ADDR_ANY_INIT);
}

// An address as the bytes getsockname gives back, or the family alone when empty.
inline Endpoint endpoint_of(const SocketAddress& address) {
  sa_family_t family = AF_UNSPEC;
  if (address.size() >= sizeof family) std::memcpy(&family, address.data(), sizeof family);
  if (family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address.data(), std::min(address.size(), sizeof in6));
    return {in6.sin6_addr, ntohs(in6.sin6_port), in6.sin6_scope_id};
  }
  sockaddr_in in{};
  std::memcpy(&in, address.data(), std::min(address.size(), sizeof in));
  return {mapped(in.sin_addr.s_addr), ntohs(in.sin_port)};
}

// An endpoint as a socket of `domain` names it: a sockaddr_in (from the mapped form) or a
// sockaddr_in6 (flow label 0; a scope only for the link-local addresses bound with one).
inline SocketAddress address_of(int domain, const Endpoint& at) {
  if (domain == AF_INET) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = v4_of(at.address);
    in.sin_port = htons(at.port);
    return SocketAddress(reinterpret_cast<const char*>(&in), sizeof in);
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_addr = at.address;
  in6.sin6_port = htons(at.port);
  in6.sin6_scope_id = at.scope;
  return SocketAddress(reinterpret_cast<const char*>(&in6), sizeof in6);
}

// What a bound socket covers, as Linux's inet_rcv_saddr_equal and ipv6_rcv_saddr_equal
// compare two of them: an AF_INET socket its IPv4 address; an AF_INET6 socket bound to a
// v4-mapped address that IPv4 address; one bound to :: IPv6's wildcard and, unless it is
// IPV6_V6ONLY, IPv4's too; one bound to another IPv6 address that address alone.
struct Coverage {
  bool v4 = false;
  bool v6 = false;
  in_addr_t v4_address = 0;  // network order; 0: every address
  in6_addr v6_address{};     // ::: every address
};

inline Coverage coverage_of(int domain, const in6_addr& bound, bool v6only) {
  Coverage c;
  if (domain == AF_INET || is_mapped(bound)) {
    c.v4 = true;
    c.v4_address = v4_of(bound);
    return c;
  }
  c.v6 = true;
  c.v6_address = bound;
  c.v4 = is_v6_any(bound) && !v6only;
  return c;
}

// Whether two bound sockets would both take some address on one port.
inline bool overlaps(const Coverage& a, const Coverage& b) {
  const bool v4 =
      a.v4 && b.v4 && (a.v4_address == b.v4_address || a.v4_address == 0 || b.v4_address == 0);
  const bool v6 =
      a.v6 && b.v6 &&
      (same(a.v6_address, b.v6_address) || is_v6_any(a.v6_address) || is_v6_any(b.v6_address));
  return v4 || v6;
}

// How well a socket covering `c` matches traffic to `destination`: 0 when it does not hear it;
// more for an exact address than a wildcard, and, as Linux scores them, an AF_INET socket a
// little above a dual-stack one for IPv4 traffic.
inline int match_score(const Coverage& c, int domain, const in6_addr& destination) {
  if (is_mapped(destination)) {
    if (!c.v4) return 0;
    if (c.v4_address != 0 && c.v4_address != v4_of(destination)) return 0;
    return (c.v4_address != 0 ? 4 : 2) + (domain == AF_INET ? 1 : 0);
  }
  if (!c.v6) return 0;
  if (!is_v6_any(c.v6_address) && !same(c.v6_address, destination)) return 0;
  return is_v6_any(c.v6_address) ? 2 : 4;
}

}  // namespace daemonkit::fake::detail

namespace daemonkit::fake::detail {

// The address a socket of either family is bound to, as what it covers.
inline Coverage coverage_of(const Socket& socket) {
  return coverage_of(socket.domain(), endpoint_of(socket.local).address, socket.v6only);
}

// bind()'s address for a TCP or UDP socket, checked as inet_bind and inet6_bind check it, in
// their order: the length (EINVAL), the family (EAFNOSUPPORT; AF_INET takes AF_UNSPEC with
// 0.0.0.0, for old programs), then for IPv6 a group on a stream socket (EINVAL), the privileged
// port (EACCES) and a socket already bound (EINVAL), then the address: an address lo has, a
// wildcard, or a group for UDP (EADDRNOTAVAIL otherwise); a v4-mapped one only without
// IPV6_V6ONLY (EINVAL); link-local scopes need a scope id naming lo (EINVAL without, ENODEV for
// another). IPv4 checks the address before the port and the binding, as Linux does.
sys::Result<Endpoint> inet_bind_endpoint(const Process& p, const Socket& socket,
                                         const sockaddr* addr, socklen_t len, bool bound);

// A destination of connect or sendto, as tcp_v4_connect, tcp_v6_connect, udp_sendmsg,
// udpv6_sendmsg and the datagram connects read it: EINVAL if short, EAFNOSUPPORT for another
// family (AF_UNSPEC passes for AF_INET; an AF_INET6 UDP socket also takes AF_INET, as the
// v4-mapped address), a wildcard means this host (127.0.0.1 or ::1), and ENETUNREACH for a
// v4-mapped one from an IPV6_V6ONLY socket. Reachability is the caller's to check.
sys::Result<Endpoint> inet_destination(const Socket& socket, const sockaddr* addr, socklen_t len,
                                       const char* call);

}  // namespace daemonkit::fake::detail
