#include "daemonkit/core/status/status_waiter.h"

#include <poll.h>
#include <sys/wait.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/status/wait_status.h"
#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {
namespace {

using Nanos = std::int64_t;

// A daemon's pipe reaches EOF while the kernel is still tearing the process down, a moment
// before waitpid can see it. The parent polls for that moment this often and this many times
// (about a tenth of a second at most), sleeping in poll so the fake kernel's clock governs it.
constexpr int kReapPollMs = 10;
constexpr int kReapPolls = 10;

Failed failed_call(std::string_view what, const sys::Error& error) {
  return Failed{sys::describe_failure(what, error.code), FailureCause::kIo};
}

sys::Result<Nanos> monotonic_now(sys::Syscalls& os) {
  return os.clock_gettime(CLOCK_MONOTONIC).map([](const struct timespec& t) {
    return static_cast<Nanos>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
  });
}

// Rounded up, so the last poll does not wake a fraction of a millisecond early and spin.
int poll_timeout_ms(Nanos remaining) {
  const Nanos ms = (remaining + 999'999) / 1'000'000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

std::string describe_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() > 0 && timeout.count() % 1000 == 0)
    return fmt::format("{} s", timeout.count() / 1000);
  return fmt::format("{} ms", timeout.count());
}

// The pipe closed with nothing in it. Says how the daemon ended where that can be known.
Failed closed_without_report(sys::Syscalls& os, std::optional<pid_t> pid) {
  constexpr std::string_view kExited = kDaemonExitedBeforeReporting;
  constexpr FailureCause kCause = FailureCause::kNoReport;
  if (!pid) return Failed{std::string(kExited), kCause};
  for (int attempt = 0;; ++attempt) {
    const sys::Result<sys::WaitResult> waited =
        sys::retry_on_eintr([&] { return os.waitpid(*pid, WNOHANG); });
    if (!waited) {
      // ECHILD is the ordinary case of a daemon that is not ours to wait for.
      if (waited.error().code == ECHILD) return Failed{std::string(kExited), kCause};
      return Failed{fmt::format("{} (how it ended is unknown: {})", kExited,
                                sys::describe_failure("waitpid", waited.error().code)),
                    kCause};
    }
    if (waited->pid == *pid) {
      return Failed{fmt::format("{}: {}", kExited, describe_wait_status(waited->status)), kCause};
    }
    if (attempt + 1 == kReapPolls) break;
    // A sleep: poll with no descriptors. Its failure only shortens the grace period.
    if (!os.poll(nullptr, 0, kReapPollMs)) break;
  }
  return Failed{"the daemon closed the status pipe without reporting its status", kCause};
}

StatusOutcome to_outcome(sys::Syscalls& os, const StatusDecodeResult& verdict,
                         std::optional<pid_t> pid) {
  if (std::holds_alternative<Ready>(verdict)) return Ready{};
  if (const auto* failed = std::get_if<Failed>(&verdict)) {
    if (failed->message.empty()) return Failed{"the daemon reported a failure without a message"};
    return *failed;
  }
  const StatusProtocolError kind = std::get<ProtocolError>(verdict).kind;
  if (kind == StatusProtocolError::kEmpty) return closed_without_report(os, pid);
  return Failed{fmt::format("the daemon sent an invalid status report: {}", describe(kind)),
                FailureCause::kProtocol};
}

StatusOutcome read_report(sys::Syscalls& os, int read_fd, const StatusWaitOptions& options) {
  std::optional<Nanos> deadline;
  if (options.timeout) {
    const sys::Result<Nanos> now = monotonic_now(os);
    if (!now) return failed_call("clock_gettime(CLOCK_MONOTONIC)", now.error());
    deadline = *now + std::chrono::nanoseconds(*options.timeout).count();
  }
  const auto timed_out = [&] {
    return Failed{fmt::format("{}{} waiting for the daemon to report its status",
                              kStatusTimeoutPrefix, describe_timeout(*options.timeout)),
                  FailureCause::kTimeout};
  };

  StatusDecoder decoder;
  std::array<char, kMaxStatusBytes> buffer{};
  std::size_t received = 0;
  while (received < kMaxStatusBytes) {
    if (deadline) {
      const sys::Result<Nanos> now = monotonic_now(os);
      if (!now) return failed_call("clock_gettime(CLOCK_MONOTONIC)", now.error());
      // A deadline already passed still polls once, without waiting: a report sitting in the
      // pipe is taken rather than declared late.
      const Nanos remaining = *now < *deadline ? *deadline - *now : 0;
      struct pollfd watch {
        read_fd, POLLIN, 0
      };
      const sys::Result<int> ready = os.poll(&watch, 1, poll_timeout_ms(remaining));
      // Interrupted: go round, so the remaining time is measured again.
      if (!ready && ready.error().code == EINTR) continue;
      if (!ready) return failed_call("poll(status pipe)", ready.error());
      // Linux's poll returns 0 only when the whole timeout passed, so no clock re-read is
      // needed (and a fake kernel need not move its clock for the timeout to fire).
      if (*ready == 0) return timed_out();
    }
    const sys::Result<std::size_t> got = sys::retry_on_eintr(
        [&] { return os.read(read_fd, buffer.data() + received, buffer.size() - received); });
    if (!got) return failed_call("read(status pipe)", got.error());
    if (*got == 0) break;
    const StatusDecodeResult verdict =
        decoder.feed(std::string_view(buffer.data() + received, *got));
    received += *got;
    // Bytes that cannot become a report are final: no reason to wait for more.
    if (std::holds_alternative<ProtocolError>(verdict)) break;
  }
  return to_outcome(os, decoder.finish(), options.pid);
}

}  // namespace

StatusOutcome wait_for_status(sys::Syscalls& os, int read_fd, int write_fd,
                              const StatusWaitOptions& options) {
  // Both are ours to close, on every way out (formatting a message may throw).
  OwnedFd reader(os, read_fd);
  OwnedFd writer(os, write_fd);
  if (writer) {
    // First, or the read below never sees EOF when the daemon dies (twisted#7745). A failed
    // close is fatal to the wait: if the descriptor might still be open, so might the hang.
    if (const sys::Result<void> closed = writer.close(); !closed) {
      return failed_call("close(status pipe write end)", closed.error());
    }
  }
  StatusOutcome outcome = read_report(os, reader.get(), options);
  // The outcome is decided; a failed close of a descriptor we are done with changes nothing.
  reader.reset();
  return outcome;
}

}  // namespace daemonkit::core
