// ReactorError: how the reactor, its timers and its triggers report misuse and OS failures.
// Misuse that Twisted raises as an exception (stopping a stopped reactor, cancelling a call that
// already ran) comes back here as a value; an OS failure carries the sys::Error underneath.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"

namespace daemonkit::core {

enum class ReactorErrc {
  kOs,                 // an OS call failed; see ReactorError::os
  kNotRunning,         // Twisted's ReactorNotRunning
  kAlreadyRunning,     // Twisted's ReactorAlreadyRunning
  kNotRestartable,     // Twisted's ReactorNotRestartable: run() after stop()
  kAlreadyCalled,      // Twisted's AlreadyCalled
  kAlreadyCancelled,   // Twisted's AlreadyCancelled
  kAlreadyRegistered,  // a child pid watched twice
  kNotRegistered,      // removing a trigger or child that is not there
  kSignalsTaken,       // another reactor in this process already routes these signals
  kQueueFull,          // call_from_thread: the ring of waiting calls is full; retry later
};

struct ReactorError {
  ReactorErrc code = ReactorErrc::kOs;
  sys::Error os{};

  // The errno behind an OS failure, or 0 for misuse (as StepError::error_number).
  [[nodiscard]] int error_number() const { return code == ReactorErrc::kOs ? os.code : 0; }

  friend bool operator==(const ReactorError&, const ReactorError&) = default;
};

// A value or a ReactorError. Must be used, as sys::Result: `reactor.stop();` on a reactor that
// is not running is Twisted's ReactorNotRunning, and dropping it hides the misuse.
template <typename T>
class [[nodiscard]] ReactorResult : public tl::expected<T, ReactorError> {
 public:
  using Base = tl::expected<T, ReactorError>;
  using Base::Base;
  ReactorResult(Base base)
      : Base(std::move(base)) {}  // NOLINT: implicit on purpose (and_then, map)
};

[[nodiscard]] inline tl::unexpected<ReactorError> reactor_fail(ReactorErrc code) {
  return tl::unexpected<ReactorError>(ReactorError{code, {}});
}
[[nodiscard]] inline tl::unexpected<ReactorError> reactor_fail(sys::Error os) {
  return tl::unexpected<ReactorError>(ReactorError{ReactorErrc::kOs, std::move(os)});
}

// Twisted's wording where it has one: "Can't stop reactor that isn't running.".
[[nodiscard]] std::string to_string(const ReactorError& error);

// The enumerator's name, "kNotRunning", for logs and test failure messages.
[[nodiscard]] std::string_view to_string(ReactorErrc code);

}  // namespace daemonkit::core

// ReactorResult<T> is an expected for tl's monadic operations, as sys::Result is (see result.h).
template <typename T>
struct tl::detail::is_expected_impl<daemonkit::core::ReactorResult<T>> : std::true_type {};

template <>
struct fmt::formatter<daemonkit::core::ReactorError> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const daemonkit::core::ReactorError& error, FormatContext& ctx) const {
    const std::string text = daemonkit::core::to_string(error);
    return fmt::formatter<std::string_view>::format(text, ctx);
  }
};
