// epoll, eventfd and poll in the fake kernel, against Linux's documented semantics: level
// triggering, EPOLLIN/EPOLLOUT/EPOLLHUP/EPOLLERR, the errno of every misuse, the eventfd
// counter, and timeouts that move the manual clock instead of sleeping.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake {
namespace {

using std::chrono::milliseconds;

std::uint64_t read_counter(FakeSyscalls& os, int fd) {
  std::uint64_t value = 0;
  auto n = os.read(fd, &value, sizeof value);
  EXPECT_TRUE(n) << "read of eventfd failed";
  return value;
}

void add_counter(FakeSyscalls& os, int fd, std::uint64_t value) {
  ASSERT_EQ(*os.write(fd, &value, sizeof value), sizeof value);
}

// One epoll_wait(timeout 0), as (data.fd, events) pairs.
std::vector<std::pair<int, std::uint32_t>> ready(FakeSyscalls& os, int epfd, int max = 16) {
  std::vector<struct epoll_event> events(static_cast<std::size_t>(max));
  auto n = os.epoll_wait(epfd, events.data(), max, 0);
  EXPECT_TRUE(n);
  std::vector<std::pair<int, std::uint32_t>> out;
  for (int i = 0; i < n.value_or(0); ++i) {
    const struct epoll_event& e = events[static_cast<std::size_t>(i)];
    const int fd = e.data.fd;
    const std::uint32_t mask = e.events;
    out.emplace_back(fd, mask);
  }
  return out;
}

sys::Result<void> watch(FakeSyscalls& os, int epfd, int fd, std::uint32_t events,
                        int op = EPOLL_CTL_ADD) {
  struct epoll_event ev {};
  ev.events = events;
  ev.data.fd = fd;
  return os.epoll_ctl(epfd, op, fd, &ev);
}

using Ready = std::vector<std::pair<int, std::uint32_t>>;

// ---- eventfd --------------------------------------------------------------------------------

TEST(FakeEventfd, ReadReturnsTheSumAndResetsIt) {
  FakeSyscalls os;
  const int fd = *os.eventfd(2, EFD_NONBLOCK);
  add_counter(os, fd, 3);
  add_counter(os, fd, 4);
  EXPECT_EQ(read_counter(os, fd), 9u);
  std::uint64_t value;
  EXPECT_EQ(os.read(fd, &value, sizeof value).error().code, EAGAIN);
}

TEST(FakeEventfd, BlockingReadOfZeroGoesThroughTheWouldBlockPolicy) {
  FakeSyscalls os;
  const int fd = *os.eventfd(0, 0);
  std::uint64_t value;
  EXPECT_EQ(os.read(fd, &value, sizeof value).error().code, EDEADLK);
}

TEST(FakeEventfd, SemaphoreReadsOneAtATime) {
  FakeSyscalls os;
  const int fd = *os.eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
  EXPECT_EQ(read_counter(os, fd), 1u);
  EXPECT_EQ(read_counter(os, fd), 1u);
  std::uint64_t value;
  EXPECT_EQ(os.read(fd, &value, sizeof value).error().code, EAGAIN);
}

TEST(FakeEventfd, RejectsShortBuffersAndTheMaximumValue) {
  FakeSyscalls os;
  const int fd = *os.eventfd(1, EFD_NONBLOCK);
  std::uint32_t small = 1;
  EXPECT_EQ(os.write(fd, &small, sizeof small).error().code, EINVAL);
  EXPECT_EQ(os.read(fd, &small, sizeof small).error().code, EINVAL);
  const std::uint64_t max = UINT64_MAX;
  EXPECT_EQ(os.write(fd, &max, sizeof max).error().code, EINVAL);
}

TEST(FakeEventfd, WriteThatWouldOverflowIsEagainWhenNonblocking) {
  FakeSyscalls os;
  const int fd = *os.eventfd(0, EFD_NONBLOCK);
  add_counter(os, fd, 0xfffffffffffffffeULL);
  const std::uint64_t one = 1;
  EXPECT_EQ(os.write(fd, &one, sizeof one).error().code, EAGAIN);
}

TEST(FakeEventfd, FlagsSetCloexecAndNonblockAndUnknownFlagsFail) {
  FakeSyscalls os;
  const int fd = *os.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  EXPECT_EQ(*os.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(fd, F_GETFL, 0) & (O_NONBLOCK | O_ACCMODE), O_NONBLOCK | O_RDWR);
  EXPECT_EQ(os.eventfd(0, 0x4000000).error().code, EINVAL);
  EXPECT_EQ(os.describe_fd(os.getpid(), fd), "anon_inode:[eventfd] (cloexec)");
}

// ---- epoll_ctl errors -----------------------------------------------------------------------

TEST(FakeEpoll, TranscriptNamesTheEventBitsAndKeepsUnknownOnesInHex) {
  FakeSyscalls os;
  const int ep = os.epoll_create1(EPOLL_CLOEXEC).value();
  const int efd = os.eventfd(0, EFD_CLOEXEC).value();
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET | 0x800000;
  static_cast<void>(os.epoll_ctl(ep, EPOLL_CTL_ADD, efd, &event));
  const CallRecord& ctl = os.transcript().back();
  ASSERT_EQ(ctl.name, "epoll_ctl");
  EXPECT_EQ(ctl.args.at(3), "EPOLLIN|EPOLLET|0x800000");
  static_cast<void>(os.epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
  EXPECT_EQ(os.transcript().back().args.at(3), "NULL");
}

TEST(FakeEpoll, CtlRejectsBadDescriptors) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(EPOLL_CLOEXEC);
  const int efd = *os.eventfd(0, 0);
  EXPECT_EQ(watch(os, 99, efd, EPOLLIN).error().code, EBADF);
  EXPECT_EQ(watch(os, ep, 99, EPOLLIN).error().code, EBADF);
  EXPECT_EQ(watch(os, efd, efd, EPOLLIN).error().code, EINVAL) << "not an epoll descriptor";
  EXPECT_EQ(watch(os, ep, ep, EPOLLIN).error().code, EINVAL) << "an epoll cannot watch itself";
}

TEST(FakeEpoll, CtlRefusesFilesWithoutPoll) {
  FakeSyscalls os;
  os.write_file("/tmp/x", "data");
  const int ep = *os.epoll_create1(0);
  const int file = *os.open("/tmp/x", O_RDONLY, 0);
  const int null = *os.open("/dev/null", O_RDWR, 0);
  const int dir = *os.open("/tmp", O_RDONLY | O_DIRECTORY, 0);
  EXPECT_EQ(watch(os, ep, file, EPOLLIN).error().code, EPERM);
  EXPECT_EQ(watch(os, ep, null, EPOLLIN).error().code, EPERM);
  EXPECT_EQ(watch(os, ep, dir, EPOLLIN).error().code, EPERM);
}

TEST(FakeEpoll, CtlAddModDelFollowTheRegistrationState) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(0, 0);
  EXPECT_EQ(watch(os, ep, efd, EPOLLIN, EPOLL_CTL_MOD).error().code, ENOENT);
  EXPECT_EQ(os.epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr).error().code, ENOENT);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN));
  EXPECT_EQ(watch(os, ep, efd, EPOLLIN).error().code, EEXIST);
  EXPECT_TRUE(watch(os, ep, efd, EPOLLOUT, EPOLL_CTL_MOD));
  EXPECT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr));
  EXPECT_EQ(os.epoll_ctl(ep, EPOLL_CTL_DEL, efd, nullptr).error().code, ENOENT);
  EXPECT_EQ(watch(os, ep, efd, EPOLLIN, 42).error().code, EINVAL) << "unknown op";
  EXPECT_EQ(os.epoll_ctl(ep, EPOLL_CTL_ADD, efd, nullptr).error().code, EFAULT);
}

