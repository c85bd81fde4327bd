// wait_for_status on a StrictMock: the write end is closed before the first read, reads are
// retried on EINTR, the timeout is driven by the mocked clock and poll, and every failure of a
// call comes back as a Failed naming that call.
#include "daemonkit/core/status/status_waiter.h"

#include <poll.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/mock_syscalls.h"
#include "status_test_support.h"

namespace daemonkit::core {
namespace {

using ::testing::_;
using ::testing::InSequence;
using ::testing::IsNull;
using ::testing::Return;
using ::testing::StrictMock;
using namespace std::chrono_literals;

constexpr int kReadFd = 5;
constexpr int kWriteFd = 6;
constexpr pid_t kDaemon = 4242;

// A read that delivers `bytes`, which must fit the caller's buffer.
auto delivers(std::string bytes) {
  return [bytes](int, void* buf, std::size_t count) -> sys::Result<std::size_t> {
    EXPECT_LE(bytes.size(), count);
    std::memcpy(buf, bytes.data(), bytes.size());
    return bytes.size();
  };
}

sys::Result<struct timespec> at_ms(long ms) { return timespec{ms / 1000, (ms % 1000) * 1'000'000}; }

// A poll on the status pipe only, with the given timeout.
auto polls_pipe(int timeout_ms, sys::Result<int> result) {
  return [timeout_ms, result](struct pollfd* fds, nfds_t n, int timeout) -> sys::Result<int> {
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(fds[0].fd, kReadFd);
    EXPECT_EQ(fds[0].events, POLLIN);
    EXPECT_EQ(timeout, timeout_ms);
    if (result && *result > 0) fds[0].revents = POLLIN;
    return result;
  };
}

Failed failed(std::string message, FailureCause cause = FailureCause::kReported) {
  return Failed{std::move(message), cause};
}

class StatusWaiterTest : public ::testing::Test {
 protected:
  StrictMock<fake::MockSyscalls> os_;
};

TEST_F(StatusWaiterTest, ClosesItsWriteEndBeforeTheFirstRead) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, kMaxStatusBytes)).WillOnce(delivers("0"));
    EXPECT_CALL(os_, read(kReadFd, _, kMaxStatusBytes - 1)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd), StatusOutcome(Ready{}));
}

TEST_F(StatusWaiterTest, WithoutAWriteEndGoesStraightToReading) {
  {
    InSequence order;
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("0")).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, -1), StatusOutcome(Ready{}));
}

TEST_F(StatusWaiterTest, AssemblesAFailureFromSeveralReads) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, 100u)).WillOnce(delivers("1 bo"));
    EXPECT_CALL(os_, read(kReadFd, _, 96u)).WillOnce(delivers("om"));
    EXPECT_CALL(os_, read(kReadFd, _, 94u)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd), StatusOutcome(failed("boom")));
}

TEST_F(StatusWaiterTest, RetriesReadsInterruptedBySignals) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _))
        .WillOnce(Return(sys::fail(EINTR, "read")))
        .WillOnce(Return(sys::fail(EINTR, "read")))
        .WillOnce(delivers("0"))
        .WillOnce(Return(sys::fail(EINTR, "read")))
        .WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd), StatusOutcome(Ready{}));
}

TEST_F(StatusWaiterTest, ReadErrorIsAFailureNamingTheCall) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(Return(sys::fail(EIO, "read")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(
      wait_for_status(os_, kReadFd, kWriteFd),
      StatusOutcome(failed("read(status pipe): Input/output error (EIO)", FailureCause::kIo)));
}

TEST_F(StatusWaiterTest, FailingToCloseTheWriteEndIsAFailureInsteadOfAPossibleHang) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::fail(EBADF, "close")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd),
            StatusOutcome(failed("close(status pipe write end): Bad file descriptor (EBADF)",
                                 FailureCause::kIo)));
}

