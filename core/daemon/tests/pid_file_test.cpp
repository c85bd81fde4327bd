#include "daemonkit/core/daemon/pid_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FailsWithMessage;
using fake::IsOk;
using ::testing::_;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Return;
using ::testing::StrictMock;
using Kind = PidFileContent::Kind;

int count_calls(const fake::FakeSyscalls& os, const std::string& name) {
  return static_cast<int>(std::count_if(os.transcript().begin(), os.transcript().end(),
                                        [&](const auto& record) { return record.name == name; }));
}

TEST(PidFileContent, ReadsDecimalPidWithNewline) {
  const PidFileContent c = parse_pid_file("4242\n");
  EXPECT_EQ(c.kind, Kind::kPid);
  EXPECT_EQ(c.pid, 4242);
}

TEST(PidFileContent, AllowsSurroundingWhitespaceLikeTwistd) {
  const PidFileContent c = parse_pid_file(" 4000000 \n");
  EXPECT_EQ(c.kind, Kind::kPid);
  EXPECT_EQ(c.pid, 4000000);
}

TEST(PidFileContent, EmptyOrBlankIsEmptyNotNonNumeric) {
  EXPECT_EQ(parse_pid_file("").kind, Kind::kEmpty);
  EXPECT_EQ(parse_pid_file(" \n").kind, Kind::kEmpty);
}

TEST(PidFileContent, RejectsPythonIntQuirks) {
  EXPECT_EQ(parse_pid_file("1_0").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("+5").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("0x10").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("12 34").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("-").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("--1").kind, Kind::kNonNumeric);
  EXPECT_EQ(parse_pid_file("99999999999999999999").kind, Kind::kNonNumeric);
}

TEST(PidFileContent, ReadsNegativeAndZeroAsPidsThatCannotRun) {
  EXPECT_EQ(parse_pid_file("-1").pid, -1);
  EXPECT_EQ(parse_pid_file("-1").kind, Kind::kPid);
  EXPECT_EQ(parse_pid_file("0").kind, Kind::kPid);
  EXPECT_EQ(parse_pid_file("0").pid, 0);
}

RC_GTEST_PROP(PidFileContent, WhatWriteProducesParsesBack, ()) {
  const auto pid = *rc::gen::inRange<pid_t>(1, 1 << 22);
  const PidFileContent c = parse_pid_file(std::to_string(pid) + "\n");
  RC_ASSERT(c.kind == Kind::kPid);
  RC_ASSERT(c.pid == pid);
}

RC_GTEST_PROP(PidFileContent, AnyNonDigitInsideIsNonNumeric, ()) {
  const auto pid = *rc::gen::inRange<pid_t>(1, 1 << 22);
  const auto bad = *rc::gen::suchThat<char>([](char c) {
    return (c < '0' || c > '9') && c != ' ' && c != '\t' && c != '\n' && c != '\r';
  });
  std::string text = std::to_string(pid);
  const auto at = *rc::gen::inRange<std::size_t>(1, text.size() + 1);
  text.insert(at, 1, bad);
  RC_ASSERT(parse_pid_file(text).kind == Kind::kNonNumeric);
}

// One read of `fd` returns `text` (as /proc/<pid>/stat is read: in one go).
void expect_one_read(fake::MockSyscalls& os, int fd, std::string text) {
  EXPECT_CALL(os, read(fd, _, _))
      .WillOnce([text](int, void* buf, std::size_t n) -> sys::Result<std::size_t> {
        const std::size_t k = std::min(n, text.size());
        std::memcpy(buf, text.data(), k);
        return k;
      })
      .RetiresOnSaturation();
}

TEST(PidProbe, ZeroNegativeAndOwnPidAreStaleWithoutAskingTheKernel) {
  StrictMock<fake::MockSyscalls> os;  // no kill expected
  EXPECT_EQ(probe_pid(os, 0, 100).value(), PidLiveness::kStale);
  EXPECT_EQ(probe_pid(os, -1, 100).value(), PidLiveness::kStale);
  EXPECT_EQ(probe_pid(os, 100, 100).value(), PidLiveness::kStale);
}