TEST(FakeEpoll, EdgeTriggeredReportsOnceUntilTheNextWakeUp) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(0, EFD_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLET));
  EXPECT_EQ(ready(os, ep), Ready{}) << "not ready when added: nothing queued";
  add_counter(os, efd, 1);
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN}}));
  EXPECT_EQ(ready(os, ep), Ready{}) << "still readable, but no new edge";
  add_counter(os, efd, 0);  // Linux wakes the queue even for adding 0
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN}}));
}

TEST(FakeEpoll, EdgeTriggeredPipeReaderWakesOnEveryWriteAndItsWriterOnlyWhenFullEases) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, pipe.read_end, EPOLLIN | EPOLLET));
  ASSERT_TRUE(watch(os, ep, pipe.write_end, EPOLLOUT | EPOLLET));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.write_end, EPOLLOUT}})) << "writable when added";
  std::vector<char> page(4096, 'x');
  ASSERT_TRUE(os.write(pipe.write_end, page.data(), 10));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.read_end, EPOLLIN}}));
  ASSERT_TRUE(os.write(pipe.write_end, page.data(), 10));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.read_end, EPOLLIN}})) << "a write to a non-empty pipe";
  char buf[20];
  ASSERT_TRUE(os.read(pipe.read_end, buf, sizeof buf));
  EXPECT_EQ(ready(os, ep), Ready{}) << "reading a pipe that was not full wakes no writer";
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(os.write(pipe.write_end, page.data(), page.size()));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.read_end, EPOLLIN}}));
  ASSERT_TRUE(os.read(pipe.read_end, page.data(), page.size()));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.write_end, EPOLLOUT}})) << "a page freed in a full pipe";
  ASSERT_TRUE(os.close(pipe.read_end));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.write_end, EPOLLOUT | EPOLLERR}})) << "the last reader";
}

