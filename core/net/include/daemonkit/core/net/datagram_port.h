// DatagramPort: a datagram socket on the reactor — Twisted's udp.Port, udp.MulticastPort and
// unix.DatagramPort. It reads in bounded batches and hands each datagram to its protocol,
// sends to any address or, once connected, to its peer, and reports a refusal only when
// connected.
//
// UDP is lossy, and so is this port: a datagram the kernel cannot queue now (EAGAIN, a full
// send buffer; ENOBUFS, no memory for it) is dropped, counted in dropped(), and write
// succeeds, as Twisted drops it. A datagram too long for the path (EMSGSIZE) is the caller's
// error and is returned. Nothing is ever buffered in user space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct DatagramOptions {
  // Where read errors are logged.
  LogSink log;
  // The longest datagram read whole (Twisted's maxPacketSize, 8192); a longer one arrives cut
  // to this size. 65535 takes any UDP datagram.
  std::size_t max_packet_size = 8192;
  // Datagrams read per wake-up at most (Twisted reads up to 256), so that a flood on one port
  // cannot starve the rest of the loop: epoll is level-triggered, the rest is read next turn.
  int reads_per_wakeup = 64;
};

class DatagramPort {
 public:
  // What the port's owner undoes when it stops (a UNIX port unlinks its path), run once,
  // after the socket is closed.
  using OnStop = std::function<void()>;

  // Starts reading `socket` (a bound, non-blocking datagram socket of any family; `peer` set
  // if it is connected already) and calls protocol.started. The port owns the socket from
  // here, also when this fails. `protocol` must outlive the port.
  static ReactorResult<std::unique_ptr<DatagramPort>> start(Reactor& reactor, sys::Syscalls& os,
                                                            OwnedFd socket, SocketAddress address,
                                                            std::optional<SocketAddress> peer,
                                                            DatagramProtocol& protocol,
                                                            DatagramOptions options,
                                                            OnStop on_stop = {});
  // Stops listening (the protocol hears stopped) if it had not.
  ~DatagramPort();
  DatagramPort(const DatagramPort&) = delete;
  DatagramPort& operator=(const DatagramPort&) = delete;

  // One datagram to `to`. On a connected port `to` must be the peer (EISCONN otherwise, as
  // Twisted refuses it). ECONNREFUSED (a connected port's peer refused an earlier datagram)
  // reaches protocol.connection_refused and this datagram is not sent; see the top of the file
  // for EAGAIN, ENOBUFS and EMSGSIZE. Fails with EBADF once stopped.
  sys::Result<void> write(std::span<const std::byte> datagram, const SocketAddress& to);
  // One datagram to the connected peer: EDESTADDRREQ when not connected.
  sys::Result<void> write(std::span<const std::byte> datagram);
  // Connects to `peer` (numeric, same family): from then on only its datagrams are received
  // and its refusals heard. Once only (EISCONN after), as Twisted allows.
  sys::Result<void> connect(const SocketAddress& peer);

  // Multicast (IPv4 or IPv6 UDP; another socket fails with the kernel's error). `group` and
  // `interface` are numeric addresses; interface "" lets the kernel choose (for IPv6 it may be
  // an interface index, "" for 0). Errors name the option: "setsockopt(IP_ADD_MEMBERSHIP
  // 239.1.2.3): No such device (ENODEV)".
  sys::Result<void> join_group(std::string_view group, std::string_view interface = "");
  sys::Result<void> leave_group(std::string_view group, std::string_view interface = "");
  // Whether this host's own members of a group hear what it sends (on by default, as Linux).
  // Only for a datagram leaving by a real device: one sent by lo comes back through the device
  // itself, and this host's members hear it either way.
  sys::Result<void> set_loopback_mode(bool on);
  [[nodiscard]] sys::Result<bool> loopback_mode() const;
  // Hops a multicast datagram may take (1 by default: this link only).
  sys::Result<void> set_ttl(int ttl);
  [[nodiscard]] sys::Result<int> ttl() const;
  // The interface multicast datagrams leave by, named by one of its addresses ("" : the
  // routing table's choice); for IPv6 an interface index as a number ("" is 0).
  sys::Result<void> set_outgoing_interface(std::string_view interface);

  // Closes the socket, runs the owner's undo, then the protocol hears stopped. False if it had
  // stopped already.
  bool stop_listening();
  [[nodiscard]] bool listening() const { return socket_.valid(); }
  // The address bound: with the port the kernel chose when 0 was asked.
  [[nodiscard]] const SocketAddress& address() const { return address_; }
  [[nodiscard]] const std::optional<SocketAddress>& peer() const { return peer_; }
  // Datagrams write dropped (EAGAIN, ENOBUFS) since the start.
  [[nodiscard]] std::size_t dropped() const { return dropped_; }
  [[nodiscard]] std::size_t max_packet_size() const { return options_.max_packet_size; }
  [[nodiscard]] int fd() const { return socket_.get(); }

 private:
  DatagramPort(Reactor& reactor, sys::Syscalls& os, OwnedFd socket, SocketAddress address,
               std::optional<SocketAddress> peer, DatagramProtocol& protocol,
               DatagramOptions options, OnStop on_stop);
  void on_readable();
  sys::Result<void> send(std::span<const std::byte> datagram, const SocketAddress* to);
  sys::Result<void> membership(std::string_view group, std::string_view interface, bool join);
  sys::Result<void> set_int(int level, int name, int value, const char* what);
  [[nodiscard]] sys::Result<int> get_int(int level, int name) const;
  void log(std::string_view line) const { log_line(options_.log, line); }

  Reactor& reactor_;
  sys::Syscalls& os_;
  OwnedFd socket_;
  SocketAddress address_;
  std::optional<SocketAddress> peer_;
  DatagramProtocol& protocol_;
  DatagramOptions options_;
  OnStop on_stop_;
  bool reading_ = false;
  std::size_t dropped_ = 0;
  std::unique_ptr<std::byte[]> buffer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace daemonkit::core
