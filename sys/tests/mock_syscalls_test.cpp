// MockSyscalls pins call order, and an unexpected call fails the test instead of reaching the
// kernel.
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

#include <sys/wait.h>

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

namespace daemonkit::fake {
namespace {

using fake::FailsWith;
using ::testing::InSequence;
using ::testing::Return;
using ::testing::StrictMock;

// A caller of the seam, written the way core code is: order matters, errors propagate.
sys::Result<void> drop_to(sys::Syscalls& os, uid_t uid, gid_t gid) {
  const gid_t groups[] = {gid};
  if (auto r = os.setgroups(groups); !r) return r;
  if (auto r = os.setresgid(gid, gid, gid); !r) return r;
  return os.setresuid(uid, uid, uid);
}

TEST(MockSyscalls, PinsGroupsThenGidThenUid) {
  StrictMock<MockSyscalls> os;
  {
    InSequence order;
    EXPECT_CALL(os, setgroups(::testing::ElementsAre(65534u)))
        .WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os, setresgid(65534u, 65534u, 65534u)).WillOnce(Return(sys::Result<void>{}));
    EXPECT_CALL(os, setresuid(65534u, 65534u, 65534u)).WillOnce(Return(sys::Result<void>{}));
  }
  EXPECT_TRUE(drop_to(os, 65534, 65534));
}

TEST(MockSyscalls, StopsAtFirstFailure) {
  StrictMock<MockSyscalls> os;
  EXPECT_CALL(os, setgroups(::testing::_)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, setresgid(1u, 1u, 1u)).WillOnce(Return(sys::fail(EPERM, "setresgid")));
  const sys::Result<void> r = drop_to(os, 1, 1);
  ASSERT_THAT(r, FailsWith(EPERM));
}

TEST(MockSyscalls, OutOfOrderCallsFail) {
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter capture(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    StrictMock<MockSyscalls> os;
    InSequence order;
    EXPECT_CALL(os, setresuid(1u, 1u, 1u)).WillRepeatedly(Return(sys::Result<void>{}));
    EXPECT_CALL(os, setgroups(::testing::_)).WillRepeatedly(Return(sys::Result<void>{}));
    EXPECT_CALL(os, setresgid(1u, 1u, 1u)).WillRepeatedly(Return(sys::Result<void>{}));
    (void)drop_to(os, 1, 1);
  }
  ASSERT_GE(failures.size(), 1);
  EXPECT_THAT(failures.GetTestPartResult(0).message(),
              ::testing::HasSubstr("Unexpected mock function call"));
}

TEST(MockSyscalls, UnexpectedCallIsAFailureNotAKernelCall) {
  EXPECT_NONFATAL_FAILURE(
      {
        StrictMock<MockSyscalls> os;
        // Default action of an unexpected Result<int> call: a default value, never the kernel.
        (void)os.open("/etc/passwd", O_RDONLY, 0);
      },
      "Uninteresting mock function call");
}

TEST(MockSyscalls, ExitNowUnwindsWithStatus) {
  StrictMock<MockSyscalls> os;
  EXPECT_CALL(os, exit_called(3));
  try {
    os.exit_now(3);
    FAIL() << "exit_now returned";
  } catch (const ProcessEnded& ended) {
    EXPECT_TRUE(WIFEXITED(ended.wait_status));
    EXPECT_EQ(WEXITSTATUS(ended.wait_status), 3);
  }
}

}  // namespace
}  // namespace daemonkit::fake