TEST(FakeEpoll, EdgeTriggeredItemAddedOrModifiedWhileReadyIsQueuedOnce) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(1, EFD_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLET));
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN}}));
  EXPECT_EQ(ready(os, ep), Ready{});
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLOUT | EPOLLET, EPOLL_CTL_MOD));
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN | EPOLLOUT}}));
  EXPECT_EQ(ready(os, ep), Ready{});
}

TEST(FakeEpoll, CreateRejectsUnknownFlagsAndSetsCloexec) {
  FakeSyscalls os;
  EXPECT_EQ(os.epoll_create1(1).error().code, EINVAL);
  const int ep = *os.epoll_create1(EPOLL_CLOEXEC);
  EXPECT_EQ(*os.fcntl(ep, F_GETFD, 0), FD_CLOEXEC);
}

// ---- epoll_wait -----------------------------------------------------------------------------

TEST(FakeEpoll, LevelTriggeredPipeIsReportedUntilDrained) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, pipe.read_end, EPOLLIN));
  EXPECT_THAT(ready(os, ep), testing::IsEmpty());
  ASSERT_TRUE(os.write(pipe.write_end, "ab", 2));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.read_end, EPOLLIN}}));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.read_end, EPOLLIN}})) << "still readable";
  char buf[2];
  ASSERT_TRUE(os.read(pipe.read_end, buf, 2));
  EXPECT_THAT(ready(os, ep), testing::IsEmpty());
}

TEST(FakeEpoll, WriteEndIsWritableAndReportsErrorOnceReadersAreGone) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, pipe.write_end, EPOLLOUT));
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.write_end, EPOLLOUT}}));
  ASSERT_TRUE(os.close(pipe.read_end));
  // Linux's pipe_poll: EPOLLOUT whenever there is room, readers or not.
  EXPECT_EQ(ready(os, ep), (Ready{{pipe.write_end, EPOLLOUT | EPOLLERR}}));
}

