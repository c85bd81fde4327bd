#include "daemonkit/core/base/step_error.h"

namespace daemonkit::core {

std::string_view to_string(StepKind kind) {
  switch (kind) {
    case StepKind::kOptions:
      return "options";
    case StepKind::kPrivileges:
      return "privileges";
    case StepKind::kPidFile:
      return "pidfile";
    case StepKind::kStatusPipe:
      return "status pipe";
    case StepKind::kDetach:
      return "detach";
    case StepKind::kStdio:
      return "stdio";
    case StepKind::kCloseFds:
      return "close fds";
    case StepKind::kSignals:
      return "signals";
    case StepKind::kChroot:
      return "chroot";
    case StepKind::kChdir:
      return "chdir";
    case StepKind::kCoreDumps:
      return "core dumps";
    case StepKind::kReadiness:
      return "readiness";
    case StepKind::kExec:
      return "exec";
    case StepKind::kApplication:
      return "application";
  }
  return "unknown step";
}

StepError StepError::from(StepKind kind, std::string_view step, const sys::Error& error) {
  return StepError{kind, sys::describe_failure(step, error.code), error};
}

StepError StepError::plain(StepKind kind, std::string message) {
  return StepError{kind, std::move(message), std::nullopt};
}

}  // namespace daemonkit::core
