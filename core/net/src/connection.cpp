#include "daemonkit/core/net/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstring>
#include <utility>

namespace daemonkit::core {

// TlsStream's handler above: plaintext goes to the protocol; the loss TLS reports (its own
// reason when TLS failed) ends the connection. TLS has no half-close, so read_eof never comes.
class Connection::TlsUpper final : public StreamHandler {
 public:
  explicit TlsUpper(Connection& connection) : connection_(connection) {}
  void data_received(std::span<const std::byte> data) override {
    connection_.protocol_->data_received(data);
  }
  void connection_lost(const LossReason& reason) override { connection_.end(reason); }

 private:
  Connection& connection_;
};

struct Connection::TlsLayer {
  TlsLayer(Connection& connection, TlsSession session, TlsStreamOptions options)
      : upper(connection),
        stream(connection.reactor_, std::move(session), upper, std::move(options)) {}
  TlsUpper upper;
  TlsStream stream;
};

Connection::Peer::Peer(const SocketAddress& address) {
  if (address.size() <= sizeof small_) {
    std::memcpy(&small_, address.data(), address.size());
    size_ = address.size();
  } else {
    large_ = std::make_unique<SocketAddress>(address);
  }
}

SocketAddress Connection::Peer::address() const {
  if (large_) return *large_;
  if (size_ == 0) return SocketAddress{};
  return SocketAddress::from(reinterpret_cast<const sockaddr*>(&small_), size_)
      .value_or(SocketAddress{});
}

Connection::Connection(Reactor& reactor, sys::Syscalls& os, std::unique_ptr<Protocol> protocol,
                       SocketAddress peer, OnEnded on_ended)
    : os_(os),
      reactor_(reactor),
      protocol_(std::move(protocol)),
      peer_(peer),
      on_ended_(std::move(on_ended)) {}

ReactorResult<std::unique_ptr<Connection>> Connection::open(Reactor& reactor, sys::Syscalls& os,
                                                            OwnedFd fd,
                                                            std::unique_ptr<Protocol> protocol,
                                                            SocketAddress peer, OnEnded on_ended,
                                                            StreamOptions options) {
  std::unique_ptr<Connection> connection(
      new Connection(reactor, os, std::move(protocol), peer, std::move(on_ended)));
  auto transport = StreamTransport::open(reactor, os, std::move(fd), *connection, options);
  if (!transport) return tl::unexpected(transport.error());
  connection->transport_ = std::move(*transport);
  connection->protocol_->connection_ = connection.get();
  return connection;
}

Connection::~Connection() = default;

void Connection::start() { protocol_->connection_made(*this); }

TlsResult<void> Connection::start_tls(const TlsContext& context, StartTlsOptions options,
                                      std::span<const std::byte> already_read) {
  if (tls_ != nullptr) return tls_fail("start_tls: TLS has started already on this connection");
  if (!transport_->connected()) return tls_fail("start_tls: the connection is closed");
  // TLS above a close in progress would have its handshake cut short by the close, or be sent
  // over a write side that is shut.
  if (transport_->disconnecting()) {
    return tls_fail("start_tls: the connection is closing (lose_connection was called)");
  }
  if (transport_->write_side_closing()) {
    return tls_fail("start_tls: the connection is half-closed (lose_write_connection was called)");
  }
  if (plain_producer_) return tls_fail("start_tls: a producer is registered on the connection");
  // Through the context: a program that never makes one links no OpenSSL for this.
  auto session = context.new_session(options.server_name);
  if (!session) return tl::unexpected(session.error());
  layer_ = std::make_unique<TlsLayer>(*this, std::move(*session), std::move(options.stream));
  tls_ = &layer_->stream;
  const detail::Liveness::Guard alive(liveness_);
  tls_->start(*transport_);
  // Fed as if the transport had read it after the switch: it is the peer's first TLS bytes.
  if (!already_read.empty() && alive.alive()) tls_->data_received(already_read);
  return {};
}

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

// From the transport: under TLS everything it says is ciphertext, for the TLS stream.
void Connection::data_received(std::span<const std::byte> data) {
  if (tls_ != nullptr) [[unlikely]] {
    tls_->data_received(data);
  } else {
    protocol_->data_received(data);
  }
}

bool Connection::read_eof() {
  if (tls_ != nullptr) [[unlikely]] {
    return tls_->read_eof();
  }
  return protocol_->read_eof();
}

void Connection::write_eof() {
  // Only a plain lose_write_connection half-closes; under TLS nothing asks for it.
  if (tls_ == nullptr) protocol_->write_eof();
}

void Connection::connection_lost(const LossReason& reason) {
  if (tls_ != nullptr) [[unlikely]] {
    tls_->connection_lost(reason);  // which ends the connection, with TLS's reason
    return;
  }
  end(reason);
}

void Connection::end(const LossReason& reason) {
  const detail::Liveness::Guard alive(liveness_);
  protocol_->connection_lost(reason);
  // The protocol may have destroyed what owns this connection (and so the connection).
  if (!alive.alive() || !on_ended_) return;
  // Last: the owner may destroy this connection from here.
  on_ended_(*this, reason);
}

}  // namespace daemonkit::core
