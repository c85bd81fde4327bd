// LogCapture: the daemon's own stdout or stderr, turned into log lines. A pipe replaces fd 1 (or
// 2); the loop reads its other end through a read-only StreamTransport and writes each line to
// the log as twistd does for print(): "[stdout#info] hello", "[stderr#error] oops".
//
// A line is logged when its '\n' arrives; a partial line waits for the rest, up to max_line
// bytes, beyond which what waits is logged as a line of its own (a program printing without
// newlines cannot make the daemon hold unbounded memory). What waits when every writer has
// closed the pipe is logged too: nothing the program printed is dropped.
//
// The pipe's write end stays blocking, as a program expects of its stdout: printf never loses
// output. Code on other threads then waits for the loop when the pipe (64 KiB) is full, which is
// the bound. The loop's own thread must not print more than that in one turn, or it waits for
// itself; its own lines should go to the log, not to stdout.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/reactor_error.h"
#include "daemonkit/core/reactor/stream_handler.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

enum class CapturedStream {
  kStdout,  // fd 1, logged as "stdout#info" at LogLevel::kInfo
  kStderr,  // fd 2, logged as "stderr#error" at LogLevel::kError
};

struct LogCaptureOptions {
  // A partial line longer than this is logged without waiting for its newline.
  std::size_t max_line = 8192;
};

class LogCapture final : public StreamHandler {
 public:
  // Makes a CLOEXEC pipe, puts its write end on fd 1 or 2 (dup2, which leaves that descriptor
  // inheritable so children print into the log too) and reads the other end on `reactor`.
  // `log` and `reactor` must outlive the capture. Fails with pipe2's, dup2's, fcntl's or
  // epoll_ctl's error; fd 1 or 2 is unchanged then unless dup2 succeeded.
  static ReactorResult<std::unique_ptr<LogCapture>> open(Reactor& reactor, sys::Syscalls& os,
                                                         LogObserver& log, CapturedStream stream,
                                                         LogCaptureOptions options = {});
  // Reads the pipe `read_end` (taken) instead of making one: for a caller that has put the
  // write end where it wants it already.
  static ReactorResult<std::unique_ptr<LogCapture>> adopt(Reactor& reactor, sys::Syscalls& os,
                                                          OwnedFd read_end, LogObserver& log,
                                                          CapturedStream stream,
                                                          LogCaptureOptions options = {});
  ~LogCapture() override;
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // False once every writer has closed the pipe (or reading it failed).
  [[nodiscard]] bool capturing() const { return transport_ != nullptr && transport_->connected(); }
  // Bytes of a partial line waiting for its newline.
  [[nodiscard]] std::size_t pending() const { return partial_.size(); }

  void data_received(std::span<const std::byte> data) override;
  void connection_lost(const LossReason& reason) override;

 private:
  LogCapture(LogObserver& log, CapturedStream stream, LogCaptureOptions options);
  void emit(std::string_view line);

  LogObserver& log_;
  CapturedStream stream_;
  LogCaptureOptions options_;
  std::string partial_;
  std::unique_ptr<StreamTransport> transport_;
};

}  // namespace daemonkit::core
