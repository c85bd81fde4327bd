#include "daemonkit/core/base/write_text.h"

#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

void write_text(sys::Syscalls& os, int fd, std::string_view text) {
  while (!text.empty()) {
    auto wrote = sys::retry_on_eintr([&] { return os.write(fd, text.data(), text.size()); });
    if (!wrote || *wrote == 0) return;
    text.remove_prefix(*wrote);
  }
}

}  // namespace daemonkit::core
