// release_unless_locked: giving up a PID file after a failed launch without removing it from
// under a process that still holds its lock (a child the daemon forked, outliving it).
#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/daemon/pid_file.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWithMessage;
using ::testing::IsEmpty;

PidFile acquired(fake::FakeSyscalls& os, const std::string& path = "/run/r.pid") {
  auto pid = PidFile::acquire(os, path, {});
  EXPECT_TRUE(pid) << pid.error().message;
  EXPECT_TRUE(pid->write_pid(4242));
  return std::move(*pid);
}

TEST(PidFileReleaseUnlessLocked, RemovesAFileNobodyElseHolds) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  EXPECT_TRUE(release_unless_locked(os, std::move(pid)));
  EXPECT_FALSE(os.read_file("/run/r.pid").has_value());
  EXPECT_THAT(os.open_fds(os.current_pid()), IsEmpty());
}

TEST(PidFileReleaseUnlessLocked, LeavesAFileAnotherProcessStillHoldsTheLockOf) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  const pid_t child = *os.fork();  // shares the open file description, and so the lock
  auto released = release_unless_locked(os, std::move(pid));
  ASSERT_THAT(released,
              FailsWithMessage(
                  "the PID file /run/r.pid is still locked by another process; left it in place"));
  EXPECT_EQ(os.read_file("/run/r.pid"), "4242\n");
  EXPECT_THAT(os.open_fds(os.current_pid()), IsEmpty());
  // Once the holder is gone, the file is anybody's again.
  os.end_process(child, 0);
  const int fd = *os.open("/run/r.pid", O_RDONLY | O_CLOEXEC, 0);
  EXPECT_TRUE(os.flock(fd, LOCK_EX | LOCK_NB));
}

// A holder just sent SIGKILL lets go as it exits, a moment later: patience waits for that.
TEST(PidFileReleaseUnlessLocked, WaitsUpToItsPatienceForADyingHolder) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  const pid_t child = *os.fork();
  int sleeps = 0;
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name == "poll" && ++sleeps == 3) os.end_process(child, 0);
  });
  const auto before = os.clock().monotonic();
  EXPECT_TRUE(release_unless_locked(os, std::move(pid), std::chrono::milliseconds(1000)));
  os.before_each_call(nullptr);
  EXPECT_FALSE(os.read_file("/run/r.pid").has_value());
  EXPECT_EQ(os.clock().monotonic() - before, std::chrono::milliseconds(30));  // 3 sleeps
}

TEST(PidFileReleaseUnlessLocked, PatienceIsBounded) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  (void)*os.fork();
  const auto before = os.clock().monotonic();
  EXPECT_FALSE(release_unless_locked(os, std::move(pid), std::chrono::milliseconds(100)));
  EXPECT_EQ(os.clock().monotonic() - before, std::chrono::milliseconds(100));
  EXPECT_EQ(os.read_file("/run/r.pid"), "4242\n");
}

TEST(PidFileReleaseUnlessLocked, LeavesAFileThatReplacedOursAlone) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  ASSERT_TRUE(os.unlink("/run/r.pid"));
  os.write_file("/run/r.pid", "777\n");
  EXPECT_TRUE(release_unless_locked(os, std::move(pid)));
  EXPECT_EQ(os.read_file("/run/r.pid"), "777\n");
}

TEST(PidFileReleaseUnlessLocked, AFileAlreadyGoneIsReleased) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  ASSERT_TRUE(os.unlink("/run/r.pid"));
  EXPECT_TRUE(release_unless_locked(os, std::move(pid)));
  EXPECT_THAT(os.open_fds(os.current_pid()), IsEmpty());
}

TEST(PidFileReleaseUnlessLocked, AFileNoLongerHeldIsNothingToDo) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  pid.release();
  EXPECT_TRUE(release_unless_locked(os, std::move(pid)));
}

// Each call's failure removes nothing and names the call; our descriptor is closed regardless.
TEST(PidFileReleaseUnlessLocked, EachFailedCallKeepsTheFileAndSaysWhy) {
  struct Case {
    const char* call;
    int nth;  // counted from the first call release_unless_locked makes
    int error;
    const char* message;
  };
  for (const Case c :
       {Case{"fstat", 1, EIO, "fstat(/run/r.pid): Input/output error (EIO)"},
        Case{"open", 1, EACCES, "open(/run/r.pid): Permission denied (EACCES)"},
        Case{"flock", 1, ENOLCK, "flock(/run/r.pid): No locks available (ENOLCK)"},
        Case{"fstat", 2, EIO, "fstat(/run/r.pid): Input/output error (EIO)"},
        Case{"lstat", 1, EIO, "lstat(/run/r.pid): Input/output error (EIO)"},
        Case{"unlink", 1, EACCES, "unlink(/run/r.pid): Permission denied (EACCES)"}}) {
    fake::FakeSyscalls os;
    PidFile pid = acquired(os);
    os.fail_when(
        c.call, [&, seen = 0](const fake::CallRecord&) mutable { return ++seen == c.nth; },
        c.error);
    auto released = release_unless_locked(os, std::move(pid));
    ASSERT_FALSE(released) << c.call;
    EXPECT_EQ(released.error().message, c.message);
    EXPECT_TRUE(os.read_file("/run/r.pid").has_value()) << c.call;
    EXPECT_THAT(os.open_fds(os.current_pid()), IsEmpty()) << c.call;
  }
}

// A file we may not remove must at least stop naming the dead daemon, whose pid may be reused.
TEST(PidFileReleaseUnlessLocked, AFileThatCannotBeRemovedIsEmptied) {
  fake::FakeSyscalls os;
  PidFile pid = acquired(os);
  os.fail_nth("unlink", 1, EACCES);
  EXPECT_FALSE(release_unless_locked(os, std::move(pid)));
  EXPECT_EQ(os.read_file("/run/r.pid"), "");
}

}  // namespace
}  // namespace daemonkit::core