TEST(FakeEpoll, HangupIsReportedEvenWhenNotAskedFor) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, pipe.read_end, 0));
  EXPECT_THAT(ready(os, ep), testing::IsEmpty());
  ASSERT_TRUE(os.close(pipe.write_end));
  auto got = ready(os, ep);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].second, static_cast<std::uint32_t>(EPOLLHUP));
}

TEST(FakeEpoll, EventfdIsReadableWhileItsCounterIsNonZero) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(0, EFD_NONBLOCK);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLOUT));
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLOUT}}));
  add_counter(os, efd, 1);
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN | EPOLLOUT}}));
  read_counter(os, efd);
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLOUT}}));
}

TEST(FakeEpoll, TimeoutAdvancesTheManualClockInsteadOfSleeping) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const auto before = os.clock().monotonic();
  struct epoll_event ev[4];
  EXPECT_EQ(*os.epoll_wait(ep, ev, 4, 250), 0);
  EXPECT_EQ(os.clock().monotonic() - before, milliseconds(250));
  EXPECT_EQ(*os.epoll_wait(ep, ev, 4, 0), 0);
  EXPECT_EQ(os.clock().monotonic() - before, milliseconds(250));
}

TEST(FakeEpoll, ReadyDescriptorDoesNotMoveTheClock) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(1, 0);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN));
  const auto before = os.clock().monotonic();
  struct epoll_event ev[4];
  EXPECT_EQ(*os.epoll_wait(ep, ev, 4, 1000), 1);
  EXPECT_EQ(os.clock().monotonic(), before);
}

TEST(FakeEpoll, WaitingForeverWithNothingReadyWouldBlock) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev[1];
  EXPECT_EQ(os.epoll_wait(ep, ev, 1, -1).error().code, EDEADLK);
}

TEST(FakeEpoll, WaitRejectsBadArguments) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(0, 0);
  struct epoll_event ev[1];
  EXPECT_EQ(os.epoll_wait(99, ev, 1, 0).error().code, EBADF);
  EXPECT_EQ(os.epoll_wait(efd, ev, 1, 0).error().code, EINVAL);
  EXPECT_EQ(os.epoll_wait(ep, ev, 0, 0).error().code, EINVAL);
}

TEST(FakeEpoll, SmallMaxeventsRotatesSoNobodyStarves) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int a = *os.eventfd(1, 0);
  const int b = *os.eventfd(1, 0);
  const int c = *os.eventfd(1, 0);
  for (int fd : {a, b, c}) ASSERT_TRUE(watch(os, ep, fd, EPOLLIN));
  EXPECT_EQ(ready(os, ep, 2), (Ready{{a, EPOLLIN}, {b, EPOLLIN}}));
  EXPECT_EQ(ready(os, ep, 2), (Ready{{c, EPOLLIN}, {a, EPOLLIN}}));
}

TEST(FakeEpoll, RegistrationBelongsToTheOpenFileDescription) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(1, 0);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN));
  const int copy = *os.dup(efd);
  ASSERT_TRUE(os.close(efd));
  // Linux keeps reporting the registration (with its old data) while a duplicate lives.
  EXPECT_EQ(ready(os, ep), (Ready{{efd, EPOLLIN}}));
  ASSERT_TRUE(os.close(copy));
  EXPECT_THAT(ready(os, ep), testing::IsEmpty());
}

TEST(FakeEpoll, OneshotDisarmsUntilModified) {
  FakeSyscalls os;
  const int ep = *os.epoll_create1(0);
  const int efd = *os.eventfd(1, 0);
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLONESHOT));
  EXPECT_EQ(ready(os, ep).size(), 1u);
  EXPECT_THAT(ready(os, ep), testing::IsEmpty());
  ASSERT_TRUE(watch(os, ep, efd, EPOLLIN | EPOLLONESHOT, EPOLL_CTL_MOD));
  EXPECT_EQ(ready(os, ep).size(), 1u);
}

