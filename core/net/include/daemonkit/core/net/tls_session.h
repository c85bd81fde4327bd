// TlsSession: one TLS connection as a pure engine over two OpenSSL memory BIOs (Twisted's
// TLSMemoryBIOProtocol without the transport): ciphertext in, plaintext out; plaintext in,
// ciphertext out. It does no I/O at all, so whoever carries the ciphertext (a StreamTransport
// on the real or the fake kernel, a test shuffling bytes by hand) decides where the bytes go.
//
// Its calls reach OpenSSL through a table the session's maker set (tls_session.cpp), not by
// name: a program whose connections could start TLS but never make a context (TlsStream and
// Connection::start_tls are linked into every program with a connection) links and loads no
// libssl or libcrypto. bench/app: those two cost a daemon's start about a third of its time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_error.h"

struct ssl_st;
struct bio_st;

namespace daemonkit::core {

class TlsSession {
 public:
  // A client session that will verify `host` as the context says (and sends it as SNI when it
  // is a name, not an address). Fails on a server context, or with kPeerAndHost and no host.
  [[nodiscard]] static TlsResult<TlsSession> client(const TlsContext& context,
                                                    std::string_view host);
  [[nodiscard]] static TlsResult<TlsSession> server(const TlsContext& context);
  // client(context, host) or server(context), as the context's role says.
  [[nodiscard]] static TlsResult<TlsSession> for_context(const TlsContext& context,
                                                         std::string_view host);
  ~TlsSession() {
    if (ops_ != nullptr) ops_->reset(*this);
  }
  TlsSession(TlsSession&& other) noexcept
      : ops_(other.ops_),
        context_(std::move(other.context_)),
        ssl_(std::exchange(other.ssl_, nullptr)),
        in_(std::exchange(other.in_, nullptr)),
        out_(std::exchange(other.out_, nullptr)),
        client_(other.client_),
        handshake_complete_(other.handshake_complete_),
        peer_closed_(other.peer_closed_),
        close_sent_(other.close_sent_),
        close_wanted_(other.close_wanted_),
        pending_(std::move(other.pending_)),
        error_(std::move(other.error_)) {}
  TlsSession& operator=(TlsSession&& other) noexcept {
    if (this == &other) return *this;
    if (ops_ != nullptr) ops_->reset(*this);
    ops_ = other.ops_;
    context_ = std::move(other.context_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    in_ = std::exchange(other.in_, nullptr);
    out_ = std::exchange(other.out_, nullptr);
    client_ = other.client_;
    handshake_complete_ = other.handshake_complete_;
    peer_closed_ = other.peer_closed_;
    close_sent_ = other.close_sent_;
    close_wanted_ = other.close_wanted_;
    pending_ = std::move(other.pending_);
    error_ = std::move(other.error_);
    return *this;
  }
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // ---- Ciphertext ----------------------------------------------------------------------------

  // Bytes from the peer, in any chunks: they wait in the input BIO until read() consumes them.
  void feed(std::span<const std::byte> ciphertext) { ops_->feed(*this, ciphertext); }
  // Everything the session wants sent now (handshake records, application records, alerts,
  // close_notify), in order; empty when there is nothing. A client has its ClientHello here
  // from the start.
  [[nodiscard]] std::string take_ciphertext() { return ops_->take_ciphertext(*this); }

  // ---- Plaintext -----------------------------------------------------------------------------

  // Advances the handshake with what was fed, then copies decrypted bytes into `out`: how many
  // (0 when nothing more can be read until the peer sends more, or the peer closed). A failure
  // (a bad certificate, a record that does not decrypt, garbage) fails the session for good;
  // take_ciphertext may then hold the alert that tells the peer. Once failed, read returns the
  // same error again.
  [[nodiscard]] TlsResult<std::size_t> read(std::span<std::byte> out) {
    return ops_->read(*this, out);
  }
  // Plaintext to send. Before the handshake completes it waits in the session (and counts in
  // pending()); after, it is encrypted at once into take_ciphertext's bytes. Dropped once the
  // session failed or its close_notify was sent.
  void write(std::span<const std::byte> plaintext) { ops_->write(*this, plaintext); }
  void write(std::string_view plaintext) { write(std::as_bytes(std::span(plaintext))); }

  // Sends close_notify after whatever plaintext is pending; before the handshake completes, it
  // is sent once it does. The peer's close_notify answers it, and shutdown_complete() then
  // turns true. Writes after close are dropped.
  void close() { ops_->close(*this); }

  // ---- State ---------------------------------------------------------------------------------

  [[nodiscard]] bool handshake_complete() const { return handshake_complete_; }
  [[nodiscard]] bool failed() const { return error_.has_value(); }
  [[nodiscard]] const std::optional<TlsError>& error() const { return error_; }
  // The peer sent close_notify: it will send nothing more (our own close_notify answers it).
  [[nodiscard]] bool peer_closed() const { return peer_closed_; }
  [[nodiscard]] bool close_sent() const { return close_sent_; }
  [[nodiscard]] bool shutdown_complete() const { return peer_closed_ && close_sent_; }
  // Plaintext written before the handshake completed, not yet encrypted.
  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  // The protocol ALPN settled on; empty when none was.
  [[nodiscard]] std::string alpn() const { return ops_->alpn(*this); }
  // The peer certificate's subject as RFC 2253 ("CN=localhost,O=daemonkit"); empty without one.
  [[nodiscard]] std::string peer_subject() const { return ops_->peer_subject(*this); }
  [[nodiscard]] bool is_client() const { return client_; }

 private:
  // The calls that use OpenSSL, set by the session's maker (tls_session.cpp).
  struct Ops {
    void (*feed)(TlsSession&, std::span<const std::byte>);
    std::string (*take_ciphertext)(TlsSession&);
    TlsResult<std::size_t> (*read)(TlsSession&, std::span<std::byte>);
    void (*write)(TlsSession&, std::span<const std::byte>);
    void (*close)(TlsSession&);
    void (*reset)(TlsSession&) noexcept;
    std::string (*alpn)(const TlsSession&);
    std::string (*peer_subject)(const TlsSession&);
  };
  static const Ops kOpenSsl;

  void do_feed(std::span<const std::byte> ciphertext);
  std::string do_take_ciphertext();
  TlsResult<std::size_t> do_read(std::span<std::byte> out);
  void do_write(std::span<const std::byte> plaintext);
  void do_close();
  std::string do_alpn() const;
  std::string do_peer_subject() const;

  // A session on `context` over two new memory BIOs, before the role's own settings.
  static TlsResult<TlsSession> make(const TlsContext& context, bool client);
  TlsSession(std::shared_ptr<const TlsContext::Impl> context, ssl_st* ssl, bio_st* in, bio_st* out,
             bool client);
  // Runs the handshake as far as the fed bytes allow; false once failed.
  bool advance_handshake();
  void flush_pending();
  void encrypt(std::span<const std::byte> plaintext);
  void fail(std::string_view step, int ssl_error);
  void reset() noexcept;

  const Ops* ops_ = nullptr;
  std::shared_ptr<const TlsContext::Impl> context_;
  ssl_st* ssl_ = nullptr;  // owns both BIOs
  bio_st* in_ = nullptr;   // what the peer sent, for OpenSSL to read
  bio_st* out_ = nullptr;  // what OpenSSL wrote, for the caller to send
  bool client_ = false;
  bool handshake_complete_ = false;
  bool peer_closed_ = false;
  bool close_sent_ = false;
  bool close_wanted_ = false;
  std::string pending_;
  std::optional<TlsError> error_;
};

inline TlsResult<TlsSession> TlsContext::new_session(std::string_view host) const {
  return new_session_(*this, host);
}

}  // namespace daemonkit::core
