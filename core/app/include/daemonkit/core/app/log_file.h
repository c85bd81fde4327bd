// LogFile: the daemon's log file, rotated by size and on demand, reopened for logrotate, and
// written so that the loop never waits for long and no line is lost without a word.
//
// Rotation (Twisted's LogFile, without its footguns): before a line that would take the file
// past rotate_length (1,000,000 bytes, Twisted's default), the file becomes PATH.1, the
// archives before it move up one (PATH.1 → PATH.2, …) and a new PATH is started. Rotation
// happens only between whole lines, so no line is ever split between two files. At most
// max_archives archives are kept (10 by default; Twisted keeps every one and renames them all at
// each rotation, #9122): the oldest, PATH.<max_archives>, is deleted to make room.
//
// Mode: a new log file is created 0640 (owner writes, the owner's group — `adm` on Debian —
// reads, nobody else: a log carries client addresses and error text), exactly, whatever the
// umask: the daemon's umask (077 by default) is for the files the application makes, and
// would otherwise make the files rotation creates 0600 while the first one, created before
// the fork, is 0640 (what twistd does). A file that already exists keeps its mode, and so does
// every archive (rename keeps it); the file started by a rotation or a reopen gets the mode of
// the one it replaces, so a log stays what the operator made it.
//
// Opening as root: the daemon's user may be able to write to the log's directory, and plant a
// symbolic link or a hard link at PATH pointing at a file of root's. The last component is
// never followed (O_NOFOLLOW), and what was opened is judged on the descriptor by the rule
// `daemonkit run --logfile` uses (log_file_refusal: a regular file with one link, owned by root
// or the daemon's user; a FIFO; a character device of root's). Every (re)open does the same.
// A FIFO or a device is written but never rotated.
//
// Errors (a full disk, EDQUOT, EIO, a FIFO nobody drains): a line that cannot be written is
// kept, in order, in a backlog of at most backlog_limit bytes, and written before any later
// line once the file takes writes again (at the next line, at flush(), or in the new file
// after reopen/rotate). Lines that do not fit are dropped and counted, and where they would
// have been the log says "<N> log lines lost (<why>)", so a reader sees the gap. Writes are
// plain write(2)s to a local file: each line costs one call, and a failing one costs no more.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/app/log_format.h"
#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct LogFileOptions {
  // Rotate before a line that would take the file past this many bytes; 0: never by size.
  std::size_t rotate_length = 1'000'000;
  // Archives kept (PATH.1 … PATH.<max_archives>); 0 keeps every one.
  std::size_t max_archives = 10;
  // The mode of a new log file, exactly (see above).
  mode_t mode = 0640;
  // The user the daemon will run as, who must not be able to choose what the log is (see
  // log_file_refusal); unset: the caller's effective uid.
  std::optional<uid_t> daemon_uid = std::nullopt;
  // Bytes of lines kept while the file takes no writes; beyond it lines are counted as lost.
  std::size_t backlog_limit = 256 * 1024;
  // How far the timestamps are from UTC (see log_format.h).
  std::chrono::minutes utc_offset{0};
};

class LogFile final : public LogObserver {
 public:
  // Opens (or creates) `path`, which should be absolute (it is reopened by that name after a
  // chdir). The failure names the path: "open(/var/log/x.log): Permission denied (EACCES)" or
  // "Log file /var/log/x.log is a symbolic link; refused (never followed)".
  static StepResult<std::unique_ptr<LogFile>> open(sys::Syscalls& os, std::string path,
                                                   LogFileOptions options = {});
  ~LogFile() override;
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // One event as twistd's classic line (format_log_line), stamped now.
  void emit(LogLevel level, std::string_view system, std::string_view text) override;
  // Complete lines, each ending in '\n', written as they are (a missing final '\n' is added).
  void write_lines(std::string_view lines);
  // Tries again to write what the backlog holds. True when it is empty.
  bool flush();

  // SIGUSR1: rotates now, whatever the size, if the file is a regular file (a no-op success
  // for a FIFO or a device). On failure (the daemon's user may not rename in the log's
  // directory once privileges are shed) the daemon writes on into the file it has, and the
  // error is returned and written in the log.
  StepResult<void> rotate();
  // SIGHUP, for logrotate and friends, which renamed the file away: opens PATH again (created
  // if missing, with the current file's mode) and closes the old one. The backlog goes to the
  // new file. On failure the old descriptor is kept and written on, and the error returned and
  // logged. For both: while a line is half written (a short write on a full disk) the action
  // waits until the line is whole, so that no line is split between two files.
  StepResult<void> reopen();

  [[nodiscard]] const std::string& path() const { return path_; }
  // Bytes in the current file, as this object counts them (the size at open, plus its writes).
  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] std::size_t backlog_bytes() const { return backlog_bytes_; }
  // Lines dropped since open, whose loss the log reports (or will, once it can write).
  [[nodiscard]] std::uint64_t lines_lost() const { return lines_lost_total_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  LogFile(sys::Syscalls& os, std::string path, LogFileOptions options);

  // Opens PATH under the rules above: the descriptor, its size, whether it is a regular file.
  struct Opened {
    OwnedFd fd;
    std::uint64_t size = 0;
    mode_t mode = 0;
    bool regular = false;
  };
  StepResult<Opened> open_path(mode_t mode);
  void take(Opened opened);
  // Queues one complete line (or counts it lost), then writes what it can.
  void push(std::string line);
  // Queues the line that reports the lines lost so far, if any.
  void mark_losses();
  // Writes the backlog's lines in order until one fails; rotates between lines.
  void drain();
  [[nodiscard]] bool due_for_rotation(std::size_t next_line) const;
  enum class Action { kNone, kRotate, kReopen };
  // Runs `action` now (no line is half written); a failure is also written in the log.
  StepResult<void> act(Action action);
  StepResult<void> rotate_now();
  StepResult<void> reopen_now();
  sys::Result<void> shift_archives();
  [[nodiscard]] std::string archive(std::size_t n) const;
  [[nodiscard]] std::string stamped(std::string_view text) const;

  sys::Syscalls& os_;
  std::string path_;
  LogFileOptions options_;
  OwnedFd fd_;
  bool regular_ = false;
  mode_t mode_ = 0;
  std::uint64_t size_ = 0;
  // Size-driven rotation is not tried again before the file reaches this size after a failed
  // one, so a directory the daemon cannot rename in costs one try per rotate_length bytes.
  std::uint64_t next_rotation_try_ = 0;

  std::deque<std::string> backlog_;  // whole lines, '\n'-terminated, oldest first
  std::size_t backlog_bytes_ = 0;
  std::size_t head_written_ = 0;    // bytes of backlog_.front() already in the file
  Action pending_ = Action::kNone;  // asked for while a line was half written
  std::uint64_t lines_lost_ = 0;    // dropped and not yet reported
  std::uint64_t lines_lost_total_ = 0;
  std::optional<sys::Error> last_error_;  // the last write failure: why lines wait or are lost
  bool draining_ = false;
};

}  // namespace daemonkit::core
