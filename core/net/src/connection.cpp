#include "daemonkit/core/net/connection.h"
#include "daemonkit/sys/hot_path.h"

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
        stream(connection.transport_.reactor(), std::move(session), upper, std::move(options)) {}
  TlsUpper upper;
  TlsStream stream;
};

DAEMONKIT_HOT Connection::Peer::Peer(const SocketAddress& address) {
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

DAEMONKIT_HOT Connection::Connection(Reactor& reactor, sys::Syscalls& os, OwnedFd fd,
                                     std::unique_ptr<Protocol> protocol, const SocketAddress& peer,
                                     Owner* owner, StreamOptions options)
    : protocol_(std::move(protocol)),
      peer_(peer),
      owner_(owner),
      transport_(reactor, os, std::move(fd), *this, options) {}

DAEMONKIT_HOT ReactorResult<std::unique_ptr<Connection>> Connection::open(
    Reactor& reactor, sys::Syscalls& os, OwnedFd fd, std::unique_ptr<Protocol> protocol,
    const SocketAddress& peer, Owner* owner, StreamOptions options, bool known_nonblocking) {
  std::unique_ptr<Connection> connection(
      new Connection(reactor, os, std::move(fd), std::move(protocol), peer, owner, options));
  if (auto attached = connection->transport_.attach(known_nonblocking); !attached) {
    return tl::unexpected(attached.error());
  }
  connection->protocol_->connection_ = connection.get();
  // Reading with recvmsg only for a protocol that takes descriptors: read(2) costs less, and the
  // kernel closes descriptors that reach a connection that did not ask for them. Only UNIX
  // sockets carry them: a TCP connection skips the cast (a tenth of an accept's own work).
  if (!peer.is_ip() && dynamic_cast<DescriptorReceiver*>(connection->protocol_.get()) != nullptr) {
    connection->transport_.receive_descriptors(true);
  }
  return connection;
}

Connection::~Connection() = default;

TlsStream& Connection::tls_stream() const { return layer_->stream; }

void Connection::start() { protocol_->connection_made(*this); }

TlsResult<void> Connection::start_tls(const TlsContext& context, StartTlsOptions options,
                                      std::span<const std::byte> already_read) {
  if (layer_ != nullptr) {
    return tls_fail("start_tls: TLS has started already on this connection");
  }
  if (!transport_.connected()) return tls_fail("start_tls: the connection is closed");
  // TLS above a close in progress would have its handshake cut short by the close, or be sent
  // over a write side that is shut.
  if (transport_.disconnecting()) {
    return tls_fail("start_tls: the connection is closing (lose_connection was called)");
  }
  if (transport_.write_side_closing()) {
    return tls_fail("start_tls: the connection is half-closed (lose_write_connection was called)");
  }
  if (plain_producer_) return tls_fail("start_tls: a producer is registered on the connection");
  // Through the context: a program that never makes one links no OpenSSL for this.
  auto session = context.new_session(options.server_name);
  if (!session) return tl::unexpected(session.error());
  layer_ = std::make_unique<TlsLayer>(*this, std::move(*session), std::move(options.stream));
  const auto alive = guarded();
  layer_->stream.start(transport_);
  // Fed as if the transport had read it after the switch: it is the peer's first TLS bytes.
  if (!already_read.empty() && alive.alive()) layer_->stream.data_received(already_read);
  return {};
}

sys::Result<SocketAddress> Connection::local_address() const {
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  if (auto got = os().getsockname(fd(), reinterpret_cast<sockaddr*>(&name), &len); !got) {
    return sys::fail(got.error());
  }
  auto address = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), len);
  if (!address) return sys::fail(EINVAL, "getsockname");
  return *address;
}

DAEMONKIT_HOT sys::Result<void> Connection::set_flag(int level, int name, bool on) {
  const int value = on ? 1 : 0;
  return os().setsockopt(fd(), level, name, &value, sizeof value);
}

sys::Result<bool> Connection::flag(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (auto got = os().getsockopt(fd(), level, name, &value, &len); !got) {
    return sys::fail(got.error());
  }
  return value != 0;
}

sys::Result<void> Connection::write_with_descriptors(std::span<const std::byte> bytes,
                                                     std::span<const int> fds) {
  if (layer_ != nullptr && !fds.empty()) {
    return sys::fail(sys::Error{EOPNOTSUPP, "sendmsg", "descriptors cannot be passed under TLS"});
  }
  if (layer_ != nullptr) {
    write(bytes);
    return {};
  }
  return transport_.write_with_descriptors(bytes, fds);
}

sys::Result<PeerCredentials> Connection::peer_credentials() const {
  ucred credentials{};
  socklen_t len = sizeof credentials;
  if (auto got = os().getsockopt(fd(), SOL_SOCKET, SO_PEERCRED, &credentials, &len); !got) {
    return sys::fail(got.error());
  }
  return PeerCredentials{credentials.pid, credentials.uid, credentials.gid};
}

DAEMONKIT_HOT sys::Result<void> Connection::set_no_delay(bool on) {
  return set_flag(IPPROTO_TCP, TCP_NODELAY, on);
}
sys::Result<bool> Connection::no_delay() const { return flag(IPPROTO_TCP, TCP_NODELAY); }
sys::Result<void> Connection::set_keep_alive(bool on) {
  return set_flag(SOL_SOCKET, SO_KEEPALIVE, on);
}
sys::Result<bool> Connection::keep_alive() const { return flag(SOL_SOCKET, SO_KEEPALIVE); }

// From the transport: under TLS everything it says is ciphertext, for the TLS stream.
DAEMONKIT_HOT void Connection::data_received(std::span<const std::byte> data) {
  if (layer_ != nullptr) [[unlikely]] {
    layer_->stream.data_received(data);
  } else {
    protocol_->data_received(data);
  }
}

bool Connection::read_eof() {
  if (layer_ != nullptr) [[unlikely]] {
    return layer_->stream.read_eof();
  }
  return protocol_->read_eof();
}

void Connection::write_eof() {
  // Only a plain lose_write_connection half-closes; under TLS nothing asks for it.
  if (layer_ == nullptr) protocol_->write_eof();
}

void Connection::descriptors_arrived(std::vector<OwnedFd> fds, bool truncated) {
  auto* receiver = dynamic_cast<DescriptorReceiver*>(protocol_.get());
  if (receiver == nullptr) return;  // `fds` close here
  if (truncated) {
    const std::size_t closed = fds.size();
    fds.clear();
    receiver->descriptors_truncated(closed);
    return;
  }
  receiver->descriptors_received(std::move(fds));
}

DAEMONKIT_HOT void Connection::connection_lost(const LossReason& reason) {
  if (layer_ != nullptr) [[unlikely]] {
    layer_->stream.connection_lost(reason);  // which ends the connection, with TLS's reason
    return;
  }
  end(reason);
}

DAEMONKIT_HOT void Connection::end(const LossReason& reason) {
  const auto alive = guarded();
  protocol_->connection_lost(reason);
  // The protocol may have destroyed what owns this connection (and so the connection).
  if (!alive.alive() || owner_ == nullptr) return;
  // Last: the owner may destroy this connection from here.
  owner_->connection_ended(*this, reason);
}

// An idle connection's cost (issue #15: at most 256 bytes all told, with its protocol and the
// reactor's slot for its descriptor): this block is most of it.
static_assert(sizeof(Connection) <= 160, "Connection grew: an idle connection costs more");

}  // namespace daemonkit::core
