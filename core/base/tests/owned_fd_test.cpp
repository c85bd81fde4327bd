// OwnedFd on the fake kernel: every close it makes shows in the transcript, so "closed once, and
// through the Syscalls it was given" is checked, not assumed.
#include "daemonkit/core/base/owned_fd.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::HasOpenFds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Return;
using ::testing::StrictMock;

int open_null(FakeSyscalls& os) {
  auto fd = os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  EXPECT_TRUE(fd);
  return fd ? *fd : -1;
}

// How many times `fd` was closed, by anyone.
long closes_of(const FakeSyscalls& os, int fd) {
  return std::count_if(
      os.transcript().begin(), os.transcript().end(), [&](const fake::CallRecord& r) {
        return r.name == "close" && r.args == std::vector<std::string>{std::to_string(fd)};
      });
}

TEST(OwnedFd, ClosesItsDescriptorWhenDestroyed) {
  FakeSyscalls os;
  const int fd = open_null(os);
  {
    OwnedFd owner(os, fd);
    EXPECT_EQ(owner.get(), fd);
    EXPECT_TRUE(owner);
    EXPECT_THAT(os, HasOpenFds(os.current_pid(), ElementsAre(fd)));
  }
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), IsEmpty()));
  EXPECT_EQ(closes_of(os, fd), 1);
}

TEST(OwnedFd, AnEmptyOwnerClosesNothing) {
  StrictMock<fake::MockSyscalls> os;  // any call fails the test
  { OwnedFd none; }
  {
    OwnedFd negative(os, -1);
    EXPECT_FALSE(negative);
    EXPECT_EQ(negative.get(), -1);
  }
  OwnedFd none;
  EXPECT_TRUE(none.close());
}

TEST(OwnedFd, ClosesThroughTheSyscallsItWasGiven) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, close(7)).WillOnce(Return(sys::Result<void>{}));
  OwnedFd owner(os, 7);
}

TEST(OwnedFd, MovingPassesTheDutyToCloseOnce) {
  FakeSyscalls os;
  const int fd = open_null(os);
  {
    OwnedFd first(os, fd);
    OwnedFd second(std::move(first));
    EXPECT_EQ(first.get(), -1);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(second.get(), fd);
    OwnedFd third;
    third = std::move(second);
    EXPECT_EQ(second.get(), -1);  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(third.get(), fd);
    EXPECT_EQ(closes_of(os, fd), 0);
  }
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), IsEmpty()));
  EXPECT_EQ(closes_of(os, fd), 1);
}

TEST(OwnedFd, MoveAssignmentClosesWhatItHeldFirst) {
  FakeSyscalls os;
  const int kept = open_null(os);
  const int replaced = open_null(os);
  OwnedFd source(os, kept);
  OwnedFd target(os, replaced);
  target = std::move(source);
  EXPECT_EQ(target.get(), kept);
  EXPECT_EQ(closes_of(os, replaced), 1);
  EXPECT_EQ(closes_of(os, kept), 0);
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), ElementsAre(kept)));
}

TEST(OwnedFd, SelfMoveKeepsTheDescriptorOpen) {
  FakeSyscalls os;
  const int fd = open_null(os);
  OwnedFd owner(os, fd);
  OwnedFd& alias = owner;
  owner = std::move(alias);
  EXPECT_EQ(owner.get(), fd);
  EXPECT_EQ(closes_of(os, fd), 0);
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), ElementsAre(fd)));
}

TEST(OwnedFd, ReleaseLetsGoWithoutClosing) {
  FakeSyscalls os;
  const int fd = open_null(os);
  {
    OwnedFd owner(os, fd);
    EXPECT_EQ(owner.release(), fd);
    EXPECT_FALSE(owner);
    EXPECT_EQ(owner.release(), -1);
  }
  EXPECT_EQ(closes_of(os, fd), 0);
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), ElementsAre(fd)));
}

TEST(OwnedFd, ResetTwiceClosesOnce) {
  FakeSyscalls os;
  const int fd = open_null(os);
  OwnedFd owner(os, fd);
  owner.reset();
  EXPECT_FALSE(owner);
  owner.reset();
  EXPECT_EQ(closes_of(os, fd), 1);
  EXPECT_THAT(os, HasOpenFds(os.current_pid(), IsEmpty()));
}

// Linux frees the descriptor even when close fails, so the owner must not try again: a second
// close could hit a descriptor since given to someone else.
TEST(OwnedFd, AFailedCloseIsReportedOnceAndNeverRetried) {
  FakeSyscalls os;
  const int fd = open_null(os);
  os.fail_nth("close", 1, EIO);
  {
    OwnedFd owner(os, fd);
    auto closed = owner.close();
    ASSERT_FALSE(closed);
    EXPECT_EQ(closed.error().code, EIO);
    EXPECT_FALSE(owner);
  }
  EXPECT_EQ(closes_of(os, fd), 1);
}

TEST(OwnedFd, TheDestructorDropsACloseError) {
  FakeSyscalls os;
  const int fd = open_null(os);
  os.fail_nth("close", 1, EIO);
  { OwnedFd owner(os, fd); }
  EXPECT_THAT(os.transcript(), fake::CallFailedWith("close", EIO));
  EXPECT_EQ(closes_of(os, fd), 1);
}

// An owner on the stack of a process that ends: a real process never runs its destructor, and
// the fake, unwinding the process with ProcessEnded, makes no close for it either, so the
// process that runs next (here the parent, which holds the same number) loses nothing.
TEST(OwnedFd, AnOwnerUnwoundWithAnEndedProcessClosesNothingForTheNext) {
  FakeSyscalls os;
  const pid_t parent = os.current_pid();
  const int fd = open_null(os);
  os.script_fork(fake::ForkAs::kChild);
  ASSERT_EQ(os.fork(), 0);
  const pid_t child = os.current_pid();
  try {
    OwnedFd owner(os, fd);
    os.exit_now(3);
  } catch (const fake::ProcessEnded& ended) {
    EXPECT_EQ(ended.pid, child);
  }
  EXPECT_EQ(closes_of(os, fd), 0);
  EXPECT_THAT(os.open_fds(child), IsEmpty());
  os.switch_to(parent);
  EXPECT_THAT(os, HasOpenFds(parent, ElementsAre(fd)));
}

}  // namespace
}  // namespace daemonkit::core
