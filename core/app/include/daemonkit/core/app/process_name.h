// The application's process name (Application::process_name, twistd's processName) set where
// `ps`, `top` and `pgrep` show it: the kernel's name of the thread (PR_SET_NAME, /proc/PID/comm,
// `ps -e` and `ps -o comm`). The command line `ps -f` shows (/proc/PID/cmdline) is left alone:
// rewriting it in place means writing over argv and environ, which other code still reads.
#pragma once

#include <string>
#include <string_view>

#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// The kernel keeps 15 bytes of a name (TASK_COMM_LEN 16 with its NUL) and cuts the rest.
inline constexpr std::size_t kProcessNameMax = 15;

// Sets the calling thread's name; call it before starting threads, which inherit it. An empty
// name is refused (it would hide the process from `ps`).
[[nodiscard]] StepResult<void> set_process_name(sys::Syscalls& os, std::string_view name);

}  // namespace daemonkit::core
