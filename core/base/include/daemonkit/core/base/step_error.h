// StepError: why a daemon could not start, naming the step that failed.
// The first parent prints it and the status pipe carries it, so its text is what the user
// reads: "setresuid(65534): Operation not permitted (EPERM)" or
// "Pidfile /run/x.pid contains non-numeric value". Code that must tell one failure from
// another asks its kind, never its text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::core {

// Which step of starting a daemon failed, in the order DaemonContext takes them.
enum class StepKind {
  kOptions,      // the options cannot be carried out as given (files_preserve naming stdio, ...)
  kPrivileges,   // resolving or shedding the uid, gid and supplementary groups
  kPidFile,      // acquiring, writing, keeping or removing the PID file
  kStatusPipe,   // the pipe that carries the daemon's report to the waiting parent
  kDetach,       // fork and setsid: leaving the launcher's process and session
  kStdio,        // pointing the standard descriptors at /dev/null or the given files
  kCloseFds,     // closing inherited descriptors
  kSignals,      // resetting dispositions and the mask; the signal map
  kChroot,       // entering the chroot directory
  kChdir,        // entering the working directory
  kCoreDumps,    // prevent_core's RLIMIT_CORE
  kReadiness,    // reaching the service manager ($NOTIFY_SOCKET)
  kExec,         // executing the daemon's program (the launch of `daemonkit run`)
  kApplication,  // the daemon's own start-up work (a hook, or DaemonContext::fail)
};

// "pidfile" for kPidFile: a short, stable name for logs and test failure messages.
[[nodiscard]] std::string_view to_string(StepKind kind);

struct StepError {
  StepKind kind = StepKind::kApplication;
  // The whole line shown to the user; names the call that failed or says plainly what went wrong.
  std::string message;
  // The OS error behind it, when there is one (its errno ends up in sd_notify's ERRNO=).
  std::optional<sys::Error> cause;

  // A failed call: the message is "<step>: <description> (<ERRNO>)" (sys::describe_failure),
  // with `step` the call and what it acted on, e.g. "chdir(/srv)".
  [[nodiscard]] static StepError from(StepKind kind, std::string_view step,
                                      const sys::Error& error);
  // A failure with no errno behind it (another instance runs, an unknown user, ...).
  [[nodiscard]] static StepError plain(StepKind kind, std::string message);

  // The errno behind the failure, or 0.
  [[nodiscard]] int error_number() const { return cause ? cause->code : 0; }
};

// A value or a StepError. Must be used, as sys::Result: a dropped one is a start-up step that
// failed with nobody told.
template <typename T>
class [[nodiscard]] StepResult : public tl::expected<T, StepError> {
 public:
  using Base = tl::expected<T, StepError>;
  using Base::Base;
  StepResult(Base base) : Base(std::move(base)) {}  // NOLINT: implicit on purpose (and_then, map)
};

[[nodiscard]] inline tl::unexpected<StepError> step_failed(StepError error) {
  return tl::unexpected<StepError>(std::move(error));
}

// "open(/run/x.pid)": the call name with the argument that identifies what it acted on.
using sys::call_on;

}  // namespace daemonkit::core

// StepResult<T> is an expected for tl's monadic operations, as sys::Result is (see result.h).
template <typename T>
struct tl::detail::is_expected_impl<daemonkit::core::StepResult<T>> : std::true_type {};
