#include "daemonkit/core/net/tls_session.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <ctime>
#include <utility>

#include <fmt/format.h>

#include "tls_openssl.h"

namespace daemonkit::core {

namespace {

// Plaintext is encrypted in slices of one TLS record's largest payload, as Twisted does.
constexpr std::size_t kRecordPayload = 16 * 1024;

// Verification happens at the kernel's wall-clock time, read through Syscalls when the session
// begins (a handshake takes seconds; certificates are valid for days at the least).
TlsResult<void> set_verify_time(SSL* ssl, sys::Syscalls& os) {
  auto now = os.clock_gettime(CLOCK_REALTIME);
  if (!now) {
    const sys::Error e = now.error().about("CLOCK_REALTIME");
    return tl::unexpected(TlsError{fmt::format("TLS session: {}", sys::to_string(e)), e});
  }
  X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl), now->tv_sec);
  return {};
}

bool is_address(std::string_view host) {
  const std::string text(host);
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(text.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<const TlsContext::Impl> context, ssl_st* ssl, bio_st* in,
                       bio_st* out, bool client)
    : ops_(&kOpenSsl),
      context_(std::move(context)),
      ssl_(ssl),
      in_(in),
      out_(out),
      client_(client) {}

const TlsSession::Ops TlsSession::kOpenSsl{
    [](TlsSession& s, std::span<const std::byte> c) { s.do_feed(c); },
    [](TlsSession& s) { return s.do_take_ciphertext(); },
    [](TlsSession& s, std::span<std::byte> out) { return s.do_read(out); },
    [](TlsSession& s, std::span<const std::byte> p) { s.do_write(p); },
    [](TlsSession& s) { s.do_close(); },
    [](TlsSession& s) noexcept { s.reset(); },
    [](const TlsSession& s) { return s.do_alpn(); },
    [](const TlsSession& s) { return s.do_peer_subject(); },
};

void TlsSession::reset() noexcept {
  // SSL_free frees the two BIOs SSL_set_bio handed it.
  if (ssl_ != nullptr) SSL_free(ssl_);
  ssl_ = nullptr;
  in_ = out_ = nullptr;
}

TlsResult<TlsSession> TlsSession::make(const TlsContext& context, bool client) {
  detail::clear_openssl_errors();
  SSL* ssl = SSL_new(context.native());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (ssl == nullptr || in == nullptr || out == nullptr) {
    SSL_free(ssl);
    BIO_free(in);
    BIO_free(out);
    return tls_fail(detail::openssl_failure("TLS session"));
  }
  // An empty input BIO means "nothing yet" (retry), never end of stream: the peer's end is
  // the transport's business, and TlsStream tells it apart from close_notify.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);
  TlsSession session(context.impl_, ssl, in, out, client);
  if (auto timed = set_verify_time(ssl, *context.impl_->os); !timed) {
    return tl::unexpected(timed.error());
  }
  return session;
}

TlsResult<TlsSession> TlsSession::client(const TlsContext& context, std::string_view host) {
  if (context.role() != TlsContext::Role::kClient) {
    return tls_fail("TLS client session: the context was made for a server");
  }
  if (context.verify() == TlsVerify::kPeerAndHost && host.empty()) {
    return tls_fail(
        "TLS client session: verifying the host name needs one (or TlsVerify::kPeerOnly)");
  }
  auto made = make(context, true);
  if (!made) return made;
  TlsSession& session = *made;
  SSL* ssl = session.ssl_;
  SSL_set_connect_state(ssl);
  const std::string name(host);
  const bool address = !name.empty() && is_address(name);
  bool named = true;
  // SNI carries names only (RFC 6066 forbids addresses there).
  if (!name.empty() && !address) named = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
  if (named && context.verify() == TlsVerify::kPeerAndHost) {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    named = address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                    : SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!named) return tls_fail(detail::openssl_failure(fmt::format("TLS host name '{}'", name)));
  // The ClientHello, ready for take_ciphertext.
  (void)session.advance_handshake();
  return made;
}

TlsResult<TlsSession> TlsSession::for_context(const TlsContext& context, std::string_view host) {
  return context.role() == TlsContext::Role::kClient ? client(context, host) : server(context);
}

TlsResult<TlsSession> TlsSession::server(const TlsContext& context) {
  if (context.role() != TlsContext::Role::kServer) {
    return tls_fail("TLS server session: the context was made for a client");
  }
  auto made = make(context, false);
  if (made) SSL_set_accept_state(made->ssl_);
  return made;
}

// ---- Ciphertext ------------------------------------------------------------------------------

void TlsSession::do_feed(std::span<const std::byte> ciphertext) {
  while (!ciphertext.empty() && in_ != nullptr) {
    const int n = static_cast<int>(std::min<std::size_t>(ciphertext.size(), INT_MAX));
    // A memory BIO takes everything (it grows); it fails only when memory does.
    const int wrote = BIO_write(in_, ciphertext.data(), n);
    if (wrote <= 0) {
      if (!error_) error_ = TlsError{detail::openssl_failure("TLS input"), std::nullopt};
      return;
    }
    ciphertext = ciphertext.subspan(static_cast<std::size_t>(wrote));
  }
}

std::string TlsSession::do_take_ciphertext() {
  std::string bytes;
  if (out_ == nullptr) return bytes;
  const std::size_t n = BIO_ctrl_pending(out_);
  if (n == 0) return bytes;
  bytes.resize(n);
  const int got = BIO_read(out_, bytes.data(), static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
  bytes.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return bytes;
}

// ---- Plaintext -------------------------------------------------------------------------------

bool TlsSession::advance_handshake() {
  if (error_) return false;
  if (handshake_complete_) return true;
  detail::clear_openssl_errors();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    handshake_complete_ = true;
    flush_pending();
    if (close_wanted_) close();
    return !error_;
  }
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  fail("TLS handshake", e);
  return false;
}

TlsResult<std::size_t> TlsSession::do_read(std::span<std::byte> out) {
  if (!advance_handshake()) return tl::unexpected(*error_);
  if (!handshake_complete_ || peer_closed_ || out.empty()) return 0;
  detail::clear_openssl_errors();
  std::size_t got = 0;
  if (SSL_read_ex(ssl_, out.data(), out.size(), &got) == 1) return got;
  const int e = SSL_get_error(ssl_, 0);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) {
    // The peer's close_notify. Twisted answers it with ours at once; so does this.
    peer_closed_ = true;
    close();
    return 0;
  }
  fail("TLS record", e);
  return tl::unexpected(*error_);
}

