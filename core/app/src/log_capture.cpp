#include "daemonkit/core/app/log_capture.h"

#include <fcntl.h>

#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

ReactorResult<std::unique_ptr<LogCapture>> LogCapture::open(Reactor& reactor, sys::Syscalls& os,
                                                            LogObserver& log, CapturedStream stream,
                                                            LogCaptureOptions options) {
  auto pipe = os.pipe2(O_CLOEXEC);
  if (!pipe) return reactor_fail(pipe.error());
  OwnedFd read_end(os, pipe->read_end);
  OwnedFd write_end(os, pipe->write_end);
  // With 0-2 closed (a careless launcher), the pipe's own ends are given those numbers: the
  // write end could be the target itself, and the read end would be clobbered by the dup2.
  // Both move above 2 first (twistd lost its log this way: H4).
  for (OwnedFd* end : {&read_end, &write_end}) {
    if (end->get() > 2) continue;
    auto moved = os.fcntl(end->get(), F_DUPFD_CLOEXEC, 3);
    if (!moved) return reactor_fail(moved.error());
    *end = OwnedFd(os, *moved);
  }
  const int target = stream == CapturedStream::kStdout ? 1 : 2;
  if (auto put = os.dup2(write_end.get(), target); !put) return reactor_fail(put.error());
  return adopt(reactor, os, std::move(read_end), log, stream, options);
}

ReactorResult<std::unique_ptr<LogCapture>> LogCapture::adopt(Reactor& reactor, sys::Syscalls& os,
                                                             OwnedFd read_end, LogObserver& log,
                                                             CapturedStream stream,
                                                             LogCaptureOptions options) {
  std::unique_ptr<LogCapture> capture(new LogCapture(log, stream, options));
  StreamOptions stream_options;
  stream_options.direction = StreamDirection::kReadOnly;
  auto transport =
      StreamTransport::open(reactor, os, std::move(read_end), *capture, stream_options);
  if (!transport) return tl::unexpected(transport.error());
  capture->transport_ = std::move(*transport);
  return capture;
}

LogCapture::LogCapture(LogObserver& log, CapturedStream stream, LogCaptureOptions options)
    : log_(log), stream_(stream), options_(options) {}

LogCapture::~LogCapture() {
  transport_.reset();
  if (!partial_.empty()) emit(std::exchange(partial_, {}));
}

void LogCapture::emit(std::string_view line) {
  if (stream_ == CapturedStream::kStdout) {
    log_.emit(LogLevel::kInfo, "stdout#info", line);
  } else {
    log_.emit(LogLevel::kError, "stderr#error", line);
  }
}

void LogCapture::data_received(std::span<const std::byte> data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  while (!text.empty()) {
    const auto newline = text.find('\n');
    if (newline == std::string_view::npos) {
      // No newline yet: wait for it, but never for more than max_line bytes.
      while (partial_.size() + text.size() >= options_.max_line && options_.max_line > 0) {
        const std::size_t take = options_.max_line - partial_.size();
        partial_.append(text.substr(0, take));
        emit(std::exchange(partial_, {}));
        text.remove_prefix(take);
      }
      partial_.append(text);
      return;
    }
    if (partial_.empty()) {
      emit(text.substr(0, newline));
    } else {
      partial_.append(text.substr(0, newline));
      emit(std::exchange(partial_, {}));
    }
    text.remove_prefix(newline + 1);
  }
}

void LogCapture::connection_lost(const LossReason& reason) {
  if (!partial_.empty()) emit(std::exchange(partial_, {}));
  if (!reason.clean()) {
    log_.emit(LogLevel::kError, "-",
              fmt::format("Stopped capturing {}: {}",
                          stream_ == CapturedStream::kStdout ? "stdout" : "stderr", reason));
  }
}

}  // namespace daemonkit::core
