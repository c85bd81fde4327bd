// What a program says on $NOTIFY_SOCKET, sd_notify's protocol: each datagram is newline-separated
// KEY=VALUE assignments. `daemonkit run --ready=notify` reads them to learn when PROGRAM is
// ready (READY=1) and, if it dies first, why (its last STATUS= and ERRNO=). Pure: bytes in, state
// out, so it is unit-tested and cannot be confused by what a program sends.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace daemonkit::core {

class NotifyReport {
 public:
  // Applies one datagram. Unknown keys and lines without '=' are ignored, as systemd does;
  // READY=1 is final (a later datagram cannot take readiness back).
  void feed(std::string_view datagram);

  [[nodiscard]] bool ready() const { return ready_; }
  // The last STATUS= text, if any was sent.
  [[nodiscard]] const std::optional<std::string>& status() const { return status_; }
  // The last ERRNO= that was a positive number.
  [[nodiscard]] std::optional<int> error_number() const { return errno_; }

  // Why the program failed in its own words: "STATUS text (Description, ENAME)", or just one of
  // the two; empty when it said neither. Made safe for a terminal.
  [[nodiscard]] std::string failure_message() const;

 private:
  bool ready_ = false;
  std::optional<std::string> status_;
  std::optional<int> errno_;
};

}  // namespace daemonkit::core
