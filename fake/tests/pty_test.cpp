// Pseudo-terminals in the fake kernel: /dev/ptmx and the locked /dev/pts/<n>, TIOCGPTPEER,
// bytes through the modelled line discipline (ICRNL, ICANON lines, ECHO, ONLCR), readiness,
// EIO on the master once the slaves are gone, the hung-up slave after the master's close, the
// controlling terminal of a session and the signals of a hangup, window sizes, termios, and
// ENOTTY for everything else.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::fake {
namespace {

using ::testing::ElementsAre;

void on_signal(int) {}

void catch_signal(FakeSyscalls& os, int sig) {
  struct sigaction action {};
  action.sa_handler = on_signal;
  ASSERT_TRUE(os.sigaction(sig, &action, nullptr));
}

void* flags_arg(int flags) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(flags)); }

// A new master, unlocked, and its index.
struct Master {
  int fd = -1;
  unsigned index = 0;
};

Master open_master(FakeSyscalls& os, int flags = O_NONBLOCK) {
  Master m;
  m.fd = *os.open("/dev/ptmx", O_RDWR | O_NOCTTY | flags, 0);
  EXPECT_TRUE(os.ioctl(m.fd, TIOCGPTN, &m.index));
  int unlock = 0;
  EXPECT_TRUE(os.ioctl(m.fd, TIOCSPTLCK, &unlock));
  return m;
}

std::string slave_path(const Master& m) { return "/dev/pts/" + std::to_string(m.index); }

std::string read_text(FakeSyscalls& os, int fd) {
  char buf[256];
  auto n = os.read(fd, buf, sizeof buf);
  if (!n) return std::string("error ") + sys::errno_name(n.error().code);
  return std::string(buf, *n);
}

short poll_events(FakeSyscalls& os, int fd) {
  pollfd entry{fd, POLLIN | POLLOUT, 0};
  auto n = os.poll(&entry, 1, 0);
  return n ? entry.revents : static_cast<short>(-1);
}

std::vector<int> signals_of(FakeSyscalls& os, pid_t pid) {
  std::vector<int> sigs;
  for (const auto& event : os.process(pid).signals) sigs.push_back(event.signal);
  return sigs;
}

TEST(FakePty, PtmxMakesLockedSlavesNumberedFromZero) {
  FakeSyscalls os;
  const int master = *os.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  unsigned index = 99;
  ASSERT_TRUE(os.ioctl(master, TIOCGPTN, &index));
  EXPECT_EQ(index, 0U);
  EXPECT_EQ(*os.fcntl(master, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(master, F_GETFL, 0) & O_ACCMODE, O_RDWR);
  const auto st = os.stat_path("/dev/pts/0");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_mode, S_IFCHR | 0600);
  EXPECT_EQ(major(st->st_rdev), 136U);
  int locked = 0;
  ASSERT_TRUE(os.ioctl(master, TIOCGPTLCK, &locked));
  EXPECT_EQ(locked, 1);
  EXPECT_EQ(os.open("/dev/pts/0", O_RDWR | O_NOCTTY, 0).error().code, EIO)
      << "a slave is locked until TIOCSPTLCK 0";
  const int unlock = 0;
  ASSERT_TRUE(os.ioctl(master, TIOCSPTLCK, const_cast<int*>(&unlock)));
  EXPECT_TRUE(os.open("/dev/pts/0", O_RDWR | O_NOCTTY, 0));
  const int second = *os.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
  ASSERT_TRUE(os.ioctl(second, TIOCGPTN, &index));
  EXPECT_EQ(index, 1U);
  EXPECT_NE(*os.fcntl(second, F_GETFL, 0) & O_NONBLOCK, 0);
}

