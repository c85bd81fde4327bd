#include "hello_writer.h"

#include <cerrno>
#include <string>

#include "daemonkit/sys/retry.h"

namespace consumer {

daemonkit::sys::Result<void> write_greeting(daemonkit::sys::Syscalls& os, int fd,
                                            std::string_view name) {
  const std::string line = "hello, " + std::string(name) + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    auto wrote = daemonkit::sys::retry_on_eintr(
        [&] { return os.write(fd, line.data() + done, line.size() - done); });
    if (!wrote) return daemonkit::sys::fail(wrote.error());
    if (*wrote == 0) return daemonkit::sys::fail(EIO, "write");
    done += *wrote;
  }
  return {};
}

}  // namespace consumer
