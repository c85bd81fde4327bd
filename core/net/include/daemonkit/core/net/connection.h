// Connection: one TCP or UNIX stream connection on the reactor — Twisted's tcp.Connection. It
// owns the socket (through a StreamTransport) and the protocol that hears it, and gives the
// protocol the transport's calls plus what a socket adds: its two addresses, TCP_NODELAY and
// SO_KEEPALIVE. Listening ports and connectors make and own connections; users get them by
// reference in Protocol::connection_made.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class Connection final : private StreamHandler {
 public:
  // Called once the protocol has heard connection_lost, as the last thing the connection
  // does: its owner may destroy it from there.
  using OnEnded = std::function<void(Connection&, const LossReason&)>;

  // For ports and connectors: puts `fd` (a connected stream socket, closed on every path) on
  // the reactor with `protocol`. Nothing is called yet: start() says connection_made.
  static ReactorResult<std::unique_ptr<Connection>> open(Reactor& reactor, sys::Syscalls& os,
                                                         OwnedFd fd,
                                                         std::unique_ptr<Protocol> protocol,
                                                         SocketAddress peer, OnEnded on_ended,
                                                         StreamOptions options = {});
  // Closes the socket without telling the protocol (its owner chose this).
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The protocol's connection_made.
  void start();

  // ---- Writing and closing: StreamTransport's, with its rules ------------------------------
  void write(std::span<const std::byte> bytes) { transport_->write(bytes); }
  void write(std::string_view bytes) { transport_->write(bytes); }
  void write(const char* text) { transport_->write(text); }
  void write(std::string&& bytes) { transport_->write(std::move(bytes)); }
  void write(std::vector<std::byte>&& bytes) { transport_->write(std::move(bytes)); }
  void write_sequence(std::span<const std::span<const std::byte>> buffers) {
    transport_->write_sequence(buffers);
  }
  void write_sequence(std::vector<std::string>&& buffers) {
    transport_->write_sequence(std::move(buffers));
  }
  // Close once what is buffered is sent; the protocol hears "done cleanly".
  void lose_connection() { transport_->lose_connection(); }
  // Half-close: shutdown(SHUT_WR) once the buffer drains; the protocol's write_eof follows and
  // reading goes on.
  void lose_write_connection() { transport_->lose_write_connection(); }
  // Drop the buffer and close now; the protocol hears "aborted" on the next turn of the loop.
  void abort_connection() { transport_->abort_connection(); }

  // ---- Flow control -----------------------------------------------------------------------
  ReactorResult<void> register_producer(Producer& producer, bool streaming) {
    return transport_->register_producer(producer, streaming);
  }
  void unregister_producer() { transport_->unregister_producer(); }
  // Stop and start reading what the peer sends (the connection as a producer of input).
  void pause_reading() { transport_->pause_producing(); }
  void resume_reading() { transport_->resume_producing(); }

  // ---- The socket -------------------------------------------------------------------------
  // The peer as accept4 named it, or the address connected to.
  [[nodiscard]] const SocketAddress& peer_address() const { return peer_; }
  // getsockname: the address this end is bound to (for TCP, the local port).
  [[nodiscard]] sys::Result<SocketAddress> local_address() const;
  // TCP_NODELAY and SO_KEEPALIVE; both off on a new connection, as Linux makes them. A UNIX
  // socket refuses TCP_NODELAY (EOPNOTSUPP).
  [[nodiscard]] sys::Result<void> set_no_delay(bool on);
  [[nodiscard]] sys::Result<bool> no_delay() const;
  [[nodiscard]] sys::Result<void> set_keep_alive(bool on);
  [[nodiscard]] sys::Result<bool> keep_alive() const;

  [[nodiscard]] bool connected() const { return transport_->connected(); }
  [[nodiscard]] std::size_t buffered() const { return transport_->buffered(); }
  [[nodiscard]] int fd() const { return transport_->fd(); }
  [[nodiscard]] Protocol& protocol() const { return *protocol_; }
  // The stream underneath, for layers that put themselves between it and the protocol.
  [[nodiscard]] StreamTransport& transport() const { return *transport_; }

 private:
  Connection(sys::Syscalls& os, std::unique_ptr<Protocol> protocol, SocketAddress peer,
             OnEnded on_ended);
  [[nodiscard]] sys::Result<void> set_flag(int level, int name, bool on);
  [[nodiscard]] sys::Result<bool> flag(int level, int name) const;

  void data_received(std::span<const std::byte> data) override;
  bool read_eof() override;
  void write_eof() override;
  void connection_lost(const LossReason& reason) override;

  sys::Syscalls& os_;
  std::unique_ptr<Protocol> protocol_;
  SocketAddress peer_;
  OnEnded on_ended_;
  std::unique_ptr<StreamTransport> transport_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace daemonkit::core
