// Descriptor tables in the fake kernel: lowest free number, CLOEXEC per descriptor, dup*,
// fcntl, close_range, RLIMIT_NOFILE, and /proc/self/fd listings.
#include <dirent.h>
#include <linux/close_range.h>
#include <sys/file.h>

#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Linux reports O_LARGEFILE in F_GETFL for files opened by 64-bit programs, although glibc's
// O_LARGEFILE is 0 there.
#if defined(__aarch64__)
constexpr int kLargefile = 0400000;
#else
constexpr int kLargefile = 0100000;
#endif

// Reads a directory with getdents64 into names, in order, with a small buffer so that
// several calls are needed.
std::vector<std::string> list_dir(FakeSyscalls& os, int fd, std::size_t buffer = 64) {
  std::vector<std::string> names;
  std::vector<char> buf(buffer);
  for (;;) {
    auto n = os.getdents64(fd, buf.data(), buf.size());
    if (!n) {
      ADD_FAILURE() << sys::to_string(n.error());
      break;
    }
    if (*n == 0) break;
    for (std::size_t off = 0; off < *n;) {
      std::uint16_t reclen;
      std::memcpy(&reclen, buf.data() + off + 16, sizeof reclen);
      names.emplace_back(buf.data() + off + 19);
      off += reclen;
    }
  }
  return names;
}

TEST(FakeFds, AllocatesTheLowestFreeNumber) {
  FakeSyscalls os;
  EXPECT_EQ(*os.open("/dev/null", O_RDONLY, 0), 0);
  EXPECT_EQ(*os.open("/dev/null", O_RDONLY, 0), 1);
  EXPECT_EQ(*os.open("/dev/null", O_RDONLY, 0), 2);
  ASSERT_TRUE(os.close(1));
  EXPECT_EQ(*os.open("/dev/null", O_RDONLY, 0), 1);
  EXPECT_EQ(*os.dup(0), 3);
}

TEST(FakeFds, CloseOfAClosedDescriptorIsEbadf) {
  FakeSyscalls os;
  EXPECT_EQ(os.close(5).error().code, EBADF);
  const int fd = *os.open("/dev/null", O_RDONLY, 0);
  ASSERT_TRUE(os.close(fd));
  EXPECT_EQ(os.close(fd).error().code, EBADF);
}

TEST(FakeFds, RlimitNofileCapsAllocationWithEmfile) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {3, 3}));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  EXPECT_EQ(os.open("/dev/null", O_RDONLY, 0).error().code, EMFILE);
  EXPECT_EQ(os.dup(0).error().code, EMFILE);
  EXPECT_EQ(os.pipe2(0).error().code, EMFILE);
  // EMFILE comes before the path is looked at, and O_CREAT creates nothing.
  EXPECT_EQ(os.open("/tmp/new", O_WRONLY | O_CREAT, 0644).error().code, EMFILE);
  EXPECT_FALSE(os.stat_path("/tmp/new"));
  EXPECT_EQ(os.dup2(0, 3).error().code, EBADF);
  EXPECT_EQ(os.fcntl(0, F_DUPFD, 3).error().code, EINVAL);
}

TEST(FakeFds, PipeNeedsTwoFreeDescriptorsAndLeavesNoneBehind) {
  FakeSyscalls os;
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {2, 2}));
  ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  EXPECT_EQ(os.pipe2(0).error().code, EMFILE);
  EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(0));
}

