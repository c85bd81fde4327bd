// StepError: why a daemon could not start, naming the step that failed.
// The first parent prints it and the status pipe carries it, so its text is what the user
// reads: "setresuid(65534): Operation not permitted (EPERM)" or
// "Pidfile /run/x.pid contains non-numeric value".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "daemonkit/sys/result.h"

namespace daemonkit::core {

struct StepError {
  // What the daemonizer was doing, e.g. "chdir(/srv)" or "pidfile". Never empty.
  std::string step;
  // The whole line shown to the user; always mentions `step` or says plainly what went wrong.
  std::string message;
  // The OS error behind it, when there is one (its errno ends up in sd_notify's ERRNO=).
  std::optional<sys::Error> cause;

  // A failed call: the message is "<step>: <description> (<ERRNO>)".
  [[nodiscard]] static StepError from(std::string step, const sys::Error& error);
  // A failure with no errno behind it (another instance runs, an unknown user, ...).
  [[nodiscard]] static StepError plain(std::string step, std::string message);

  // The errno behind the failure, or 0.
  [[nodiscard]] int error_number() const { return cause ? cause->code : 0; }
};

template <typename T>
using StepResult = tl::expected<T, StepError>;

[[nodiscard]] inline tl::unexpected<StepError> step_failed(StepError error) {
  return tl::unexpected<StepError>(std::move(error));
}

// "open(/run/x.pid)": the call name with the argument that identifies what it acted on.
[[nodiscard]] std::string call_on(std::string_view call, std::string_view subject);

}  // namespace daemonkit::core
