// Notifier on the fake kernel: the exact datagrams a service manager bound at NOTIFY_SOCKET
// reads (path and abstract name), the WATCHDOG=1 keep-alives at half of WATCHDOG_USEC on the
// manual clock and WATCHDOG_PID's rule, and sends that fail (no manager, a full queue, a failed
// socket()) logged once, never blocking, never fatal.
#include "daemonkit/core/app/notifier.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;
using testing::SizeIs;

struct Manager {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;
  int fd = -1;

  Manager() {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
    os.make_dir("/run");
  }
  // The service manager's end: a datagram socket bound where NOTIFY_SOCKET points.
  void listen(const std::string& name) {
    auto to = notify_address(name);
    ASSERT_TRUE(to);
    fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ASSERT_TRUE(os.bind(fd, reinterpret_cast<const sockaddr*>(&to->address), to->length));
  }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    for (;;) {
      char buf[512];
      auto n = os.recvfrom(fd, buf, sizeof buf, 0, nullptr, nullptr);
      if (!n) break;
      out.emplace_back(buf, *n);
    }
    return out;
  }
  LogSink sink() {
    return [this](std::string_view line) { log.emplace_back(line); };
  }
  std::unique_ptr<Notifier> notifier(NotifyVariables variables) {
    return std::make_unique<Notifier>(*reactor, os, variables, sink());
  }
  void pass(seconds how_long) {
    for (auto s = seconds(0); s < how_long; s += seconds(1)) {
      os.clock().advance(seconds(1));
      reactor->run_until_current();
    }
  }
};

NotifyVariables at(std::string name) {
  NotifyVariables v;
  v.notify_socket = std::move(name);
  return v;
}

TEST(NotifyVariables, PicksTheThreeAndTakesEmptyValuesAsUnset) {
  const char* envp[] = {"PATH=/bin",     "NOTIFY_SOCKET=@sd", "WATCHDOG_USEC=3000000",
                        "WATCHDOG_PID=", "XWATCHDOG_PID=7",   "NOTIFY_SOCKETS=/x",
                        nullptr};
  const auto v = NotifyVariables::from_envp(envp);
  EXPECT_EQ(v.notify_socket, "@sd");
  EXPECT_EQ(v.watchdog_usec, "3000000");
  EXPECT_EQ(v.watchdog_pid, std::nullopt);
  EXPECT_EQ(NotifyVariables::from_envp(nullptr).notify_socket, std::nullopt);
}

TEST(Notifier, ReadyStatusAndStoppingReachAPathSocketAsExactDatagrams) {
  Manager m;
  m.listen("/run/notify");
  auto n = m.notifier(at("/run/notify"));
  ASSERT_TRUE(n->enabled());
  EXPECT_TRUE(n->ready("listening on tcp:8080"));
  EXPECT_TRUE(n->status("3 clients\nFORGED=1"));
  EXPECT_TRUE(n->stopping());
  EXPECT_THAT(m.received(), ElementsAre("READY=1\nSTATUS=listening on tcp:8080\n",
                                        "STATUS=3 clients FORGED=1\n", "STOPPING=1\n"));
  EXPECT_THAT(m.log, IsEmpty());
  EXPECT_EQ(n->failed_sends(), 0u);
}

TEST(Notifier, AnAbstractNameIsReachedToo) {
  Manager m;
  m.listen("@daemonkit-notify");
  auto n = m.notifier(at("@daemonkit-notify"));
  EXPECT_TRUE(n->ready());
  EXPECT_TRUE(n->stopping("bye"));
  EXPECT_THAT(m.received(), ElementsAre("READY=1\n", "STOPPING=1\nSTATUS=bye\n"));
}

