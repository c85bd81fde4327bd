#include "daemonkit/core/daemon/readiness_waiter.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <algorithm>

#include <fmt/format.h>

#include "daemonkit/core/status/status_codec.h"
#include "daemonkit/core/status/status_message.h"
#include "daemonkit/core/status/wait_status.h"

namespace daemonkit::core {
std::string describe_exit(int wait_status) { return core::describe_wait_status(wait_status); }

namespace {

// "was killed by signal 9 (SIGKILL)", "exited with exit status 3": a process's end as the
// predicate of a sentence.
std::string how_it_ended(int wait_status) {
  return fmt::format("{} {}", WIFSIGNALED(wait_status) ? "was" : "exited with",
                     describe_exit(wait_status));
}

}  // namespace

ReadinessWaiter::ReadinessWaiter(ReadyMode mode, std::string program,
                                 std::optional<std::chrono::milliseconds> timeout)
    : mode_(mode), program_(std::move(program)), timeout_(timeout) {}

std::optional<LaunchOutcome> ReadinessWaiter::on_pipe_bytes(std::string_view bytes) {
  if (!pipe_open_) return std::nullopt;
  const std::size_t room =
      core::kMaxStatusBytes + 1 - std::min(report_.size(), core::kMaxStatusBytes + 1);
  report_.append(bytes.substr(0, room));
  return decide_report(false);
}

std::optional<LaunchOutcome> ReadinessWaiter::on_pipe_drained() {
  // In the other modes the report is the daemon's own, written as it exits: its end of the
  // pipe closes a moment later, when it has closed everything else too (the PID file's lock).
  if (mode_ != ReadyMode::kPipe || !pipe_open_ || report_.empty()) return std::nullopt;
  return decide_report(true);
}

std::optional<LaunchOutcome> ReadinessWaiter::on_pipe_eof() {
  if (!pipe_open_) return std::nullopt;
  pipe_open_ = false;
  if (!report_.empty()) return decide_report(true);
  if (intermediate_status_ && *intermediate_status_ != 0) {
    return LaunchFailed{intermediate_death_message(*intermediate_status_), false};
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
  intermediate_status_ = WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0 ? 0 : wait_status;
  if (*intermediate_status_ != 0 && !pipe_open_ && report_.empty()) {
    return LaunchFailed{intermediate_death_message(wait_status), false};
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
    return LaunchFailed{
        fmt::format("{} closed the status pipe without reporting readiness", program_), true};
  }
  if (timeout_ && elapsed >= *timeout_) {
    const std::string seconds = seconds_text(*timeout_);
    return LaunchFailed{fmt::format("{} was not ready after {} second{}", program_, seconds,
                                    seconds == "1" ? "" : "s"),
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

std::optional<LaunchOutcome> ReadinessWaiter::decide_report(bool whole) {
  // In pipe mode "0" is final at once: a program that keeps its end open after reporting must
  // not hold the launcher until it exits.
  if (report_ == "0" && mode_ == ReadyMode::kPipe) return LaunchReady{};
  auto malformed = [&](core::StatusProtocolError kind) -> LaunchOutcome {
    return LaunchFailed{
        fmt::format("{} sent a malformed status report ({}): \"{}\"", program_,
                    core::describe(kind), sanitize_message(report_, core::kMaxStatusBytes * 4)),
        !daemon_status_};
  };
  core::StatusDecoder decoder;
  core::StatusDecodeResult result = decoder.feed(report_);
  // A failure report is one write: it is `whole` once the pipe has been drained or closed.
  // Until then a message split across reads is read on.
  if (!whole && std::holds_alternative<core::NeedMore>(result)) return std::nullopt;
  if (whole && !std::holds_alternative<core::ProtocolError>(result)) result = decoder.finish();
  if (const auto* error = std::get_if<core::ProtocolError>(&result)) return malformed(error->kind);
  if (std::holds_alternative<core::Ready>(result)) {
    if (mode_ == ReadyMode::kPipe) return LaunchReady{};
    return LaunchFailed{"the daemon reported ready before it ran PROGRAM (protocol error)", true};
  }
  const auto& failed = std::get<core::Failed>(result);
  std::string message = failed.message;
  if (message.empty()) message = fmt::format("{} reported a failure without a message", program_);
  const bool runs_on = mode_ == ReadyMode::kPipe && !daemon_status_;
  return LaunchFailed{message, runs_on, runs_on};
}

std::optional<LaunchOutcome> ReadinessWaiter::decide_death() {
  if (!daemon_status_) return std::nullopt;
  if (mode_ == ReadyMode::kNotify) {
    std::string own_words = notify_.failure_message();
    if (!own_words.empty()) return LaunchFailed{own_words, false};
  }
  return LaunchFailed{death_message(*daemon_status_), false};
}

std::string ReadinessWaiter::intermediate_death_message(int wait_status) {
  return fmt::format("the intermediate process {} before the daemon started",
                     how_it_ended(wait_status));
}

std::string ReadinessWaiter::death_message(int wait_status) const {
  return fmt::format("{} {} before it was ready", program_, how_it_ended(wait_status));
}

std::string seconds_text(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return fmt::format("{}", duration.count() / 1000);
  return fmt::format("{:g}", static_cast<double>(duration.count()) / 1000);
}

}  // namespace daemonkit::core
