#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_session.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/retry.h"
#include "tls_openssl.h"

namespace daemonkit::core {

namespace {

// Certificates and keys are a few KiB; a bundle of every public authority about 200 KiB. Past
// this a "PEM file" is something else, and reading on would only cost memory.
constexpr std::size_t kMaxPemBytes = 4 * 1024 * 1024;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// The whole file, read through Syscalls so that the fake kernel can serve it.
TlsResult<std::string> read_file(sys::Syscalls& os, const std::string& path,
                                 std::string_view step) {
  auto failed = [&](const sys::Error& e) {
    const sys::Error about = e.about(path);
    return tl::unexpected<TlsError>(
        TlsError{fmt::format("{}: {}", step, sys::to_string(about)), about});
  };
  auto opened = os.open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (!opened) return failed(opened.error());
  OwnedFd fd(os, *opened);
  std::string text;
  std::array<char, 16384> buffer{};
  for (;;) {
    auto got = sys::retry_on_eintr([&] { return os.read(fd.get(), buffer.data(), buffer.size()); });
    if (!got) return failed(got.error());
    if (*got == 0) break;
    text.append(buffer.data(), *got);
    if (text.size() > kMaxPemBytes) {
      return tls_fail(fmt::format("{}: {}: larger than {} bytes", step, path, kMaxPemBytes));
    }
  }
  return text;
}

TlsResult<std::string> pem_text(sys::Syscalls& os, const Pem& pem, std::string_view step) {
  if (pem.kind == Pem::Kind::kFile) return read_file(os, pem.value, step);
  return pem.value;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in the text, in order; fails if there is none, or if what follows the last
// one is not PEM's end (a truncated or corrupted bundle must not load half-way unnoticed).
TlsResult<std::vector<X509Ptr>> read_certificates(const std::string& text, std::string_view step) {
  detail::clear_openssl_errors();
  BioPtr bio = memory_bio(text);
  std::vector<X509Ptr> certificates;
  for (;;) {
    X509Ptr x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!x) break;
    certificates.push_back(std::move(x));
  }
  const unsigned long last = ERR_peek_last_error();
  // The loop ends with "no start line" at the end of the text: that one is expected once at
  // least one certificate was read.
  if (!certificates.empty() && ERR_GET_LIB(last) == ERR_LIB_PEM &&
      ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    detail::clear_openssl_errors();
    return certificates;
  }
  return tls_fail(detail::openssl_failure(step, certificates.empty() ? "no certificate" : ""));
}

TlsResult<void> use_chain(SSL_CTX* ctx, sys::Syscalls& os, const TlsOptions& options) {
  auto chain_text = pem_text(os, options.certificate_chain, "load certificate chain");
  if (!chain_text) return tl::unexpected(chain_text.error());
  auto chain = read_certificates(*chain_text, "load certificate chain");
  if (!chain) return tl::unexpected(chain.error());
  if (SSL_CTX_use_certificate(ctx, (*chain)[0].get()) != 1) {
    return tls_fail(detail::openssl_failure("load certificate chain"));
  }
  for (std::size_t i = 1; i < chain->size(); ++i) {
    // add1: the context takes a reference of its own; ours is dropped with the vector.
    if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
      return tls_fail(detail::openssl_failure("load certificate chain"));
    }
  }
  auto key_text = pem_text(os, options.private_key, "load private key");
  if (!key_text) return tl::unexpected(key_text.error());
  detail::clear_openssl_errors();
  BioPtr bio = memory_bio(*key_text);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return tls_fail(detail::openssl_failure("load private key", "no usable key"));
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    return tls_fail(detail::openssl_failure("load private key"));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return tls_fail(detail::openssl_failure("load private key", "does not match the certificate"));
  }
  return {};
}

TlsResult<void> trust(SSL_CTX* ctx, sys::Syscalls& os, const TlsOptions& options, bool server) {
  const Pem source = options.trusted_authorities.empty() ? Pem::file(options.system_store)
                                                         : options.trusted_authorities;
  auto text = pem_text(os, source, "load trusted authorities");
  if (!text) return tl::unexpected(text.error());
  auto certificates = read_certificates(*text, "load trusted authorities");
  if (!certificates) return tl::unexpected(certificates.error());
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const auto& x : *certificates) {
    if (X509_STORE_add_cert(store, x.get()) != 1) {
      return tls_fail(detail::openssl_failure("load trusted authorities"));
    }
  }
  if (server && source.kind == Pem::Kind::kText) {
    // What a server names to clients as acceptable issuers of their certificates.
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const auto& x : *certificates) {
      (void)sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(x.get())));
    }
    SSL_CTX_set_client_CA_list(ctx, names);
  }
  return {};
}

TlsResult<std::string> alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      return tls_fail(fmt::format("ALPN: protocol name '{}' is not 1 to 255 bytes", p));
    }
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