TEST(FakeEpoll, NestedEpollIsReadableAndLoopsAreRefused) {
  FakeSyscalls os;
  const int outer = *os.epoll_create1(0);
  const int inner = *os.epoll_create1(0);
  const int efd = *os.eventfd(0, 0);
  ASSERT_TRUE(watch(os, inner, efd, EPOLLIN));
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN));
  EXPECT_THAT(ready(os, outer), testing::IsEmpty());
  add_counter(os, efd, 1);
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}}));
  EXPECT_EQ(watch(os, inner, outer, EPOLLIN).error().code, ELOOP);
}

// What Linux 6.18 does with nested epolls, each case checked on the real kernel: an epoll is
// readable when a queued registration of it is ready, EPOLLHUP counting even when unrequested,
// and every time one of its registrations is queued it wakes the epolls watching it.

int poll_in(FakeSyscalls& os, int fd) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  EXPECT_TRUE(os.poll(&p, 1, 0));
  return p.revents;
}

TEST(FakeEpoll, NestedEpollWhoseOnlyItemIsAnUnrequestedHangupIsReadable) {
  FakeSyscalls os;
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(os.close(pipe.write_end));
  const int inner = *os.epoll_create1(0);
  const int outer = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, inner, pipe.read_end, 0));
  EXPECT_EQ(poll_in(os, inner), POLLIN);
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN));
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}}));
  EXPECT_EQ(ready(os, inner), (Ready{{pipe.read_end, EPOLLHUP}}));
}

// The seed 8138181951829107415 of DifferentialEpoll.SequencesMatchTheKernel: the outer epoll
// watches the inner one edge-triggered before the inner one has anything to report.
TEST(FakeEpoll, NestedEpollWakesItsEdgeTriggeredWatcherWhenAReadyItemIsAdded) {
  FakeSyscalls os;
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(os.close(pipe.write_end));
  const int outer = *os.epoll_create1(0);
  const int inner = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN | EPOLLOUT | EPOLLET));
  EXPECT_EQ(ready(os, outer), Ready{}) << "empty when added: no edge";
  ASSERT_TRUE(watch(os, inner, pipe.read_end, 0));
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}}));
  EXPECT_EQ(ready(os, outer), Ready{});
  EXPECT_EQ(ready(os, inner), (Ready{{pipe.read_end, EPOLLHUP}}));
  EXPECT_EQ(ready(os, outer), Ready{}) << "re-queueing a level-triggered item wakes nobody";
}

TEST(FakeEpoll, NestedEdgeComesFromModifyingOrWakingAnItemNotFromRequeueingIt) {
  FakeSyscalls os;
  const int efd = *os.eventfd(1, EFD_NONBLOCK);
  const int inner = *os.epoll_create1(0);
  const int outer = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, inner, efd, 0));
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN | EPOLLET));
  EXPECT_EQ(ready(os, outer), Ready{}) << "an eventfd never hangs up: nothing to offer";
  ASSERT_TRUE(watch(os, inner, efd, EPOLLIN, EPOLL_CTL_MOD));
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}})) << "modified into readiness";
  EXPECT_EQ(ready(os, outer), Ready{});
  ASSERT_TRUE(watch(os, inner, efd, EPOLLIN, EPOLL_CTL_MOD));
  EXPECT_EQ(ready(os, outer), Ready{}) << "modified while already queued";
  EXPECT_EQ(ready(os, inner), (Ready{{efd, EPOLLIN}}));
  EXPECT_EQ(ready(os, outer), Ready{}) << "re-queued after its report";
  add_counter(os, efd, 1);
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}})) << "woken while already queued";
}

TEST(FakeEpoll, NestedEdgeIgnoresEventsTheInnerItemDidNotAskForUntilItHangsUp) {
  FakeSyscalls os;
  auto pipe = *os.pipe2(O_NONBLOCK);
  const int inner = *os.epoll_create1(0);
  const int outer = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN | EPOLLET));
  ASSERT_TRUE(watch(os, inner, pipe.read_end, 0));
  ASSERT_TRUE(os.write(pipe.write_end, "x", 1));
  EXPECT_EQ(ready(os, outer), Ready{}) << "data is EPOLLIN, which the item did not ask for";
  EXPECT_EQ(poll_in(os, inner), 0);
  ASSERT_TRUE(os.close(pipe.write_end));
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}}));
  EXPECT_EQ(ready(os, inner), (Ready{{pipe.read_end, EPOLLHUP}}));
}

