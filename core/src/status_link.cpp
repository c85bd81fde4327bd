// Interim status-pipe link, written to design §4's wire format ("0", or "1 <message>" in at most
// 100 bytes, one write) until the status-pipe component lands; then this file delegates to it.
#include "status_link.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <cerrno>

#include <fmt/format.h>

#include "daemonkit/core/step_error.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

constexpr std::size_t kMaxStatusBytes = 100;

std::string make_safe(std::string_view message, std::size_t max_bytes) {
  std::string out;
  for (unsigned char c : message) {
    std::string unit = (c < 0x20 || c >= 0x7f) ? fmt::format("\\x{:02x}", c) : std::string(1, char(c));
    if (out.size() + unit.size() > max_bytes) break;
    out += unit;
  }
  return out;
}

sys::Result<void> send(sys::Syscalls& os, int fd, std::string_view payload) {
  // A parent that has gone away must not kill the daemon with SIGPIPE.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  const bool swapped = static_cast<bool>(os.sigaction(SIGPIPE, &ignore, &previous));
  auto wrote = sys::retry_on_eintr([&] { return os.write(fd, payload.data(), payload.size()); });
  if (swapped) (void)os.sigaction(SIGPIPE, &previous, nullptr);
  (void)os.close(fd);
  if (!wrote) return sys::fail(wrote.error());
  return {};
}

}  // namespace

sys::Result<void> report_ready(sys::Syscalls& os, int fd) { return send(os, fd, "0"); }

sys::Result<void> report_failure(sys::Syscalls& os, int fd, std::string_view message) {
  return send(os, fd, "1 " + make_safe(message, kMaxStatusBytes - 2));
}

ParentVerdict wait_for_daemon(sys::Syscalls& os, int read_fd, pid_t intermediate,
                              std::optional<int> timeout_ms) {
  auto failed = [](std::string_view why) {
    return ParentVerdict{1, fmt::format("An error has occurred: {}\n"
                                        "Please look at log file for more information.\n",
                                        why)};
  };
  std::string got;
  std::array<char, kMaxStatusBytes> buffer{};
  while (got.size() < kMaxStatusBytes) {
    if (timeout_ms) {
      struct pollfd pfd {read_fd, POLLIN, 0};
      auto ready = sys::retry_on_eintr([&] { return os.poll(&pfd, 1, *timeout_ms); });
      if (!ready) return failed(StepError::from("poll", ready.error()).message);
      if (*ready == 0) {
        return failed(fmt::format("the daemon did not report within {} ms", *timeout_ms));
      }
    }
    auto n = sys::retry_on_eintr(
        [&] { return os.read(read_fd, buffer.data(), kMaxStatusBytes - got.size()); });
    if (!n) return failed(StepError::from("read(status pipe)", n.error()).message);
    if (*n == 0) break;
    got.append(buffer.data(), *n);
  }
  if (got == "0") return ParentVerdict{0, {}};
  if (got.size() >= 2 && got[0] == '1' && got[1] == ' ') {
    return failed(make_safe(std::string_view(got).substr(2), kMaxStatusBytes));
  }
  if (!got.empty()) return failed("the daemon sent a malformed status");

  // EOF before any byte: every write end is closed, so both children are gone or going.
  auto reaped = sys::retry_on_eintr([&] { return os.waitpid(intermediate, 0); });
  if (reaped && WIFEXITED(reaped->status) && WEXITSTATUS(reaped->status) != 0) {
    const int code = WEXITSTATUS(reaped->status);
    const bool fork_failed = (code & kIntermediateForkFailed) != 0;
    const int error = code & ~kIntermediateForkFailed;
    return failed(StepError::from(fork_failed ? "fork" : "setsid",
                                  sys::Error{error, fork_failed ? "fork" : "setsid", {}})
                      .message);
  }
  if (reaped && WIFSIGNALED(reaped->status)) {
    return failed(fmt::format("the intermediate process was killed by signal {}",
                              WTERMSIG(reaped->status)));
  }
  return failed("the daemon exited before reporting its status");
}

}  // namespace daemonkit::core
