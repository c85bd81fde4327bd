#include "daemonkit/core/net/tls_stream.h"

#include <fmt/format.h>

#include <utility>

namespace daemonkit::core {

namespace {

// One record's plaintext at most comes out of one read: a buffer for the thread, not one per
// stream, as the transport's read buffer (a handler sees it only during data_received).
std::span<std::byte> plaintext_buffer() {
  thread_local std::vector<std::byte> buffer(16 * 1024);
  return buffer;
}

}  // namespace

TlsStream::TlsStream(Reactor& reactor, TlsSession session, StreamHandler& upper,
                     TlsStreamOptions options)
    : reactor_(reactor),
      session_(std::move(session)),
      upper_(upper),
      options_(std::move(options)) {}

TlsStream::~TlsStream() {
  *alive_ = false;
  for (DelayedCall* call : {&close_timer_, &handshake_timer_, &resume_pump_}) {
    if (call->active()) (void)call->cancel();
  }
}

void TlsStream::start(StreamTransport& lower) {
  lower_ = &lower;
  if (!lower.connected()) return;  // its connection_lost is on the way
  if (options_.handshake_timeout && !session_.handshake_complete()) {
    handshake_timer_ =
        reactor_.call_later(*options_.handshake_timeout, [this] { on_handshake_timeout(); });
  }
  flush();
}

// ---- Writing ----------------------------------------------------------------------------------

bool TlsStream::accepts_writes() const {
  return lower_ != nullptr && !lost_ && !aborting_ && !session_.close_sent() && !session_.failed();
}

void TlsStream::write(std::span<const std::byte> bytes) {
  if (!accepts_writes() || bytes.empty()) return;
  session_.write(bytes);
  after_write();
}

void TlsStream::write_sequence(std::span<const std::span<const std::byte>> buffers) {
  if (!accepts_writes()) return;
  for (const auto& b : buffers) session_.write(b);
  after_write();
}

void TlsStream::write_sequence(std::vector<std::string>&& buffers) {
  if (!accepts_writes()) return;
  for (const auto& b : buffers) session_.write(b);
  after_write();
}

void TlsStream::after_write() {
  flush();
  if (producer_ != nullptr && streaming_ && session_.pending() > options_.high_water) {
    membrane_.hold(true);
  }
}

// Hands the session's ciphertext to the transport, owned: it is sent from where it is.
void TlsStream::flush() {
  if (lower_ == nullptr || lost_) return;
  std::string bytes = session_.take_ciphertext();
  if (!bytes.empty()) lower_->write(std::move(bytes));
}

std::size_t TlsStream::buffered() const {
  return session_.pending() + (lower_ != nullptr ? lower_->buffered() : 0);
}

// ---- Closing ----------------------------------------------------------------------------------

void TlsStream::lose_connection() {
  if (lost_ || disconnecting_ || aborting_ || lower_ == nullptr) return;
  disconnecting_ = true;
  // Twisted's rule: a handshake that has not completed, with nothing waiting for it, leaves
  // nothing to close politely.
  if (!session_.handshake_complete() && session_.pending() == 0) {
    abort_connection();
    return;
  }
  if (producer_ == nullptr) shutdown_tls();
}

void TlsStream::shutdown_tls() {
  session_.close();
  flush();
  // Before the handshake completes close_notify waits for it (handshake_timeout bounds that);
  // the bound on the peer's answer starts once ours is out.
  if (session_.close_sent()) arm_close_timer();
  if (session_.failed()) {
    fail(*session_.error());
    return;
  }
  // The peer's close_notify came first: ours answered it, and nothing more will come.
  if (session_.shutdown_complete()) lower_->lose_connection();
}

void TlsStream::arm_close_timer() {
  if (!close_timer_.active()) {
    close_timer_ = reactor_.call_later(options_.close_timeout, [this] { on_close_timeout(); });
  }
}

// Once TLS is over (close_notify exchanged, or failed) a producer can give nothing more that
// could be sent. Left registered below, it would hold the transport's close for ever (the
// transport waits for a pull or paused producer), and a pull producer would be asked again on
// every turn. It stays this stream's, and hears stop_producing with the loss.
void TlsStream::detach_producer() {
  if (producer_ == nullptr || producer_detached_) return;
  producer_detached_ = true;
  membrane_.reset();
  lower_->unregister_producer();
}

void TlsStream::on_close_timeout() {
  if (lost_ || lower_ == nullptr) return;
  detach_producer();
  // The peer has not answered close_notify in time. If it reads what we send, the transport
  // can still close cleanly; if even that is stuck, nothing more is owed to it.
  if (lower_->buffered() == 0) {
    lower_->lose_connection();
  } else {
    lower_->abort_connection();
  }
}

void TlsStream::on_handshake_timeout() {
  if (lost_ || session_.handshake_complete()) return;
  const auto seconds = std::chrono::duration<double>(*options_.handshake_timeout).count();
  if (!reason_)
    reason_ = LossReason::tls(fmt::format("TLS handshake: timed out after {} s", seconds));
  abort_connection();
}

void TlsStream::abort_connection() {
  if (lost_ || aborting_ || lower_ == nullptr) return;
  aborting_ = true;
  lower_->abort_connection();
}

void TlsStream::fail(const TlsError& error) {
  if (!reason_) reason_ = LossReason::tls(error.message);
  if (lost_ || lower_ == nullptr) return;
  // The alert that tells the peer why is in what flush sent; the transport closes after it, and
  // close_timeout bounds a peer that does not read it.
  flush();
  arm_close_timer();
  detach_producer();
  lower_->lose_connection();
}

// ---- Producers --------------------------------------------------------------------------------

ReactorResult<void> TlsStream::register_producer(Producer& producer, bool streaming) {
  if (producer_ != nullptr) return reactor_fail(ReactorErrc::kAlreadyRegistered);
  if (lost_ || lower_ == nullptr || !lower_->connected()) {
    producer.stop_producing();
    return {};
  }
  producer_ = &producer;
  streaming_ = streaming;
  producer_detached_ = false;
  membrane_.reset();
  if (streaming && session_.pending() > options_.high_water) membrane_.hold(true);
  auto registered = lower_->register_producer(membrane_, streaming);
  if (!registered) producer_ = nullptr;
  return registered;
}

void TlsStream::unregister_producer() {
  if (producer_ == nullptr) return;
  producer_ = nullptr;
  membrane_.reset();
  if (lower_ != nullptr && !producer_detached_) lower_->unregister_producer();
  if (disconnecting_ && !lost_ && !aborting_ && !session_.close_sent()) shutdown_tls();
}

void TlsStream::Membrane::pause_producing() {
  const bool was = paused();
  below_ = true;
  if (!was && stream_.producer_ != nullptr) stream_.producer_->pause_producing();
}

void TlsStream::Membrane::resume_producing() {
  below_ = false;
  // A pull producer is asked each time the transport has drained, paused or not before.
  if (!paused() && stream_.producer_ != nullptr) stream_.producer_->resume_producing();
}

void TlsStream::Membrane::stop_producing() {
  if (Producer* p = std::exchange(stream_.producer_, nullptr)) p->stop_producing();
}

void TlsStream::Membrane::hold(bool on) {
  const bool was = paused();
  held_ = on;
  if (stream_.producer_ == nullptr || !stream_.streaming_ || was == paused()) return;
  if (on) {
    stream_.producer_->pause_producing();
  } else {
    stream_.producer_->resume_producing();
  }
}

// ---- Reading ----------------------------------------------------------------------------------

void TlsStream::pause_producing() {
  paused_ = true;
  if (lower_ != nullptr) lower_->pause_producing();
}

void TlsStream::resume_producing() {
  paused_ = false;
  if (lower_ == nullptr || lost_) return;
  lower_->resume_producing();
  // Records already fed may hold plaintext; deliver it from the loop, not from inside this call.
  if (!resume_pump_.active()) resume_pump_ = reactor_.call_later(Duration{0}, [this] { pump(); });
}

void TlsStream::stop_producing() { lose_connection(); }

void TlsStream::data_received(std::span<const std::byte> data) {
  if (lost_ || aborting_) return;
  session_.feed(data);
  pump();
}

void TlsStream::pump() {
  if (lost_ || aborting_ || lower_ == nullptr) return;
  const auto alive = alive_;
  const auto buffer = plaintext_buffer();
  while (!paused_) {
    auto got = session_.read(buffer);
    if (session_.handshake_complete() && !handshake_seen_) {
      handshake_seen_ = true;
      if (handshake_timer_.active()) (void)handshake_timer_.cancel();
      // What waited for the handshake is encrypted now: send it, let the producer go on.
      flush();
      if (session_.close_sent()) arm_close_timer();
      membrane_.hold(false);
      if (options_.on_handshake) {
        options_.on_handshake();
        if (!*alive || lost_ || aborting_) return;
      }
    }
    if (!got) {
      fail(got.error());
      return;
    }
    if (*got == 0) break;
    // After lose_connection the handler hears no more data, as from a transport (which stops
    // reading then); the records are still read, for the peer's close_notify among them.
    if (disconnecting_) continue;
    upper_.data_received(buffer.first(*got));
    if (!*alive || lost_ || aborting_) return;
  }
  flush();
  if (session_.peer_closed()) {
    // Our close_notify answered theirs (in what flush sent): the TLS connection is over, and
    // the transport closes once that is out.
    if (close_timer_.active()) (void)close_timer_.cancel();
    detach_producer();
    lower_->lose_connection();
  }
}

bool TlsStream::read_eof() {
  // TLS has no half-close: the transport's EOF ends the connection (connection_lost says
  // whether close_notify came first).
  return false;
}

void TlsStream::connection_lost(const LossReason& reason) {
  lost_ = true;
  for (DelayedCall* call : {&close_timer_, &handshake_timer_, &resume_pump_}) {
    if (call->active()) (void)call->cancel();
  }
  LossReason told = reason;
  if (reason_) {
    told = *reason_;
  } else if (reason.clean() && !session_.peer_closed() && !disconnecting_) {
    // An EOF without close_notify: whatever the peer sent last may have been cut off, which a
    // clean end must not hide (Twisted turns OpenSSL's "unexpected eof" into ConnectionLost).
    told = LossReason::tls(session_.handshake_complete()
                               ? "TLS: the peer closed the connection without close_notify"
                               : "TLS handshake: the peer closed the connection");
  }
  if (Producer* p = std::exchange(producer_, nullptr)) {
    // Detached from the transport above, so it did not hear the end from there.
    const auto alive = alive_;
    p->stop_producing();
    if (!*alive) return;
  }
  upper_.connection_lost(told);
}

}  // namespace daemonkit::core