TEST(PidProbe, EpermMeansRunningUnderAnotherUserUnlessItIsAZombie) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, kill(7, 0)).WillOnce(Return(sys::fail(EPERM, "kill")));
  EXPECT_CALL(os, open(::testing::StrEq("/proc/7/stat"), _, _))
      .WillOnce(Return(sys::fail(ENOENT, "open")));
  EXPECT_CALL(os, kill(8, 0)).WillOnce(Return(sys::fail(EPERM, "kill")));
  EXPECT_CALL(os, open(::testing::StrEq("/proc/8/stat"), _, _)).WillOnce(Return(4));
  // A comm may hold ") Z": the state is read after the last ')'.
  expect_one_read(os, 4, "8 (odd) Z name) Z 1 8 8");
  EXPECT_CALL(os, close(4)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_EQ(probe_pid(os, 7, 100).value(), PidLiveness::kRunning);
  EXPECT_EQ(probe_pid(os, 8, 100).value(), PidLiveness::kStale);
}

TEST(PidProbe, SuccessMeansRunningAndEsrchStale) {
  fake::FakeSyscalls os;
  const pid_t self = os.getpid();
  auto child = os.fork();
  ASSERT_TRUE(child);
  EXPECT_EQ(probe_pid(os, *child, self).value(), PidLiveness::kRunning);
  EXPECT_EQ(probe_pid(os, *child + 1, self).value(), PidLiveness::kStale);
}

TEST(PidProbe, AZombieIsStaleThoughKillStillSucceedsOnIt) {
  fake::FakeSyscalls os;
  const pid_t self = os.getpid();
  os.script_fork(fake::ForkAs::kChild);
  ASSERT_EQ(os.fork().value(), 0);
  const pid_t child = os.getpid();
  try {
    os.exit_now(0);
  } catch (const fake::ProcessEnded&) {
  }
  os.switch_to(self);
  ASSERT_TRUE(os.kill(child, 0));
  EXPECT_TRUE(is_zombie(os, child));
  EXPECT_EQ(probe_pid(os, child, self).value(), PidLiveness::kStale);
}

TEST(PidProbe, AnUnreadableProcKeepsKillsVerdict) {
  fake::FakeSyscalls os;
  const pid_t self = os.getpid();
  auto child = os.fork();
  ASSERT_TRUE(child);
  os.fail_when(
      "open",
      [](const fake::CallRecord& call) {
        return !call.args.empty() && call.args[0].rfind("/proc/", 0) == 0;
      },
      EACCES);
  EXPECT_FALSE(is_zombie(os, *child));
  EXPECT_EQ(probe_pid(os, *child, self).value(), PidLiveness::kRunning);
}

TEST(PidProbe, OtherErrorsAreReturned) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, kill(7, 0)).WillOnce(Return(sys::fail(EINVAL, "kill")));
  auto probed = probe_pid(os, 7, 100);
  ASSERT_THAT(probed, FailsWith(EINVAL));
}

TEST(PidFileMessages, AreTwistdsWordsWithGenericServerName) {
  EXPECT_EQ(another_server_message(7209),
            "Another server is running, PID 7209\n\n"
            "This could either be a previously started instance of your application or a\n"
            "different application entirely. To start a new one, either run it in some other\n"
            "directory, or use the --pidfile and --logfile parameters to avoid clashes.\n");
  EXPECT_THAT(another_server_message(std::nullopt),
              HasSubstr("Another server is running (it holds the lock)\n"));
  EXPECT_EQ(non_numeric_message("/run/x.pid"), "Pidfile /run/x.pid contains non-numeric value");
  EXPECT_EQ(stale_pidfile_message("/run/x.pid"), "Removing stale pidfile /run/x.pid");
}

struct stat regular_file(ino_t ino) {
  struct stat st {};
  st.st_mode = S_IFREG | 0644;
  st.st_dev = 1;
  st.st_ino = ino;
  return st;
}

// Feeds `text` to the next read of `fd`, then EOF.
void expect_content(fake::MockSyscalls& os, int fd, std::string text) {
  if (text.empty()) {
    EXPECT_CALL(os, read(fd, _, _))
        .WillOnce(Return(sys::Result<std::size_t>(0)))
        .RetiresOnSaturation();
    return;
  }
  EXPECT_CALL(os, read(fd, _, _))
      .WillOnce([text](int, void* buf, std::size_t n) -> sys::Result<std::size_t> {
        const std::size_t k = std::min(n, text.size());
        std::memcpy(buf, text.data(), k);
        return k;
      })
      .WillOnce(Return(sys::Result<std::size_t>(0)))
      .RetiresOnSaturation();
}

