// Connection: one TCP or UNIX stream connection on the reactor — Twisted's tcp.Connection. It
// owns the socket (through a StreamTransport) and the protocol that hears it, and gives the
// protocol the transport's calls plus what a socket adds: its two addresses, TCP_NODELAY and
// SO_KEEPALIVE. Listening ports and connectors make and own connections; users get them by
// reference in Protocol::connection_made.
//
// TLS is a layer inside the connection, not a second kind of connection (Twisted's startTLS on
// the transport): start_tls puts a TlsStream between the transport and the protocol, and the
// protocol goes on calling the same methods, in plaintext. Each call checks one pointer (null on
// a plain connection) and goes straight to the transport or to the TLS stream: a plain
// connection pays no allocation and no virtual call for it. listen_ssl and connect_ssl (tcp.h)
// start TLS on every connection before its protocol hears connection_made.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/descriptor_receiver.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_error.h"
#include "daemonkit/core/net/tls_session.h"
#include "daemonkit/core/net/tls_stream.h"
#include "daemonkit/core/reactor/internal/liveness.h"
#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The peer process of a UNIX stream connection as the kernel recorded it at connect (or
// socketpair) time, SO_PEERCRED: its pid, effective uid and effective gid.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  friend bool operator==(const PeerCredentials&, const PeerCredentials&) = default;
};

struct StartTlsOptions {
  // A client's: the name (or numeric address) the server's certificate must name, also sent as
  // SNI when it is a name. connect_ssl sets it to the host it was given. Empty with a context
  // that verifies the host name: start_tls fails rather than accept any certificate.
  std::string server_name;
  TlsStreamOptions stream;
};

