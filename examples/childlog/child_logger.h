// ChildLogger: the protocol of the childlog example. It streams a child's stdout and stderr,
// one line at a time, into a log ("out: ..." / "err: ..."), and remembers how the child ended.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/process/process.h"

class ChildLogger : public daemonkit::core::ProcessProtocol {
 public:
  using Sink = std::function<void(std::string_view line)>;
  // `on_end` runs once the child has ended and its output has all been logged.
  ChildLogger(Sink log, std::function<void()> on_end)
      : log_(std::move(log)), on_end_(std::move(on_end)) {}

  void child_data_received(int child_fd, std::span<const std::byte> data) override;
  void child_connection_lost(int child_fd) override;
  void process_ended(const daemonkit::core::ProcessEnd& end) override;

  [[nodiscard]] const std::optional<daemonkit::core::ProcessEnd>& end() const { return end_; }

 private:
  void emit(int child_fd, std::string_view line);

  Sink log_;
  std::function<void()> on_end_;
  std::map<int, std::string> partial_;  // an unfinished line per descriptor
  std::optional<daemonkit::core::ProcessEnd> end_;
};
