// signalfd in the fake kernel: Linux's rules for creating and updating one, reading
// signalfd_siginfo records of the reader's blocked pending signals, readiness in poll and
// epoll, and how the description behaves across fork and exec.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::ends;

sigset_t set_of(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  return set;
}

void block(FakeSyscalls& os, std::initializer_list<int> signals) {
  const sigset_t set = set_of(signals);
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, &set, nullptr));
}

std::vector<signalfd_siginfo> read_infos(FakeSyscalls& os, int fd, std::size_t max = 4) {
  std::vector<signalfd_siginfo> infos(max);
  auto n = os.read(fd, infos.data(), infos.size() * sizeof(signalfd_siginfo));
  if (!n) return {};
  infos.resize(*n / sizeof(signalfd_siginfo));
  return infos;
}

bool pollin(FakeSyscalls& os, int fd) {
  pollfd entry{fd, POLLIN, 0};
  auto n = os.poll(&entry, 1, 0);
  return n && *n == 1 && (entry.revents & POLLIN) != 0;
}

TEST(FakeSignalfd, ReadsABlockedPendingSignalWithItsSender) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  block(os, {SIGTERM});
  const int fd = *os.signalfd(-1, set_of({SIGTERM}), SFD_CLOEXEC | SFD_NONBLOCK);
  ASSERT_TRUE(os.kill(self, SIGTERM));
  EXPECT_THAT(os.process(self).pending_signals, ElementsAre(SIGTERM));
  auto infos = read_infos(os, fd);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].ssi_signo, static_cast<std::uint32_t>(SIGTERM));
  EXPECT_EQ(infos[0].ssi_pid, static_cast<std::uint32_t>(self));
  EXPECT_EQ(infos[0].ssi_uid, 0u);
  EXPECT_EQ(infos[0].ssi_code, SI_USER);
  EXPECT_THAT(os.process(self).pending_signals, IsEmpty()) << "reading consumes it";
  EXPECT_TRUE(os.process(self).alive());
}

TEST(FakeSignalfd, NothingPendingIsEagainWhenNonblockingAndWouldBlockOtherwise) {
  FakeSyscalls os;
  block(os, {SIGUSR1});
  const int nonblocking = *os.signalfd(-1, set_of({SIGUSR1}), SFD_NONBLOCK);
  const int blocking = *os.signalfd(-1, set_of({SIGUSR1}), 0);
  signalfd_siginfo info{};
  EXPECT_EQ(os.read(nonblocking, &info, sizeof info).error().code, EAGAIN);
  EXPECT_EQ(os.read(blocking, &info, sizeof info).error().code, EDEADLK);
  EXPECT_THAT(os.transcript(), Contains(Field(&CallRecord::note, HasSubstr("signalfd"))));
}

TEST(FakeSignalfd, BufferSmallerThanOneRecordIsEinval) {
  FakeSyscalls os;
  block(os, {SIGUSR1});
  const int fd = *os.signalfd(-1, set_of({SIGUSR1}), SFD_NONBLOCK);
  ASSERT_TRUE(os.kill(os.getpid(), SIGUSR1));
  char small[sizeof(signalfd_siginfo) - 1];
  EXPECT_EQ(os.read(fd, small, sizeof small).error().code, EINVAL);
  EXPECT_THAT(os.process(os.getpid()).pending_signals, ElementsAre(SIGUSR1)) << "not consumed";
}

TEST(FakeSignalfd, OneReadTakesSeveralSignalsLowestFirstAndOnlyThoseInItsSet) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  block(os, {SIGUSR1, SIGUSR2, SIGHUP});
  const int fd = *os.signalfd(-1, set_of({SIGUSR2, SIGUSR1}), SFD_NONBLOCK);
  for (int sig : {SIGHUP, SIGUSR2, SIGUSR1}) ASSERT_TRUE(os.kill(self, sig));
  auto infos = read_infos(os, fd);
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].ssi_signo, static_cast<std::uint32_t>(SIGUSR1));
  EXPECT_EQ(infos[1].ssi_signo, static_cast<std::uint32_t>(SIGUSR2));
  EXPECT_THAT(os.process(self).pending_signals, ElementsAre(SIGHUP));
}

