// SyslogSink: log events as syslog records on /dev/log, as syslog(3) sends them (RFC 3164's
// shape), without syslog(3)'s process-wide openlog state and without ever blocking:
//   <14>Dec  2 11:00:00 echod[4242]: [-] echod 1.0 (/usr/sbin/echod) starting up.
// PRI is the facility (LOG_USER by default, as twistd's SyslogObserver) plus the severity of
// the event's level (debug 7, info 6, warn 4, error 3, critical 2; twistd sends every error as
// alert, 1, which pages people). Each line of a multi-line text is a record of its own, the
// lines after the first prefixed with a TAB, as twistd sends a traceback. The timestamp is the
// wall clock at a fixed offset from UTC (see log_format.h); the pid is read at each record, so
// the records after daemonizing carry the daemon's.
//
// The socket is an AF_UNIX datagram socket connected to /dev/log, opened at the first record.
// Sends use MSG_DONTWAIT: when syslog's queue is full (EAGAIN), or it is not there (ENOENT,
// ECONNREFUSED), the record is dropped and counted, never waited for. If the socket goes away
// (the syslog daemon restarted: ECONNREFUSED, ENOTCONN) it reconnects once and resends; a
// failed connect is tried again after reconnect_delay, not for every record. The first record
// that gets through after drops is preceded by one that counts them:
//   <12>… echod[4242]: [-] 37 syslog records dropped (sendto(/dev/log): Resource temporarily
//   unavailable (EAGAIN))
#pragma once

#include <syslog.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemonkit/core/app/log_format.h"
#include "daemonkit/core/app/log_observer.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct SyslogOptions {
  // The tag before the pid (twistd's --prefix; syslog(3)'s ident).
  std::string ident = "daemonkit";
  // One of LOG_USER, LOG_DAEMON, LOG_LOCAL0 … LOG_LOCAL7 (already shifted, as <syslog.h> has them).
  int facility = LOG_USER;
  // "ident[pid]:" as syslog(3)'s LOG_PID; false gives "ident:".
  bool include_pid = true;
  std::string socket_path = "/dev/log";
  std::chrono::minutes utc_offset{0};
  // A longer record is cut (never inside a UTF-8 sequence). rsyslog's default maximum.
  std::size_t max_record = 8192;
  // After a failed connect, records are dropped without trying again for this long.
  Duration reconnect_delay = std::chrono::seconds(1);
};

// The record's bytes, for one line: "<PRI>Mmm dd hh:mm:ss ident[pid]: [system] line", cut to
// max_record. Exposed so that the format is tested byte for byte.
[[nodiscard]] std::string syslog_record(const SyslogOptions& options, int severity, WallTime time,
                                        pid_t pid, std::string_view system, std::string_view line);

class SyslogSink final : public LogObserver {
 public:
  SyslogSink(sys::Syscalls& os, SyslogOptions options);
  SyslogSink(const SyslogSink&) = delete;
  SyslogSink& operator=(const SyslogSink&) = delete;

  void emit(LogLevel level, std::string_view system, std::string_view text) override;

  // Records dropped since construction.
  [[nodiscard]] std::uint64_t dropped() const { return dropped_total_; }
  [[nodiscard]] bool connected() const { return fd_.valid(); }

 private:
  bool send(const std::string& record);
  std::optional<sys::Error> deliver(const std::string& record);
  bool connect();
  void drop(const sys::Error& why);

  sys::Syscalls& os_;
  SyslogOptions options_;
  OwnedFd fd_;
  std::optional<TimePoint> next_connect_;  // set after a failed connect
  std::uint64_t unreported_ = 0;
  std::uint64_t dropped_total_ = 0;
  std::optional<sys::Error> last_error_;               // why the last record was dropped
  sys::Error connect_error_{ENOTCONN, "connect", {}};  // why the last connect failed
};

}  // namespace daemonkit::core
