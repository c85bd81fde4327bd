#include "child_logger.h"

#include <fmt/format.h>

void ChildLogger::emit(int child_fd, std::string_view line) {
  log_(fmt::format("{}: {}", child_fd == 2 ? "err" : "out", line));
}

void ChildLogger::child_data_received(int child_fd, std::span<const std::byte> data) {
  std::string& pending = partial_[child_fd];
  pending.append(reinterpret_cast<const char*>(data.data()), data.size());
  std::size_t start = 0;
  for (std::size_t nl = pending.find('\n'); nl != std::string::npos;
       nl = pending.find('\n', start)) {
    std::string_view line(pending.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // a terminal's "\r\n"
    emit(child_fd, line);
    start = nl + 1;
  }
  pending.erase(0, start);
}

void ChildLogger::child_connection_lost(int child_fd) {
  // A last line without its newline is still a line.
  auto it = partial_.find(child_fd);
  if (it != partial_.end() && !it->second.empty()) emit(child_fd, it->second);
  if (it != partial_.end()) partial_.erase(it);
}

void ChildLogger::process_ended(const daemonkit::core::ProcessEnd& end) {
  end_ = end;
  log_(fmt::format("child ended: {}", end.describe()));
  if (on_end_) on_end_();
}
