// LossReason: why a stream transport's connection ended, delivered once, last. Twisted's three
// outcomes: done cleanly (EOF, or lose_connection finished), lost with an errno (the call that
// failed and why), or aborted by its own side; and a fourth for a layer above the descriptor
// (TLS) that ended the connection for a reason no errno names.
#pragma once

#include <string>

#include <fmt/format.h>

#include "daemonkit/sys/result.h"

namespace daemonkit::core {

struct LossReason {
  enum class Kind {
    kDone,     // Twisted's ConnectionDone: the peer's EOF, or our lose_connection completed
    kLost,     // Twisted's ConnectionLost: a read, write, shutdown, close or epoll_ctl failed
    kAborted,  // Twisted's ConnectionAborted: abort_connection dropped what was buffered
    // The TLS layer failed the connection (Twisted gives the OpenSSL error itself as the
    // reason): a handshake or record error, or a peer that closed without close_notify.
    kTls,
  };
  Kind kind = Kind::kDone;
  // For kLost: the failed call and its errno, e.g. write and EPIPE. Empty otherwise.
  sys::Error error{};
  // For kTls: the whole message, e.g. "TLS handshake: certificate has expired (SSL
  // routines::certificate verify failed)". Empty otherwise.
  std::string detail{};

  [[nodiscard]] static LossReason done() { return {}; }
  [[nodiscard]] static LossReason lost(sys::Error error) {
    return {Kind::kLost, std::move(error), {}};
  }
  [[nodiscard]] static LossReason aborted() { return {Kind::kAborted, {}, {}}; }
  [[nodiscard]] static LossReason tls(std::string detail) {
    return {Kind::kTls, {}, std::move(detail)};
  }
  [[nodiscard]] bool clean() const { return kind == Kind::kDone; }

  friend bool operator==(const LossReason&, const LossReason&) = default;
};

// "Connection was closed cleanly.", "write: Broken pipe (EPIPE)", "Connection was aborted.", or
// a kTls reason's detail.
[[nodiscard]] std::string to_string(const LossReason& reason);

}  // namespace daemonkit::core

template <>
struct fmt::formatter<daemonkit::core::LossReason> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const daemonkit::core::LossReason& reason, FormatContext& ctx) const {
    const std::string text = daemonkit::core::to_string(reason);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