TEST(FakePty, PeerOpensTheSlaveFromTheMasterWithoutALookup) {
  FakeSyscalls os;
  const int master = *os.open("/dev/ptmx", O_RDWR | O_NOCTTY, 0);
  EXPECT_EQ(os.ioctl(master, TIOCGPTPEER, flags_arg(O_RDWR | O_NOCTTY)).error().code, EIO)
      << "locked";
  const int unlock = 0;
  ASSERT_TRUE(os.ioctl(master, TIOCSPTLCK, const_cast<int*>(&unlock)));
  const int slave = *os.ioctl(master, TIOCGPTPEER, flags_arg(O_RDWR | O_NOCTTY | O_CLOEXEC));
  EXPECT_EQ(*os.fcntl(slave, F_GETFL, 0), O_RDWR | O_CLOEXEC)
      << "no O_LARGEFILE, and O_CLOEXEC kept: not opened by open()";
  EXPECT_EQ(*os.fcntl(slave, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(os.describe_fd(os.current_pid(), slave), "/dev/pts/0 (cloexec)");
  EXPECT_EQ(os.ioctl(slave, TIOCGPTPEER, flags_arg(O_RDWR)).error().code, EIO)
      << "a master's request, known to every terminal";
  unsigned index = 0;
  EXPECT_EQ(os.ioctl(slave, TIOCGPTN, &index).error().code, ENOTTY);
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {2, 2}));  // 0 and 1 are taken
  EXPECT_EQ(os.ioctl(master, TIOCGPTPEER, flags_arg(O_RDWR)).error().code, EMFILE);
}

TEST(FakePty, CanonicalInputEchoAndOnlcrAsLinuxDefaults) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
  ASSERT_TRUE(os.write(m.fd, "ab", 2));
  EXPECT_EQ(read_text(os, slave), "error EAGAIN") << "no whole line yet";
  EXPECT_EQ(poll_events(os, slave), POLLOUT);
  EXPECT_EQ(read_text(os, m.fd), "ab") << "echoed";
  ASSERT_TRUE(os.write(m.fd, "c\rd\n", 4));
  EXPECT_EQ(poll_events(os, slave), POLLIN | POLLOUT);
  EXPECT_EQ(read_text(os, slave), "abc\n") << "one line per read; ICRNL made \\r a \\n";
  EXPECT_EQ(read_text(os, slave), "d\n");
  EXPECT_EQ(read_text(os, m.fd), "c\r\nd\r\n") << "echo goes through ONLCR";
  ASSERT_TRUE(os.write(slave, "x\ny", 3));
  EXPECT_EQ(read_text(os, m.fd), "x\r\ny");
  EXPECT_EQ(read_text(os, m.fd), "error EAGAIN");
}

TEST(FakePty, RawModeFromTcsetsPassesBytesThrough) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
  termios t{};
  ASSERT_TRUE(os.ioctl(slave, TCGETS, &t));
  EXPECT_EQ(t.c_iflag, static_cast<tcflag_t>(ICRNL));
  EXPECT_EQ(t.c_oflag, static_cast<tcflag_t>(OPOST | ONLCR));
  EXPECT_EQ(t.c_lflag, static_cast<tcflag_t>(ICANON | ECHO)) << "only what the fake models";
  EXPECT_EQ(t.c_cc[VMIN], 1);
  t.c_iflag = 0;
  t.c_oflag = 0;
  t.c_lflag = 0;
  ASSERT_TRUE(os.ioctl(m.fd, TCSETS, &t)) << "the master sets the slave's termios";
  termios again{};
  ASSERT_TRUE(os.ioctl(slave, TCGETS, &again));
  EXPECT_EQ(again.c_lflag, 0U);
  ASSERT_TRUE(os.write(m.fd, "a\rb", 3));
  EXPECT_EQ(read_text(os, slave), "a\rb");
  EXPECT_EQ(read_text(os, m.fd), "error EAGAIN") << "no echo";
  ASSERT_TRUE(os.write(slave, "1\n2", 3));
  EXPECT_EQ(read_text(os, m.fd), "1\n2");
  ASSERT_TRUE(os.write(m.fd, "left", 4));
  ASSERT_TRUE(os.ioctl(slave, TCSETSF, &t));
  EXPECT_EQ(read_text(os, slave), "error EAGAIN") << "TCSETSF flushes the input";
}

TEST(FakePty, EpollSeesBothDirections) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0);
  const int ep = *os.epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.fd = m.fd;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, m.fd, &event));
  event.data.fd = slave;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, slave, &event));
  epoll_event out[2]{};
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
  ASSERT_TRUE(os.write(slave, "out", 3));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(out[0].data.fd, m.fd);
  ASSERT_TRUE(os.write(m.fd, "in\n", 3));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 2) << "the slave's line, and the master's echo";
}