TEST(FakeFds, CloexecIsPerDescriptorAndDupClearsIt) {
  FakeSyscalls os;
  const int fd = *os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  EXPECT_EQ(*os.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
  const int copy = *os.dup(fd);
  EXPECT_EQ(*os.fcntl(copy, F_GETFD, 0), 0);
  ASSERT_TRUE(os.fcntl(copy, F_SETFD, FD_CLOEXEC));
  EXPECT_EQ(*os.fcntl(copy, F_GETFD, 0), FD_CLOEXEC);
  const int cloexec_copy = *os.fcntl(fd, F_DUPFD_CLOEXEC, 10);
  EXPECT_EQ(cloexec_copy, 10);
  EXPECT_EQ(*os.fcntl(cloexec_copy, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(fd, F_DUPFD, 10), 11);
}

TEST(FakeFds, Dup2AndDup3FollowLinux) {
  FakeSyscalls os;
  const int a = *os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0);
  const int b = *os.open("/dev/null", O_WRONLY, 0);
  // dup2 onto itself returns it and changes nothing; dup3 refuses.
  EXPECT_EQ(*os.dup2(a, a), a);
  EXPECT_EQ(*os.fcntl(a, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(os.dup3(a, a, 0).error().code, EINVAL);
  EXPECT_EQ(os.dup3(a, 7, O_NONBLOCK).error().code, EINVAL);
  // dup2 replaces the target silently.
  EXPECT_EQ(*os.dup2(a, b), b);
  EXPECT_EQ(*os.fcntl(b, F_GETFL, 0) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(*os.dup3(a, 9, O_CLOEXEC), 9);
  EXPECT_EQ(*os.fcntl(9, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(os.dup2(42, 5).error().code, EBADF);
  EXPECT_EQ(os.dup2(a, -1).error().code, EBADF);
  EXPECT_EQ(os.dup2(42, 42).error().code, EBADF);
}

TEST(FakeFds, DuplicatesShareStatusFlagsAndOffset) {
  FakeSyscalls os;
  os.write_file("/tmp/data", "abcdef");
  const int fd = *os.open("/tmp/data", O_RDONLY, 0);
  const int copy = *os.dup(fd);
  char buf[3] = {};
  ASSERT_EQ(*os.read(fd, buf, 2), 2u);
  ASSERT_EQ(*os.read(copy, buf, 2), 2u);
  EXPECT_EQ(std::string(buf, 2), "cd");
  ASSERT_TRUE(os.fcntl(fd, F_SETFL, O_NONBLOCK));
  EXPECT_TRUE(*os.fcntl(copy, F_GETFL, 0) & O_NONBLOCK);
}

TEST(FakeFds, FcntlStatusFlagsMatchLinux) {
  FakeSyscalls os;
  const int file = *os.open("/tmp/f", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_EQ(*os.fcntl(file, F_GETFL, 0), O_RDWR | kLargefile);
  const int dir = *os.open("/tmp", O_RDONLY | O_DIRECTORY, 0);
  EXPECT_EQ(*os.fcntl(dir, F_GETFL, 0), O_RDONLY | O_DIRECTORY | kLargefile);
  auto fds = *os.pipe2(0);
  EXPECT_EQ(*os.fcntl(fds.read_end, F_GETFL, 0), O_RDONLY);
  EXPECT_EQ(*os.fcntl(fds.write_end, F_GETFL, 0), O_WRONLY);
  // The access mode cannot change; O_APPEND and O_NONBLOCK can.
  const int null = *os.open("/dev/null", O_WRONLY, 0);
  ASSERT_TRUE(os.fcntl(null, F_SETFL, O_APPEND | O_NONBLOCK | O_RDWR));
  EXPECT_EQ(*os.fcntl(null, F_GETFL, 0), O_WRONLY | O_APPEND | O_NONBLOCK | kLargefile);
  EXPECT_EQ(os.fcntl(99, F_GETFD, 0).error().code, EBADF);
  EXPECT_EQ(os.fcntl(null, 9999, 0).error().code, EINVAL);
}

TEST(FakeFds, CloseRangeClosesOrMarksCloexec) {
  FakeSyscalls os;
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  ASSERT_TRUE(os.close_range(4, ~0U, CLOSE_RANGE_CLOEXEC));
  EXPECT_EQ(*os.fcntl(3, F_GETFD, 0), 0);
  EXPECT_EQ(*os.fcntl(4, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(5, F_GETFD, 0), FD_CLOEXEC);
  ASSERT_TRUE(os.close_range(3, ~0U, 0));
  EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(0, 1, 2));
  EXPECT_EQ(os.close_range(5, 3, 0).error().code, EINVAL);
  EXPECT_EQ(os.close_range(0, 3, 0x100).error().code, EINVAL);
}

TEST(FakeProcFd, ListsTheDescriptorsOfTheCallingProcess) {
  FakeSyscalls os;
  ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  ASSERT_TRUE(os.close(1));
  const int dir = *os.open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  EXPECT_EQ(dir, 1);
  EXPECT_THAT(list_dir(os, dir), ElementsAre(".", "..", "0", "1", "2"));
}

TEST(FakeProcFd, ClosingWhileListingNeitherRepeatsNorSkips) {
  FakeSyscalls os;
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));
  const int dir = *os.open("/proc/self/fd", O_RDONLY | O_DIRECTORY, 0);
  std::vector<char> buf(96);
  std::vector<int> seen;
  for (;;) {
    auto n = os.getdents64(dir, buf.data(), buf.size());
    ASSERT_TRUE(n);
    if (*n == 0) break;
    for (std::size_t off = 0; off < *n;) {
      std::uint16_t reclen;
      std::memcpy(&reclen, buf.data() + off + 16, sizeof reclen);
      const std::string name(buf.data() + off + 19);
      off += reclen;
      if (name == "." || name == "..") continue;
      const int fd = std::stoi(name);
      seen.push_back(fd);
      if (fd > 2 && fd != dir) {
        ASSERT_TRUE(os.close(fd));
      }
    }
  }
  ASSERT_EQ(seen.size(), 41u);
  for (int i = 0; i < 41; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i);
  EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(0, 1, 2, dir));
}

TEST(FakeProcFd, ProcPidFdOfAnotherProcessListsItsTable) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  ASSERT_TRUE(os.open("/dev/null", O_RDONLY, 0));  // fd 0 in the parent only
  const std::string path = "/proc/" + std::to_string(child) + "/fd";
  const int dir = *os.open(path.c_str(), O_RDONLY | O_DIRECTORY, 0);
  EXPECT_THAT(list_dir(os, dir), ElementsAre(".", "..")) << "the child has no descriptors";
}

TEST(FakeProcFd, TooSmallABufferIsEinvalAndAFileIsEnotdir) {
  FakeSyscalls os;
  const int dir = *os.open("/proc/self/fd", O_RDONLY | O_DIRECTORY, 0);
  char tiny[8];
  EXPECT_EQ(os.getdents64(dir, tiny, sizeof tiny).error().code, EINVAL);
  const int null = *os.open("/dev/null", O_RDONLY, 0);
  char buf[256];
  EXPECT_EQ(os.getdents64(null, buf, sizeof buf).error().code, ENOTDIR);
  EXPECT_EQ(os.getdents64(77, buf, sizeof buf).error().code, EBADF);
  EXPECT_EQ(os.read(dir, buf, 1).error().code, EISDIR);
}

TEST(FakeDirectory, GetdentsListsDotDotDotAndTheEntriesByName) {
  FakeSyscalls os;
  os.write_file("/srv/b", "");
  os.write_file("/srv/a", "");
  os.make_dir("/srv/c");
  const int dir = *os.open("/srv", O_RDONLY | O_DIRECTORY, 0);
  EXPECT_THAT(list_dir(os, dir, 40), ElementsAre(".", "..", "a", "b", "c"));
}

TEST(FakeFds, FtruncateRefusesANegativeLengthBeforeLookingAtTheDescriptor) {
  FakeSyscalls os;
  EXPECT_EQ(os.ftruncate(42, -1).error().code, EINVAL);
  EXPECT_EQ(os.ftruncate(42, 0).error().code, EBADF);
}

}  // namespace
}  // namespace daemonkit::fake