void TlsSession::do_write(std::span<const std::byte> plaintext) {
  if (error_ || close_sent_ || close_wanted_ || peer_closed_ || plaintext.empty()) return;
  if (!handshake_complete_) {
    pending_.append(reinterpret_cast<const char*>(plaintext.data()), plaintext.size());
    return;
  }
  encrypt(plaintext);
}

void TlsSession::flush_pending() {
  if (pending_.empty()) return;
  const std::string waiting = std::exchange(pending_, {});
  encrypt(std::as_bytes(std::span(waiting)));
}

void TlsSession::encrypt(std::span<const std::byte> plaintext) {
  while (!plaintext.empty() && !error_) {
    const std::size_t n = std::min(plaintext.size(), kRecordPayload);
    std::size_t wrote = 0;
    detail::clear_openssl_errors();
    if (SSL_write_ex(ssl_, plaintext.data(), n, &wrote) != 1) {
      // With renegotiation off and a memory BIO that always has room, a write cannot wait for
      // anything: a failure here is the session's end.
      fail("TLS record", SSL_get_error(ssl_, 0));
      return;
    }
    plaintext = plaintext.subspan(wrote);
  }
}

void TlsSession::do_close() {
  if (error_ || close_sent_) return;
  if (!handshake_complete_) {
    // Sent once the handshake completes, after what is pending.
    close_wanted_ = true;
    return;
  }
  flush_pending();
  detail::clear_openssl_errors();
  // 0: our close_notify is out, the peer's not yet in; 1: both; below: failed.
  const int r = SSL_shutdown(ssl_);
  if (r < 0) {
    fail("TLS close", SSL_get_error(ssl_, r));
    return;
  }
  close_sent_ = true;
}

void TlsSession::fail(std::string_view step, int ssl_error) {
  if (error_) return;
  std::string why;
  // A verification that failed says why in its own words ("certificate has expired"); the error
  // queue says only "certificate verify failed". Without SSL_VERIFY_PEER the result is kept but
  // did not decide anything.
  const long verified = SSL_get_verify_result(ssl_);
  if (!handshake_complete_ && verified != X509_V_OK &&
      (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0) {
    why = X509_verify_cert_error_string(verified);
  } else if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    why = "unexpected end of input";
  }
  error_ = TlsError{detail::openssl_failure(step, why), std::nullopt};
}

// ---- State -----------------------------------------------------------------------------------

std::string TlsSession::do_alpn() const {
  if (ssl_ == nullptr) return {};
  const unsigned char* name = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &name, &len);
  return name == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(name), len);
}

std::string TlsSession::do_peer_subject() const {
  if (ssl_ == nullptr) return {};
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (peer == nullptr) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  (void)X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string subject(data, n > 0 ? static_cast<std::size_t>(n) : 0);
  BIO_free(bio);
  return subject;
}

}  // namespace daemonkit::core
