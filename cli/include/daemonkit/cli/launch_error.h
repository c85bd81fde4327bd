// Why `daemonkit run` could not start PROGRAM: the line the user reads after
// "An error has occurred: ", and the errno behind it when there is one.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::cli {

struct LaunchError {
  std::string message;
  int error_number = 0;
  // Printed as it is, without "An error has occurred: " (twistd's PID file messages).
  bool plain = false;

  // "<step>: <description> (<ERRNO>)", e.g. "chroot(/srv/jail): No such file or directory (ENOENT)".
  [[nodiscard]] static LaunchError from(const std::string& step, const sys::Error& error);
  // A core step's failure. The PID file's refusals ("Another server is running, PID 12", "Pidfile
  // /x.pid contains non-numeric value") are printed plain, as twistd prints them.
  [[nodiscard]] static LaunchError from_step(const core::StepError& error);
};

// A value or a LaunchError. Must be used, as sys::Result.
template <typename T>
class [[nodiscard]] LaunchResult : public tl::expected<T, LaunchError> {
 public:
  using Base = tl::expected<T, LaunchError>;
  using Base::Base;
  LaunchResult(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose (and_then, map)
};

[[nodiscard]] inline tl::unexpected<LaunchError> launch_failed(LaunchError error) {
  return tl::unexpected<LaunchError>(std::move(error));
}

}  // namespace daemonkit::cli

// LaunchResult<T> is an expected for tl's monadic operations, as sys::Result is (see result.h).
template <typename T>
struct tl::detail::is_expected_impl<daemonkit::cli::LaunchResult<T>> : std::true_type {};