// The lock is taken on a read-only descriptor; the pid is written through a second one.
constexpr int kFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
constexpr int kWriteFlags = O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;

// After the lock and the path check: the writing descriptor `fd`, proven to be inode `ino`.
void expect_writer(fake::MockSyscalls& os, int fd, ino_t ino) {
  EXPECT_CALL(os, open(_, kWriteFlags, 0)).WillOnce(Return(fd)).RetiresOnSaturation();
  EXPECT_CALL(os, fstat(fd)).WillOnce(Return(regular_file(ino))).RetiresOnSaturation();
}

// The file exists: the O_EXCL create fails and the plain open returns `fd`.
void expect_open_existing(fake::MockSyscalls& os, int fd) {
  EXPECT_CALL(os, open(_, kFlags | O_CREAT | O_EXCL, 0644))
      .WillOnce(Return(sys::fail(EEXIST, "open")))
      .RetiresOnSaturation();
  EXPECT_CALL(os, open(_, kFlags, 0)).WillOnce(Return(fd)).RetiresOnSaturation();
}

TEST(PidFileAcquire, OpensNoFollowLocksThenChecksThePathStillNamesTheInode) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, open(::testing::StrEq("/run/d.pid"), kFlags | O_CREAT | O_EXCL, 0644))
      .WillOnce(Return(5));
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, LOCK_EX | LOCK_NB)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(::testing::StrEq("/run/d.pid"))).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, open(::testing::StrEq("/run/d.pid"), kWriteFlags, 0)).WillOnce(Return(6));
  EXPECT_CALL(os, fstat(6)).WillOnce(Return(regular_file(10)));
  expect_content(os, 5, "");
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, IsOk());
  EXPECT_EQ(pid->fd(), 5);
  EXPECT_EQ(pid->write_fd(), 6);
}

TEST(PidFileAcquire, AWriterThatIsAnotherInodeStartsOver) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, open(_, kWriteFlags, 0)).WillOnce(Return(6));
  EXPECT_CALL(os, fstat(6)).WillOnce(Return(regular_file(11)));  // replaced after the check
  EXPECT_CALL(os, close(6)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(11)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(11)));
  expect_writer(os, 6, 11);
  expect_content(os, 5, "");
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, IsOk());
}

TEST(PidFileAcquire, AFileWeMayNotWriteIsRefusedAfterTheLock) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, open(_, kWriteFlags, 0)).WillOnce(Return(sys::fail(EACCES, "open")));
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, FailsWithMessage("open(/run/d.pid): Permission denied (EACCES)"));
}

TEST(PidFileAcquire, StartsOverWhenThePathWasReplacedBetweenOpenAndLock) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(11)));  // replaced
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  expect_open_existing(os, 6);
  EXPECT_CALL(os, fstat(6)).WillOnce(Return(regular_file(11)));
  EXPECT_CALL(os, flock(6, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(11)));
  expect_writer(os, 7, 11);
  expect_content(os, 6, "");
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, IsOk());
  EXPECT_EQ(pid->fd(), 6);
}

// The pid it wrote is not named as the server until /proc proves it holds the lock; here /proc
// refuses to tell (the fake-kernel tests below cover the proven and disproven cases).
TEST(PidFileAcquire, LockHeldElsewhereIsAnotherServerWithThePidUnproven) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::fail(EWOULDBLOCK, "flock")));
  expect_content(os, 5, "777\n");
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, open(::testing::StrEq("/proc/777/fd"), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0))
      .WillOnce(Return(sys::fail(EACCES, "open")));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_THAT(pid, FailsWithMessage(HasSubstr(
                       "Another server is running (it holds the lock on /run/d.pid); its file "
                       "names PID 777, which could not be proven to hold it: "
                       "open(/proc/777/fd): Permission denied (EACCES)\n")));
  EXPECT_THAT(pid, FailsWithMessage(HasSubstr("--pidfile")));
}

