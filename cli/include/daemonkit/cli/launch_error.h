// Why `daemonkit run` could not start PROGRAM: the line the user reads after
// "An error has occurred: ", and the errno behind it when there is one.
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"

namespace daemonkit::cli {

struct LaunchError {
  std::string message;
  int error_number = 0;
  // Printed as it is, without "An error has occurred: " (twistd's PID file messages).
  bool plain = false;

  // "<step>: <description> (<ERRNO>)", e.g. "chroot(/srv/jail): No such file or directory (ENOENT)".
  [[nodiscard]] static LaunchError from(const std::string& step, const sys::Error& error);
};

template <typename T>
using LaunchResult = tl::expected<T, LaunchError>;

[[nodiscard]] inline tl::unexpected<LaunchError> launch_failed(LaunchError error) {
  return tl::unexpected<LaunchError>(std::move(error));
}

}  // namespace daemonkit::cli
