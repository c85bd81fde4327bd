#include "daemonkit/core/base/step_error.h"

#include <fmt/format.h>

namespace daemonkit::core {

StepError StepError::from(std::string step, const sys::Error& error) {
  std::string message = fmt::format("{}: {} ({})", step, sys::errno_description(error.code),
                                    sys::errno_name(error.code));
  return StepError{std::move(step), std::move(message), error};
}

StepError StepError::plain(std::string step, std::string message) {
  return StepError{std::move(step), std::move(message), std::nullopt};
}

std::string call_on(std::string_view call, std::string_view subject) {
  return fmt::format("{}({})", call, subject);
}

}  // namespace daemonkit::core
