// The daemon's end of the status pipe: it tells the waiting parent, once, whether it started.
// The report is one write of at most kMaxStatusBytes, made with SIGPIPE ignored (a parent that
// has gone away must not kill the daemon), and the write end is closed right after it.
#pragma once

#include <string_view>

#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

class StatusReporter {
 public:
  // `write_fd` is the daemon's write end of the status pipe; the reporter owns it from now on
  // and closes it after the report. (The read end the daemon inherited is not its business:
  // the daemonizer closes it as soon as the daemon exists.)
  StatusReporter(sys::Syscalls& os, int write_fd);

  // Sends "0".
  sys::Result<void> ready();
  // Sends "1 <message>", the message sanitised and cut to fit (see encode_failure).
  sys::Result<void> fail(std::string_view message);
  // Sends "1 <step>: <description> (<ERRNO>)", e.g. for step "setuid(65534)" and an EPERM:
  // "1 setuid(65534): Operation not permitted (EPERM)". The step names what the daemon was
  // doing; the error supplies only the cause, so its call name is not repeated.
  sys::Result<void> fail(std::string_view step, const sys::Error& error);

  // True once a report was attempted, whether or not it reached the pipe.
  [[nodiscard]] bool reported() const { return reported_; }

 private:
  sys::Result<void> send(std::string_view payload);

  sys::Syscalls& os_;
  int write_fd_;
  bool reported_ = false;
};

}  // namespace daemonkit::core