TEST(FakeSignalfd, AnUnblockedSignalActsAtOnceAndNeverReachesTheSignalfd) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.switch_to(child);
  const int fd = *os.signalfd(-1, set_of({SIGTERM}), SFD_NONBLOCK);
  EXPECT_FALSE(pollin(os, fd));
  const auto ended = ends([&] { static_cast<void>(os.kill(child, SIGTERM)); });
  EXPECT_EQ(WTERMSIG(ended.wait_status), SIGTERM);
}

TEST(FakeSignalfd, ReadableInPollAndEpollWhileASignalOfItsSetIsPending) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  block(os, {SIGTERM, SIGHUP});
  const int fd = *os.signalfd(-1, set_of({SIGTERM}), SFD_NONBLOCK);
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  struct epoll_event out[2];
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
  ASSERT_TRUE(os.kill(self, SIGHUP));
  EXPECT_FALSE(pollin(os, fd)) << "SIGHUP is pending but not in the set";
  ASSERT_TRUE(os.kill(self, SIGTERM));
  EXPECT_TRUE(pollin(os, fd));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<std::uint32_t>(EPOLLIN));
  EXPECT_EQ(read_infos(os, fd).size(), 1u);
  EXPECT_FALSE(pollin(os, fd));
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
}

TEST(FakeSignalfd, EdgeTriggeredEpollIsWokenByEachNewSignal) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  block(os, {SIGUSR1, SIGUSR2});
  const int fd = *os.signalfd(-1, set_of({SIGUSR1, SIGUSR2}), SFD_NONBLOCK);
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  struct epoll_event out[2];
  ASSERT_TRUE(os.kill(self, SIGUSR1));
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
  ASSERT_TRUE(os.kill(self, SIGUSR2));
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
}

TEST(FakeSignalfd, KillFromAnotherProcessMakesItReadableAndNamesTheSender) {
  FakeSyscalls os;
  const pid_t daemon = os.getpid();
  block(os, {SIGTERM});
  const int fd = *os.signalfd(-1, set_of({SIGTERM}), SFD_CLOEXEC | SFD_NONBLOCK);
  const pid_t other = *os.fork();
  os.switch_to(other);
  ASSERT_TRUE(os.setresuid(65534, 0, 0));  // real uid nobody, still privileged to signal
  ASSERT_TRUE(os.kill(daemon, SIGTERM));
  os.switch_to(daemon);
  EXPECT_TRUE(pollin(os, fd));
  auto infos = read_infos(os, fd);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].ssi_pid, static_cast<std::uint32_t>(other));
  EXPECT_EQ(infos[0].ssi_uid, 65534u) << "the sender's real uid";
}

TEST(FakeSignalfd, UpdatingTheSetKeepsTheDescriptorAndChangesWhatItReads) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  block(os, {SIGUSR1, SIGUSR2});
  const int fd = *os.signalfd(-1, set_of({SIGUSR1}), SFD_NONBLOCK);
  ASSERT_TRUE(os.kill(self, SIGUSR2));
  EXPECT_FALSE(pollin(os, fd));
  EXPECT_EQ(*os.signalfd(fd, set_of({SIGUSR2}), 0), fd);
  EXPECT_TRUE(pollin(os, fd));
  EXPECT_EQ(*os.fcntl(fd, F_GETFL, 0) & O_NONBLOCK, O_NONBLOCK) << "flags are not updated";
  auto infos = read_infos(os, fd);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].ssi_signo, static_cast<std::uint32_t>(SIGUSR2));
}

TEST(FakeSignalfd, RefusesBadFlagsBadDescriptorsAndOtherFiles) {
  FakeSyscalls os;
  const sigset_t set = set_of({SIGTERM});
  EXPECT_EQ(os.signalfd(-1, set, 0x7fff0000).error().code, EINVAL);
  EXPECT_EQ(os.signalfd(42, set, 0).error().code, EBADF);
  auto pipe = *os.pipe2(0);
  EXPECT_EQ(os.signalfd(pipe.read_end, set, 0).error().code, EINVAL);
  const int fd = *os.signalfd(-1, set, SFD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(fd, F_GETFL, 0) & O_ACCMODE, O_RDWR);
  EXPECT_EQ(os.describe_fd(os.getpid(), fd), "anon_inode:[signalfd] (cloexec)");
  EXPECT_EQ(os.write(fd, "x", 1).error().code, EINVAL);
}

