#include "daemonkit/sys/result.h"

#include <cstring>

namespace daemonkit::sys {

std::string errno_name(int code) {
  // glibc >= 2.32: the symbolic name, independent of the locale; null for unknown numbers.
  if (const char* name = ::strerrorname_np(code)) return name;
  return fmt::format("E?{}", code);
}

std::string errno_description(int code) {
  if (const char* text = ::strerrordesc_np(code)) return text;
  return fmt::format("Unknown error {}", code);
}

std::string to_string(const Error& error) {
  if (error.subject.empty()) {
    return fmt::format("{}: {} ({})", error.call, errno_description(error.code),
                       errno_name(error.code));
  }
  return fmt::format("{}({}): {} ({})", error.call, error.subject,
                     errno_description(error.code), errno_name(error.code));
}

}  // namespace daemonkit::sys
