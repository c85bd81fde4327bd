// The launcher's judgement, without I/O: from what it sees of the daemon (bytes on the status
// pipe, end of that pipe, sd_notify datagrams, the daemon's death, the clock) it decides when
// PROGRAM is ready or why it is not. The same rules serve the three --ready modes:
//   exec    the pipe closes when exec succeeds (it is CLOEXEC); a report on it is a failed step
//   notify  as exec, then READY=1 on the notify socket; death first fails with STATUS=/ERRNO=
//   pipe    PROGRAM itself writes "0" or "1 <message>" on the inherited pipe
// Keeping this pure means every path, including the races between death and end of pipe, is a
// unit test rather than a timing-dependent integration test.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "daemonkit/core/daemon/notify_message.h"

namespace daemonkit::core {

// How the launcher learns that PROGRAM is ready.
enum class ReadyMode {
  kExec,    // Ready once PROGRAM has been exec'd.
  kNotify,  // Ready on READY=1 sent to $NOTIFY_SOCKET (sd_notify's protocol).
  kPipe,    // PROGRAM writes the status-pipe protocol to $DAEMONKIT_STATUS_FD.
};

struct LaunchReady {
  friend bool operator==(const LaunchReady&, const LaunchReady&) = default;
};
struct LaunchFailed {
  std::string message;
  // The daemon may still be alive (it never got ready in time, or reported failure while it
  // runs on) and should be stopped.
  bool stop_daemon = false;
  // The message is PROGRAM's own report of its failure, made while it runs on: stopping it is
  // then cleanup, worth telling only if it came to SIGKILL.
  bool reported = false;
  friend bool operator==(const LaunchFailed&, const LaunchFailed&) = default;
};
using LaunchOutcome = std::variant<LaunchReady, LaunchFailed>;

class ReadinessWaiter {
 public:
  // How long, after the pipe closed without a report in pipe mode, to wait for the daemon's
  // death so the message can say how it died rather than only that it went silent.
  static constexpr std::chrono::milliseconds kDeathGrace{1000};

  // `program` is PROGRAM as the user typed it, for messages.
  ReadinessWaiter(ReadyMode mode, std::string program,
                  std::optional<std::chrono::milliseconds> timeout);

  // Bytes read from the status pipe.
  std::optional<LaunchOutcome> on_pipe_bytes(std::string_view bytes);
  // A read of the status pipe found it empty (EAGAIN) while its writer keeps it open. A report
  // is one write of at most 100 bytes, under PIPE_BUF and so atomic, and the launcher reads
  // more than that at once: what has been read is the whole report, and is judged now. Only in
  // pipe mode, where PROGRAM writes it and may keep the pipe open.
  std::optional<LaunchOutcome> on_pipe_drained();
  // The status pipe reached end of file. `daemon_alive` is false when the daemon has already
  // been reaped (its death is then passed to on_daemon_exit too).
  std::optional<LaunchOutcome> on_pipe_eof();
  // One datagram from the notify socket.
  std::optional<LaunchOutcome> on_notify(std::string_view datagram);
  // The intermediate process ended (it must exit 0 once it has forked the daemon).
  std::optional<LaunchOutcome> on_intermediate_exit(int wait_status);
  // The daemon (PROGRAM) ended, with its raw wait status.
  std::optional<LaunchOutcome> on_daemon_exit(int wait_status);
  // `elapsed` since the launch started; called whenever the loop wakes.
  std::optional<LaunchOutcome> on_time(std::chrono::milliseconds elapsed);

  // How long the loop may sleep from `elapsed` before on_time has something to decide, or
  // nothing to sleep until an event.
  [[nodiscard]] std::optional<std::chrono::milliseconds> wake_after(
      std::chrono::milliseconds elapsed) const;

  [[nodiscard]] bool pipe_open() const { return pipe_open_; }
  [[nodiscard]] bool wants_notify() const { return mode_ == ReadyMode::kNotify; }

 private:
  std::optional<LaunchOutcome> decide_report(bool whole);
  std::optional<LaunchOutcome> decide_death();
  [[nodiscard]] std::string death_message(int wait_status) const;
  [[nodiscard]] static std::string intermediate_death_message(int wait_status);

  ReadyMode mode_;
  std::string program_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::string report_;
  bool pipe_open_ = true;
  bool exec_done_ = false;  // the pipe closed without a report: exec happened (or death)
  std::optional<int> daemon_status_;
  std::optional<int> intermediate_status_;
  std::optional<std::chrono::milliseconds> silent_since_;  // pipe mode: EOF without report
  std::optional<std::chrono::milliseconds> now_;
  NotifyReport notify_;
};

// "exit status 3", "killed by signal 9 (SIGKILL)", "killed by signal 11 (SIGSEGV), core dumped".
[[nodiscard]] std::string describe_exit(int wait_status);

// A duration as a user writes it in seconds: "10", "0.25".
[[nodiscard]] std::string seconds_text(std::chrono::milliseconds duration);

}  // namespace daemonkit::core
