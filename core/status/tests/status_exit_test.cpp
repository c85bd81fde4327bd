// The waiting parent's exit: twistd's code and words, written to fd 2 through the seam.
#include "daemonkit/core/status/status_exit.h"

#include <cerrno>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/mock_syscalls.h"

namespace daemonkit::core {
namespace {

using ::testing::_;
using ::testing::InSequence;
using ::testing::Return;
using ::testing::StrictMock;

const std::string kBoomText =
    "An error has occurred: bind(:80): Address already in use (EADDRINUSE)\n"
    "Please look at log file for more information.\n";

TEST(ParentExit, ReadyExitsZeroSilently) { EXPECT_EQ(parent_exit(Ready{}), (ParentExit{0, ""})); }

TEST(ParentExit, FailedExitsOneWithTwistdsTwoLines) {
  EXPECT_EQ(parent_exit(Failed{"bind(:80): Address already in use (EADDRINUSE)"}),
            (ParentExit{1, kBoomText}));
}

TEST(WriteParentExit, ReadyWritesNothing) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_EQ(write_parent_exit(os, Ready{}), 0);
}

TEST(WriteParentExit, FailedWritesEverythingToStderrAcrossShortWritesAndEintr) {
  StrictMock<fake::MockSyscalls> os;
  std::string written;
  const auto takes = [&](std::size_t n) {
    return [&written, n](int, const void* buf, std::size_t count) -> sys::Result<std::size_t> {
      const std::size_t taken = std::min(n, count);
      written.append(static_cast<const char*>(buf), taken);
      return taken;
    };
  };
  {
    InSequence order;
    EXPECT_CALL(os, write(2, _, kBoomText.size())).WillOnce(takes(10));
    EXPECT_CALL(os, write(2, _, kBoomText.size() - 10))
        .WillOnce(Return(sys::fail(EINTR, "write")))
        .WillOnce(takes(1000));
  }
  EXPECT_EQ(write_parent_exit(os, Failed{"bind(:80): Address already in use (EADDRINUSE)"}), 1);
  EXPECT_EQ(written, kBoomText);
}

TEST(WriteParentExit, BrokenStderrStillExitsOne) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, write(2, _, _)).WillOnce(Return(sys::fail(EBADF, "write")));
  EXPECT_EQ(write_parent_exit(os, Failed{"x"}), 1);
}

}  // namespace
}  // namespace daemonkit::core