TEST(FakePty, MasterReadsWhatIsLeftThenEioOnceEverySlaveClosed) {
  FakeSyscalls os;
  const Master m = open_master(os);
  EXPECT_EQ(read_text(os, m.fd), "error EAGAIN") << "no slave opened yet: nothing closed";
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY, 0);
  const int dup = *os.dup(slave);
  ASSERT_TRUE(os.write(slave, "last", 4));
  ASSERT_TRUE(os.close(slave));
  EXPECT_EQ(poll_events(os, m.fd), POLLIN | POLLOUT) << "a descriptor is still open";
  ASSERT_TRUE(os.close(dup));
  EXPECT_EQ(poll_events(os, m.fd), POLLIN | POLLOUT | POLLHUP);
  EXPECT_EQ(read_text(os, m.fd), "last");
  EXPECT_EQ(poll_events(os, m.fd), POLLOUT | POLLHUP);
  EXPECT_EQ(read_text(os, m.fd), "error EIO");
  EXPECT_TRUE(os.write(m.fd, "z", 1)) << "writes are still taken, and echoed";
  EXPECT_EQ(read_text(os, m.fd), "z");
  EXPECT_EQ(read_text(os, m.fd), "error EIO");
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK, 0));
  EXPECT_EQ(read_text(os, m.fd), "error EAGAIN") << "a slave is open again: no longer EIO";
}

TEST(FakePty, SlaveIsHungUpForGoodOnceTheMasterCloses) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY, 0);
  ASSERT_TRUE(os.write(m.fd, "unread\n", 7));
  ASSERT_TRUE(os.close(m.fd));
  EXPECT_EQ(read_text(os, slave), "") << "EOF, unread input and all";
  EXPECT_EQ(os.write(slave, "x", 1).error().code, EIO);
  termios t{};
  EXPECT_EQ(os.ioctl(slave, TCGETS, &t).error().code, EIO);
  EXPECT_EQ(poll_events(os, slave), POLLIN | POLLOUT | POLLERR | POLLHUP);
  EXPECT_EQ(os.describe_fd(os.current_pid(), slave), "/dev/pts/0 (hung up)");
  EXPECT_EQ(os.open("/dev/pts/0", O_RDWR | O_NOCTTY, 0).error().code, ENOENT);
  const Master next = open_master(os);
  EXPECT_EQ(next.index, 0U) << "the index is free again";
}

TEST(FakePty, WindowSizeIsStoredPerTerminalAndSignalsTheForegroundGroup) {
  FakeSyscalls os;
  const Master m = open_master(os);
  winsize size{};
  size.ws_row = 1;
  ASSERT_TRUE(os.ioctl(m.fd, TIOCGWINSZ, &size));
  EXPECT_EQ(size.ws_row, 0) << "a new terminal has no size";
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setsid());
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR, 0);
  os.switch_to(1000);
  winsize set{24, 80, 0, 0};
  ASSERT_TRUE(os.ioctl(m.fd, TIOCSWINSZ, &set));
  ASSERT_TRUE(os.ioctl(m.fd, TIOCSWINSZ, &set));
  os.switch_to(child);
  winsize got{};
  ASSERT_TRUE(os.ioctl(slave, TIOCGWINSZ, &got));
  EXPECT_EQ(got.ws_row, 24);
  EXPECT_EQ(got.ws_col, 80);
  EXPECT_THAT(signals_of(os, child), ElementsAre(SIGWINCH))
      << "once: the second set changed nothing";
  EXPECT_EQ(os.ioctl(slave, TIOCGWINSZ, nullptr).error().code, EFAULT);
}

TEST(FakePty, OpeningWithoutNocttyMakesTheControllingTerminalOfASessionLeader) {
  FakeSyscalls os;
  const Master m = open_master(os);
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR, 0));
  EXPECT_EQ(os.process(1000).controlling_terminal, "") << "not a session leader";
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setsid());
  ASSERT_TRUE(os.open("/dev/ptmx", O_RDWR, 0));
  EXPECT_EQ(os.process(child).controlling_terminal, "") << "a master never is";
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY, 0));
  EXPECT_EQ(os.process(child).controlling_terminal, "");
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_WRONLY, 0));
  EXPECT_EQ(os.process(child).controlling_terminal, "") << "not for writing only";
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR, 0));
  EXPECT_EQ(os.process(child).controlling_terminal, "/dev/pts/0");
  const pid_t grandchild = *os.fork();
  EXPECT_EQ(os.process(grandchild).controlling_terminal, "/dev/pts/0") << "inherited";
  os.switch_to(grandchild);
  ASSERT_TRUE(os.setsid());
  EXPECT_EQ(os.process(grandchild).controlling_terminal, "") << "setsid leaves it";
}

