#include "daemonkit/cli/launch_error.h"

#include <fmt/format.h>

namespace daemonkit::cli {

LaunchError LaunchError::from(const std::string& step, const sys::Error& error) {
  return LaunchError{fmt::format("{}: {} ({})", step, sys::errno_description(error.code),
                                 sys::errno_name(error.code)),
                     error.code, false};
}

}  // namespace daemonkit::cli