TEST(PidFileAcquire, UnlockedFileNamingALiveProcessIsAnotherServer) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  expect_writer(os, 7, 10);
  expect_content(os, 5, "777");
  EXPECT_CALL(os, getpid()).WillOnce(Return(1000));
  EXPECT_CALL(os, kill(777, 0)).WillOnce(Return(sys::fail(EPERM, "kill")));
  EXPECT_CALL(os, open(::testing::StrEq("/proc/777/stat"), O_RDONLY | O_CLOEXEC | O_NOCTTY, 0))
      .WillOnce(Return(6));
  expect_one_read(os, 6, "777 (sleep) S 1 777 777 0 -1");
  EXPECT_CALL(os, close(6)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, close(7)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_THAT(pid, FailsWithMessage(HasSubstr("Another server is running, PID 777")));
}

TEST(PidFileAcquire, UnlockedFileWithDeadPidIsEmptiedAndLogged) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<std::string> lines;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  expect_writer(os, 7, 10);
  expect_content(os, 5, "777\n");
  EXPECT_CALL(os, getpid()).WillOnce(Return(1000));
  EXPECT_CALL(os, kill(777, 0)).WillOnce(Return(sys::fail(ESRCH, "kill")));
  EXPECT_CALL(os, ftruncate(7, 0)).WillOnce(Return(sys::Result<void>{}));
  auto pid = PidFile::acquire(os, "/run/d.pid", [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(pid, IsOk());
  EXPECT_THAT(lines, ::testing::ElementsAre("Removing stale pidfile /run/d.pid"));
}

TEST(PidFileAcquire, LockOnlyPolicyNeverProbes) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  expect_writer(os, 7, 10);
  expect_content(os, 5, "777\n");
  EXPECT_CALL(os, ftruncate(7, 0)).WillOnce(Return(sys::Result<void>{}));
  PidFileOptions options;
  options.unlocked = UnlockedPidFilePolicy::kLockOnly;
  EXPECT_TRUE(PidFile::acquire(os, "/run/d.pid", {}, options));
}

TEST(PidFileAcquire, NonNumericContentIsRefusedWithTwistdsMessage) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(regular_file(10)));
  EXPECT_CALL(os, flock(5, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, lstat(_)).WillOnce(Return(regular_file(10)));
  expect_writer(os, 7, 10);
  expect_content(os, 5, "1_0");
  EXPECT_CALL(os, close(7)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, FailsWithMessage("Pidfile /run/d.pid contains non-numeric value"));
}

TEST(PidFileAcquire, RelativePathIsMadeAbsoluteBeforeAnythingElse) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, getcwd()).WillOnce(Return(std::string("/srv/app")));
  EXPECT_CALL(os, open(::testing::StrEq("/srv/app/d.pid"), kFlags | O_CREAT | O_EXCL, 0644))
      .WillOnce(Return(sys::fail(EACCES, "open")));
  auto pid = PidFile::acquire(os, "d.pid", {});
  ASSERT_THAT(pid, FailsWithMessage("open(/srv/app/d.pid): Permission denied (EACCES)"));
}

TEST(PidFileAcquire, SymlinkIsRefusedByONoFollow) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, open(_, kFlags | O_CREAT | O_EXCL, 0644))
      .WillOnce(Return(sys::fail(EEXIST, "open")));
  EXPECT_CALL(os, open(_, kFlags, 0)).WillOnce(Return(sys::fail(ELOOP, "open")));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_THAT(pid, FailsWithMessage(HasSubstr("open(/run/d.pid)")));
  EXPECT_THAT(pid, FailsWithMessage(HasSubstr("ELOOP")));
}

TEST(PidFileAcquire, ADirectoryIsNotAPidFile) {
  StrictMock<fake::MockSyscalls> os;
  struct stat dir {};
  dir.st_mode = S_IFDIR | 0755;
  expect_open_existing(os, 5);
  EXPECT_CALL(os, fstat(5)).WillOnce(Return(dir));
  EXPECT_CALL(os, close(5)).WillOnce(Return(sys::Result<void>{}));
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_THAT(pid, FailsWithMessage("Pidfile /run/d.pid is not a regular file"));
}

}  // namespace
}  // namespace daemonkit::core

