#include "daemonkit/core/net/datagram_port.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace {

// A signal may interrupt a send; the datagram was not sent, so it is sent again, a few times
// at most (a storm of signals must not hold the loop).
constexpr int kInterruptedRetries = 4;

sys::Error bad_address(std::string_view what, std::string_view value, const char* call) {
  return sys::Error{EINVAL, call, fmt::format("{} {}, not a numeric address", what, value)};
}

// An IPv6 interface index: "" is 0 (the kernel's choice), else a decimal number.
std::optional<unsigned> interface_index(std::string_view text) {
  if (text.empty()) return 0U;
  unsigned index = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return index;
}

// An IPv4 interface named by one of its addresses: "" is INADDR_ANY.
std::optional<in_addr> interface_address(std::string_view text) {
  auto address = SocketAddress::ip(text, 0);
  if (!address || address->family() != AF_INET) return std::nullopt;
  return reinterpret_cast<const sockaddr_in*>(address->data())->sin_addr;
}

}  // namespace

DatagramPort::DatagramPort(Reactor& reactor, sys::Syscalls& os, OwnedFd socket,
                           SocketAddress address, std::optional<SocketAddress> peer,
                           DatagramProtocol& protocol, DatagramOptions options, OnStop on_stop)
    : reactor_(reactor),
      os_(os),
      socket_(std::move(socket)),
      address_(address),
      peer_(std::move(peer)),
      protocol_(protocol),
      options_(std::move(options)),
      on_stop_(std::move(on_stop)) {
  if (options_.reads_per_wakeup < 1) options_.reads_per_wakeup = 1;
  if (options_.max_packet_size < 1) options_.max_packet_size = 1;
  buffer_ = std::make_unique<std::byte[]>(options_.max_packet_size);
}

ReactorResult<std::unique_ptr<DatagramPort>> DatagramPort::start(
    Reactor& reactor, sys::Syscalls& os, OwnedFd socket, SocketAddress address,
    std::optional<SocketAddress> peer, DatagramProtocol& protocol, DatagramOptions options,
    OnStop on_stop) {
  std::unique_ptr<DatagramPort> port(new DatagramPort(reactor, os, std::move(socket), address,
                                                      std::move(peer), protocol, std::move(options),
                                                      std::move(on_stop)));
  const int fd = port->socket_.get();
  if (auto added = reactor.add_reader(fd, [p = port.get()] { p->on_readable(); }); !added) {
    // Never started, so the protocol hears nothing; the owner's undo still runs.
    port->socket_.reset();
    if (auto undo = std::exchange(port->on_stop_, nullptr)) undo();
    return tl::unexpected(added.error());
  }
  port->reading_ = true;
  protocol.port_ = port.get();
  protocol.started(*port);
  return port;
}

DatagramPort::~DatagramPort() {
  *alive_ = false;
  (void)stop_listening();
}

bool DatagramPort::stop_listening() {
  if (!socket_) return false;
  if (reading_) (void)reactor_.remove_reader(socket_.get());
  reading_ = false;
  socket_.reset();
  if (auto undo = std::exchange(on_stop_, nullptr)) undo();
  if (protocol_.port_ == this) {
    protocol_.stopped();
    protocol_.port_ = nullptr;
  }
  return true;
}

void DatagramPort::on_readable() {
  const auto alive = alive_;
  for (int i = 0; i < options_.reads_per_wakeup && socket_; ++i) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    auto got = os_.recvfrom(socket_.get(), buffer_.get(), options_.max_packet_size, 0,
                            reinterpret_cast<sockaddr*>(&from), &len);
    if (!got) {
      const int code = got.error().code;
      if (code == EAGAIN) return;
      if (code == EINTR) continue;
      if (code == ECONNREFUSED) {
        // The kernel reports it on a connected socket only; one adopted while connected and
        // never told so here is not "connected" to the protocol either (Twisted's rule).
        if (peer_) {
          protocol_.connection_refused();
          if (!*alive) return;
        }
        continue;
      }
      // ENOMEM and the like: the datagram is lost, the next read may work. Ending the batch
      // bounds the cost if it does not.
      log(fmt::format("could not read a datagram on {}: {}", address_,
                      sys::to_string(got.error())));
      return;
    }
    const auto sender = SocketAddress::from(reinterpret_cast<const sockaddr*>(&from), len);
    protocol_.datagram_received(std::span<const std::byte>(buffer_.get(), *got),
                                sender.value_or(SocketAddress{}));
    // The protocol may have stopped the port, or destroyed it.
    if (!*alive) return;
  }
}