// The server's choice: the first of its own protocols the client offered (SSL_select_next_proto
// walks the server's list in order); none in common goes on without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  const auto* impl = static_cast<const TlsContext::Impl*>(arg);
  unsigned char* chosen = nullptr;
  const auto* ours = reinterpret_cast<const unsigned char*>(impl->alpn_wire.data());
  if (SSL_select_next_proto(&chosen, outlen, ours, static_cast<unsigned>(impl->alpn_wire.size()),
                            in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

TlsResult<TlsContext::Impl> make(sys::Syscalls& os, const TlsOptions& options,
                                 TlsContext::Role role) {
  // The system's openssl.cnf would be read by OpenSSL itself, past Syscalls, and could change
  // the protocol floor behind the caller's back: this context states its own settings instead.
  OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  detail::clear_openssl_errors();
  const bool client = role == TlsContext::Role::kClient;
  TlsContext::Impl impl;
  impl.os = &os;
  impl.role = role;
  impl.verify = client ? options.verify : TlsVerify::kNone;
  impl.ctx.reset(SSL_CTX_new(client ? TLS_client_method() : TLS_server_method()));
  if (!impl.ctx) return tls_fail(detail::openssl_failure("make TLS context"));
  SSL_CTX* ctx = impl.ctx.get();
  (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // No renegotiation: a write then never waits for a handshake in the middle of a connection,
  // and a client cannot make the server redo its costliest work at will.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Debian's own default (its openssl.cnf, not read here): RSA keys of 2048 bits at least, no
  // SHA-1 signatures.
  SSL_CTX_set_security_level(ctx, 2);

  bool verify_peer = false;
  if (client) {
    verify_peer = options.verify != TlsVerify::kNone;
    SSL_CTX_set_verify(ctx, verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  } else {
    int mode = SSL_VERIFY_NONE;
    if (options.client_certificates != TlsClientCertificates::kNone) mode = SSL_VERIFY_PEER;
    if (options.client_certificates == TlsClientCertificates::kRequire) {
      mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    verify_peer = mode != SSL_VERIFY_NONE;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }

  if (!client && (options.certificate_chain.empty() || options.private_key.empty())) {
    return tls_fail("TLS server context: a certificate chain and a private key are required");
  }
  if (options.certificate_chain.empty() != options.private_key.empty()) {
    return tls_fail(
        "TLS context: a certificate chain needs its private key, and the other way round");
  }
  if (!options.certificate_chain.empty()) {
    if (auto used = use_chain(ctx, os, options); !used) return tl::unexpected(used.error());
  }
  if (verify_peer) {
    if (auto trusted = trust(ctx, os, options, !client); !trusted)
      return tl::unexpected(trusted.error());
  }

  auto wire = alpn_wire(options.alpn);
  if (!wire) return tl::unexpected(wire.error());
  impl.alpn_wire = std::move(*wire);
  if (client && !impl.alpn_wire.empty()) {
    // The one OpenSSL call that returns 0 on success.
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(impl.alpn_wire.data()),
                                static_cast<unsigned>(impl.alpn_wire.size())) != 0) {
      return tls_fail(detail::openssl_failure("ALPN"));
    }
  }
  return impl;
}

}  // namespace

TlsResult<TlsContext> TlsContext::finish(TlsResult<Impl> made) {
  if (!made) return tl::unexpected(made.error());
  auto impl = std::make_shared<Impl>(std::move(*made));
  if (impl->role == Role::kServer && !impl->alpn_wire.empty()) {
    // The argument is the Impl the sessions keep alive, so it outlives every handshake.
    SSL_CTX_set_alpn_select_cb(impl->ctx.get(), select_alpn, impl.get());
  }
  const Role role = impl->role;
  return TlsContext(std::move(impl), role, &TlsSession::for_context);
}

std::string TlsOptions::default_system_store() { return X509_get_default_cert_file(); }

TlsResult<TlsContext> TlsContext::client(sys::Syscalls& os, TlsOptions options) {
  return finish(make(os, options, Role::kClient));
}

TlsResult<TlsContext> TlsContext::server(sys::Syscalls& os, TlsOptions options) {
  return finish(make(os, options, Role::kServer));
}

TlsVerify TlsContext::verify() const { return impl_->verify; }
ssl_ctx_st* TlsContext::native() const { return impl_->ctx.get(); }

namespace detail {

void clear_openssl_errors() { ERR_clear_error(); }

std::string openssl_failure(std::string_view step, std::string_view detail) {
  const unsigned long first = ERR_get_error();
  clear_openssl_errors();
  std::string cause;
  if (first != 0) {
    const char* lib = ERR_lib_error_string(first);
    const char* reason = ERR_reason_error_string(first);
    cause =
        fmt::format("({}::{})", lib != nullptr ? lib : "OpenSSL",
                    reason != nullptr ? std::string(reason) : fmt::format("error {:#x}", first));
  }
  if (detail.empty() && cause.empty()) return fmt::format("{} failed", step);
  if (detail.empty()) return fmt::format("{} failed {}", step, cause);
  if (cause.empty()) return fmt::format("{}: {}", step, detail);
  return fmt::format("{}: {} {}", step, detail, cause);
}

}  // namespace detail
}  // namespace daemonkit::core
