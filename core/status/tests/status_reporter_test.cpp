// StatusReporter on a StrictMock: the exact calls around the one write, and every failure.
#include "daemonkit/core/status/status_reporter.h"

#include <signal.h>

#include <cerrno>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using ::testing::_;
using ::testing::InSequence;
using ::testing::IsNull;
using ::testing::NotNull;
using ::testing::Return;
using ::testing::StrictMock;
using ::testing::Truly;

constexpr int kWriteFd = 7;

// Stands for whatever SIGPIPE handler the daemon had before reporting.
void previous_handler(int) {}

bool ignores(const struct sigaction* action) {
  return action != nullptr && action->sa_handler == SIG_IGN;
}
bool is_previous(const struct sigaction* action) {
  return action != nullptr && action->sa_handler == &previous_handler;
}

// A reporter on a mock, with helpers for the calls every report makes.
class StatusReporterTest : public ::testing::Test {
 protected:
  void expect_ignore_sigpipe() {
    EXPECT_CALL(os_, sigaction(SIGPIPE, Truly(ignores), NotNull()))
        .WillOnce([](int, const struct sigaction*, struct sigaction* old) {
          *old = {};
          old->sa_handler = &previous_handler;
          return sys::Result<void>{};
        });
  }
  void expect_write(sys::Result<std::size_t> result) {
    EXPECT_CALL(os_, write(kWriteFd, NotNull(), _))
        .WillOnce([this, result](int, const void* buf, std::size_t count) {
          sent_.emplace_back(static_cast<const char*>(buf), count);
          return result;
        });
  }
  void expect_write_all() {
    EXPECT_CALL(os_, write(kWriteFd, NotNull(), _))
        .WillOnce([this](int, const void* buf, std::size_t count) {
          sent_.emplace_back(static_cast<const char*>(buf), count);
          return sys::Result<std::size_t>(count);
        });
  }
  void expect_restore_sigpipe() {
    EXPECT_CALL(os_, sigaction(SIGPIPE, Truly(is_previous), IsNull()))
        .WillOnce(Return(sys::Result<void>{}));
  }
  void expect_close(sys::Result<void> result = {}) {
    EXPECT_CALL(os_, close(kWriteFd)).WillOnce(Return(result));
  }

  StrictMock<fake::MockSyscalls> os_;
  StatusReporter reporter_{os_, kWriteFd};
  std::vector<std::string> sent_;
};

TEST_F(StatusReporterTest, ReadyIgnoresSigpipeWritesZeroRestoresThenCloses) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    expect_restore_sigpipe();
    expect_close();
  }
  EXPECT_TRUE(reporter_.ready());
  EXPECT_EQ(sent_, std::vector<std::string>{"0"});
  EXPECT_TRUE(reporter_.reported());
}

TEST_F(StatusReporterTest, FailWithStepAndErrorNamesBoth) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    expect_restore_sigpipe();
    expect_close();
  }
  EXPECT_TRUE(reporter_.fail("setuid(65534)", sys::Error{EPERM, "setuid", {}}));
  EXPECT_EQ(sent_, std::vector<std::string>{"1 setuid(65534): Operation not permitted (EPERM)"});
}

TEST_F(StatusReporterTest, FailSendsSanitisedMessageInOneWriteOfAtMostOneHundredBytes) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    expect_restore_sigpipe();
    expect_close();
  }
  EXPECT_TRUE(reporter_.fail("bad\n" + std::string(200, 'z')));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0], "1 bad\\x0a" + std::string(91, 'z'));
  EXPECT_EQ(sent_[0].size(), 100u);
}

TEST_F(StatusReporterTest, RetriesTheWriteOnEintr) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write(sys::fail(EINTR, "write"));
    expect_write_all();
    expect_restore_sigpipe();
    expect_close();
  }
  EXPECT_TRUE(reporter_.ready());
  EXPECT_EQ(sent_, (std::vector<std::string>{"0", "0"}));
}

TEST_F(StatusReporterTest, WriteFailureIsReturnedAfterRestoringAndClosing) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write(sys::fail(EPIPE, "write"));
    expect_restore_sigpipe();
    expect_close();
  }
  const sys::Result<void> result = reporter_.ready();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), (sys::Error{EPIPE, "write", {}}));
}

TEST_F(StatusReporterTest, ShortWriteIsAnError) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write(sys::Result<std::size_t>(3));
    expect_restore_sigpipe();
    expect_close();
  }
  const sys::Result<void> result = reporter_.fail("a message longer than three bytes");
  ASSERT_THAT(result, FailsWith(EIO));
}

TEST_F(StatusReporterTest, StillReportsWhenSigpipeCannotBeIgnored) {
  {
    InSequence order;
    EXPECT_CALL(os_, sigaction(SIGPIPE, Truly(ignores), NotNull()))
        .WillOnce(Return(sys::fail(EINVAL, "sigaction")));
    expect_write_all();
    expect_close();  // nothing to restore
  }
  const sys::Result<void> result = reporter_.ready();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), (sys::Error{EINVAL, "sigaction", {}}));
  EXPECT_EQ(sent_, std::vector<std::string>{"0"});
}

TEST_F(StatusReporterTest, RestoreFailureIsReturned) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    EXPECT_CALL(os_, sigaction(SIGPIPE, Truly(is_previous), IsNull()))
        .WillOnce(Return(sys::fail(EFAULT, "sigaction")));
    expect_close();
  }
  const sys::Result<void> result = reporter_.ready();
  ASSERT_THAT(result, FailsWith(EFAULT));
}

TEST_F(StatusReporterTest, CloseFailureIsReturnedAndNotRetried) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    expect_restore_sigpipe();
    expect_close(sys::fail(EINTR, "close"));
  }
  const sys::Result<void> result = reporter_.ready();
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error(), (sys::Error{EINTR, "close", {}}));
}

TEST_F(StatusReporterTest, ReportingTwiceIsAnErrorAndTouchesNothing) {
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write_all();
    expect_restore_sigpipe();
    expect_close();
  }
  ASSERT_TRUE(reporter_.ready());
  const sys::Result<void> again = reporter_.fail("late");
  ASSERT_THAT(again, FailsWith(EALREADY));
}

TEST_F(StatusReporterTest, AFailedReportCannotBeRetried) {
  // The descriptor is closed after the first attempt, so a retry could only hit another file.
  {
    InSequence order;
    expect_ignore_sigpipe();
    expect_write(sys::fail(EPIPE, "write"));
    expect_restore_sigpipe();
    expect_close();
  }
  ASSERT_FALSE(reporter_.ready());
  const sys::Result<void> again = reporter_.ready();
  ASSERT_THAT(again, FailsWith(EALREADY));
}

}  // namespace
}  // namespace daemonkit::core
