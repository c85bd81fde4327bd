#include "daemonkit/core/app/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "daemonkit/core/daemon/log_file_rule.h"
#include "daemonkit/sys/retry.h"

namespace daemonkit::core {

StepResult<std::unique_ptr<LogFile>> LogFile::open(sys::Syscalls& os, std::string path,
                                                   LogFileOptions options) {
  if (!options.daemon_uid) {
    auto ids = os.getresuid();
    if (!ids) return step_failed(StepError::from(StepKind::kStdio, "getresuid", ids.error()));
    options.daemon_uid = ids->effective;
  }
  std::unique_ptr<LogFile> file(new LogFile(os, std::move(path), std::move(options)));
  auto opened = file->open_path(file->options_.mode);
  if (!opened) return step_failed(opened.error());
  file->take(std::move(*opened));
  return file;
}

LogFile::LogFile(sys::Syscalls& os, std::string path, LogFileOptions options)
    : os_(os), path_(std::move(path)), options_(std::move(options)) {}

LogFile::~LogFile() { drain(); }

// O_NOFOLLOW and the rule on the opened descriptor: see the header. O_NONBLOCK so that neither
// opening a FIFO nor writing to a full one ever waits; a regular file ignores it.
//
// O_EXCL first, to know whether this open made the file: a file it made gets exactly `mode`
// with fchmod on the descriptor, whatever the umask (which the daemon's 077 would otherwise
// make 0600 for the files rotation creates, unlike the first one, created before the fork).
// fchmod acts on what was opened, so nothing swapped in at PATH meanwhile is changed; Twisted
// flips the process's umask for this instead (#9215), under every other thread's feet.
StepResult<LogFile::Opened> LogFile::open_path(mode_t mode) {
  constexpr int kFlags =
      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
  bool created = true;
  auto fd = os_.open(path_.c_str(), kFlags | O_EXCL, mode);
  if (!fd && fd.error().code == EEXIST) {
    created = false;
    fd = os_.open(path_.c_str(), kFlags, mode);
  }
  if (!fd) {
    // ELOOP for a final symlink, and for a loop further up: told apart by the last component.
    if (fd.error().code == ELOOP) {
      if (auto last = os_.lstat(path_.c_str()); last && S_ISLNK(last->st_mode)) {
        return step_failed(StepError::plain(
            StepKind::kStdio, fmt::format("Log file {} {}", path_, log_file_symlink_refusal())));
      }
    }
    return step_failed(StepError::from(StepKind::kStdio, call_on("open", path_), fd.error()));
  }
  Opened opened{OwnedFd(os_, *fd)};
  if (created) {
    if (auto set = os_.fchmod(*fd, mode); !set) {
      return step_failed(StepError::from(StepKind::kStdio, call_on("fchmod", path_), set.error()));
    }
  }
  auto st = os_.fstat(*fd);
  if (!st)
    return step_failed(StepError::from(StepKind::kStdio, call_on("fstat", path_), st.error()));
  if (auto refusal = log_file_refusal(*st, *options_.daemon_uid)) {
    return step_failed(
        StepError::plain(StepKind::kStdio, fmt::format("Log file {} {}", path_, *refusal)));
  }
  opened.regular = S_ISREG(st->st_mode);
  opened.size = opened.regular ? static_cast<std::uint64_t>(st->st_size) : 0;
  opened.mode = st->st_mode & 07777;
  return opened;
}

void LogFile::take(Opened opened) {
  fd_ = std::move(opened.fd);  // closes the old one
  regular_ = opened.regular;
  size_ = opened.size;
  mode_ = opened.mode;
  next_rotation_try_ = 0;
}

std::string LogFile::stamped(std::string_view text) const {
  return format_log_line(wall_clock_now(os_), "-", text, options_.utc_offset);
}

void LogFile::emit(LogLevel, std::string_view system, std::string_view text) {
  push(format_log_line(wall_clock_now(os_), system, text, options_.utc_offset));
}

void LogFile::write_lines(std::string_view lines) {
  while (!lines.empty()) {
    const auto end = lines.find('\n');
    const auto length = end == std::string_view::npos ? lines.size() : end;
    std::string line(lines.substr(0, length));
    line += '\n';
    push(std::move(line));
    lines.remove_prefix(end == std::string_view::npos ? lines.size() : end + 1);
  }
}

bool LogFile::flush() {
  drain();
  return backlog_.empty();
}

// The backlog keeps the oldest lines and drops the newest: what is in the file and what waits
// then read on without a hole, and the one hole, where the dropped lines would have been, is
// marked by the line that counts them, queued before the first line accepted again.
void LogFile::push(std::string line) {
  const auto fits = [&] {
    return backlog_.empty() || backlog_bytes_ + line.size() <= options_.backlog_limit;
  };
  if (!fits()) drain();
  if (!fits()) {
    ++lines_lost_;
    ++lines_lost_total_;
    return;
  }
  mark_losses();
  backlog_bytes_ += line.size();
  backlog_.push_back(std::move(line));
  drain();
}

void LogFile::mark_losses() {
  if (lines_lost_ == 0) return;
  std::string why = last_error_ ? fmt::format(" ({})", *last_error_) : std::string();
  std::string marker =
      stamped(fmt::format("{} log line{} lost{}", lines_lost_, lines_lost_ == 1 ? "" : "s", why));
  backlog_bytes_ += marker.size();
  backlog_.push_back(std::move(marker));
  lines_lost_ = 0;
}

bool LogFile::due_for_rotation(std::size_t next_line) const {
  return regular_ && options_.rotate_length > 0 && size_ > 0 &&
         size_ + next_line > options_.rotate_length && size_ >= next_rotation_try_;
}

void LogFile::drain() {
  if (draining_ || !fd_) return;  // a line queued while draining is written by this loop
  draining_ = true;
  while (true) {
    if (backlog_.empty()) {
      // The losses are reported as soon as everything before them is written, not only when
      // the next line comes.
      if (lines_lost_ == 0) break;
      mark_losses();
    }
    if (head_written_ == 0) {
      // Between two whole lines: the one place a rotation or reopen may happen.
      if (pending_ != Action::kNone) {
        const Action action = std::exchange(pending_, Action::kNone);
        (void)act(action);
      } else if (due_for_rotation(backlog_.front().size())) {
        // Failed: not again before another rotate_length bytes, counted after the line
        // that reports the failure (now at the front).
        if (!act(Action::kRotate)) {
          next_rotation_try_ = size_ + backlog_.front().size() + options_.rotate_length;
        }
      }
    }
    const std::string& head = backlog_.front();
    auto wrote = sys::retry_on_eintr([&] {
      return os_.write(fd_.get(), head.data() + head_written_, head.size() - head_written_);
    });
    if (!wrote) {
      last_error_ = wrote.error().about(path_);
      break;
    }
    if (*wrote == 0) break;  // no progress and no error: try again later, never spin
    size_ += *wrote;
    head_written_ += *wrote;
    if (head_written_ == head.size()) {
      backlog_bytes_ -= head.size();
      backlog_.pop_front();
      head_written_ = 0;
    }
  }
  draining_ = false;
}

StepResult<void> LogFile::rotate() {
  if (!regular_) return {};
  if (head_written_ > 0) {
    pending_ = Action::kRotate;
    return {};
  }
  auto done = act(Action::kRotate);
  drain();
  return done;
}

StepResult<void> LogFile::reopen() {
  if (head_written_ > 0) {
    pending_ = Action::kReopen;
    return {};
  }
  auto done = act(Action::kReopen);
  drain();
  return done;
}

StepResult<void> LogFile::act(Action action) {
  auto done = action == Action::kRotate ? rotate_now() : reopen_now();
  if (!done) {
    // Written first, before the line that was waiting: it explains what follows.
    std::string line = stamped(fmt::format("Log file {} not {}: {}", path_,
                                           action == Action::kRotate ? "rotated" : "reopened",
                                           done.error().message));
    backlog_bytes_ += line.size();
    backlog_.push_front(std::move(line));
  }
  return done;
}

std::string LogFile::archive(std::size_t n) const { return fmt::format("{}.{}", path_, n); }

// rename and unlink act on the name itself and never follow it, so whatever the daemon's user
// planted among the archives is moved or deleted, never what it points at.
sys::Result<void> LogFile::shift_archives() {
  std::size_t top = options_.max_archives;
  if (top > 0) {
    if (auto r = os_.unlink(archive(top).c_str()); !r && r.error().code != ENOENT) {
      return sys::fail(r.error().about(archive(top)));
    }
  } else {
    // Unlimited: the archives present are PATH.1 … PATH.<top>, numbered without a gap.
    while (os_.lstat(archive(top + 1).c_str())) ++top;
    ++top;
  }
  for (std::size_t n = top - 1; n >= 1; --n) {
    if (auto r = os_.rename(archive(n).c_str(), archive(n + 1).c_str());
        !r && r.error().code != ENOENT) {
      return sys::fail(r.error().about(archive(n)));
    }
  }
  return {};
}

StepResult<void> LogFile::rotate_now() {
  if (!regular_) return {};
  if (auto shifted = shift_archives(); !shifted) {
    return step_failed(StepError::from(
        StepKind::kStdio, call_on(shifted.error().call, shifted.error().subject), shifted.error()));
  }
  if (auto moved = os_.rename(path_.c_str(), archive(1).c_str()); !moved) {
    return step_failed(StepError::from(StepKind::kStdio, call_on("rename", path_), moved.error()));
  }
  // From here the old descriptor names PATH.1; if no new PATH can be had, lines go on into it.
  auto opened = open_path(mode_);
  if (!opened) return step_failed(opened.error());
  take(std::move(*opened));
  return {};
}

StepResult<void> LogFile::reopen_now() {
  auto opened = open_path(mode_);
  if (!opened) return step_failed(opened.error());
  take(std::move(*opened));
  return {};
}

}  // namespace daemonkit::core