TEST_F(StatusWaiterTest, StopsReadingAtOneHundredBytes) {
  const std::string payload = "1 " + std::string(98, 'x');
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, 100u)).WillOnce(delivers(payload.substr(0, 60)));
    EXPECT_CALL(os_, read(kReadFd, _, 40u)).WillOnce(delivers(payload.substr(60)));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd), StatusOutcome(failed(std::string(98, 'x'))));
}

TEST_F(StatusWaiterTest, StopsReadingAtTheFirstByteThatCannotBeAReport) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("OK"));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd),
            StatusOutcome(failed("the daemon sent an invalid status report: the first byte is "
                                 "neither '0' (ready) nor '1' (failed)",
                                 FailureCause::kProtocol)));
}

TEST_F(StatusWaiterTest, EmptyFailureMessageIsStillExplained) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("1 ")).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd),
            StatusOutcome(failed("the daemon reported a failure without a message")));
}

TEST_F(StatusWaiterTest, EofBeforeAnyByteSaysTheDaemonExitedBeforeReporting) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd),
            StatusOutcome(
                failed("the daemon exited before reporting its status", FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, ExportedMessagesAreWhatTheWaiterSays) {
  // Callers such as the daemonizer act on these two; they must stay true to the waiter.
  {
    InSequence order;
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(
      wait_for_status(os_, kReadFd, -1),
      StatusOutcome(Failed{std::string(kDaemonExitedBeforeReporting), FailureCause::kNoReport}));
  {
    InSequence order;
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(0)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(10, 0));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  const StatusOutcome late = wait_for_status(os_, kReadFd, -1, {.timeout = 10ms});
  ASSERT_TRUE(std::holds_alternative<Failed>(late));
  EXPECT_TRUE(std::get<Failed>(late).message.starts_with(kStatusTimeoutPrefix));
}

// EOF with nothing read, then waitpid(kDaemon, WNOHANG) reporting `status`.
void expect_eof_then_reaped(StrictMock<fake::MockSyscalls>& os, int status) {
  InSequence order;
  EXPECT_CALL(os, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, read(kReadFd, _, _)).WillOnce(delivers(""));
  EXPECT_CALL(os, waitpid(kDaemon, WNOHANG))
      .WillOnce(Return(sys::Result<sys::WaitResult>(sys::WaitResult{kDaemon, status})));
  EXPECT_CALL(os, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
}

TEST_F(StatusWaiterTest, EofBeforeAnyByteTellsTheExitStatusWhenTheDaemonCanBeWaitedFor) {
  expect_eof_then_reaped(os_, W_EXITCODE(3, 0));
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(failed("the daemon exited before reporting its status: exit status 3",
                                 FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, EofBeforeAnyByteTellsTheKillingSignal) {
  expect_eof_then_reaped(os_, SIGKILL);
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(failed(
                "the daemon exited before reporting its status: killed by signal 9 (SIGKILL)",
                FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, WaitsBrieflyForTheDaemonToBecomeReapable) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG))
        .WillOnce(Return(sys::Result<sys::WaitResult>(sys::WaitResult{0, 0})));
    EXPECT_CALL(os_, poll(IsNull(), 0u, 10)).WillOnce(Return(sys::Result<int>(0)));
    EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG))
        .WillOnce(Return(sys::fail(EINTR, "waitpid")))
        .WillOnce(Return(sys::Result<sys::WaitResult>(sys::WaitResult{kDaemon, W_EXITCODE(1, 0)})));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(failed("the daemon exited before reporting its status: exit status 1",
                                 FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, ADaemonStillAliveAfterEofClosedThePipeWithoutReporting) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    for (int i = 0; i < 9; ++i) {
      EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG))
          .WillOnce(Return(sys::Result<sys::WaitResult>(sys::WaitResult{0, 0})));
      EXPECT_CALL(os_, poll(IsNull(), 0u, 10)).WillOnce(Return(sys::Result<int>(0)));
    }
    EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG))
        .WillOnce(Return(sys::Result<sys::WaitResult>(sys::WaitResult{0, 0})));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(failed("the daemon closed the status pipe without reporting its status",
                                 FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, ADaemonThatIsNotOurChildGivesThePlainMessage) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG)).WillOnce(Return(sys::fail(ECHILD, "waitpid")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(
                failed("the daemon exited before reporting its status", FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, OtherWaitpidErrorsAreNamed) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, waitpid(kDaemon, WNOHANG)).WillOnce(Return(sys::fail(EINVAL, "waitpid")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.pid = kDaemon}),
            StatusOutcome(failed("the daemon exited before reporting its status (how it ended is "
                                 "unknown: waitpid: Invalid argument (EINVAL))",
                                 FailureCause::kNoReport)));
}

