// Notifier: the daemon's side of sd_notify, for a daemon on a reactor (Type=notify): READY=1
// once started, STOPPING=1 when it begins to stop, STATUS= lines, and the WATCHDOG=1
// keep-alives a unit with WatchdogSec= expects, on a timer at half of $WATCHDOG_USEC.
//
// The datagrams are core/daemon's (format_notify, notify_address: the same rules `daemonkit
// run` applies when it reads them). Unlike Readiness, which sends once at start-up, the
// notifier keeps one socket for the daemon's life and never waits: the socket is non-blocking
// and every send is MSG_DONTWAIT, so a manager that does not read (a full queue) costs a dropped
// datagram, not a stalled loop. A failed send is never fatal and is logged once: the first
// failure after a success (or the first ever) is written, later ones only counted, so a
// keep-alive every few seconds cannot flood the log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, read at the edge (main) so that tests give
// any values and the process's own environment is never consulted below.
struct NotifyVariables {
  std::optional<std::string> notify_socket;
  std::optional<std::string> watchdog_usec;
  std::optional<std::string> watchdog_pid;

  // Picks the three out of a NULL-terminated "KEY=VALUE" array such as `environ`; an empty
  // value counts as unset, as sd_notify reads them.
  [[nodiscard]] static NotifyVariables from_envp(const char* const* envp);
};

class Notifier {
 public:
  // Nothing is sent yet. A NOTIFY_SOCKET that is neither a path nor an '@' name, or a
  // WATCHDOG_USEC that is not a positive number of microseconds, is logged here and ignored.
  // The keep-alives are for this process only when WATCHDOG_PID is unset or names it
  // (sd_watchdog_enabled's rule: the variables may have been inherited from the daemon's
  // parent). `reactor` and `os` must outlive the notifier.
  Notifier(Reactor& reactor, sys::Syscalls& os, const NotifyVariables& variables, LogSink log = {});
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Whether a service manager listens (a usable NOTIFY_SOCKET): without one every call below
  // does nothing and succeeds.
  [[nodiscard]] bool enabled() const { return address_.has_value(); }
  // Half of WATCHDOG_USEC, when the keep-alives are this process's to send.
  [[nodiscard]] std::optional<Duration> watchdog_interval() const { return keepalive_; }

  // READY=1 (and STATUS=, when given), then WATCHDOG=1 every watchdog_interval() until
  // stopping(): the manager arms the watchdog once the service is up.
  bool ready(std::string_view status = {});
  // The keep-alives alone, for a daemon whose READY=1 went out by another way (DaemonContext's
  // report, which also names the main pid): as ready() without the datagram.
  void start_keep_alives();
  // STOPPING=1 (and STATUS=); the keep-alives end, as the manager stops watching then.
  bool stopping(std::string_view status = {});
  // STATUS=<text> alone, one line (control bytes become spaces).
  bool status(std::string_view text);
  // One WATCHDOG=1 now (the timer sends them by itself after ready()).
  bool keep_alive();

  // Whether keep-alives are scheduled.
  [[nodiscard]] bool watchdog_running() const { return keepalive_timer_.active(); }
  // Datagrams that could not be sent, since construction.
  [[nodiscard]] std::uint64_t failed_sends() const { return failed_; }
  // The last failure, if the last send failed.
  [[nodiscard]] const std::optional<sys::Error>& last_error() const { return last_error_; }

 private:
  // Sends one datagram; false (counted, and logged if it is the first of a run) on failure.
  bool send(std::string_view datagram);
  sys::Result<void> send_once(std::string_view datagram);
  void schedule_keep_alive();

  Reactor& reactor_;
  sys::Syscalls& os_;
  LogSink log_;
  std::string name_;  // NOTIFY_SOCKET, for messages
  std::optional<NotifyAddress> address_;
  std::optional<Duration> keepalive_;
  OwnedFd socket_;
  DelayedCall keepalive_timer_;
  std::uint64_t failed_ = 0;
  std::optional<sys::Error> last_error_;
  // Invalidated by the destructor, so that a keep-alive timer outliving the notifier finds
  // nothing to act on.
  std::shared_ptr<Notifier*> self_;
};

}  // namespace daemonkit::core
