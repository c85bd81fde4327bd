// TlsContext: what every TLS connection of one side shares — its role, its certificate and key,
// the authorities it trusts, how it verifies the peer, its ALPN protocols (Twisted's
// CertificateOptions). One OpenSSL SSL_CTX underneath, made once and used by many sessions.
// Files are read through sys::Syscalls&, so a test serves certificates from the fake kernel.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/net/tls_error.h"
#include "daemonkit/sys/syscalls.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX, kept out of this header

namespace daemonkit::core {

// PEM given as text, or as a file read through Syscalls when the context is made.
struct Pem {
  enum class Kind { kText, kFile };
  Kind kind = Kind::kText;
  std::string value;

  [[nodiscard]] static Pem text(std::string pem) { return {Kind::kText, std::move(pem)}; }
  [[nodiscard]] static Pem file(std::string path) { return {Kind::kFile, std::move(path)}; }
  [[nodiscard]] bool empty() const { return value.empty(); }
};

// How a client checks the server. The default checks both the chain and the host name; turning
// either off must be written out where the context is made.
enum class TlsVerify {
  kPeerAndHost,  // the chain ends at a trusted authority and the certificate names the host
  kPeerOnly,     // the chain only (the host name is not compared)
  kNone,         // nothing: the connection is encrypted but the peer may be anyone
};

// Whether a server asks clients for a certificate, and what it does without one.
enum class TlsClientCertificates {
  kNone,     // not asked for (the default)
  kRequest,  // asked for, and verified against trusted_authorities when sent
  kRequire,  // asked for and verified; a client without one fails the handshake
};

struct TlsOptions {
  // The leaf first, then any intermediates. Required for a server; optional for a client (its
  // certificate for a server that asks).
  Pem certificate_chain;
  Pem private_key;
  // The authorities that may sign the peer's chain. Empty: the system store, the bundle at
  // system_store (read through Syscalls like any other file).
  Pem trusted_authorities;
  std::string system_store = default_system_store();
  TlsVerify verify = TlsVerify::kPeerAndHost;                                // clients
  TlsClientCertificates client_certificates = TlsClientCertificates::kNone;  // servers
  // ALPN, most preferred first ("h2", "http/1.1"). A server picks the first of its own that the
  // client offers; with none in common the handshake goes on without ALPN.
  std::vector<std::string> alpn;

  // OpenSSL's compiled-in bundle, /usr/lib/ssl/cert.pem on Debian (ca-certificates' bundle).
  [[nodiscard]] static std::string default_system_store();
};

// Certificates are checked against the time CLOCK_REALTIME gives through the context's
// Syscalls when each session begins, not OpenSSL's own time(): on the fake kernel its manual
// clock decides what has expired. `os` must outlive the context and its sessions.
class TlsSession;

class TlsContext {
 public:
  enum class Role { kClient, kServer };

  // Makes the context: TLS 1.2 at least, renegotiation off, OpenSSL's security level 2. Fails
  // naming the step: "load private key: ...", "load certificate chain: open(/x.pem): No such file
  // or directory (ENOENT)", "certificate chain: key does not match (...)".
  [[nodiscard]] static TlsResult<TlsContext> client(sys::Syscalls& os, TlsOptions options = {});
  [[nodiscard]] static TlsResult<TlsContext> server(sys::Syscalls& os, TlsOptions options);

  [[nodiscard]] Role role() const { return role_; }
  // A session of this context's role: TlsSession::client(*this, host), or ::server(*this) (host
  // unused). Defined in tls_session.h. Code that may start TLS without linking OpenSSL until a
  // context exists (Connection::start_tls) calls this: it goes through a pointer the context's
  // maker set, so a program that never makes a context loads no libssl or libcrypto.
  [[nodiscard]] TlsResult<TlsSession> new_session(std::string_view host) const;
  [[nodiscard]] TlsVerify verify() const;
  // For TlsSession; holds a reference of its own to the SSL_CTX.
  [[nodiscard]] ssl_ctx_st* native() const;

  struct Impl;

 private:
  using SessionMaker = TlsResult<TlsSession> (*)(const TlsContext&, std::string_view host);
  TlsContext(std::shared_ptr<const Impl> impl, Role role, SessionMaker make_session)
      : impl_(std::move(impl)), role_(role), new_session_(make_session) {}
  // Shares what `make` built, and points the server's ALPN callback at it.
  static TlsResult<TlsContext> finish(TlsResult<Impl> made);
  // Shared with OpenSSL's ALPN callback (its argument) and with every session, so a context
  // may be dropped while its connections go on.
  std::shared_ptr<const Impl> impl_;
  Role role_;
  SessionMaker new_session_;
  friend class TlsSession;
};

}  // namespace daemonkit::core