TEST(FakeSignalfd, SigkillAndSigstopInTheSetAreIgnored) {
  FakeSyscalls os;
  const int fd = *os.signalfd(-1, set_of({SIGKILL, SIGSTOP}), SFD_NONBLOCK);
  signalfd_siginfo info{};
  EXPECT_EQ(os.read(fd, &info, sizeof info).error().code, EAGAIN);
  EXPECT_THAT(os.transcript().at(0).args, Contains("[SIGKILL SIGSTOP]")) << "asked for";
}

TEST(FakeSignalfd, AForkedChildSharesTheDescriptionButReadsItsOwnSignals) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  block(os, {SIGUSR1});
  const int fd = *os.signalfd(-1, set_of({SIGUSR1}), SFD_NONBLOCK);
  ASSERT_TRUE(os.kill(parent, SIGUSR1));
  const pid_t child = *os.fork();
  os.switch_to(child);
  EXPECT_FALSE(pollin(os, fd)) << "pending signals are not inherited";
  ASSERT_TRUE(os.kill(child, SIGUSR1));
  ASSERT_EQ(read_infos(os, fd).size(), 1u);
  // The mask survives fork: the parent's signal is still its own to read.
  os.switch_to(parent);
  ASSERT_EQ(read_infos(os, fd).size(), 1u);
  // O_NONBLOCK lives in the shared description: clearing it in one clears it in both.
  ASSERT_TRUE(os.fcntl(fd, F_SETFL, 0));
  os.switch_to(child);
  EXPECT_EQ(*os.fcntl(fd, F_GETFL, 0) & O_NONBLOCK, 0);
}

TEST(FakeSignalfd, SurvivesExecUnlessCloexecAndStillReadsWithTheMaskKept) {
  FakeSyscalls os;
  os.install_program("/bin/worker");
  const pid_t child = *os.fork();
  os.switch_to(child);
  block(os, {SIGTERM});
  const int kept = *os.signalfd(-1, set_of({SIGTERM}), SFD_NONBLOCK);
  const int dropped = *os.signalfd(-1, set_of({SIGTERM}), SFD_NONBLOCK | SFD_CLOEXEC);
  char* const argv[] = {const_cast<char*>("worker"), nullptr};
  const auto ended = ends([&] { static_cast<void>(os.execve("/bin/worker", argv, nullptr)); });
  EXPECT_TRUE(ended.by_exec);
  EXPECT_EQ(os.describe_fd(child, kept), "anon_inode:[signalfd]");
  EXPECT_EQ(os.describe_fd(child, dropped), "closed");
  EXPECT_THAT(os.process(child).blocked_signals, Contains(SIGTERM));
  os.switch_to(child);  // the exec'd program runs on
  ASSERT_TRUE(os.kill(child, SIGTERM));
  EXPECT_TRUE(os.process(child).alive());
  EXPECT_EQ(read_infos(os, kept).size(), 1u);
}

TEST(FakeSignalfd, CallsAreRecordedReadablyAndCanBeMadeToFail) {
  FakeSyscalls os;
  os.fail_nth("signalfd", 2, EMFILE);
  ASSERT_TRUE(os.signalfd(-1, set_of({SIGTERM, SIGINT}), SFD_CLOEXEC | SFD_NONBLOCK));
  EXPECT_EQ(os.signalfd(-1, set_of({SIGTERM}), 0).error().code, EMFILE);
  EXPECT_EQ(os.transcript().at(0).to_string(),
            "[1000] signalfd(-1, [SIGINT SIGTERM], SFD_CLOEXEC|SFD_NONBLOCK) = 0");
  EXPECT_EQ(os.transcript().at(1).error, EMFILE);
}

}  // namespace
}  // namespace daemonkit::fake
