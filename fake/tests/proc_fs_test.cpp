// The fake kernel's /proc as lock proofs read it: the listing of live pids, /proc/<pid>/fd/<n>
// as magic links to the open files, and /proc/<pid>/fdinfo/<n> with the flock lines of the
// open file description behind each descriptor (proven against Linux in
// core/tests/pid_lock_holder_test.cpp's DifferentialFdinfo).
#include <dirent.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing_support::read_all;

std::vector<std::string> list(FakeSyscalls& os, const std::string& path) {
  const int dir = os.open(path.c_str(), O_RDONLY | O_DIRECTORY, 0).value();
  std::vector<std::string> names;
  alignas(8) char buffer[256];
  for (;;) {
    const std::size_t n = os.getdents64(dir, buffer, sizeof buffer).value();
    if (n == 0) break;
    for (std::size_t at = 0; at < n;) {
      unsigned short reclen = 0;
      std::memcpy(&reclen, buffer + at + 16, sizeof reclen);
      names.emplace_back(buffer + at + 19);
      at += reclen;
    }
  }
  (void)os.close(dir);
  return names;
}

std::string fdinfo(FakeSyscalls& os, pid_t pid, int fd) {
  const int info = os.open(fmt::format("/proc/{}/fdinfo/{}", pid, fd).c_str(), O_RDONLY, 0).value();
  std::string text = read_all(os, info);
  (void)os.close(info);
  return text;
}

TEST(FakeProc, ListsSelfAndEveryProcessNotYetReaped) {
  FakeSyscalls os;
  os.script_fork(ForkAs::kParent);
  const pid_t child = os.fork().value();
  EXPECT_THAT(list(os, "/proc"),
              ElementsAre(".", "..", "self", "1", "999", "1000", std::to_string(child)));
  os.end_process(child, 0);  // a zombie still has its /proc entry
  EXPECT_EQ(list(os, "/proc").size(), 7U);
  ASSERT_TRUE(os.waitpid(child, 0));
  EXPECT_EQ(list(os, "/proc").size(), 6U);
}

TEST(FakeProc, AFdLinkLeadsToTheOpenFileEvenUnlinked) {
  FakeSyscalls os;
  const int fd = os.open("/run/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0644).value();
  const struct stat file = os.fstat(fd).value();
  ASSERT_TRUE(os.unlink("/run/x"));
  const std::string link = fmt::format("/proc/1000/fd/{}", fd);
  const struct stat through = os.stat(link.c_str()).value();
  EXPECT_EQ(through.st_ino, file.st_ino);
  EXPECT_EQ(through.st_dev, file.st_dev);
  const struct stat itself = os.lstat(link.c_str()).value();
  EXPECT_TRUE(S_ISLNK(itself.st_mode));
  EXPECT_EQ(itself.st_mode & 0777, 0300U) << "-wx: opened for writing only";
  // Opening it again reaches the same inode, as Linux reopens through the magic link.
  const int again = os.open(link.c_str(), O_RDONLY, 0).value();
  EXPECT_EQ(os.fstat(again).value().st_ino, file.st_ino);
  auto nofollow = os.open(link.c_str(), O_RDONLY | O_NOFOLLOW, 0);
  ASSERT_FALSE(nofollow);
  EXPECT_EQ(nofollow.error().code, ELOOP);
  auto closed = os.stat("/proc/1000/fd/77");
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().code, ENOENT);
}

TEST(FakeProc, FdinfoShowsPosFlagsAndTheFlockOfThatOpenFileDescription) {
  FakeSyscalls os;
  const int fd = os.open("/run/p.pid", O_RDWR | O_CREAT | O_CLOEXEC, 0644).value();
  ASSERT_TRUE(os.write(fd, "12\n", 3));
  ASSERT_TRUE(os.flock(fd, LOCK_EX));
  const int other = os.open("/run/p.pid", O_RDONLY | O_NONBLOCK, 0).value();
  const struct stat st = os.fstat(fd).value();
  EXPECT_EQ(
      fdinfo(os, 1000, fd),
      fmt::format("pos:\t3\nflags:\t02100002\nmnt_id:\t{}\nino:\t{}\n"
                  "lock:\t1: FLOCK  ADVISORY  WRITE 1000 {:02x}:{:02x}:{} 0 EOF\n",
                  20 + st.st_dev % 64, st.st_ino, major(st.st_dev), minor(st.st_dev), st.st_ino));
  EXPECT_EQ(fdinfo(os, 1000, other).find("lock:"), std::string::npos)
      << "the lock is the other description's";
  EXPECT_THAT(fdinfo(os, 1000, other), ::testing::StartsWith("pos:\t0\nflags:\t0104000\n"));
  ASSERT_TRUE(os.flock(fd, LOCK_SH));
  EXPECT_NE(fdinfo(os, 1000, fd).find("FLOCK  ADVISORY  READ 1000"), std::string::npos);
  // The listing's own descriptor is the next number, listed too, as on Linux.
  EXPECT_THAT(
      list(os, "/proc/self/fdinfo"),
      ElementsAre(".", "..", std::to_string(fd), std::to_string(other), std::to_string(other + 1)));
}

// The lock line names the process that took the lock, even once it is gone and a child it
// forked holds the lock through the inherited descriptor.
TEST(FakeProc, AnInheritedLockShowsInTheChildNamingTheTaker) {
  FakeSyscalls os;
  const int fd = os.open("/run/p.pid", O_RDONLY | O_CREAT, 0644).value();
  ASSERT_TRUE(os.flock(fd, LOCK_EX));
  os.script_fork(ForkAs::kParent);
  const pid_t child = os.fork().value();
  os.switch_to(999);
  os.end_process(1000, 0);
  EXPECT_NE(fdinfo(os, child, fd).find("WRITE 1000 "), std::string::npos);
}

TEST(FakeProc, FdinfoOfAnotherUsersProcessNeedsPrivilegeAndDumpability) {
  FakeSyscalls os;
  os.script_fork(ForkAs::kParent);
  const pid_t other = os.fork().value();
  os.switch_to(other);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  os.switch_to(1000);
  EXPECT_TRUE(os.open(fmt::format("/proc/{}/fdinfo", other).c_str(), O_RDONLY | O_DIRECTORY, 0));
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  // Same ids now, but the other process changed ids and so is not dumpable.
  auto refused = os.open(fmt::format("/proc/{}/fdinfo", other).c_str(), O_RDONLY | O_DIRECTORY, 0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EACCES);
  os.switch_to(other);
  ASSERT_TRUE(os.prctl(PR_SET_DUMPABLE, 1));
  os.switch_to(1000);
  ASSERT_TRUE(os.prctl(PR_SET_DUMPABLE, 1));
  EXPECT_TRUE(os.open(fmt::format("/proc/{}/fdinfo", other).c_str(), O_RDONLY | O_DIRECTORY, 0));
  auto init = os.open("/proc/1/fdinfo", O_RDONLY | O_DIRECTORY, 0);
  ASSERT_FALSE(init);
  EXPECT_EQ(init.error().code, EACCES);
}

}  // namespace
}  // namespace daemonkit::fake
