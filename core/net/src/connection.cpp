#include "daemonkit/core/net/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <utility>

namespace daemonkit::core {

Connection::Connection(sys::Syscalls& os, std::unique_ptr<Protocol> protocol, SocketAddress peer,
                       OnEnded on_ended)
    : os_(os), protocol_(std::move(protocol)), peer_(peer), on_ended_(std::move(on_ended)) {}

ReactorResult<std::unique_ptr<Connection>> Connection::open(Reactor& reactor, sys::Syscalls& os,
                                                            OwnedFd fd,
                                                            std::unique_ptr<Protocol> protocol,
                                                            SocketAddress peer, OnEnded on_ended,
                                                            StreamOptions options) {
  std::unique_ptr<Connection> connection(
      new Connection(os, std::move(protocol), peer, std::move(on_ended)));
  auto transport = StreamTransport::open(reactor, os, std::move(fd), *connection, options);
  if (!transport) return tl::unexpected(transport.error());
  connection->transport_ = std::move(*transport);
  connection->protocol_->connection_ = connection.get();
  return connection;
}

Connection::~Connection() { *alive_ = false; }

void Connection::start() { protocol_->connection_made(*this); }

sys::Result<SocketAddress> Connection::local_address() const {
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  if (auto got = os_.getsockname(fd(), reinterpret_cast<sockaddr*>(&name), &len); !got) {
    return sys::fail(got.error());
  }
  auto address = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), len);
  if (!address) return sys::fail(EINVAL, "getsockname");
  return *address;
}

sys::Result<void> Connection::set_flag(int level, int name, bool on) {
  const int value = on ? 1 : 0;
  return os_.setsockopt(fd(), level, name, &value, sizeof value);
}

sys::Result<bool> Connection::flag(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (auto got = os_.getsockopt(fd(), level, name, &value, &len); !got) {
    return sys::fail(got.error());
  }
  return value != 0;
}

sys::Result<void> Connection::set_no_delay(bool on) {
  return set_flag(IPPROTO_TCP, TCP_NODELAY, on);
}
sys::Result<bool> Connection::no_delay() const { return flag(IPPROTO_TCP, TCP_NODELAY); }
sys::Result<void> Connection::set_keep_alive(bool on) {
  return set_flag(SOL_SOCKET, SO_KEEPALIVE, on);
}
sys::Result<bool> Connection::keep_alive() const { return flag(SOL_SOCKET, SO_KEEPALIVE); }

void Connection::data_received(std::span<const std::byte> data) { protocol_->data_received(data); }

bool Connection::read_eof() { return protocol_->read_eof(); }

void Connection::write_eof() { protocol_->write_eof(); }

void Connection::connection_lost(const LossReason& reason) {
  const auto alive = alive_;
  protocol_->connection_lost(reason);
  // The protocol may have destroyed what owns this connection (and so the connection).
  if (!*alive || !on_ended_) return;
  // Last: the owner may destroy this connection from here.
  on_ended_(*this, reason);
}

}  // namespace daemonkit::core
