#include "daemonkit/core/daemon/close_fds.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

// ---- May run between fork and exec: async-signal-safe, no allocation below this line. -------

struct Preserved {
  std::array<int, kMaxPreservedFds> fds{};
  std::size_t count = 0;

  [[nodiscard]] bool contains(int fd) const {
    return std::binary_search(fds.begin(), fds.begin() + count, fd);
  }
};

bool collect(std::span<const int> preserve, Preserved& out) {
  for (int fd : preserve) {
    if (fd < 0) continue;
    if (out.count == out.fds.size()) return false;
    out.fds[out.count++] = fd;
  }
  std::sort(out.fds.begin(), out.fds.begin() + out.count);
  out.count = static_cast<std::size_t>(std::unique(out.fds.begin(), out.fds.begin() + out.count) -
                                       out.fds.begin());
  return true;
}

// Closes the gaps between preserved descriptors: one close_range per gap, so the cost depends
// on the size of `keep`, never on RLIMIT_NOFILE. Stops at the first error.
sys::Result<void> close_gaps(sys::Syscalls& os, const Preserved& keep) {
  unsigned int low = 0;
  for (std::size_t i = 0; i < keep.count; ++i) {
    const auto fd = static_cast<unsigned int>(keep.fds[i]);
    if (fd > low) {
      if (auto done = os.close_range(low, fd - 1, 0); !done) return done;
    }
    low = fd + 1;
  }
  return os.close_range(low, ~0U, 0);
}

// linux_dirent64, as getdents64 lays it out.
struct DirentHeader {
  std::uint64_t ino;
  std::int64_t off;
  unsigned short reclen;
  unsigned char type;
};

bool parse_fd_name(const char* name, int& fd) {
  if (*name == '\0') return false;
  int value = 0;
  for (const char* p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    value = value * 10 + (*p - '0');
    if (value > (1 << 30)) return false;
  }
  fd = value;
  return true;
}

// Closing while listing is fine here: /proc/self/fd reads descriptors in numeric order from the
// directory offset, so closing ones already returned does not make the listing skip others.
sys::Result<void> close_listed(sys::Syscalls& os, const Preserved& keep) {
  auto opened = os.open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!opened) return sys::fail(opened.error());
  const OwnedFd dir(os, *opened);
  alignas(8) std::array<char, 4096> buffer{};
  for (;;) {
    auto got =
        sys::retry_on_eintr([&] { return os.getdents64(dir.get(), buffer.data(), buffer.size()); });
    if (!got) return sys::fail(got.error());
    if (*got == 0) break;
    std::size_t at = 0;
    while (at + sizeof(DirentHeader) <= *got) {
      DirentHeader header{};
      std::memcpy(&header, buffer.data() + at, sizeof(header));
      if (header.reclen == 0) break;
      const char* name = buffer.data() + at + offsetof(DirentHeader, type) + 1;
      int fd = -1;
      if (parse_fd_name(name, fd) && fd != dir.get() && !keep.contains(fd)) (void)os.close(fd);
      at += header.reclen;
    }
  }
  return {};
}

}  // namespace

sys::Result<CloseFdsOutcome> close_inherited_fds(sys::Syscalls& os, std::span<const int> preserve) {
  Preserved keep;
  if (!collect(preserve, keep)) return sys::fail(E2BIG, "close_range");
  CloseFdsOutcome outcome;

  auto ranged = close_gaps(os, keep);
  if (ranged) return outcome;
  if (ranged.error().code != ENOSYS && ranged.error().code != EPERM) {
    return sys::fail(ranged.error());
  }
  outcome.close_range_error = ranged.error();

  outcome.strategy = CloseFdsStrategy::kProcSelfFd;
  auto listed = close_listed(os, keep);
  if (listed) return outcome;
  outcome.proc_error = listed.error();

  outcome.strategy = CloseFdsStrategy::kBoundedLoop;
  auto limit = os.getrlimit(RLIMIT_NOFILE);
  if (!limit) return sys::fail(limit.error());
  const rlim_t soft = limit->rlim_cur;
  outcome.loop_bound = soft == RLIM_INFINITY || soft > kCloseLoopCap
                           ? kCloseLoopCap
                           : static_cast<unsigned int>(soft);
  for (unsigned int fd = 0; fd < outcome.loop_bound; ++fd) {
    const int as_int = static_cast<int>(fd);
    if (!keep.contains(as_int)) (void)os.close(as_int);
  }
  return outcome;
}

// ---- End of the async-signal-safe region. ---------------------------------------------------

std::string describe(const CloseFdsOutcome& outcome) {
  switch (outcome.strategy) {
    case CloseFdsStrategy::kCloseRange:
      return "closed inherited descriptors with close_range";
    case CloseFdsStrategy::kProcSelfFd:
      return fmt::format("closed inherited descriptors listed in /proc/self/fd (close_range: {})",
                         sys::to_string(outcome.close_range_error));
    case CloseFdsStrategy::kBoundedLoop:
      break;
  }
  return fmt::format(
      "degraded: closed descriptors 0..{} one by one, up to the soft RLIMIT_NOFILE "
      "(close_range: {}; /proc/self/fd: {})",
      outcome.loop_bound == 0 ? 0 : outcome.loop_bound - 1,
      sys::to_string(outcome.close_range_error), sys::to_string(outcome.proc_error));
}

}  // namespace daemonkit::core
