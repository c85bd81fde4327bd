#include "daemonkit/cli/launch_error.h"

#include "daemonkit/sys/error_text.h"

namespace daemonkit::cli {

LaunchError LaunchError::from(const std::string& step, const sys::Error& error) {
  return LaunchError{sys::describe_failure(step, error.code), error.code, false};
}

LaunchError LaunchError::from_step(const core::StepError& error) {
  // Only the PID file's own refusals carry no errno; its failed calls read like any other.
  if (error.kind == core::StepKind::kPidFile && !error.cause) {
    std::string text = error.message;
    if (!text.ends_with('\n')) text += '\n';
    return LaunchError{text, error.error_number(), true};
  }
  return LaunchError{error.message, error.error_number(), false};
}

}  // namespace daemonkit::cli
