#include "daemonkit/cli/readiness_waiter.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>

#include <fmt/format.h>

#include "daemonkit/cli/sanitize.h"

namespace daemonkit::cli {
namespace {

// The status-pipe protocol's limits (design.md §4): one write of at most 100 bytes.
constexpr std::size_t kMaxReport = 100;
constexpr std::size_t kMaxReportMessage = kMaxReport - 2;

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) return fmt::format("{}", sig);
  return fmt::format("{} (SIG{})", sig, abbrev);
}

}  // namespace

std::string describe_exit(int wait_status) {
  if (WIFEXITED(wait_status)) return fmt::format("exit status {}", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return fmt::format("killed by signal {}{}", signal_name(WTERMSIG(wait_status)),
                       WCOREDUMP(wait_status) ? ", core dumped" : "");
  }
  return fmt::format("wait status {:#x}", wait_status);
}

ReadinessWaiter::ReadinessWaiter(ReadyMode mode, std::string program,
                                 std::optional<std::chrono::milliseconds> timeout)
    : mode_(mode), program_(std::move(program)), timeout_(timeout) {}

std::optional<LaunchOutcome> ReadinessWaiter::on_pipe_bytes(std::string_view bytes) {
  if (!pipe_open_) return std::nullopt;
  report_.append(bytes.substr(0, kMaxReport + 1 - std::min(report_.size(), kMaxReport + 1)));
  return decide_report(false);
}

std::optional<LaunchOutcome> ReadinessWaiter::on_pipe_eof() {
  if (!pipe_open_) return std::nullopt;
  pipe_open_ = false;
  if (!report_.empty()) return decide_report(true);
  if (intermediate_status_ && *intermediate_status_ != 0) {
    return LaunchFailed{fmt::format("the intermediate process ended with {} before the daemon "
                                    "started",
                                    describe_exit(*intermediate_status_)),
                        false};
  }
  switch (mode_) {
    case ReadyMode::kExec:
      // The pipe is close-on-exec: its end without a word means PROGRAM was exec'd, unless the
      // daemon is already known to be dead.
      if (daemon_status_) return decide_death();
      return LaunchReady{};
    case ReadyMode::kNotify:
      exec_done_ = true;
      if (daemon_status_) return decide_death();
      return std::nullopt;
    case ReadyMode::kPipe:
      if (daemon_status_) return decide_death();
      silent_since_ = now_.value_or(std::chrono::milliseconds(0));
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<LaunchOutcome> ReadinessWaiter::on_notify(std::string_view datagram) {
  if (mode_ != ReadyMode::kNotify) return std::nullopt;
  notify_.feed(datagram);
  if (notify_.ready()) return LaunchReady{};
  return std::nullopt;
}

std::optional<LaunchOutcome> ReadinessWaiter::on_intermediate_exit(int wait_status) {
  // 0 when it forked the daemon; anything else was reported on the pipe first, or will be
  // judged when the pipe closes.
  intermediate_status_ = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0 ? 0
                                                                                   : wait_status;
  if (*intermediate_status_ != 0 && !pipe_open_ && report_.empty()) {
    return LaunchFailed{fmt::format("the intermediate process ended with {} before the daemon "
                                    "started",
                                    describe_exit(wait_status)),
                        false};
  }
  return std::nullopt;
}

std::optional<LaunchOutcome> ReadinessWaiter::on_daemon_exit(int wait_status) {
  daemon_status_ = wait_status;
  if (!report_.empty()) return decide_report(true);
  return decide_death();
}

std::optional<LaunchOutcome> ReadinessWaiter::on_time(std::chrono::milliseconds elapsed) {
  now_ = elapsed;
  if (silent_since_ && elapsed - *silent_since_ >= kDeathGrace) {
    return LaunchFailed{fmt::format("{} closed the status pipe without reporting readiness",
                                    program_),
                        true};
  }
  if (timeout_ && elapsed >= *timeout_) {
    return LaunchFailed{fmt::format("{} was not ready after {} seconds; sent it SIGTERM",
                                    program_, seconds_text(*timeout_)),
                        true};
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> ReadinessWaiter::wake_after(
    std::chrono::milliseconds elapsed) const {
  std::optional<std::chrono::milliseconds> wake;
  auto consider = [&](std::chrono::milliseconds at) {
    const auto left = std::max(at - elapsed, std::chrono::milliseconds(0));
    wake = wake ? std::min(*wake, left) : left;
  };
  if (timeout_) consider(*timeout_);
  if (silent_since_) consider(*silent_since_ + kDeathGrace);
  return wake;
}

std::optional<LaunchOutcome> ReadinessWaiter::decide_report(bool at_eof) {
  if (report_ == "0") {
    if (mode_ == ReadyMode::kPipe) return LaunchReady{};
    return LaunchFailed{"the daemon reported ready before it ran PROGRAM (protocol error)", true};
  }
  const char tag = report_[0];
  bool malformed = report_.size() > kMaxReport || (tag != '0' && tag != '1') ||
                   (tag == '0') || (report_.size() >= 2 && report_[1] != ' ') ||
                   (tag == '1' && report_.size() == 1 && at_eof);
  if (malformed) {
    return LaunchFailed{fmt::format("{} sent a malformed status report: \"{}\"", program_,
                                    sanitize_for_terminal(report_, kMaxReport * 4)),
                        true};
  }
  // A failure report is one write, so it is whole by the time the writer closes the pipe, which
  // it does right after; reading on until then means a message split across reads is whole too.
  if (!at_eof && report_.size() < kMaxReport) return std::nullopt;
  std::string message = sanitize_for_terminal(std::string_view(report_).substr(2),
                                              kMaxReportMessage);
  if (message.empty()) message = fmt::format("{} reported a failure without a message", program_);
  return LaunchFailed{message, mode_ == ReadyMode::kPipe && !daemon_status_};
}

std::optional<LaunchOutcome> ReadinessWaiter::decide_death() {
  if (!daemon_status_) return std::nullopt;
  if (mode_ == ReadyMode::kNotify) {
    std::string own_words = notify_.failure_message();
    if (!own_words.empty()) return LaunchFailed{own_words, false};
  }
  return LaunchFailed{death_message(*daemon_status_), false};
}

std::string ReadinessWaiter::death_message(int wait_status) const {
  if (WIFSIGNALED(wait_status)) {
    return fmt::format("{} was {} before it was ready", program_, describe_exit(wait_status));
  }
  return fmt::format("{} exited with {} before it was ready", program_, describe_exit(wait_status));
}

}  // namespace daemonkit::cli
