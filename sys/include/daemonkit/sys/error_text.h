// How a failed call reads, whichever error type carries it: "chdir(/srv): No such file or
// directory (ENOENT)". sys::to_string(Error), core::StepError, the status pipe's waiter and
// reporter and the command's launch errors all build that text here, so it has one shape.
#pragma once

#include <string>
#include <string_view>

namespace daemonkit::sys {

// "open(/run/x.pid)": a call's name with the argument that identifies what it acted on.
[[nodiscard]] std::string call_on(std::string_view call, std::string_view subject);

// "<what>: <description> (<ERRNO>)", with `what` the call as the message should name it
// ("setsid", "dup2(3, 0)", call_on("chdir", dir)), the description from errno_description and
// the name from errno_name.
[[nodiscard]] std::string describe_failure(std::string_view what, int code);

}  // namespace daemonkit::sys
