// Readiness's sd_notify on the fake kernel: the datagram a service manager would receive on
// its AF_UNIX socket (a path or an abstract name), and every way sending it can fail, by the
// kernel's own refusals and by fault injection, with the message the daemon logs.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The service manager's end: a datagram socket bound where NOTIFY_SOCKET points.
int bind_manager(FakeSyscalls& os, const std::string& name) {
  auto to = notify_address(name);
  EXPECT_TRUE(to);
  if (name.starts_with("/run/systemd/")) os.make_dir("/run/systemd");
  const int fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  EXPECT_TRUE(os.bind(fd, reinterpret_cast<const sockaddr*>(&to->address), to->length));
  return fd;
}

std::vector<std::string> received(FakeSyscalls& os, int fd) {
  std::vector<std::string> out;
  for (;;) {
    char buf[512];
    auto n = os.recvfrom(fd, buf, sizeof buf, 0, nullptr, nullptr);
    if (!n) break;
    out.emplace_back(buf, *n);
  }
  return out;
}

struct Daemon {
  std::vector<std::string> log;
  Readiness::Options options(std::string notify_socket) {
    Readiness::Options o;
    o.notify_socket = std::move(notify_socket);
    o.main_pid = 4321;
    o.log = [this](std::string_view line) { log.emplace_back(line); };
    return o;
  }
};

TEST(ReadinessFake, ReadyReachesAPathSocketAsOneDatagram) {
  FakeSyscalls os;
  const int manager = bind_manager(os, "/run/systemd/notify");
  Daemon daemon;
  Readiness readiness(os, daemon.options("/run/systemd/notify"));
  ASSERT_TRUE(readiness.ready("listening on 127.0.0.1:7007"));
  EXPECT_THAT(received(os, manager),
              ElementsAre("READY=1\nSTATUS=listening on 127.0.0.1:7007\nMAINPID=4321\n"));
  EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(manager)) << "the sending socket closed";
  EXPECT_TRUE(daemon.log.empty());
}

TEST(ReadinessFake, ReadyAndFailureReachAnAbstractSocket) {
  FakeSyscalls os;
  const int manager = bind_manager(os, "@sd-notify");
  Daemon daemon;
  Readiness readiness(os, daemon.options("@sd-notify"));
  ASSERT_TRUE(readiness.ready());
  ASSERT_TRUE(readiness.fail("bind(:80): Address already in use (EADDRINUSE)", EADDRINUSE));
  EXPECT_THAT(received(os, manager),
              ElementsAre("READY=1\nMAINPID=4321\n",
                          "STATUS=bind(:80): Address already in use (EADDRINUSE)\nERRNO=98\n"));
}

TEST(ReadinessFake, NobodyListeningIsLoggedAsConnectionRefused) {
  FakeSyscalls os;
  Daemon daemon;
  Readiness readiness(os, daemon.options("@nobody-here"));
  auto sent = readiness.ready();
  ASSERT_THAT(sent, FailsWith(ECONNREFUSED));
  EXPECT_THAT(daemon.log, ElementsAre("sd_notify to @nobody-here: sendto: Connection refused "
                                      "(ECONNREFUSED)"));
  EXPECT_TRUE(os.open_fds(os.getpid()).empty()) << "the socket is closed on failure too";
}

TEST(ReadinessFake, AMissingPathIsEnoentAndAStaleSocketFileIsRefused) {
  FakeSyscalls os;
  Daemon daemon;
  Readiness missing(os, daemon.options("/run/systemd/notify"));
  EXPECT_THAT(missing.ready(), FailsWith(ENOENT));
  const int manager = bind_manager(os, "/run/systemd/notify");
  ASSERT_TRUE(os.close(manager));  // the manager went away; its socket file stays
  Readiness stale(os, daemon.options("/run/systemd/notify"));
  EXPECT_THAT(stale.ready(), FailsWith(ECONNREFUSED));
  EXPECT_THAT(daemon.log[0], HasSubstr("sendto: No such file or directory (ENOENT)"));
}

TEST(ReadinessFake, ADaemonThatShedRootCannotWriteToARootOnlySocket) {
  FakeSyscalls os;
  const int manager = bind_manager(os, "/run/notify.sock");
  ASSERT_TRUE(os.chmod("/run/notify.sock", 0700));
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  Daemon daemon;
  Readiness readiness(os, daemon.options("/run/notify.sock"));
  EXPECT_THAT(readiness.ready(), FailsWith(EACCES));
  EXPECT_THAT(daemon.log, ElementsAre(HasSubstr("sendto: Permission denied (EACCES)")));
  EXPECT_TRUE(received(os, manager).empty());
}

TEST(ReadinessFake, AManagerThatNeverReadsCannotBlockTheDaemon) {
  FakeSyscalls os;
  const int manager = bind_manager(os, "@m");
  Daemon daemon;
  Readiness readiness(os, daemon.options("@m"));
  // Until the manager's queue is full; a blocking send would then wait for it for ever (the
  // fake says EDEADLK for that wait).
  sys::Result<void> sent;
  for (int i = 0; i < 10000 && (sent = readiness.ready()); ++i) {
  }
  EXPECT_THAT(sent, FailsWith(EAGAIN));
  EXPECT_THAT(daemon.log.back(), HasSubstr("sendto: Resource temporarily unavailable (EAGAIN)"));
  EXPECT_FALSE(received(os, manager).empty());
}

TEST(ReadinessFake, EveryFailingCallIsReportedWithItsName) {
  struct Case {
    const char* call;
    int error;
  };
  for (const Case c :
       {Case{"socket", EMFILE}, Case{"socket", EAFNOSUPPORT}, Case{"sendto", ENOBUFS},
        Case{"sendto", EAGAIN}, Case{"sendto", ECONNREFUSED}, Case{"sendto", EMSGSIZE}}) {
    FakeSyscalls os;
    const int manager = bind_manager(os, "@m");
    os.clear_transcript();  // so the daemon's calls count from 1
    os.fail_nth(c.call, 1, c.error);
    Daemon daemon;
    Readiness readiness(os, daemon.options("@m"));
    auto sent = readiness.ready();
    ASSERT_FALSE(sent) << c.call;
    EXPECT_EQ(sent.error().code, c.error);
    EXPECT_EQ(std::string(sent.error().call), c.call);
    ASSERT_EQ(daemon.log.size(), 1u);
    EXPECT_EQ(daemon.log[0], "sd_notify to @m: " + sys::to_string(sent.error()));
    EXPECT_TRUE(received(os, manager).empty());
    EXPECT_THAT(os.open_fds(os.getpid()), ElementsAre(manager)) << c.call << " leaked a socket";
  }
}

TEST(ReadinessFake, AFailedCloseAfterSendingStillCountsAsSent) {
  FakeSyscalls os;
  const int manager = bind_manager(os, "@m");
  os.clear_transcript();
  os.fail_nth("close", 1, EIO);
  Daemon daemon;
  Readiness readiness(os, daemon.options("@m"));
  EXPECT_TRUE(readiness.ready());
  EXPECT_EQ(received(os, manager).size(), 1u);
}

}  // namespace
}  // namespace daemonkit::core