TEST(Notifier, WithoutNotifySocketNothingIsOpenedOrSent) {
  Manager m;
  const auto before = m.os.open_fds(m.os.getpid());
  auto n = m.notifier({});
  EXPECT_FALSE(n->enabled());
  EXPECT_TRUE(n->ready());
  EXPECT_TRUE(n->stopping());
  EXPECT_EQ(m.os.open_fds(m.os.getpid()), before);
  EXPECT_THAT(m.log, IsEmpty());
}

TEST(Notifier, ANotifySocketOfAnotherFormIsLoggedAndIgnored) {
  Manager m;
  auto n = m.notifier(at("vsock:2:1234"));
  EXPECT_FALSE(n->enabled());
  EXPECT_TRUE(n->ready());
  EXPECT_THAT(m.log, ElementsAre(HasSubstr("neither a path nor an abstract socket")));
}

TEST(Notifier, KeepAlivesGoAtHalfOfWatchdogUsecFromReadyUntilStopping) {
  Manager m;
  m.listen("/run/notify");
  auto v = at("/run/notify");
  v.watchdog_usec = "10000000";  // 10 s: a keep-alive every 5 s
  auto n = m.notifier(v);
  ASSERT_EQ(n->watchdog_interval(), std::optional<Duration>(seconds(5)));
  m.pass(seconds(10));
  EXPECT_THAT(m.received(), IsEmpty()) << "the manager arms its watchdog at READY=1";
  EXPECT_TRUE(n->ready());
  EXPECT_TRUE(n->watchdog_running());
  m.pass(seconds(4));
  EXPECT_THAT(m.received(), ElementsAre("READY=1\n"));
  m.pass(seconds(1));
  EXPECT_THAT(m.received(), ElementsAre("WATCHDOG=1\n"));
  m.pass(seconds(10));
  EXPECT_THAT(m.received(), ElementsAre("WATCHDOG=1\n", "WATCHDOG=1\n"));
  EXPECT_TRUE(n->stopping());
  EXPECT_FALSE(n->watchdog_running());
  m.pass(seconds(20));
  EXPECT_THAT(m.received(), ElementsAre("STOPPING=1\n"));
}

TEST(Notifier, KeepAlivesAloneWhenReadyWentOutAnotherWay) {
  Manager m;
  m.listen("/run/notify");
  auto v = at("/run/notify");
  v.watchdog_usec = "4000000";
  auto n = m.notifier(v);
  n->start_keep_alives();
  n->start_keep_alives();  // twice schedules once
  m.pass(seconds(2));
  EXPECT_THAT(m.received(), ElementsAre("WATCHDOG=1\n"));
  EXPECT_TRUE(n->stopping());
  m.pass(seconds(10));
  EXPECT_THAT(m.received(), ElementsAre("STOPPING=1\n"));
  auto quiet = m.notifier(at("/run/notify"));  // no WATCHDOG_USEC: nothing to keep alive
  quiet->start_keep_alives();
  EXPECT_FALSE(quiet->watchdog_running());
}

TEST(Notifier, WatchdogPidNamingAnotherProcessMeansNoKeepAlives) {
  Manager m;
  m.listen("/run/notify");
  auto v = at("/run/notify");
  v.watchdog_usec = "2000000";
  v.watchdog_pid = std::to_string(m.os.getpid() + 1);
  auto other = m.notifier(v);
  EXPECT_EQ(other->watchdog_interval(), std::nullopt);
  v.watchdog_pid = std::to_string(m.os.getpid());
  auto ours = m.notifier(v);
  EXPECT_EQ(ours->watchdog_interval(), std::optional<Duration>(seconds(1)));
  EXPECT_TRUE(other->ready());
  m.pass(seconds(3));
  EXPECT_THAT(m.received(), ElementsAre("READY=1\n"));
  EXPECT_THAT(m.log, IsEmpty());
}

