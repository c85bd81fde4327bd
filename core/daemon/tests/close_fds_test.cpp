#include "daemonkit/core/daemon/close_fds.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/mock_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Return;
using ::testing::StrEq;
using ::testing::StrictMock;

const sys::Result<void> kOk{};

TEST(CloseInheritedFds, ClosesTheGapsBetweenPreservedFdsWithOneCallEach) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, close_range(3u, 4u, 0)).WillOnce(Return(kOk));
  EXPECT_CALL(os, close_range(6u, 8u, 0)).WillOnce(Return(kOk));
  EXPECT_CALL(os, close_range(10u, ~0U, 0)).WillOnce(Return(kOk));
  const std::vector<int> keep = {9, 2, 0, 1, 5, 9, -1};  // unsorted, duplicated, negative
  auto outcome = close_inherited_fds(os, keep);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->strategy, CloseFdsStrategy::kCloseRange);
  EXPECT_FALSE(outcome->degraded());
}

TEST(CloseInheritedFds, CostDoesNotDependOnRlimitWhenCloseRangeWorks) {
  // getrlimit is never asked: a StrictMock fails the test if it is.
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, close_range(_, _, 0)).Times(1).WillOnce(Return(kOk));
  EXPECT_TRUE(close_inherited_fds(os, {}));
}

// getdents64 output listing `fds` (plus "." and ".."), as linux_dirent64 records.
std::vector<char> dirents(const std::vector<std::string>& names) {
  std::vector<char> out;
  for (const std::string& name : names) {
    const std::size_t header = 8 + 8 + 2 + 1;
    const std::size_t reclen = (header + name.size() + 1 + 7) & ~std::size_t{7};
    std::vector<char> rec(reclen, 0);
    const auto len = static_cast<unsigned short>(reclen);
    std::memcpy(rec.data() + 16, &len, sizeof(len));
    std::memcpy(rec.data() + header, name.c_str(), name.size() + 1);
    out.insert(out.end(), rec.begin(), rec.end());
  }
  return out;
}

TEST(CloseInheritedFds, FallsBackToProcSelfFdWhenCloseRangeIsMissing) {
  StrictMock<fake::MockSyscalls> os;
  const std::vector<char> listing = dirents({".", "..", "0", "1", "2", "3", "7", "12"});
  InSequence order;
  EXPECT_CALL(os, close_range(_, _, _)).WillOnce(Return(sys::fail(ENOSYS, "close_range")));
  EXPECT_CALL(os, open(StrEq("/proc/self/fd"), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0))
      .WillOnce(Return(12));
  EXPECT_CALL(os, getdents64(12, _, _))
      .WillOnce([&](int, void* buf, std::size_t n) -> sys::Result<std::size_t> {
        EXPECT_GE(n, listing.size());
        std::memcpy(buf, listing.data(), listing.size());
        return listing.size();
      });
  // 0..2 and 7 are kept; 12 is the directory itself.
  EXPECT_CALL(os, close(3)).WillOnce(Return(kOk));
  EXPECT_CALL(os, getdents64(12, _, _)).WillOnce(Return(sys::Result<std::size_t>(0)));
  EXPECT_CALL(os, close(12)).WillOnce(Return(kOk));
  const std::vector<int> keep = {0, 1, 2, 7};
  auto outcome = close_inherited_fds(os, keep);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->strategy, CloseFdsStrategy::kProcSelfFd);
  EXPECT_EQ(outcome->close_range_error.code, ENOSYS);
  EXPECT_FALSE(outcome->degraded());
}

TEST(CloseInheritedFds, LastResortLoopIsBoundedBySoftLimitAndDegraded) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, close_range(_, _, _)).WillOnce(Return(sys::fail(EPERM, "close_range")));
  EXPECT_CALL(os, open(StrEq("/proc/self/fd"), _, _)).WillOnce(Return(sys::fail(ENOENT, "open")));
  EXPECT_CALL(os, getrlimit(RLIMIT_NOFILE)).WillOnce(Return(rlimit{6, 1U << 30}));
  EXPECT_CALL(os, close(3)).WillOnce(Return(sys::fail(EBADF, "close")));
  EXPECT_CALL(os, close(5)).WillOnce(Return(kOk));
  const std::vector<int> keep = {0, 1, 2, 4};
  auto outcome = close_inherited_fds(os, keep);
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(outcome->degraded());
  EXPECT_EQ(outcome->loop_bound, 6u);
  EXPECT_THAT(describe(*outcome), HasSubstr("degraded: closed descriptors 0..5 one by one"));
  EXPECT_THAT(describe(*outcome), HasSubstr("ENOENT"));
}

// Counts close() without gmock's bookkeeping, which would make a million calls slow.
class CountingCloses : public ::testing::NiceMock<fake::MockSyscalls> {
 public:
  sys::Result<void> close(int fd) override {
    ++closes;
    highest = std::max(highest, fd);
    return {};
  }
  long closes = 0;
  int highest = -1;
};

TEST(CloseInheritedFds, LoopNeverFollowsAnInfiniteLimit) {
  CountingCloses os;
  ON_CALL(os, close_range(_, _, _)).WillByDefault(Return(sys::fail(ENOSYS, "close_range")));
  ON_CALL(os, open(_, _, _)).WillByDefault(Return(sys::fail(EACCES, "open")));
  ON_CALL(os, getrlimit(_)).WillByDefault(Return(rlimit{RLIM_INFINITY, RLIM_INFINITY}));
  const std::vector<int> keep = {0, 1, 2};
  auto outcome = close_inherited_fds(os, keep);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->loop_bound, kCloseLoopCap);
  EXPECT_EQ(os.closes, static_cast<long>(kCloseLoopCap) - 3);
  EXPECT_EQ(os.highest, static_cast<int>(kCloseLoopCap) - 1);
}

TEST(CloseInheritedFds, OtherCloseRangeErrorsAreReturned) {
  StrictMock<fake::MockSyscalls> os;
  EXPECT_CALL(os, close_range(_, _, _)).WillOnce(Return(sys::fail(EINVAL, "close_range")));
  auto outcome = close_inherited_fds(os, {});
  ASSERT_THAT(outcome, FailsWith(EINVAL));
}

TEST(CloseInheritedFds, TooManyPreservedFdsIsE2big) {
  StrictMock<fake::MockSyscalls> os;
  std::vector<int> keep(kMaxPreservedFds + 1);
  for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = static_cast<int>(i);
  auto outcome = close_inherited_fds(os, keep);
  ASSERT_THAT(outcome, FailsWith(E2BIG));
}

}  // namespace
}  // namespace daemonkit::core