class Connection final : private StreamHandler {
 public:
  // What owns connections (a listening port, a connector) hears each one end. An interface
  // pointer rather than a std::function: 8 bytes of every connection instead of 32.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Called once the protocol has heard connection_lost, as the last thing the connection
    // does: the owner may destroy it from here.
    virtual void connection_ended(Connection& connection, const LossReason& reason) = 0;
  };

  // For ports and connectors: puts `fd` (a connected stream socket, closed on every path) on
  // the reactor with `protocol`. Nothing is called yet: start() says connection_made. `owner`
  // (may be null) must outlive the connection or hear its end first. `known_nonblocking`: the
  // caller made `fd` with SOCK_NONBLOCK, so it is not asked again (StreamTransport::attach).
  static ReactorResult<std::unique_ptr<Connection>> open(Reactor& reactor, sys::Syscalls& os,
                                                         OwnedFd fd,
                                                         std::unique_ptr<Protocol> protocol,
                                                         const SocketAddress& peer, Owner* owner,
                                                         StreamOptions options = {},
                                                         bool known_nonblocking = false);
  // Closes the socket without telling the protocol (its owner chose this).
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The protocol's connection_made.
  void start();

  // ---- Writing and closing: StreamTransport's, with its rules ------------------------------
  // Under TLS, TlsStream's: writes before the handshake wait for it, and are dropped once
  // close_notify is sent.
  void write(std::span<const std::byte> bytes) {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().write(bytes);
    } else {
      transport_.write(bytes);
    }
  }
  void write(std::string_view bytes) { write(std::as_bytes(std::span(bytes))); }
  void write(const char* text) { write(std::string_view(text)); }
  void write(std::string&& bytes) {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().write(std::move(bytes));
    } else {
      transport_.write(std::move(bytes));
    }
  }
  void write(std::vector<std::byte>&& bytes) {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().write(std::move(bytes));
    } else {
      transport_.write(std::move(bytes));
    }
  }
  void write_sequence(std::span<const std::span<const std::byte>> buffers) {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().write_sequence(buffers);
    } else {
      transport_.write_sequence(buffers);
    }
  }
  void write_sequence(std::vector<std::string>&& buffers) {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().write_sequence(std::move(buffers));
    } else {
      transport_.write_sequence(std::move(buffers));
    }
  }
  // UNIX stream only: `bytes` with `fds` passed on its first byte (SCM_RIGHTS), queued in order
  // with the other writes; the peer's DescriptorReceiver hears them before those bytes. The
  // descriptors are duplicated here: close yours when you like. Fails, sending nothing, with
  // empty `bytes` or too many descriptors (EINVAL), a descriptor that cannot be duplicated
  // (EBADF, EMFILE), or under TLS (EOPNOTSUPP: TLS records do not carry them). Dropped, as a
  // write is, once the connection is lost.
  [[nodiscard]] sys::Result<void> write_with_descriptors(std::span<const std::byte> bytes,
                                                         std::span<const int> fds);
  [[nodiscard]] sys::Result<void> write_with_descriptors(std::string_view bytes,
                                                         std::span<const int> fds) {
    return write_with_descriptors(std::as_bytes(std::span(bytes)), fds);
  }
  // Close once what is buffered is sent; the protocol hears "done cleanly". Under TLS:
  // close_notify, then the peer's (bounded by close_timeout), then the close.
  void lose_connection() {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().lose_connection();
    } else {
      transport_.lose_connection();
    }
  }
  // Half-close: shutdown(SHUT_WR) once the buffer drains; the protocol's write_eof follows and
  // reading goes on. TLS has no half-close (close_notify ends both directions): under TLS this
  // is lose_connection.
  void lose_write_connection() {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().lose_connection();
    } else {
      transport_.lose_write_connection();
    }
  }
  // Drop the buffer and close now; the protocol hears "aborted" on the next turn of the loop.
  void abort_connection() {
    if (layer_ != nullptr) [[unlikely]] {
      tls_stream().abort_connection();
    } else {
      transport_.abort_connection();
    }
  }

  // ---- Flow control -----------------------------------------------------------------------
  ReactorResult<void> register_producer(Producer& producer, bool streaming) {
    if (layer_ != nullptr) return tls_stream().register_producer(producer, streaming);
    auto registered = transport_.register_producer(producer, streaming);
    if (registered) plain_producer_ = true;
    return registered;
  }
  void unregister_producer() {
    if (layer_ != nullptr) {
      tls_stream().unregister_producer();
    } else {
      plain_producer_ = false;
      transport_.unregister_producer();
    }
  }
  // Stop and start reading what the peer sends (the connection as a producer of input).
  void pause_reading() {
    if (layer_ != nullptr) {
      tls_stream().pause_producing();
    } else {
      transport_.pause_producing();
    }
  }
  void resume_reading() {
    if (layer_ != nullptr) {
      tls_stream().resume_producing();
    } else {
      transport_.resume_producing();
    }
  }

  // ---- TLS --------------------------------------------------------------------------------
  // Switches the open connection to TLS (STARTTLS): from here on the protocol's writes are
  // encrypted and what it hears is decrypted. The side is the context's role: a client sends
  // its ClientHello now. Plaintext written before this call is still sent first, in plaintext.
  // `already_read` is what the protocol was handed past the point where TLS begins (the peer's
  // first TLS bytes, read with its last plaintext line): it goes to TLS, so that no byte is
  // lost or heard twice. Fails (and changes nothing) when TLS has started already, the
  // connection is closed or closing (lose_connection or lose_write_connection was called), a
  // producer is registered (it writes plaintext to the socket: unregister
  // it first), or the session cannot be made (a client context that verifies the host, with no
  // server_name).
  TlsResult<void> start_tls(const TlsContext& context, StartTlsOptions options = {},
                            std::span<const std::byte> already_read = {});
  // The TLS session (handshake state, ALPN, the peer's subject), or null on a plain connection.
  [[nodiscard]] const TlsSession* tls() const {
    return layer_ != nullptr ? &tls_stream().session() : nullptr;
  }

  // ---- The socket -------------------------------------------------------------------------
  // The peer as accept4 named it, or the address connected to.
  [[nodiscard]] SocketAddress peer_address() const { return peer_.address(); }
  // getsockname: the address this end is bound to (for TCP, the local port).
  [[nodiscard]] sys::Result<SocketAddress> local_address() const;
  // TCP_NODELAY and SO_KEEPALIVE; both off on a new connection, as Linux makes them. A UNIX
  // socket refuses TCP_NODELAY (EOPNOTSUPP).
  [[nodiscard]] sys::Result<void> set_no_delay(bool on);
  [[nodiscard]] sys::Result<bool> no_delay() const;
  [[nodiscard]] sys::Result<void> set_keep_alive(bool on);
  [[nodiscard]] sys::Result<bool> keep_alive() const;
  // SO_PEERCRED: who is at the other end of a UNIX stream socket, as the kernel recorded it
  // at connect (or socketpair) time. On TCP the kernel answers pid 0 and ids -1; a closed
  // connection fails with EBADF.
  [[nodiscard]] sys::Result<PeerCredentials> peer_credentials() const;

  [[nodiscard]] bool connected() const {
    return layer_ != nullptr ? tls_stream().connected() : transport_.connected();
  }
  // Under TLS: plaintext waiting for the handshake plus ciphertext not yet sent.
  [[nodiscard]] std::size_t buffered() const {
    return layer_ != nullptr ? tls_stream().buffered() : transport_.buffered();
  }
  [[nodiscard]] int fd() const { return transport_.fd(); }
  [[nodiscard]] Protocol& protocol() const { return *protocol_; }
  // The stream underneath (ciphertext under TLS), for layers that put themselves between it and
  // the protocol.
  [[nodiscard]] StreamTransport& transport() { return transport_; }
  [[nodiscard]] const StreamTransport& transport() const { return transport_; }

 private:
  friend class ConnectionList;

  Connection(Reactor& reactor, sys::Syscalls& os, OwnedFd fd, std::unique_ptr<Protocol> protocol,
             const SocketAddress& peer, Owner* owner, StreamOptions options);
  [[nodiscard]] sys::Result<void> set_flag(int level, int name, bool on);
  [[nodiscard]] sys::Result<bool> flag(int level, int name) const;
  [[nodiscard]] sys::Syscalls& os() const { return transport_.os(); }
  // A guard that turns false once this connection is destroyed (by whoever a callback called
  // out to). The transport's Liveness serves: it is destroyed with the connection, and a
  // second one would cost every connection 8 bytes.
  [[nodiscard]] detail::Liveness::Guard guarded() {
    return detail::Liveness::Guard(transport_.liveness());
  }

  void data_received(std::span<const std::byte> data) override;
  bool read_eof() override;
  void write_eof() override;
  void descriptors_arrived(std::vector<OwnedFd> fds, bool truncated) override;
  void connection_lost(const LossReason& reason) override;
  // The protocol hears the loss, then the owner (the end of both paths, plain and TLS).
  void end(const LossReason& reason);

  // What TLS hands its plaintext to: the protocol, and the connection's end.
  class TlsUpper;
  struct TlsLayer;
  [[nodiscard]] TlsStream& tls_stream() const;

  std::unique_ptr<Protocol> protocol_;
  // The peer's address in 40 bytes rather than a SocketAddress's 136 (a sockaddr_storage): an
  // IPv4 or IPv6 peer is kept inline, a longer one (a UNIX path) on the heap. A quarter of
  // what an idle connection costs, otherwise.
  class Peer {
   public:
    explicit Peer(const SocketAddress& address);
    [[nodiscard]] SocketAddress address() const;

   private:
    std::unique_ptr<SocketAddress> large_;
    sockaddr_in6 small_{};
    socklen_t size_ = 0;
  };
  Peer peer_;
  Owner* owner_;
  // The owner's list (ConnectionList): a port keeps its connections in a list threaded through
  // them, not in a map whose node cost each connection 40 more bytes.
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  // Allocated by start_tls only: the one check each call makes. Declared before the
  // transport, which calls it as its handler: the transport is destroyed first.
  std::unique_ptr<TlsLayer> layer_;
  // A producer registered on the plain transport: start_tls refuses until it is unregistered,
  // else it would stay below TLS, out of reach of unregister_producer.
  bool plain_producer_ = false;
  // Embedded, not a heap object of its own: one block per connection. Last, so it is destroyed
  // first (its descriptor closed, and every guard of guarded() marked) before what it calls.
  StreamTransport transport_;
};

}  // namespace daemonkit::core
