#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/hot_path.h"

#include <utility>

namespace daemonkit::core {

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    reset();
    os_ = other.os_;
    fd_ = other.release();
  }
  return *this;
}

int OwnedFd::release() noexcept { return std::exchange(fd_, -1); }

void OwnedFd::close_now() noexcept { (void)close(); }

DAEMONKIT_HOT sys::Result<void> OwnedFd::close() {
  if (fd_ < 0) return {};
  // Never retried (see the header): the descriptor is gone whatever close says.
  return os_->close(std::exchange(fd_, -1));
}

}  // namespace daemonkit::core