TEST(FakeEpoll, NestedEdgeTravelsThroughEveryLevel) {
  FakeSyscalls os;
  auto pipe = *os.pipe2(O_NONBLOCK);
  ASSERT_TRUE(os.close(pipe.write_end));
  const int a = *os.epoll_create1(0);
  const int b = *os.epoll_create1(0);
  const int c = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, c, b, EPOLLIN | EPOLLET));
  ASSERT_TRUE(watch(os, b, a, EPOLLIN | EPOLLET));
  ASSERT_TRUE(watch(os, a, pipe.read_end, 0));
  EXPECT_EQ(ready(os, c), (Ready{{b, EPOLLIN}}));
  EXPECT_EQ(ready(os, b), (Ready{{a, EPOLLIN}}));
  EXPECT_EQ(ready(os, a), (Ready{{pipe.read_end, EPOLLHUP}}));
}

TEST(FakeEpoll, PollingAnEpollDropsTheQueuedItemsThatAreNoLongerReady) {
  FakeSyscalls os;
  const int efd = *os.eventfd(0, EFD_NONBLOCK);
  const int inner = *os.epoll_create1(0);
  const int outer = *os.epoll_create1(0);
  ASSERT_TRUE(watch(os, inner, efd, EPOLLIN));
  ASSERT_TRUE(watch(os, outer, inner, EPOLLIN | EPOLLET));
  add_counter(os, efd, 0);  // queued by the wake-up, yet the counter is still 0
  EXPECT_EQ(poll_in(os, inner), 0) << "and the poll took it off the ready list";
  EXPECT_EQ(ready(os, outer), Ready{}) << "an edge, but the inner epoll has nothing ready";
  ASSERT_TRUE(watch(os, inner, efd, EPOLLOUT, EPOLL_CTL_MOD));
  EXPECT_EQ(ready(os, outer), (Ready{{inner, EPOLLIN}})) << "not queued, so MOD queues it anew";
}

// ---- poll -----------------------------------------------------------------------------------

TEST(FakePoll, ReportsReadinessHangupAndInvalidDescriptors) {
  FakeSyscalls os;
  os.write_file("/tmp/x", "");
  auto pipe = *os.pipe2(O_NONBLOCK);
  const int file = *os.open("/tmp/x", O_RDONLY, 0);
  ASSERT_TRUE(os.write(pipe.write_end, "x", 1));
  struct pollfd fds[4] = {
      {pipe.read_end, POLLIN, 0}, {file, POLLIN | POLLOUT, 0}, {77, POLLIN, 0}, {-1, POLLIN, 0}};
  EXPECT_EQ(*os.poll(fds, 4, 0), 3);
  EXPECT_EQ(fds[0].revents, POLLIN);
  EXPECT_EQ(fds[1].revents, POLLIN | POLLOUT) << "regular files are always ready";
  EXPECT_EQ(fds[2].revents, POLLNVAL);
  EXPECT_EQ(fds[3].revents, 0);
}

TEST(FakePoll, TimeoutAdvancesTheClockAndInfiniteWouldBlock) {
  FakeSyscalls os;
  auto pipe = *os.pipe2(O_NONBLOCK);
  struct pollfd fd {
    pipe.read_end, POLLIN, 0
  };
  const auto before = os.clock().monotonic();
  EXPECT_EQ(*os.poll(&fd, 1, 40), 0);
  EXPECT_EQ(os.clock().monotonic() - before, milliseconds(40));
  EXPECT_EQ(os.poll(&fd, 1, -1).error().code, EDEADLK);
}

}  // namespace
}  // namespace daemonkit::fake
