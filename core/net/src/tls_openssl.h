// What the TLS sources share about OpenSSL: the context's insides, and turning OpenSSL's error
// queue into a message.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "daemonkit/core/net/tls_context.h"

namespace daemonkit::core {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

struct TlsContext::Impl {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  // Asked for the time each session verifies certificates at (see TlsContext).
  sys::Syscalls* os = nullptr;
  Role role = Role::kClient;
  TlsVerify verify = TlsVerify::kPeerAndHost;
  // ALPN's wire format: each protocol as a length byte and its name.
  std::string alpn_wire;
};

namespace detail {

// "<step>: <detail> (<library>::<reason>)" from the oldest error OpenSSL queued (the cause; the
// later ones say where it surfaced), or "<step> failed (...)" with no detail. Empties the queue,
// so the next step's message is not polluted by this one's.
[[nodiscard]] std::string openssl_failure(std::string_view step, std::string_view detail = {});

// Drops whatever OpenSSL queued: the queue is per thread, and a stale entry would be blamed for
// the next failure of any session on it.
void clear_openssl_errors();

}  // namespace detail
}  // namespace daemonkit::core