TEST(FakePty, TiocscttyNeedsALeaderWithoutOneAndATerminalOfNoOtherSession) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const Master other = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR | O_NOCTTY, 0);
  const int other_slave = *os.open(slave_path(other).c_str(), O_RDWR | O_NOCTTY, 0);
  EXPECT_EQ(os.ioctl(slave, TIOCSCTTY, nullptr).error().code, EPERM) << "not a session leader";
  const pid_t first = *os.fork();
  const pid_t second = *os.fork();
  const pid_t third = *os.fork();
  os.switch_to(first);
  ASSERT_TRUE(os.setsid());
  ASSERT_TRUE(os.ioctl(slave, TIOCSCTTY, nullptr));
  EXPECT_EQ(os.process(first).controlling_terminal, "/dev/pts/0");
  EXPECT_TRUE(os.ioctl(slave, TIOCSCTTY, nullptr)) << "its own already: nothing to do";
  EXPECT_EQ(os.ioctl(other_slave, TIOCSCTTY, nullptr).error().code, EPERM) << "it has one";
  os.switch_to(second);
  ASSERT_TRUE(os.setsid());
  EXPECT_EQ(os.ioctl(slave, TIOCSCTTY, nullptr).error().code, EPERM) << "another session's";
  EXPECT_TRUE(os.ioctl(slave, TIOCSCTTY, flags_arg(1))) << "root may steal it with arg 1";
  EXPECT_EQ(os.process(first).controlling_terminal, "");
  EXPECT_EQ(os.process(second).controlling_terminal, "/dev/pts/0");
  os.switch_to(third);
  ASSERT_TRUE(os.setsid());
  ASSERT_TRUE(os.ioctl(other.fd, TIOCSCTTY, nullptr)) << "through the master, the slave";
  EXPECT_EQ(os.process(third).controlling_terminal, "/dev/pts/1");
  EXPECT_EQ(os.ioctl(other.fd, TIOCNOTTY, nullptr).error().code, ENOTTY)
      << "a master is nobody's controlling terminal";
}

TEST(FakePty, TiocscttyOnAWriteOnlyTerminalNeedsPrivilege) {
  FakeSyscalls os(FakeSyscallsOptions{.uid = 1001, .gid = 1001});
  const Master m = open_master(os);
  const int slave = *os.open(slave_path(m).c_str(), O_WRONLY | O_NOCTTY, 0);
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setsid());
  EXPECT_EQ(os.ioctl(slave, TIOCSCTTY, nullptr).error().code, EPERM);
}

// What pinned DifferentialPty.HangupSignalsTheLeaderAndItsGroupOnlyWhenItExits shows Linux
// doing: the leader gets SIGHUP then SIGCONT at the hangup, its foreground group only when the
// leader exits later.
TEST(FakePty, ClosingTheMasterHangsUpTheSessionLeaderThenItsGroupAtItsExit) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const pid_t leader = *os.fork();
  os.switch_to(leader);
  ASSERT_TRUE(os.setsid());
  ASSERT_TRUE(os.close(m.fd)) << "only the test's process keeps the master";
  catch_signal(os, SIGHUP);
  catch_signal(os, SIGCONT);
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR, 0));
  const pid_t member = *os.fork();  // in the leader's (foreground) group
  os.switch_to(member);
  catch_signal(os, SIGHUP);
  catch_signal(os, SIGCONT);
  os.switch_to(1000);
  ASSERT_TRUE(os.close(m.fd));
  EXPECT_THAT(signals_of(os, leader), ElementsAre(SIGHUP, SIGCONT));
  EXPECT_THAT(signals_of(os, member), ElementsAre());
  EXPECT_EQ(os.process(leader).controlling_terminal, "");
  EXPECT_EQ(os.process(member).controlling_terminal, "");
  os.end_process(leader, 0);
  EXPECT_THAT(signals_of(os, member), ElementsAre(SIGHUP, SIGCONT));
}

