#include "daemonkit/core/daemon/readiness_waiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>

#include "daemonkit/core/daemon/notify_message.h"

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;
using ::testing::Optional;

// Raw wait statuses as waitpid reports them.
constexpr int exited(int code) { return (code & 0xff) << 8; }
constexpr int killed(int sig) { return sig & 0x7f; }

LaunchOutcome failed(std::string message, bool stop = false) {
  return LaunchFailed{std::move(message), stop};
}

// PROGRAM's own failure report, made while it runs on: it is to be stopped.
LaunchOutcome reported(std::string message) { return LaunchFailed{std::move(message), true, true}; }

TEST(WaitStatusText, ExitAndSignals) {
  EXPECT_EQ(describe_exit(exited(3)), "exit status 3");
  EXPECT_EQ(describe_exit(killed(SIGKILL)), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(describe_exit(killed(SIGSEGV) | 0x80), "killed by signal 11 (SIGSEGV), core dumped");
}

// ---- exec ------------------------------------------------------------------------------------

TEST(ExecReadiness, PipeClosingWithoutAWordMeansExecSucceeded) {
  ReadinessWaiter waiter(ReadyMode::kExec, "/bin/sleep", std::nullopt);
  EXPECT_EQ(waiter.on_intermediate_exit(exited(0)), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(), Optional(LaunchOutcome(LaunchReady{})));
}

TEST(ExecReadiness, ExecFailureReportIsTheMessage) {
  ReadinessWaiter waiter(ReadyMode::kExec, "./nope", std::nullopt);
  const std::string report = "1 exec ./nope: No such file or directory (ENOENT)";
  EXPECT_EQ(waiter.on_pipe_bytes(report), std::nullopt);  // whole once the pipe closes
  EXPECT_THAT(waiter.on_pipe_eof(),
              Optional(failed("exec ./nope: No such file or directory (ENOENT)")));
}

TEST(ExecReadiness, ReportSplitAcrossReadsIsJoined) {
  ReadinessWaiter waiter(ReadyMode::kExec, "p", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1"), std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes(" chdir(/x): No"), std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes(" such"), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(), Optional(failed("chdir(/x): No such")));
}

TEST(ExecReadiness, DaemonDeadBeforeThePipeClosedIsAFailureWithHowItDied) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(killed(SIGKILL)),
              Optional(failed("prog was killed by signal 9 (SIGKILL) before it was ready")));
}

TEST(ExecReadiness, IntermediateFailureWithoutReportIsAFailure) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_intermediate_exit(exited(1)), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(),
              Optional(failed("the intermediate process exited with exit status 1 before the "
                              "daemon started")));
}

TEST(ExecReadiness, ReadyByteIsAProtocolErrorOutsidePipeMode) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("0"), std::nullopt);
  auto outcome = waiter.on_pipe_eof();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(std::holds_alternative<LaunchFailed>(*outcome));
}

// exec readiness is "exec succeeded": a death the launcher already knows of when the pipe
// closes is reported with its status, one that comes later is not waited for.
TEST(ExecReadiness, DeathKnownWhenThePipeClosesIsAFailureWithTheStatus) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_intermediate_exit(exited(0)), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(3)),
              Optional(failed("prog exited with exit status 3 before it was ready")));
}

TEST(ExecReadiness, DeathAfterThePipeClosedIsNotWaitedFor) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", milliseconds(1000));
  EXPECT_THAT(waiter.on_pipe_eof(), Optional(LaunchOutcome(LaunchReady{})));
}

// ---- notify ----------------------------------------------------------------------------------

TEST(NotifyReadiness, ReadyOnlyOnReadyOne) {
  ReadinessWaiter waiter(ReadyMode::kNotify, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);  // exec'd: now wait for READY=1
  EXPECT_EQ(waiter.on_notify("STATUS=starting\n"), std::nullopt);
  EXPECT_EQ(waiter.on_notify("READY=0"), std::nullopt);
  EXPECT_THAT(waiter.on_notify("STATUS=up\nREADY=1\n"), Optional(LaunchOutcome(LaunchReady{})));
}

TEST(NotifyReadiness, DeathBeforeReadyUsesTheLastStatusAndErrno) {
  ReadinessWaiter waiter(ReadyMode::kNotify, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);
  EXPECT_EQ(waiter.on_notify("STATUS=loading config"), std::nullopt);
  EXPECT_EQ(waiter.on_notify("STATUS=Failed to bind: port busy\nERRNO=98"), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(1)),
              Optional(failed("Failed to bind: port busy (Address already in use, EADDRINUSE)")));
}