namespace daemonkit::core {
namespace {

TEST(PidFileFake, ReleaseLeavesAFileThatReplacedOursAlone) {
  fake::FakeSyscalls os;
  std::vector<std::string> lines;
  auto pid = PidFile::acquire(os, "/run/r.pid", [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_THAT(pid, IsOk());
  ASSERT_TRUE(pid->write_pid(1000));
  // Someone replaced the file (an admin, a second tool): the name is no longer ours.
  ASSERT_TRUE(os.unlink("/run/r.pid"));
  os.write_file("/run/r.pid", "777\n");
  pid->release();
  EXPECT_EQ(os.read_file("/run/r.pid"), "777\n");
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("now names another file")));
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// Once the pid is written, the process keeps no descriptor that can write the file; outside
// the chroot, the path cannot reach it either. It is left, unlocked, and the log says so.
// (It used to be emptied through the held descriptor, which was read-write.)
TEST(PidFileFake, ReleaseOutsideTheChrootLeavesTheFileAndSaysSo) {
  fake::FakeSyscalls os;
  std::vector<std::string> lines;
  auto pid = PidFile::acquire(os, "/run/r.pid", [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_TRUE(pid);
  ASSERT_TRUE(pid->write_pid(1000));
  pid->relocate_for_chroot("/srv/jail");
  pid->release();
  EXPECT_EQ(os.read_file("/run/r.pid"), "1000\n");
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("outside the chroot")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("Failed to empty PID file /run/r.pid")));
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// Before write_pid, the writing descriptor still empties a file it could not remove.
TEST(PidFileFake, ReleaseBeforeWritingEmptiesThroughTheWriter) {
  fake::FakeSyscalls os;
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_TRUE(pid);
  ASSERT_TRUE(os.write(pid->write_fd(), "55\n", 3));
  os.fail_nth("unlink", 1, EPERM);
  pid->release();
  EXPECT_EQ(os.read_file("/run/r.pid"), "");
  EXPECT_EQ(count_calls(os, "open"), 2) << "acquire's two; release needed none";
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// After write_pid, release opens the path for writing again to empty what it cannot remove.
TEST(PidFileFake, ReleaseAfterWritingEmptiesThroughThePath) {
  fake::FakeSyscalls os;
  std::vector<std::string> lines;
  auto pid = PidFile::acquire(os, "/run/r.pid", [&](std::string_view l) { lines.emplace_back(l); });
  ASSERT_TRUE(pid);
  ASSERT_TRUE(pid->write_pid(1000));
  os.fail_nth("unlink", 1, EACCES);
  pid->release();
  EXPECT_EQ(os.read_file("/run/r.pid"), "");
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("No permission to delete")));
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// Each call that empties the file failing: logged, and the file is left as it was.
TEST(PidFileFake, ReleaseThatCannotEmptyLogsWhatTheNextStartWillFind) {
  for (const char* call : {"open", "fstat", "ftruncate"}) {
    fake::FakeSyscalls os;
    std::vector<std::string> lines;
    auto pid =
        PidFile::acquire(os, "/run/r.pid", [&](std::string_view l) { lines.emplace_back(l); });
    ASSERT_TRUE(pid);
    ASSERT_TRUE(pid->write_pid(1000));
    os.clear_transcript();  // so that nth counts release's calls
    os.fail_nth("unlink", 1, EACCES);
    os.fail_nth(call, 1, EIO);
    pid->release();
    EXPECT_EQ(os.read_file("/run/r.pid"), "1000\n") << call;
    EXPECT_THAT(lines, ::testing::Contains(AllOf(HasSubstr("Failed to empty PID file /run/r.pid"),
                                                 HasSubstr("(EIO)"), HasSubstr("next start"))))
        << call;
    EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty()) << call;
  }
}

// Issue #12, item 2: a daemon that dropped privileges keeps the lock's descriptor across exec;
// it must not be able to rewrite the pid through it (and aim root's `stop` at another process),
// nor open the file for writing again.
TEST(PidFileFake, AfterWritingAndDroppingPrivilegesTheDaemonCannotRewriteTheFile) {
  fake::FakeSyscalls os;
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_TRUE(pid);
  ASSERT_TRUE(pid->write_pid(1000));
  ASSERT_TRUE(pid->keep_across_exec());
  ASSERT_TRUE(os.setresgid(65534, 65534, 65534));
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  EXPECT_EQ(os.open_fds(1000), (std::vector<int>{pid->fd()})) << "nothing else stays open";
  auto wrote = os.write(pid->fd(), "1\n", 2);
  ASSERT_THAT(wrote, FailsWith(EBADF));
  auto truncated = os.ftruncate(pid->fd(), 0);
  ASSERT_THAT(truncated, FailsWith(EINVAL));
  auto reopened = os.open("/run/r.pid", O_WRONLY, 0);
  ASSERT_THAT(reopened, FailsWith(EACCES));
  EXPECT_EQ(os.read_file("/run/r.pid"), "1000\n");
}

TEST(PidFileFake, WritePidClosesItsWriterWhicheverCallFails) {
  for (const char* call : {"ftruncate", "write"}) {
    fake::FakeSyscalls os;
    auto pid = PidFile::acquire(os, "/run/r.pid", {});
    ASSERT_TRUE(pid);
    os.fail_nth(call, 1, EIO);
    auto written = pid->write_pid(1000);
    ASSERT_FALSE(written) << call;
    EXPECT_EQ(written.error().message,
              fmt::format("{}(/run/r.pid): Input/output error (EIO)", call));
    EXPECT_EQ(pid->write_fd(), -1);
    EXPECT_EQ(os.open_fds(1000), (std::vector<int>{pid->fd()})) << call;
  }
}

// A second write_pid opens the path again, and refuses a path that names another file now.
TEST(PidFileFake, WritingAgainGoesByThePathAndChecksTheInode) {
  fake::FakeSyscalls os;
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_TRUE(pid);
  ASSERT_TRUE(pid->write_pid(1000));
  ASSERT_TRUE(pid->write_pid(1001));
  EXPECT_EQ(os.read_file("/run/r.pid"), "1001\n");
  ASSERT_TRUE(os.unlink("/run/r.pid"));
  os.write_file("/run/r.pid", "777\n");
  auto replaced = pid->write_pid(1002);
  ASSERT_THAT(replaced, FailsWithMessage("Pidfile /run/r.pid no longer names the file we locked"));
  EXPECT_EQ(os.read_file("/run/r.pid"), "777\n");
  for (const char* call : {"open", "fstat"}) {
    os.clear_transcript();
    os.fail_nth(call, 1, EIO);
    auto failed = pid->write_pid(1003);
    ASSERT_THAT(failed,
                FailsWithMessage(fmt::format("{}(/run/r.pid): Input/output error (EIO)", call)));
    os.clear_faults();
  }
  EXPECT_EQ(os.open_fds(1000), (std::vector<int>{pid->fd()}));
}

// A PID file that is a FIFO is refused without waiting for a writer.
TEST(PidFileFake, AFifoAtThePathIsRefusedWithoutBlocking) {
  fake::FakeSyscalls os;
  os.set_would_block(fake::WouldBlock::kAbort);
  os.make_fifo("/run/r.pid");
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_THAT(pid, FailsWithMessage("Pidfile /run/r.pid is not a regular file"));
}

TEST(PidFileFake, ReleaseInsideTheChrootUsesTheInnerPath) {
  fake::FakeSyscalls os;
  os.make_dir("/srv/jail/run");
  auto pid = PidFile::acquire(os, "/srv/jail/run/r.pid", {});
  ASSERT_TRUE(pid);
  ASSERT_TRUE(os.chdir("/srv/jail"));
  ASSERT_TRUE(os.chroot("/srv/jail"));
  pid->relocate_for_chroot("/srv/jail/");
  pid->release();
  EXPECT_FALSE(os.stat_path("/srv/jail/run/r.pid"));
}

TEST(PidFileFake, KeepAcrossExecClearsCloexecOnly) {
  fake::FakeSyscalls os;
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_TRUE(pid);
  EXPECT_EQ(*os.fcntl(pid->fd(), F_GETFD, 0) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_TRUE(pid->keep_across_exec());
  EXPECT_EQ(*os.fcntl(pid->fd(), F_GETFD, 0) & FD_CLOEXEC, 0);
}

TEST(PidFileFake, AFailedStartRemovesTheFileItCreatedButNotOneThatWasThere) {
  {
    fake::FakeSyscalls os;
    os.fail_nth("read", 1, EIO);
    EXPECT_FALSE(PidFile::acquire(os, "/run/r.pid", {}));
    EXPECT_FALSE(os.stat_path("/run/r.pid"));
  }
  {
    fake::FakeSyscalls os;
    os.write_file("/run/r.pid", "");
    os.fail_nth("read", 1, EIO);
    EXPECT_FALSE(PidFile::acquire(os, "/run/r.pid", {}));
    EXPECT_TRUE(os.stat_path("/run/r.pid"));
  }
}

// Without a working directory a relative path cannot be resolved: nothing is opened.
TEST(PidFileAcquire, ARelativePathWithoutAWorkingDirectoryFailsAtGetcwd) {
  fake::FakeSyscalls os;
  os.fail_nth("getcwd", 1, ENOENT);
  auto pid = PidFile::acquire(os, "d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().message, "getcwd: No such file or directory (ENOENT)");
  EXPECT_EQ(count_calls(os, "open"), 0);
}

// kill(pid, 0) that fails other than ESRCH or EPERM proves nothing either way: the start is
// refused (a running server might be there), and the file, which was not ours, stays as it was.
TEST(PidFileAcquire, AProbeThatCannotTellRefusesToStartAndLeavesTheFile) {
  fake::FakeSyscalls os;
  os.write_file("/run/d.pid", "4321\n");
  os.fail_nth("kill", 1, EINVAL);
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().message,
            "Can't check status of PID 4321 from pidfile /run/d.pid: kill(4321): Invalid "
            "argument (EINVAL)");
  EXPECT_EQ(os.read_file("/run/d.pid"), "4321\n");
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// Once chrooted away from the file, with the writer closed by the first write, the pid cannot
// be written again; the file keeps what it said.
TEST(PidFileFake, WritingAgainFromOutsideTheChrootIsRefused) {
  fake::FakeSyscalls os;
  auto pid = PidFile::acquire(os, "/run/r.pid", {});
  ASSERT_TRUE(pid);
  ASSERT_TRUE(pid->write_pid(1000));
  pid->relocate_for_chroot("/srv/jail");
  auto again = pid->write_pid(1001);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "Pidfile /run/r.pid is outside the chroot; cannot write it");
  EXPECT_EQ(os.read_file("/run/r.pid"), "1000\n");
  EXPECT_EQ(os.open_fds(os.current_pid()), (std::vector<int>{pid->fd()}));
}

// Move assignment hands over the lock, the writer and the path: the target writes and releases
// the file, the source holds nothing.
TEST(PidFileFake, MoveAssignmentHandsTheLockToTheTarget) {
  fake::FakeSyscalls os;
  auto target = PidFile::acquire(os, "/run/a.pid", {});
  auto source = PidFile::acquire(os, "/run/b.pid", {});
  ASSERT_TRUE(target);
  ASSERT_TRUE(source);
  target->release();
  *target = std::move(*source);
  EXPECT_FALSE(source->held());  // NOLINT(bugprone-use-after-move): the moved-from state is API
  ASSERT_TRUE(target->held());
  EXPECT_EQ(target->path(), "/run/b.pid");
  auto second = PidFile::acquire(os, "/run/b.pid", {});
  ASSERT_FALSE(second) << "the lock did not travel with the object";
  EXPECT_THAT(second.error().message, HasSubstr("Another server is running"));
  ASSERT_TRUE(target->write_pid(4242));
  EXPECT_EQ(os.read_file("/run/b.pid"), "4242\n");
  target->release();
  EXPECT_FALSE(os.read_file("/run/b.pid").has_value());
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

// A path replaced between every open and lock (something keeps recreating the file) is given up
// after a bounded number of attempts, holding nothing.
TEST(PidFileFake, APathReplacedAtEveryAttemptIsGivenUp) {
  fake::FakeSyscalls os;
  os.before_each_call([&](std::string_view name, pid_t) {
    if (name != "flock") return;
    ASSERT_TRUE(os.unlink("/run/d.pid"));
    os.write_file("/run/d.pid", "");
  });
  auto pid = PidFile::acquire(os, "/run/d.pid", {});
  ASSERT_FALSE(pid);
  EXPECT_EQ(pid.error().message, "Pidfile /run/d.pid kept being replaced while it was locked");
  EXPECT_EQ(count_calls(os, "flock"), 8);
  EXPECT_THAT(os.open_fds(os.current_pid()), ::testing::IsEmpty());
}

}  // namespace
}  // namespace daemonkit::core
