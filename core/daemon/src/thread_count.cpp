#include "daemonkit/core/daemon/thread_count.h"

#include <fcntl.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <string>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

std::optional<int> parse_status_threads(std::string_view status_text) {
  constexpr std::string_view kKey = "Threads:";
  std::size_t line_start = 0;
  while (line_start < status_text.size()) {
    std::size_t line_end = status_text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = status_text.size();
    std::string_view line = status_text.substr(line_start, line_end - line_start);
    if (line.substr(0, kKey.size()) == kKey) {
      line.remove_prefix(kKey.size());
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      int count = 0;
      const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), count);
      if (ec != std::errc{} || end != line.data() + line.size() || count < 1) return std::nullopt;
      return count;
    }
    line_start = line_end + 1;
  }
  return std::nullopt;
}

sys::Result<int> count_threads(sys::Syscalls& os) {
  auto opened =
      sys::retry_on_eintr([&] { return os.open("/proc/self/status", O_RDONLY | O_CLOEXEC, 0); });
  if (!opened) return sys::fail(opened.error().about("/proc/self/status"));
  OwnedFd fd(os, *opened);
  std::string text;
  std::array<char, 1024> buffer{};
  // The file is a few KiB; the cap only guards against a file that never ends.
  constexpr std::size_t kMaxBytes = std::size_t{64} * 1024;
  for (;;) {
    auto got = sys::retry_on_eintr([&] { return os.read(fd.get(), buffer.data(), buffer.size()); });
    if (!got) return sys::fail(got.error().about("/proc/self/status"));
    if (*got == 0 || text.size() >= kMaxBytes) break;
    text.append(buffer.data(), *got);
  }
  fd.reset();
  if (auto count = parse_status_threads(text)) return *count;
  return sys::fail(sys::Error{EINVAL, "read", "/proc/self/status"});
}

}  // namespace daemonkit::core