sys::Result<void> DatagramPort::write(std::span<const std::byte> datagram,
                                      const SocketAddress& to) {
  if (peer_) {
    if (!(to == *peer_)) {
      return sys::fail(
          sys::Error{EISCONN, "sendto", fmt::format("{}, connected to {}", to, *peer_)});
    }
    return send(datagram, nullptr);
  }
  return send(datagram, &to);
}

sys::Result<void> DatagramPort::write(std::span<const std::byte> datagram) {
  if (!peer_) return sys::fail(sys::Error{EDESTADDRREQ, "sendto", "not connected"});
  return send(datagram, nullptr);
}

sys::Result<void> DatagramPort::send(std::span<const std::byte> datagram, const SocketAddress* to) {
  if (!socket_) return sys::fail(sys::Error{EBADF, "sendto", "the port stopped listening"});
  const SocketAddress& subject = to != nullptr ? *to : *peer_;
  for (int attempt = 0;; ++attempt) {
    auto sent = os_.sendto(socket_.get(), datagram.data(), datagram.size(), MSG_NOSIGNAL,
                           to != nullptr ? to->data() : nullptr, to != nullptr ? to->size() : 0);
    if (sent) return {};
    const int code = sent.error().code;
    if (code == EINTR && attempt < kInterruptedRetries) continue;
    if (code == EAGAIN || code == ENOBUFS) {
      ++dropped_;
      return {};
    }
    if (code == ECONNREFUSED && peer_) {
      protocol_.connection_refused();
      return {};
    }
    return sys::fail(sent.error().about(to_string(subject)));
  }
}

sys::Result<void> DatagramPort::connect(const SocketAddress& peer) {
  if (!socket_) return sys::fail(sys::Error{EBADF, "connect", "the port stopped listening"});
  if (peer_) {
    return sys::fail(
        sys::Error{EISCONN, "connect", fmt::format("{}, connected to {}", peer, *peer_)});
  }
  if (auto done = os_.connect(socket_.get(), peer.data(), peer.size()); !done) {
    return sys::fail(done.error().about(to_string(peer)));
  }
  peer_ = peer;
  // A connect binds an unbound socket (a client's UNIX datagram socket stays unnamed).
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  if (os_.getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&name), &len)) {
    if (auto bound = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), len)) {
      address_ = *bound;
    }
  }
  return {};
}

sys::Result<void> DatagramPort::membership(std::string_view group, std::string_view interface,
                                           bool join) {
  const char* call = "setsockopt";
  auto address = SocketAddress::ip(group, 0);
  if (!address || group.empty()) return sys::fail(bad_address("group", group, call));
  if (!socket_) return sys::fail(sys::Error{EBADF, call, "the port stopped listening"});
  if (address->family() == AF_INET6) {
    ipv6_mreq request{};
    request.ipv6mr_multiaddr = reinterpret_cast<const sockaddr_in6*>(address->data())->sin6_addr;
    auto index = interface_index(interface);
    if (!index) return sys::fail(bad_address("interface index", interface, call));
    request.ipv6mr_interface = *index;
    const int name = join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;
    if (auto set = os_.setsockopt(socket_.get(), IPPROTO_IPV6, name, &request, sizeof request);
        !set) {
      return sys::fail(set.error().about(
          fmt::format("{} {}", join ? "IPV6_JOIN_GROUP" : "IPV6_LEAVE_GROUP", group)));
    }
    return {};
  }
  ip_mreq request{};
  request.imr_multiaddr = reinterpret_cast<const sockaddr_in*>(address->data())->sin_addr;
  auto local = interface_address(interface);
  if (!local) return sys::fail(bad_address("interface", interface, call));
  request.imr_interface = *local;
  const int name = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
  if (auto set = os_.setsockopt(socket_.get(), IPPROTO_IP, name, &request, sizeof request); !set) {
    return sys::fail(set.error().about(
        fmt::format("{} {}", join ? "IP_ADD_MEMBERSHIP" : "IP_DROP_MEMBERSHIP", group)));
  }
  return {};
}

