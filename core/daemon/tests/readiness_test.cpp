#include "daemonkit/core/daemon/readiness.h"

#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

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
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::StrictMock;

TEST(NotifyFormat, ReadyWithStatusAndMainPid) {
  NotifyState s;
  s.ready = true;
  s.status = "listening on :80";
  s.main_pid = 4321;
  EXPECT_EQ(format_notify(s), "READY=1\nSTATUS=listening on :80\nMAINPID=4321\n");
}

TEST(NotifyFormat, FailureCarriesStatusAndErrno) {
  NotifyState s;
  s.status = "setresuid(65534): Operation not permitted (EPERM)";
  s.error_number = EPERM;
  EXPECT_EQ(format_notify(s),
            "STATUS=setresuid(65534): Operation not permitted (EPERM)\nERRNO=1\n");
}

TEST(NotifyFormat, StatusCannotForgeAnotherKey) {
  NotifyState s;
  s.status = "bad\nREADY=1\r\x01";
  EXPECT_EQ(format_notify(s), "STATUS=bad READY=1  \n");
}

TEST(NotifyAddress, PathSocketCountsItsNul) {
  auto a = notify_address("/run/systemd/notify");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address.sun_family, AF_UNIX);
  EXPECT_STREQ(a->address.sun_path, "/run/systemd/notify");
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 20);
}

TEST(NotifyAddress, AbstractSocketStartsWithNulAndHasNoTerminator) {
  auto a = notify_address("@sd-notify");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address.sun_path[0], '\0');
  EXPECT_EQ(std::string(a->address.sun_path + 1, 9), "sd-notify");
  EXPECT_EQ(a->length, offsetof(sockaddr_un, sun_path) + 10);
}

TEST(NotifyAddress, RefusesOtherFormsAndOverlongNames) {
  EXPECT_THAT(notify_address("vsock:2:1234").error().message,
              HasSubstr("neither a path nor an abstract socket"));
  EXPECT_FALSE(notify_address(""));
  const std::string longest_path = "/" + std::string(sizeof(sockaddr_un{}.sun_path) - 2, 'a');
  EXPECT_TRUE(notify_address(longest_path));
  EXPECT_THAT(notify_address(longest_path + "a").error().message, HasSubstr("too long"));
}

Readiness::Options channels(int status_fd, std::optional<std::string> notify_socket = {}) {
  Readiness::Options o;
  o.status_fd = status_fd;
  o.notify_socket = std::move(notify_socket);
  return o;
}

TEST(Readiness, ReadyWritesZeroOnThePipeAndClosesIt) {
  StrictMock<fake::MockSyscalls> os;
  InSequence order;
  EXPECT_CALL(os, sigaction(SIGPIPE, _, _)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, write(9, _, 1)).WillOnce([](int, const void* buf, std::size_t) {
    EXPECT_EQ(*static_cast<const char*>(buf), '0');
    return sys::Result<std::size_t>(1);
  });
  EXPECT_CALL(os, sigaction(SIGPIPE, _, nullptr)).WillOnce(Return(sys::Result<void>{}));
  EXPECT_CALL(os, close(9)).WillOnce(Return(sys::Result<void>{}));
  Readiness r(os, channels(9));
  EXPECT_TRUE(r.has_status_pipe());
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.reported());
  EXPECT_TRUE(r.ready());  // the pipe hears only the first report
}

TEST(Readiness, FailSpeaksSdNotifyWithErrno) {
  StrictMock<fake::MockSyscalls> os;
  std::string sent;
  InSequence order;
  EXPECT_CALL(os, socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)).WillOnce(Return(7));
  EXPECT_CALL(os, sendto(7, _, _, MSG_NOSIGNAL | MSG_DONTWAIT, _, _))
      .WillOnce([&](int, const void* buf, std::size_t n, int, const sockaddr* addr, socklen_t) {
        sent.assign(static_cast<const char*>(buf), n);
        EXPECT_EQ(addr->sa_family, AF_UNIX);
        return sys::Result<std::size_t>(n);
      });
  EXPECT_CALL(os, close(7)).WillOnce(Return(sys::Result<void>{}));
  Readiness r(os, channels(-1, "/run/n"));
  EXPECT_TRUE(r.fail("bind(:80): Address already in use (EADDRINUSE)", EADDRINUSE));
  EXPECT_EQ(sent, "STATUS=bind(:80): Address already in use (EADDRINUSE)\nERRNO=98\n");
}

TEST(Readiness, ReadyTriesBothChannelsAndReturnsTheFirstError) {
  NiceMock<fake::MockSyscalls> os;
  ON_CALL(os, write(_, _, _)).WillByDefault(Return(sys::fail(EPIPE, "write")));
  ON_CALL(os, socket(_, _, _)).WillByDefault(Return(7));
  std::string sent;
  EXPECT_CALL(os, sendto(7, _, _, _, _, _))
      .WillOnce([&](int, const void* buf, std::size_t n, int, const sockaddr*, socklen_t) {
        sent.assign(static_cast<const char*>(buf), n);
        return sys::Result<std::size_t>(n);
      });
  std::vector<std::string> lines;
  Readiness::Options options = channels(9, "@n");
  options.main_pid = 55;
  options.log = [&](std::string_view l) { lines.emplace_back(l); };
  Readiness r(os, options);
  auto done = r.ready("up");
  ASSERT_THAT(done, FailsWith(EPIPE));
  ASSERT_TRUE(r.pipe_error());
  EXPECT_EQ(r.pipe_error()->code, EPIPE);
  EXPECT_EQ(sent, "READY=1\nSTATUS=up\nMAINPID=55\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("EPIPE"));
}

TEST(Readiness, NoChannelsIsANoOp) {
  StrictMock<fake::MockSyscalls> os;
  Readiness r(os, {});
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.fail("x"));
}

}  // namespace
}  // namespace daemonkit::core
