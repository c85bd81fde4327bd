#include "daemonkit/core/status/terminal_text.h"

#include <cerrno>
#include <cstddef>
#include <limits>

#include "daemonkit/core/status/status_message.h"

namespace daemonkit::core {

std::string terminal_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (;;) {
    const std::size_t newline = text.find('\n');
    out += sanitize_message(text.substr(0, newline), std::numeric_limits<std::size_t>::max());
    if (newline == std::string_view::npos) break;
    out += '\n';
    text.remove_prefix(newline + 1);
  }
  return out;
}

void print(sys::Syscalls& os, int fd, std::string_view text) {
  const std::string safe = terminal_text(text);
  std::string_view rest = safe;
  while (!rest.empty()) {
    auto n = os.write(fd, rest.data(), rest.size());
    if (!n) {
      if (n.error().code == EINTR) continue;
      return;
    }
    rest.remove_prefix(*n);
  }
}

}  // namespace daemonkit::core