TEST(NotifyReadiness, DeathWithoutWordsSaysHowItEnded) {
  ReadinessWaiter waiter(ReadyMode::kNotify, "./d", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(4)),
              Optional(failed("./d exited with exit status 4 before it was ready")));
}

TEST(NotifyReadiness, PreExecFailureOnThePipeWins) {
  ReadinessWaiter waiter(ReadyMode::kNotify, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1 setresuid(65534): Operation not permitted (EPERM)"),
            std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(1)),
              Optional(failed("setresuid(65534): Operation not permitted (EPERM)")));
}

TEST(NotifyReadiness, TimeoutStopsTheDaemon) {
  ReadinessWaiter waiter(ReadyMode::kNotify, "prog", milliseconds(1500));
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);
  EXPECT_THAT(waiter.wake_after(milliseconds(500)), Optional(milliseconds(1000)));
  EXPECT_EQ(waiter.on_time(milliseconds(1499)), std::nullopt);
  // What was sent to it is the launcher's to say, once it has sent it.
  EXPECT_THAT(waiter.on_time(milliseconds(1500)),
              Optional(failed("prog was not ready after 1.5 seconds", true)));
}

TEST(NotifyReadiness, DatagramsAreIgnoredInOtherModes) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_notify("READY=1"), std::nullopt);
}

// ---- pipe ------------------------------------------------------------------------------------

TEST(PipeReadiness, ZeroIsReadyAtOnceWithoutWaitingForTheClose) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_THAT(waiter.on_pipe_bytes("0"), Optional(LaunchOutcome(LaunchReady{})));
}

TEST(PipeReadiness, FailureReportIsTheMessageAndTheLiveDaemonIsStopped) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1 bind(127.0.0.1:7): Permission denied (EACCES)"), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(),
              Optional(reported("bind(127.0.0.1:7): Permission denied (EACCES)")));
}

// A report is one write of at most 100 bytes, under PIPE_BUF and so atomic: a read that drained
// the pipe has the whole of it. A program that keeps its end open after failing must not hold
// the launcher until it exits, nor until --timeout puts other words in its mouth.
TEST(PipeReadiness, FailureReportIsFinalOnceThePipeIsDrained) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", milliseconds(5000));
  EXPECT_EQ(waiter.on_pipe_bytes("1 port 80 is taken"), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_drained(), Optional(reported("port 80 is taken")));
}

// Elsewhere the report is the daemon's, made as it exits: the end of the pipe follows.
TEST(ExecReadiness, AReportIsJudgedAtTheEndOfThePipeNotWhenDrained) {
  ReadinessWaiter waiter(ReadyMode::kExec, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1 chdir(/x): No such file or directory (ENOENT)"), std::nullopt);
  EXPECT_EQ(waiter.on_pipe_drained(), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(),
              Optional(failed("chdir(/x): No such file or directory (ENOENT)")));
}

TEST(PipeReadiness, DrainedWithoutAnyReportDecidesNothing) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_drained(), std::nullopt);
  EXPECT_TRUE(waiter.pipe_open());
}

TEST(PipeReadiness, DrainedMalformedReportIsAProtocolErrorAtOnce) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1"), std::nullopt);
  auto outcome = waiter.on_pipe_drained();
  ASSERT_TRUE(outcome.has_value());
  const auto* failure = std::get_if<LaunchFailed>(&*outcome);
  ASSERT_NE(failure, nullptr);
  EXPECT_THAT(failure->message, ::testing::StartsWith("prog sent a malformed status report"));
  EXPECT_TRUE(failure->stop_daemon);
}

TEST(PipeReadiness, DrainedReportOfADeadDaemonDoesNotAskToStopIt) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1 no config"), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(1)), Optional(failed("no config")));
}

TEST(PipeReadiness, FailureWithoutWordsSaysSo) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes("1 "), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(1)),
              Optional(failed("prog reported a failure without a message")));
}

TEST(PipeReadiness, DeathWithoutReportSaysHowItEnded) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(exited(3)),
              Optional(failed("prog exited with exit status 3 before it was ready")));
}

TEST(PipeReadiness, SilentCloseWaitsBrieflyForTheDeathThenSaysSo) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_time(milliseconds(10)), std::nullopt);
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);
  EXPECT_THAT(waiter.wake_after(milliseconds(10)), Optional(ReadinessWaiter::kDeathGrace));
  EXPECT_EQ(waiter.on_time(milliseconds(500)), std::nullopt);
  EXPECT_THAT(waiter.on_time(milliseconds(10) + ReadinessWaiter::kDeathGrace),
              Optional(failed("prog closed the status pipe without reporting readiness", true)));
}