TEST(Notifier, AWatchdogUsecThatIsNotANumberIsLoggedAndIgnored) {
  Manager m;
  m.listen("/run/notify");
  for (const char* bad : {"5s", "-1", "1", "0x10", "99999999999999999999"}) {
    auto v = at("/run/notify");
    v.watchdog_usec = bad;
    EXPECT_EQ(m.notifier(v)->watchdog_interval(), std::nullopt) << bad;
  }
  EXPECT_THAT(m.log, SizeIs(5));
  EXPECT_THAT(m.log.front(), HasSubstr("WATCHDOG_USEC=5s"));
}

TEST(Notifier, AFailingSendIsLoggedOnceAndNeverFatal) {
  Manager m;
  auto v = at("/run/notify");
  v.watchdog_usec = "2000000";
  auto n = m.notifier(v);
  EXPECT_FALSE(n->ready()) << "nobody listens yet";
  m.pass(seconds(5));
  EXPECT_EQ(n->failed_sends(), 6u) << "READY=1 and five keep-alives";
  ASSERT_THAT(m.log, SizeIs(1));
  EXPECT_THAT(m.log[0], HasSubstr("sd_notify to /run/notify: sendto(/run/notify): "));
  ASSERT_TRUE(n->last_error());
  EXPECT_TRUE(n->watchdog_running()) << "a failure stops nothing";

  m.listen("/run/notify");
  m.pass(seconds(1));
  EXPECT_THAT(m.received(), ElementsAre("WATCHDOG=1\n"));
  EXPECT_FALSE(n->last_error());

  // Gone again: a new run of failures is logged once more.
  ASSERT_TRUE(m.os.close(m.fd));
  ASSERT_TRUE(m.os.unlink("/run/notify"));
  m.pass(seconds(3));
  EXPECT_THAT(m.log, SizeIs(2));
}

TEST(Notifier, AManagerThatDoesNotReadCostsDroppedDatagramsNotAStall) {
  Manager m;
  m.listen("/run/notify");
  auto n = m.notifier(at("/run/notify"));
  int sent = 0;
  for (int i = 0; i < 100; ++i) sent += n->keep_alive() ? 1 : 0;
  EXPECT_GT(sent, 0);
  EXPECT_LT(sent, 100);
  ASSERT_TRUE(n->last_error());
  EXPECT_EQ(n->last_error()->code, EAGAIN);
  EXPECT_THAT(m.log, SizeIs(1));
}

TEST(Notifier, ASocketThatCannotBeMadeIsTriedAgainAtTheNextSend) {
  Manager m;
  m.listen("/run/notify");
  auto n = m.notifier(at("/run/notify"));
  m.os.clear_transcript();  // fail_nth counts from here, after the manager's own socket
  m.os.fail_nth("socket", 1, EMFILE);
  EXPECT_FALSE(n->ready());
  EXPECT_THAT(m.log, ElementsAre(HasSubstr("Too many open files (EMFILE)")));
  EXPECT_TRUE(n->status("up"));
  EXPECT_THAT(m.received(), ElementsAre("STATUS=up\n"));
}

TEST(Notifier, OneSocketServesEverySendAndIsNonBlocking) {
  Manager m;
  m.listen("/run/notify");
  const auto before = m.os.open_fds(m.os.getpid()).size();
  auto n = m.notifier(at("/run/notify"));
  EXPECT_TRUE(n->ready());
  EXPECT_TRUE(n->keep_alive());
  EXPECT_TRUE(n->stopping());
  EXPECT_EQ(m.os.open_fds(m.os.getpid()).size(), before + 1);
  n.reset();
  EXPECT_EQ(m.os.open_fds(m.os.getpid()).size(), before) << "closed with the notifier";
}

TEST(Notifier, DestroyedWithKeepAlivesScheduledLeavesNoTimer) {
  Manager m;
  m.listen("/run/notify");
  auto v = at("/run/notify");
  v.watchdog_usec = "2000000";
  auto n = m.notifier(v);
  EXPECT_TRUE(n->ready());
  n.reset();
  EXPECT_THAT(m.reactor->delayed_calls(), IsEmpty());
}

}  // namespace
}  // namespace daemonkit::core
