#include "daemonkit/core/daemon/notify_message.h"

#include <fmt/format.h>

#include "daemonkit/core/status/status_message.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::core {

void NotifyReport::feed(std::string_view datagram) {
  while (!datagram.empty()) {
    const std::size_t end = datagram.find('\n');
    const std::string_view line = datagram.substr(0, end);
    datagram = end == std::string_view::npos ? std::string_view() : datagram.substr(end + 1);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (key == "READY") {
      if (value == "1") ready_ = true;
    } else if (key == "STATUS") {
      status_ = std::string(value);
    } else if (key == "ERRNO") {
      int number = 0;
      bool digits = !value.empty() && value.size() <= 6;
      for (char c : value) {
        if (c < '0' || c > '9') digits = false;
        if (digits) number = number * 10 + (c - '0');
      }
      if (digits && number > 0) errno_ = number;
    }
  }
}

std::string NotifyReport::failure_message() const {
  std::string text;
  if (status_) text = *status_;
  // A STATUS= that already names its errno (as daemonkit's readiness API writes it) says it all.
  if (errno_ && text.find(sys::errno_name(*errno_)) == std::string::npos) {
    const std::string cause =
        fmt::format("{}, {}", sys::errno_description(*errno_), sys::errno_name(*errno_));
    text = text.empty() ? cause : fmt::format("{} ({})", text, cause);
  }
  return sanitize_message(text, 512);
}

}  // namespace daemonkit::core
