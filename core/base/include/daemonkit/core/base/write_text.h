// Writes a message to a descriptor, all of it, for the paths that report on stdout or stderr
// just before exiting: a short write goes on from where it stopped and EINTR is retried. Best
// effort: with nowhere to report a failed report, the first error ends it silently.
#pragma once

#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

void write_text(sys::Syscalls& os, int fd, std::string_view text);

}  // namespace daemonkit::core