TEST(PipeReadiness, SilentCloseThenDeathNamesTheDeath) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_eof(), std::nullopt);
  EXPECT_THAT(waiter.on_daemon_exit(killed(SIGTERM)),
              Optional(failed("prog was killed by signal 15 (SIGTERM) before it was ready")));
}

TEST(PipeReadiness, GarbageIsAProtocolError) {
  for (const std::string& bad :
       std::vector<std::string>{"x", "00", "0 ", "1x", std::string(101, '1')}) {
    ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
    std::optional<LaunchOutcome> outcome = waiter.on_pipe_bytes(bad);
    if (!outcome) outcome = waiter.on_pipe_eof();
    ASSERT_TRUE(outcome.has_value()) << bad;
    const auto* failure = std::get_if<LaunchFailed>(&*outcome);
    ASSERT_NE(failure, nullptr) << bad;
    EXPECT_THAT(failure->message, ::testing::StartsWith("prog sent a malformed status report"));
  }
}

TEST(PipeReadiness, ControlBytesInTheMessageAreEscaped) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.on_pipe_bytes(std::string("1 a\x1b[2Jb\n\xff", 10)), std::nullopt);
  EXPECT_THAT(waiter.on_pipe_eof(), Optional(reported("a\\x1b[2Jb\\x0a\\xff")));
}

TEST(PipeReadiness, NothingWithoutTimeoutMeansNoWakeUp) {
  ReadinessWaiter waiter(ReadyMode::kPipe, "prog", std::nullopt);
  EXPECT_EQ(waiter.wake_after(milliseconds(0)), std::nullopt);
}

// However the report is split into reads, the outcome is the same.
RC_GTEST_PROP(PipeReadiness, OutcomeDoesNotDependOnHowReadsSplitTheReport, ()) {
  const auto message = *rc::gen::container<std::string>(*rc::gen::inRange<std::size_t>(0, 98),
                                                        rc::gen::inRange<char>(32, 127));
  const std::string report = "1 " + message;
  ReadinessWaiter whole(ReadyMode::kPipe, "p", std::nullopt);
  RC_ASSERT(!whole.on_pipe_bytes(report).has_value() || report.size() >= 100);
  const auto expected = whole.on_pipe_eof();

  ReadinessWaiter split(ReadyMode::kPipe, "p", std::nullopt);
  std::size_t at = 0;
  std::optional<LaunchOutcome> outcome;
  while (at < report.size() && !outcome) {
    const auto n = *rc::gen::inRange<std::size_t>(1, report.size() - at + 1);
    outcome = split.on_pipe_bytes(std::string_view(report).substr(at, n));
    at += n;
  }
  if (!outcome) outcome = split.on_pipe_eof();
  RC_ASSERT(outcome == expected);
}

// ---- NotifyReport and the terminal sanitiser -----------------------------------------------

TEST(NotifyReport, LastStatusWinsAndBadErrnoIsIgnored) {
  NotifyReport state;
  state.feed("STATUS=one\nERRNO=2");
  state.feed("STATUS=two\nERRNO=abc\nnonsense\nX_CUSTOM=1");
  EXPECT_EQ(state.status(), "two");
  EXPECT_EQ(state.error_number(), 2);
  EXPECT_FALSE(state.ready());
  EXPECT_EQ(state.failure_message(), "two (No such file or directory, ENOENT)");
}

TEST(NotifyReport, StatusThatNamesItsErrnoIsNotRepeated) {
  NotifyReport state;
  state.feed("STATUS=bind(127.0.0.1:7): Address already in use (EADDRINUSE)\nERRNO=98\n");
  EXPECT_EQ(state.failure_message(), "bind(127.0.0.1:7): Address already in use (EADDRINUSE)");
}

TEST(NotifyReport, ErrnoAloneIsAMessage) {
  NotifyReport state;
  state.feed("ERRNO=13");
  EXPECT_EQ(state.failure_message(), "Permission denied, EACCES");
  NotifyReport quiet;
  EXPECT_EQ(quiet.failure_message(), "");
}

TEST(NotifyReport, ReadyIsFinal) {
  NotifyReport state;
  state.feed("READY=1");
  state.feed("READY=0");
  EXPECT_TRUE(state.ready());
}

}  // namespace
}  // namespace daemonkit::core