TEST(FakePty, ALeaderExitingWithItsTerminalSendsSighupToTheForegroundGroup) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const pid_t leader = *os.fork();
  os.switch_to(leader);
  ASSERT_TRUE(os.setsid());
  ASSERT_TRUE(os.close(m.fd));
  ASSERT_TRUE(os.open(slave_path(m).c_str(), O_RDWR, 0));
  const pid_t member = *os.fork();
  os.switch_to(member);
  catch_signal(os, SIGHUP);
  os.end_process(leader, 0);
  EXPECT_THAT(signals_of(os, member), ElementsAre(SIGHUP)) << "no SIGCONT on exit";
  EXPECT_EQ(os.process(member).controlling_terminal, "");
  os.switch_to(1000);
  ASSERT_TRUE(os.close(m.fd));
  EXPECT_THAT(signals_of(os, member), ElementsAre(SIGHUP)) << "the terminal has no session now";
}

TEST(FakePty, TiocnottyLeavesTheTerminal) {
  FakeSyscalls os;
  const Master m = open_master(os);
  const pid_t leader = *os.fork();
  os.switch_to(leader);
  ASSERT_TRUE(os.setsid());
  catch_signal(os, SIGHUP);
  const int slave = *os.open(slave_path(m).c_str(), O_RDWR, 0);
  const pid_t member = *os.fork();
  os.switch_to(member);
  ASSERT_TRUE(os.ioctl(slave, TIOCNOTTY, nullptr)) << "a member leaves alone";
  EXPECT_EQ(os.process(member).controlling_terminal, "");
  EXPECT_EQ(os.process(leader).controlling_terminal, "/dev/pts/0");
  EXPECT_EQ(os.ioctl(slave, TIOCNOTTY, nullptr).error().code, ENOTTY) << "not its terminal now";
  os.switch_to(leader);
  ASSERT_TRUE(os.ioctl(slave, TIOCNOTTY, nullptr));
  EXPECT_EQ(os.process(leader).controlling_terminal, "");
  EXPECT_THAT(signals_of(os, leader), ElementsAre(SIGHUP, SIGCONT)) << "its foreground group";
}

TEST(FakePty, OtherFilesAndRequestsAreNotTerminals) {
  FakeSyscalls os;
  const Master m = open_master(os);
  termios t{};
  EXPECT_EQ(os.ioctl(m.fd, 0x5401'0000UL, &t).error().code, ENOTTY) << "an unknown request";
  const auto pipe = *os.pipe2(O_CLOEXEC);
  EXPECT_EQ(os.ioctl(pipe.read_end, TCGETS, &t).error().code, ENOTTY);
  const int null = *os.open("/dev/null", O_RDWR, 0);
  EXPECT_EQ(os.ioctl(null, TCGETS, &t).error().code, ENOTTY);
  const int sock = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(os.ioctl(sock, TIOCGWINSZ, &t).error().code, ENOTTY);
  EXPECT_EQ(os.ioctl(99, TCGETS, &t).error().code, EBADF);
  EXPECT_EQ(os.ioctl(m.fd, TCGETS, nullptr).error().code, EFAULT);
}

TEST(FakePty, IoctlIsRecordedAndInjectable) {
  FakeSyscalls os;
  const int master = *os.open("/dev/ptmx", O_RDWR | O_NOCTTY, 0);
  os.clear_transcript();
  os.fail_nth("ioctl", 1, 0);
  const int unlock = 0;
  EXPECT_EQ(os.ioctl(master, TIOCSPTLCK, const_cast<int*>(&unlock)).error().code, ENOTTY);
  ASSERT_TRUE(os.ioctl(master, TIOCSPTLCK, const_cast<int*>(&unlock)));
  EXPECT_EQ(os.transcript().at(1).to_string(), "[1000] ioctl(0, TIOCSPTLCK, [0]) = 0");
  ASSERT_TRUE(os.ioctl(master, TIOCGPTPEER, flags_arg(O_RDWR | O_NOCTTY)));
  EXPECT_EQ(os.transcript().at(2).call_text(), "ioctl(0, TIOCGPTPEER, O_RDWR|O_NOCTTY)");
  EXPECT_THAT(os.transcript(), CallFailedWith("ioctl", ENOTTY));
}

}  // namespace
}  // namespace daemonkit::fake
