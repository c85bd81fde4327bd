#include "daemonkit/cli/launch_error.h"

#include <fmt/format.h>

namespace daemonkit::cli {

LaunchError LaunchError::from(const std::string& step, const sys::Error& error) {
  return LaunchError{fmt::format("{}: {} ({})", step, sys::errno_description(error.code),
                                 sys::errno_name(error.code)),
                     error.code, false};
}

LaunchError LaunchError::from_step(const core::StepError& error) {
  if (error.step == "pidfile") {
    std::string text = error.message;
    if (!text.ends_with('\n')) text += '\n';
    return LaunchError{text, error.error_number(), true};
  }
  return LaunchError{error.message, error.error_number(), false};
}

}  // namespace daemonkit::cli
