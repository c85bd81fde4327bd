// TlsStream: TLS between a StreamTransport (below, ciphertext) and a StreamHandler (above,
// plaintext) — Twisted's TLSMemoryBIOProtocol. It hears the transport as its handler and offers
// the handler above the transport's own calls (write, write_sequence, lose_connection,
// abort_connection, producers), so a protocol does not know whether its bytes are encrypted.
// Every ciphertext byte still goes through the transport, and so through Syscalls&.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/net/tls_session.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/loss_reason.h"
#include "daemonkit/core/reactor/producer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_handler.h"
#include "daemonkit/core/reactor/stream_transport.h"

namespace daemonkit::core {

struct TlsStreamOptions {
  // How long a close waits for the peer's close_notify once ours is sent (and, after a TLS
  // failure, for the alert to go out). Twisted waits for ever (its #7926): a peer that never
  // answers would hold the connection. At the bound the transport closes anyway, or is aborted
  // if the peer is not even reading what was sent.
  Duration close_timeout = std::chrono::seconds(30);
  // How long the handshake may take from start(); past it the connection is aborted with a
  // kTls reason. Empty: no bound (for a caller that bounds the connection itself).
  std::optional<Duration> handshake_timeout = std::chrono::seconds(30);
  // Plaintext written before the handshake completes waits in the session; past this many
  // bytes a streaming producer is paused until the handshake is done (the transport pauses it
  // for its own buffer in the same way).
  std::size_t high_water = 64 * 1024;
  // Called once when the handshake completes (Twisted's IHandshakeListener), before any
  // plaintext is delivered.
  std::function<void()> on_handshake;
};

class TlsStream final : public StreamHandler, public Producer {
 public:
  // `upper` hears the plaintext side and must outlive the stream or its connection_lost, as a
  // transport's handler does; `reactor` runs the timers. The transport below calls this stream
  // as its handler: destroy that transport first (or with it, from connection_lost).
  TlsStream(Reactor& reactor, TlsSession session, StreamHandler& upper,
            TlsStreamOptions options = {});
  // Destroying the stream tells nobody anything, as a transport's destruction does; the
  // transport below is its owner's to destroy.
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Begins TLS on `lower`, whose handler is this stream (given to StreamTransport::open) or
  // forwards every call to it (start_tls on a connection already open: the connection turns its
  // transport's calls over to the stream, and hands it through data_received whatever it had
  // read past the point where TLS begins). A client's ClientHello goes out now. `lower` must
  // outlive the stream or its connection_lost.
  void start(StreamTransport& lower);

  // ---- The transport's calls, in plaintext (see StreamTransport) ----------------------------
  //
  // Writes before the handshake completes wait for it. Writes are dropped once the connection
  // is lost or aborting, or once close_notify is sent (Twisted drops writes after
  // loseConnection; with a producer registered they are still sent until it unregisters).
  void write(std::span<const std::byte> bytes);
  void write(std::string_view bytes) { write(std::as_bytes(std::span(bytes))); }
  void write(const char* text) { write(std::string_view(text)); }
  void write(std::string&& bytes) { write(std::string_view(bytes)); }
  void write(std::vector<std::byte>&& bytes) { write(std::span<const std::byte>(bytes)); }
  void write_sequence(std::span<const std::span<const std::byte>> buffers);
  void write_sequence(std::vector<std::string>&& buffers);

  // Stops delivering data at once (as a transport stops reading), then, in Twisted's order:
  // waits for a registered producer to unregister, and for the handshake when
  // plaintext waits for it; then sends close_notify and waits for the peer's (bounded by
  // close_timeout) before closing the transport. Before the handshake with nothing to send,
  // there is nothing to close: the connection is aborted. A no-op when closing or lost.
  void lose_connection();
  // Drops everything and aborts the transport; the handler hears "aborted" (or the TLS failure
  // that came first) on the next turn of the loop.
  void abort_connection();

  // A producer of plaintext; paused while the transport's buffer is over its high-water mark
  // or, before the handshake, while this stream's is. See StreamTransport::register_producer.
  ReactorResult<void> register_producer(Producer& producer, bool streaming);
  void unregister_producer();

  // The stream as a producer of plaintext for the handler above: pausing stops reading from the
  // transport and delivering what was already decrypted; stop_producing is lose_connection.
  void pause_producing() override;
  void resume_producing() override;
  void stop_producing() override;

  [[nodiscard]] bool connected() const { return !lost_; }
  [[nodiscard]] bool handshake_complete() const { return session_.handshake_complete(); }
  // Plaintext waiting for the handshake plus ciphertext the transport has not sent.
  [[nodiscard]] std::size_t buffered() const;
  [[nodiscard]] const TlsSession& session() const { return session_; }

  // ---- StreamHandler: the transport below -----------------------------------------------------
  void data_received(std::span<const std::byte> data) override;
  bool read_eof() override;
  void connection_lost(const LossReason& reason) override;

 private:
  // What the transport below sees as its producer: it forwards to the producer above, and
  // pauses it once whether the transport's buffer or the handshake wait asked (Twisted's
  // _ProducerMembrane).
  class Membrane final : public Producer {
   public:
    explicit Membrane(TlsStream& stream) : stream_(stream) {}
    void pause_producing() override;
    void resume_producing() override;
    void stop_producing() override;
    void hold(bool on);  // the handshake wait's pause
    void reset() { below_ = held_ = false; }

   private:
    [[nodiscard]] bool paused() const { return below_ || held_; }
    TlsStream& stream_;
    bool below_ = false;
    bool held_ = false;
  };

  // Decrypts and delivers what the session holds, while not paused; then follows up on what
  // the records said (handshake done, close_notify, failure).
  void pump();
  void flush();
  void after_write();
  void shutdown_tls();
  void fail(const TlsError& error);
  void arm_close_timer();
  void detach_producer();
  void on_close_timeout();
  void on_handshake_timeout();
  [[nodiscard]] bool accepts_writes() const;

  Reactor& reactor_;
  TlsSession session_;
  StreamHandler& upper_;
  TlsStreamOptions options_;
  StreamTransport* lower_ = nullptr;
  Membrane membrane_{*this};
  Producer* producer_ = nullptr;
  bool streaming_ = false;
  bool producer_detached_ = false;  // unregistered below once TLS was over
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  bool handshake_seen_ = false;  // on_handshake ran (or the handshake completed before start)
  bool paused_ = false;
  bool disconnecting_ = false;
  bool aborting_ = false;
  bool lost_ = false;
  // The first TLS failure (or truncation): the reason the handler hears, whatever the
  // transport then says (Twisted: the first recorded TLS reason wins).
  std::optional<LossReason> reason_;
  DelayedCall close_timer_;
  DelayedCall handshake_timer_;
  DelayedCall resume_pump_;
};

}  // namespace daemonkit::core
