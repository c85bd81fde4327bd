// A downstream component written against daemonkit's seam: writes a greeting line to a
// descriptor, reporting short writes and errors as values.
#pragma once

#include <string_view>

#include "daemonkit/sys/syscalls.h"

namespace consumer {

daemonkit::sys::Result<void> write_greeting(daemonkit::sys::Syscalls& os, int fd,
                                            std::string_view name);

}  // namespace consumer
