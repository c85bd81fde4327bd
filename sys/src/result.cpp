#include "daemonkit/sys/result.h"

#include <cstring>

#include "daemonkit/sys/error_text.h"

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

std::string call_on(std::string_view call, std::string_view subject) {
  return fmt::format("{}({})", call, subject);
}

std::string describe_failure(std::string_view what, int code) {
  return fmt::format("{}: {} ({})", what, errno_description(code), errno_name(code));
}

std::string to_string(const Error& error) {
  if (error.subject.empty()) return describe_failure(error.call, error.code);
  return describe_failure(call_on(error.call, error.subject), error.code);
}

}  // namespace daemonkit::sys
