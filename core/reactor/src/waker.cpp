#include "daemonkit/core/reactor/internal/waker.h"

#include <sys/eventfd.h>

#include <cerrno>

namespace daemonkit::core {

sys::Result<void> Waker::open() {
  close();
  auto fd = sys_.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!fd) return sys::fail(fd.error());
  pending_.store(false, std::memory_order_seq_cst);
  fd_.store(*fd, std::memory_order_relaxed);
  return {};
}

void Waker::close() {
  const int fd = fd_.exchange(-1, std::memory_order_relaxed);
  // Never retried: after EINTR Linux has released the descriptor anyway.
  if (fd >= 0) (void)sys_.close(fd);
}

void Waker::wake_slow() noexcept {
  if (pending_.exchange(true, std::memory_order_seq_cst)) return;
  const int fd = fd_.load(std::memory_order_relaxed);
  if (fd < 0) return;
  const int saved_errno = errno;
  const std::uint64_t one = 1;
  (void)sys_.write(fd, &one, sizeof one);
  writes_.fetch_add(1, std::memory_order_relaxed);
  errno = saved_errno;
}

void Waker::drain() {
  const int fd = fd_.load(std::memory_order_relaxed);
  if (fd >= 0) {
    std::uint64_t count = 0;
    // One read resets an eventfd's counter; EAGAIN just means it was already empty.
    (void)sys_.read(fd, &count, sizeof count);
  }
}

}  // namespace daemonkit::core