sys::Result<void> DatagramPort::join_group(std::string_view group, std::string_view interface) {
  return membership(group, interface, true);
}

sys::Result<void> DatagramPort::leave_group(std::string_view group, std::string_view interface) {
  return membership(group, interface, false);
}

sys::Result<void> DatagramPort::set_int(int level, int name, int value, const char* what) {
  if (!socket_) return sys::fail(sys::Error{EBADF, "setsockopt", "the port stopped listening"});
  if (auto set = os_.setsockopt(socket_.get(), level, name, &value, sizeof value); !set) {
    return sys::fail(set.error().about(fmt::format("{} {}", what, value)));
  }
  return {};
}

sys::Result<int> DatagramPort::get_int(int level, int name) const {
  if (!socket_) return sys::fail(sys::Error{EBADF, "getsockopt", "the port stopped listening"});
  int value = 0;
  socklen_t len = sizeof value;
  if (auto got = os_.getsockopt(socket_.get(), level, name, &value, &len); !got) {
    return sys::fail(got.error());
  }
  return value;
}

sys::Result<void> DatagramPort::set_loopback_mode(bool on) {
  if (address_.family() == AF_INET6) {
    return set_int(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on ? 1 : 0, "IPV6_MULTICAST_LOOP");
  }
  return set_int(IPPROTO_IP, IP_MULTICAST_LOOP, on ? 1 : 0, "IP_MULTICAST_LOOP");
}

sys::Result<bool> DatagramPort::loopback_mode() const {
  auto got = address_.family() == AF_INET6 ? get_int(IPPROTO_IPV6, IPV6_MULTICAST_LOOP)
                                           : get_int(IPPROTO_IP, IP_MULTICAST_LOOP);
  if (!got) return sys::fail(got.error());
  // IP_MULTICAST_LOOP reads back as one byte on Linux; the rest of the int stays 0.
  return (*got & 0xff) != 0;
}

sys::Result<void> DatagramPort::set_ttl(int ttl) {
  if (address_.family() == AF_INET6) {
    return set_int(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl, "IPV6_MULTICAST_HOPS");
  }
  return set_int(IPPROTO_IP, IP_MULTICAST_TTL, ttl, "IP_MULTICAST_TTL");
}

sys::Result<int> DatagramPort::ttl() const {
  if (address_.family() == AF_INET6) return get_int(IPPROTO_IPV6, IPV6_MULTICAST_HOPS);
  auto got = get_int(IPPROTO_IP, IP_MULTICAST_TTL);
  if (!got) return got;
  return *got & 0xff;
}

sys::Result<void> DatagramPort::set_outgoing_interface(std::string_view interface) {
  const char* call = "setsockopt";
  if (!socket_) return sys::fail(sys::Error{EBADF, call, "the port stopped listening"});
  if (address_.family() == AF_INET6) {
    auto index = interface_index(interface);
    if (!index) return sys::fail(bad_address("interface index", interface, call));
    return set_int(IPPROTO_IPV6, IPV6_MULTICAST_IF, static_cast<int>(*index), "IPV6_MULTICAST_IF");
  }
  auto local = interface_address(interface);
  if (!local) return sys::fail(bad_address("interface", interface, call));
  const in_addr value = *local;
  if (auto set = os_.setsockopt(socket_.get(), IPPROTO_IP, IP_MULTICAST_IF, &value, sizeof value);
      !set) {
    return sys::fail(
        set.error().about(fmt::format("IP_MULTICAST_IF {}", interface.empty() ? "*" : interface)));
  }
  return {};
}

}  // namespace daemonkit::core