TEST_F(StatusWaiterTest, TimeoutPollsWithTheRemainingTimeAndReadsWhenReady) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(10'000)));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(10'001)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(4'999, 1));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("0"));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(12'500)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(2'500, 1));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 5s}), StatusOutcome(Ready{}));
}

TEST_F(StatusWaiterTest, SilentDaemonTimesOut) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(0)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(5'000, 0));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 5s}),
            StatusOutcome(failed("timed out after 5 s waiting for the daemon to report its status",
                                 FailureCause::kTimeout)));
}

TEST_F(StatusWaiterTest, InterruptedPollMeasuresTheRemainingTimeAgain) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(0)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(1'500, sys::fail(EINTR, "poll")));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(1'000)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(500, 0));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(
      wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 1500ms}),
      StatusOutcome(failed("timed out after 1500 ms waiting for the daemon to report its status",
                           FailureCause::kTimeout)));
}

TEST_F(StatusWaiterTest, PartialMillisecondsRoundUpSoThePollDoesNotSpin) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(0)));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC))
        .WillOnce(Return(sys::Result<struct timespec>(timespec{0, 999'000'001})));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(1, 0));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 1s}),
            StatusOutcome(failed("timed out after 1 s waiting for the daemon to report its status",
                                 FailureCause::kTimeout)));
}

TEST_F(StatusWaiterTest, DeadlinePassedBetweenReadsPollsOnceWithoutWaiting) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(0)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(2'000, 1));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("1 par"));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(2'500)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(0, 0));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 2s}),
            StatusOutcome(failed("timed out after 2 s waiting for the daemon to report its status",
                                 FailureCause::kTimeout)));
}

TEST_F(StatusWaiterTest, ZeroTimeoutStillTakesAReportAlreadyInThePipe) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(7)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(0, 1));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("0"));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).WillOnce(Return(at_ms(7)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(0, 1));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 0ms}), StatusOutcome(Ready{}));
}

TEST_F(StatusWaiterTest, ClockFailureIsAFailureNamingTheCall) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC))
        .WillOnce(Return(sys::fail(EINVAL, "clock_gettime")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 1s}),
            StatusOutcome(failed("clock_gettime(CLOCK_MONOTONIC): Invalid argument (EINVAL)",
                                 FailureCause::kIo)));
}

TEST_F(StatusWaiterTest, PollFailureIsAFailureNamingTheCall) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, clock_gettime(CLOCK_MONOTONIC)).Times(2).WillRepeatedly(Return(at_ms(0)));
    EXPECT_CALL(os_, poll(_, 1u, _)).WillOnce(polls_pipe(1'000, sys::fail(ENOMEM, "poll")));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd, {.timeout = 1s}),
            StatusOutcome(
                failed("poll(status pipe): Cannot allocate memory (ENOMEM)", FailureCause::kIo)));
}

TEST_F(StatusWaiterTest, FailureToCloseTheReadEndDoesNotChangeTheOutcome) {
  {
    InSequence order;
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os_, read(kReadFd, _, _)).WillOnce(delivers("0")).WillOnce(delivers(""));
    EXPECT_CALL(os_, close(kReadFd)).WillOnce(Return(sys::fail(EIO, "close")));
  }
  EXPECT_EQ(wait_for_status(os_, kReadFd, kWriteFd), StatusOutcome(Ready{}));
}

}  // namespace
}  // namespace daemonkit::core
