// Readiness: one ready() / fail() for every way a daemon's starter can be waiting. It writes the
// status pipe when the daemonizer made one (a shell, Type=forking) and speaks sd_notify to
// $NOTIFY_SOCKET when a service manager set it (Type=notify), so one daemon serves all three.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/step_error.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// ---- sd_notify, pure parts ------------------------------------------------------------------

// One sd_notify datagram's worth of state. Unset fields are not sent.
struct NotifyState {
  bool ready = false;
  bool stopping = false;
  std::optional<std::string> status;  // a single line: newlines become spaces
  std::optional<int> error_number;    // ERRNO=
  std::optional<pid_t> main_pid;      // MAINPID=, when the process that reports is not the main
};

// "READY=1\nSTATUS=...\nERRNO=...\nMAINPID=...\n": newline-separated assignments, in a fixed
// order, each line ending in '\n'. Control bytes in STATUS become spaces, so a message can
// neither end the line nor forge another key.
[[nodiscard]] std::string format_notify(const NotifyState& state);

// Where to send: "/path" is a filesystem socket, "@name" an abstract one (a leading NUL byte in
// sun_path, and a length that counts only the name). Other forms (vsock:) and names that do not
// fit sun_path are refused with a message.
struct NotifyAddress {
  sockaddr_un address{};
  socklen_t length = 0;
};
[[nodiscard]] StepResult<NotifyAddress> notify_address(std::string_view notify_socket);

// Sends one datagram from a fresh CLOEXEC socket, closed afterwards (MSG_NOSIGNAL: a
// notification must never kill the daemon).
[[nodiscard]] sys::Result<void> send_notify(sys::Syscalls& os, const NotifyAddress& to,
                                            std::string_view datagram);

// ---- The one API ----------------------------------------------------------------------------

class Readiness {
 public:
  struct Options {
    // The daemon's write end of the status pipe, or -1. Readiness owns it and closes it after
    // the one report.
    int status_fd = -1;
    // $NOTIFY_SOCKET, from Environment.
    std::optional<std::string> notify_socket;
    // Sent as MAINPID= with READY=1: set it when the reporting process is not the one the
    // service manager started (it forked).
    std::optional<pid_t> main_pid;
    LogSink log;
  };

  Readiness(sys::Syscalls& os, Options options);

  // Startup finished: "0" on the status pipe; READY=1 (+ STATUS=, MAINPID=) to the manager.
  // Returns the first error of the two channels after trying both; each is also logged.
  sys::Result<void> ready(std::string_view status = {});
  // Startup failed: "1 <message>" on the pipe; STATUS=<message> and ERRNO=<n> (when not 0).
  sys::Result<void> fail(std::string_view message, int error_number = 0);
  sys::Result<void> fail(const StepError& error) {
    return fail(error.message, error.error_number());
  }
  // Gives up the status pipe's write end (or -1) without reporting: whoever takes it reports.
  [[nodiscard]] int take_status_fd() { return std::exchange(options_.status_fd, -1); }
  // Only the first ready()/fail() reaches the status pipe; later ones still reach sd_notify.
  [[nodiscard]] bool reported() const { return reported_; }
  [[nodiscard]] bool has_status_pipe() const { return options_.status_fd >= 0; }
  // Why the report on the status pipe failed, if it did (sd_notify errors are not kept: the
  // manager applies its own timeout, while the waiting parent acts on what it did not hear).
  [[nodiscard]] const std::optional<sys::Error>& pipe_error() const { return pipe_error_; }

 private:
  sys::Result<void> report_pipe(bool ok, std::string_view message);
  sys::Result<void> report_notify(const NotifyState& state);

  sys::Syscalls& os_;
  Options options_;
  bool reported_ = false;
  std::optional<sys::Error> pipe_error_;
};

}  // namespace daemonkit::core
