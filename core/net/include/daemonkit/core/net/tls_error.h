// TlsError: why a TLS context could not be made, or a TLS session failed. OpenSSL reports by
// library and reason, not by errno, so the message carries its text: "load certificate: no PEM
// certificate found (PEM routines::no start line)". An OS failure underneath (reading a
// certificate file) is kept as the sys::Error too.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"

namespace daemonkit::core {

struct TlsError {
  // The whole line a user reads: the step, then OpenSSL's (or the OS's) reason.
  std::string message;
  // The OS error behind it, when there is one (a certificate file that cannot be read).
  std::optional<sys::Error> os{};

  friend bool operator==(const TlsError&, const TlsError&) = default;
};

// A value or a TlsError. Must be used, as sys::Result: a context that failed to load its key
// would otherwise serve with none.
template <typename T>
class [[nodiscard]] TlsResult : public tl::expected<T, TlsError> {
 public:
  using Base = tl::expected<T, TlsError>;
  using Base::Base;
  TlsResult(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose (and_then, map)
};

[[nodiscard]] inline tl::unexpected<TlsError> tls_fail(std::string message) {
  return tl::unexpected<TlsError>(TlsError{std::move(message), std::nullopt});
}

[[nodiscard]] inline const std::string& to_string(const TlsError& error) { return error.message; }

}  // namespace daemonkit::core

template <typename T>
struct tl::detail::is_expected_impl<daemonkit::core::TlsResult<T>> : std::true_type {};

template <>
struct fmt::formatter<daemonkit::core::TlsError> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const daemonkit::core::TlsError& error, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(error.message, ctx);
  }
};
