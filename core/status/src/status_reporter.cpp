#include "daemonkit/core/status/status_reporter.h"

#include <signal.h>

#include <cerrno>
#include <string>

#include "daemonkit/core/status/status_codec.h"
#include "daemonkit/sys/error_text.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

StatusReporter::StatusReporter(sys::Syscalls& os, int write_fd) : os_(os), write_fd_(write_fd) {}

sys::Result<void> StatusReporter::ready() { return send(encode_ready()); }

sys::Result<void> StatusReporter::fail(std::string_view message) {
  return send(encode_failure(message));
}

sys::Result<void> StatusReporter::fail(std::string_view step, const sys::Error& error) {
  return fail(sys::describe_failure(step, error.code));
}

sys::Result<void> StatusReporter::send(std::string_view payload) {
  // The protocol has room for one report: a second would be read as trailing garbage, or
  // not at all once the parent has exited, and the descriptor is already closed.
  if (reported_) return sys::fail(EALREADY, "status report");
  reported_ = true;

  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  struct sigaction previous {};
  sys::Result<void> ignored = os_.sigaction(SIGPIPE, &ignore, &previous);

  // Sent even if SIGPIPE could not be ignored: the parent is blocked on this report, and a
  // SIGPIPE can only come from a parent that has already gone.
  // A pipe write of at most PIPE_BUF bytes is atomic: it writes everything or fails before
  // writing anything, so retrying on EINTR cannot duplicate bytes.
  const sys::Result<std::size_t> written =
      sys::retry_on_eintr([&] { return os_.write(write_fd_, payload.data(), payload.size()); });

  sys::Result<void> restored{};
  if (ignored) restored = os_.sigaction(SIGPIPE, &previous, nullptr);
  // Closing is what lets the parent see EOF after the report; never retried (see retry.h).
  sys::Result<void> closed = os_.close(write_fd_);

  if (!ignored) return ignored;
  if (!written) return sys::fail(written.error());
  // Only a descriptor that is not a pipe could take part of the payload; the parent would
  // then decode a cut report, so say so rather than claim success.
  if (*written != payload.size()) return sys::fail(EIO, "write");
  if (!restored) return restored;
  return closed;
}

}  // namespace daemonkit::core
