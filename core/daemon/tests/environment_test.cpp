#include "daemonkit/core/daemon/environment.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/daemon/thread_count.h"
#include "daemonkit/fake/mock_syscalls.h"

namespace daemonkit::core {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Return;

TEST(Environment, PicksServiceManagerVariablesFromEnvp) {
  const char* envp[] = {"PATH=/bin", "NOTIFY_SOCKET=@sd", "LISTEN_PID=42", "LISTEN_PIDX=1",
                        nullptr};
  const Environment env = Environment::from_envp(envp);
  EXPECT_EQ(env.notify_socket, "@sd");
  EXPECT_EQ(env.listen_pid, "42");
}

TEST(Environment, PicksTheLaunchersStatusFd) {
  const char* envp[] = {"DAEMONKIT_STATUS_FD=7", nullptr};
  EXPECT_EQ(Environment::from_envp(envp).status_fd, "7");
}

TEST(Environment, EmptyValuesAndPrefixesAreUnset) {
  const char* envp[] = {"NOTIFY_SOCKET=", "NOTIFY_SOCKETS=/x", "XLISTEN_PID=1", nullptr};
  const Environment env = Environment::from_envp(envp);
  EXPECT_FALSE(env.notify_socket);
  EXPECT_FALSE(env.listen_pid);
  EXPECT_FALSE(Environment::from_envp(nullptr).notify_socket);
}

Environment notify(std::string socket) {
  Environment env;
  env.notify_socket = std::move(socket);
  return env;
}

Environment listen(std::string pid) {
  Environment env;
  env.listen_pid = std::move(pid);
  return env;
}

struct stat with_mode(mode_t mode) {
  struct stat st {};
  st.st_mode = mode;
  return st;
}

class DecideDetach : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(os_, getpid()).WillByDefault(Return(1000));
    ON_CALL(os_, getppid()).WillByDefault(Return(999));
    ON_CALL(os_, fstat(0)).WillByDefault(Return(with_mode(S_IFCHR | 0620)));
  }
  NiceMock<fake::MockSyscalls> os_;
};

TEST_F(DecideDetach, DetachesFromAShell) {
  const DetachDecision d = decide_detach(os_, {});
  EXPECT_TRUE(d.detach);
}

TEST_F(DecideDetach, StaysUnderAServiceManager) {
  EXPECT_FALSE(decide_detach(os_, notify("/run/systemd/notify")).detach);
  EXPECT_THAT(decide_detach(os_, notify("/x")).reason, HasSubstr("NOTIFY_SOCKET"));
}

TEST_F(DecideDetach, StaysWhenSocketsWerePassedToThisPid) {
  EXPECT_FALSE(decide_detach(os_, listen("1000")).detach);
  EXPECT_TRUE(decide_detach(os_, listen("1001")).detach);
  EXPECT_TRUE(decide_detach(os_, listen("10x")).detach);
}

Environment status(std::string fd) {
  Environment env;
  env.status_fd = std::move(fd);
  return env;
}

TEST_F(DecideDetach, StaysWhenALauncherWaitsOnAStatusPipe) {
  ON_CALL(os_, fstat(5)).WillByDefault(Return(with_mode(S_IFIFO | 0600)));
  const DetachDecision d = decide_detach(os_, status("5"));
  EXPECT_FALSE(d.detach);
  EXPECT_THAT(d.reason, HasSubstr("DAEMONKIT_STATUS_FD"));
}

// A variable that names no pipe of ours is not a launcher: writing a report there would put
// "0" into a file, a terminal or a socket.
TEST_F(DecideDetach, AStatusFdThatIsNoPipeOrStdioOrNotANumberIsIgnored) {
  ON_CALL(os_, fstat(5)).WillByDefault(Return(with_mode(S_IFREG | 0600)));
  ON_CALL(os_, fstat(6)).WillByDefault(Return(sys::fail(EBADF, "fstat")));
  ON_CALL(os_, fstat(1)).WillByDefault(Return(with_mode(S_IFIFO | 0600)));
  ON_CALL(os_, fstat(7)).WillByDefault(Return(with_mode(S_IFIFO | 0600)));
  for (const char* text : {"5", "6", "1", "7x", "-7", "", "99999999999"}) {
    EXPECT_FALSE(status(text).launcher_status_fd(os_)) << text;
    EXPECT_TRUE(decide_detach(os_, status(text)).detach) << text;
  }
  EXPECT_EQ(status("7").launcher_status_fd(os_), 7);
}

TEST_F(DecideDetach, StaysUnderInit) {
  ON_CALL(os_, getppid()).WillByDefault(Return(1));
  const DetachDecision d = decide_detach(os_, {});
  EXPECT_FALSE(d.detach);
  EXPECT_THAT(d.reason, HasSubstr("init"));
}

TEST_F(DecideDetach, StaysUnderInetd) {
  ON_CALL(os_, fstat(0)).WillByDefault(Return(with_mode(S_IFSOCK | 0777)));
  const DetachDecision d = decide_detach(os_, {});
  EXPECT_FALSE(d.detach);
  EXPECT_THAT(d.reason, HasSubstr("inetd"));
}

TEST_F(DecideDetach, ClosedStdinIsNotInetd) {
  ON_CALL(os_, fstat(0)).WillByDefault(Return(sys::fail(EBADF, "fstat")));
  EXPECT_TRUE(decide_detach(os_, {}).detach);
}

TEST(ThreadCount, ReadsTheThreadsLine) {
  EXPECT_EQ(parse_status_threads("Name:\tx\nThreads:\t3\nSigQ:\t0/1\n"), 3);
  EXPECT_EQ(parse_status_threads("Threads:  1"), 1);
  EXPECT_FALSE(parse_status_threads("Name:\tx\n"));
  EXPECT_FALSE(parse_status_threads("Threads:\tmany\n"));
  EXPECT_FALSE(parse_status_threads("Threads:\t0\n"));
}

// /proc/self/status is read to its end through the seam; what goes wrong names the file, and
// the descriptor is closed either way.
TEST(ThreadCount, CountsFromProcSelfStatusAndNamesItWhenThatFails) {
  ::testing::StrictMock<fake::MockSyscalls> os;
  const std::string status = "Name:\tx\nThreads:\t2\n";
  EXPECT_CALL(os, open(::testing::StrEq("/proc/self/status"), _, _)).WillRepeatedly(Return(7));
  EXPECT_CALL(os, close(7)).Times(3).WillRepeatedly(Return(sys::Result<void>{}));
  EXPECT_CALL(os, read(7, _, _))
      .WillOnce([&](int, void* buf, std::size_t n) -> sys::Result<std::size_t> {
        const std::size_t k = std::min(n, status.size());
        std::memcpy(buf, status.data(), k);
        return k;
      })
      .WillOnce(Return(sys::Result<std::size_t>(0)))
      // A read that fails midway.
      .WillOnce(Return(sys::fail(EIO, "read")))
      // A file without a Threads: line.
      .WillOnce([](int, void* buf, std::size_t) -> sys::Result<std::size_t> {
        std::memcpy(buf, "Name:\tx\n", 8);
        return std::size_t{8};
      })
      .WillOnce(Return(sys::Result<std::size_t>(0)));

  EXPECT_EQ(count_threads(os), 2);
  auto failed = count_threads(os);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error(), (sys::Error{EIO, "read", "/proc/self/status"}));
  auto unparsable = count_threads(os);
  ASSERT_FALSE(unparsable);
  EXPECT_EQ(unparsable.error(), (sys::Error{EINVAL, "read", "/proc/self/status"}));
}

}  // namespace
}  // namespace daemonkit::core
