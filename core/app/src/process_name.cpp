#include "daemonkit/core/app/process_name.h"

#include <sys/prctl.h>

#include <array>
#include <cstring>

namespace daemonkit::core {

StepResult<void> set_process_name(sys::Syscalls& os, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return step_failed(
        StepError::plain(StepKind::kApplication,
                         "process name: empty or holding a NUL byte; `ps` could not show it"));
  }
  // The kernel cuts at 15 bytes, possibly inside a UTF-8 character; cut before it instead.
  std::size_t length = std::min(name.size(), kProcessNameMax);
  if (length < name.size()) {
    while (length > 0 && (static_cast<unsigned char>(name[length]) & 0xC0) == 0x80) --length;
  }
  std::array<char, kProcessNameMax + 1> text{};
  std::memcpy(text.data(), name.data(), length);
  auto set = os.prctl(PR_SET_NAME, reinterpret_cast<unsigned long>(text.data()));
  if (!set) {
    return step_failed(StepError::from(StepKind::kApplication,
                                       "prctl(PR_SET_NAME, " + std::string(text.data()) + ")",
                                       set.error()));
  }
  return {};
}

}  // namespace daemonkit::core
