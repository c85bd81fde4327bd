// Pipes in the fake kernel: EOF, EPIPE with SIGPIPE, PIPE_BUF atomicity, O_NONBLOCK, and the
// would-block policy that keeps tests from hanging.
#include <limits.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::HasSubstr;
using testing_support::ends;

TEST(FakePipe, DeliversBytesInOrder) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  ASSERT_EQ(*os.write(fds.write_end, "hello ", 6), 6u);
  ASSERT_EQ(*os.write(fds.write_end, "world", 5), 5u);
  char buf[4];
  ASSERT_EQ(*os.read(fds.read_end, buf, sizeof buf), 4u);
  EXPECT_EQ(std::string(buf, 4), "hell");
  ASSERT_TRUE(os.close(fds.write_end));
  EXPECT_EQ(testing_support::read_all(os, fds.read_end), "o world");
}

TEST(FakePipe, ReadReturnsEofOnceEveryWriterIsClosed) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  const int extra = *os.dup(fds.write_end);
  ASSERT_TRUE(os.close(fds.write_end));
  char c;
  EXPECT_EQ(os.read(fds.read_end, &c, 1).error().code, EDEADLK) << "a writer is still open";
  ASSERT_TRUE(os.close(extra));
  EXPECT_EQ(*os.read(fds.read_end, &c, 1), 0u);
}

TEST(FakePipe, BlockingReadOfAnEmptyPipeFailsWithEdeadlkAndSaysWhy) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  char c;
  auto result = os.read(fds.read_end, &c, 1);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, EDEADLK);
  const std::string note = os.transcript().back().note;
  EXPECT_THAT(note, HasSubstr("would block forever"));
  EXPECT_THAT(note, HasSubstr("still open in pid(s) " + std::to_string(os.getpid())));
}

TEST(FakePipe, BlockingReadAbortsUnderTheAbortPolicy) {
  FakeSyscalls os;
  os.set_would_block(WouldBlock::kAbort);
  auto fds = *os.pipe2(0);
  char c;
  EXPECT_DEATH(static_cast<void>(os.read(fds.read_end, &c, 1)), "is empty and its write end");
}

TEST(FakePipe, NonblockingReadOfAnEmptyPipeIsEagain) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  char c;
  EXPECT_EQ(os.read(fds.read_end, &c, 1).error().code, EAGAIN);
}

TEST(FakePipe, WriteWithoutReadersIsEpipeAndSigpipeEndsTheWriter) {
  FakeSyscalls os;
  const pid_t self = os.getpid();
  auto fds = *os.pipe2(0);
  ASSERT_TRUE(os.close(fds.read_end));
  const ProcessEnded ended = ends([&] { static_cast<void>(os.write(fds.write_end, "x", 1)); });
  EXPECT_TRUE(ended.killed());
  EXPECT_EQ(ended.signal(), SIGPIPE);
  EXPECT_EQ(os.transcript().back().error, EPIPE);
  EXPECT_EQ(os.process(self).state, ProcessState::kZombie);
}

TEST(FakePipe, WriteWithoutReadersIsOnlyEpipeWhenSigpipeIsIgnored) {
  FakeSyscalls os;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
  auto fds = *os.pipe2(0);
  ASSERT_TRUE(os.close(fds.read_end));
  EXPECT_EQ(os.write(fds.write_end, "x", 1).error().code, EPIPE);
  EXPECT_TRUE(os.process(os.getpid()).alive());
  EXPECT_EQ(os.process(os.getpid()).signals.at(0).action, SignalAction::kIgnored);
}

TEST(FakePipe, WriteWithoutReadersLeavesSigpipePendingWhenBlocked) {
  FakeSyscalls os;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  ASSERT_TRUE(os.sigprocmask(SIG_BLOCK, &set, nullptr));
  auto fds = *os.pipe2(0);
  ASSERT_TRUE(os.close(fds.read_end));
  EXPECT_EQ(os.write(fds.write_end, "x", 1).error().code, EPIPE);
  EXPECT_THAT(os.process(os.getpid()).pending_signals, ::testing::ElementsAre(SIGPIPE));
}

TEST(FakePipe, SmallWritesAreAllOrNothing) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  const std::string fill(65536 - 100, 'a');
  ASSERT_EQ(*os.write(fds.write_end, fill.data(), fill.size()), fill.size());
  const std::string atomic(PIPE_BUF, 'b');
  EXPECT_EQ(os.write(fds.write_end, atomic.data(), atomic.size()).error().code, EAGAIN);
  EXPECT_EQ(*os.write(fds.write_end, atomic.data(), 100), 100u);
  EXPECT_EQ(os.write(fds.write_end, "c", 1).error().code, EAGAIN);
}

TEST(FakePipe, WritevIsOneWriteOfTheConcatenation) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  char a[] = "hel";
  char b[] = "lo";
  const struct iovec iov[] = {{a, 3}, {nullptr, 0}, {b, 2}};
  ASSERT_EQ(*os.writev(fds.write_end, iov), 5u);
  EXPECT_EQ(os.transcript().back().call_text(),
            "writev(" + std::to_string(fds.write_end) + ", \"hello\", 3 iovecs, 5)");
  char buf[8];
  ASSERT_EQ(*os.read(fds.read_end, buf, sizeof buf), 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  // PIPE_BUF atomicity counts the whole vector, not each buffer.
  const std::string fill(65536 - 100, 'a');
  ASSERT_EQ(*os.write(fds.write_end, fill.data(), fill.size()), fill.size());
  std::string half(PIPE_BUF / 2, 'b');
  const struct iovec atomic[] = {{half.data(), half.size()}, {half.data(), half.size()}};
  EXPECT_EQ(os.writev(fds.write_end, atomic).error().code, EAGAIN);
  // A large vector is written in part when the pipe fills, as write would.
  auto big = *os.pipe2(O_NONBLOCK);
  std::string chunk(40000, 'c');
  const struct iovec two[] = {{chunk.data(), chunk.size()}, {chunk.data(), chunk.size()}};
  EXPECT_EQ(*os.writev(big.write_end, two), 65536u);
}

TEST(FakePipe, WritevErrorsComeInLinuxsOrder) {
  FakeSyscalls os;
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
  auto fds = *os.pipe2(O_NONBLOCK);
  char x = 'x';
  const std::vector<struct iovec> many(IOV_MAX + 1, iovec{&x, 1});
  EXPECT_EQ(os.writev(fds.write_end, many).error().code, EINVAL);
  EXPECT_EQ(os.writev(fds.read_end, many).error().code, EBADF) << "the descriptor comes first";
  EXPECT_EQ(os.writev(99, many).error().code, EBADF);
  const struct iovec bad[] = {{nullptr, 3}};
  EXPECT_EQ(os.writev(fds.write_end, bad).error().code, EFAULT);
  ASSERT_TRUE(os.close(fds.read_end));
  const struct iovec none[] = {{nullptr, 0}};
  EXPECT_EQ(*os.writev(fds.write_end, none), 0u) << "nothing to write: no EPIPE";
  const struct iovec one[] = {{&x, 1}};
  EXPECT_EQ(os.writev(fds.write_end, one).error().code, EPIPE);
  EXPECT_THAT(os.transcript(), CallFailedWith("writev", EPIPE));
  EXPECT_EQ(os.process(os.getpid()).signals.at(0).signal, SIGPIPE);
}

// Measured on Linux 6.x: 16 writes of 4000 bytes take one page each, the 17th does not fit,
// and a 10-byte write still merges into the last page.
TEST(FakePipe, CapacityIsSixteenPagesFilledAsLinuxFillsThem) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  const std::string chunk(4000, 'a');
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(*os.write(fds.write_end, chunk.data(), chunk.size()), 4000u);
  }
  EXPECT_EQ(os.write(fds.write_end, chunk.data(), chunk.size()).error().code, EAGAIN);
  EXPECT_EQ(*os.write(fds.write_end, "0123456789", 10), 10u);
  // Reading one page's worth frees a buffer for the next write.
  std::string buf(4000, '\0');
  ASSERT_EQ(*os.read(fds.read_end, buf.data(), buf.size()), 4000u);
  EXPECT_EQ(*os.write(fds.write_end, chunk.data(), chunk.size()), 4000u);
}

TEST(FakePipe, ReadsCrossPageBoundariesInOrder) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  std::string data;
  for (int i = 0; i < 10000; ++i) data += static_cast<char>('a' + i % 26);
  ASSERT_EQ(*os.write(fds.write_end, data.data(), data.size()), data.size());
  ASSERT_EQ(*os.write(fds.write_end, "tail", 4), 4u);
  ASSERT_TRUE(os.close(fds.write_end));
  EXPECT_EQ(testing_support::read_all(os, fds.read_end), data + "tail");
}

TEST(FakePipe, LargeWritesArePartialWhenThePipeFillsUp) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  const std::string big(70000, 'x');
  EXPECT_EQ(*os.write(fds.write_end, big.data(), big.size()), 65536u);
}

TEST(FakePipe, BlockingWriteToAFullPipeFailsWithEdeadlk) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  const std::string big(65536, 'x');
  ASSERT_EQ(*os.write(fds.write_end, big.data(), big.size()), 65536u);
  EXPECT_EQ(os.write(fds.write_end, "y", 1).error().code, EDEADLK);
}

TEST(FakePipe, ReadAndWriteNeedTheRightEnd) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  char c;
  EXPECT_EQ(os.read(fds.write_end, &c, 1).error().code, EBADF);
  EXPECT_EQ(os.write(fds.read_end, "x", 1).error().code, EBADF);
  EXPECT_EQ(os.pipe2(O_APPEND).error().code, EINVAL);
}

TEST(FakePipe, FstatReportsAFifoAndFsyncIsEinval) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  auto st = *os.fstat(fds.read_end);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_ino, os.fstat(fds.write_end)->st_ino);
  EXPECT_EQ(os.fsync(fds.write_end).error().code, EINVAL);
  EXPECT_EQ(os.ftruncate(fds.write_end, 0).error().code, EINVAL);
}

TEST(FakePipe, DescribeFdNamesTheEndAndCloexec) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_CLOEXEC);
  EXPECT_THAT(os.describe_fd(os.getpid(), fds.read_end), HasSubstr(":r (cloexec)"));
  EXPECT_THAT(os.describe_fd(os.getpid(), fds.write_end), HasSubstr(":w (cloexec)"));
  EXPECT_EQ(os.describe_fd(os.getpid(), 55), "closed");
}

TEST(FakePipe, AnEmptyWriteSucceedsEvenWithoutReaders) {
  FakeSyscalls os;
  auto fds = *os.pipe2(0);
  ASSERT_TRUE(os.close(fds.read_end));
  EXPECT_EQ(*os.write(fds.write_end, "", 0), 0u);
  EXPECT_THAT(os.process(os.getpid()).signals, ::testing::IsEmpty()) << "no SIGPIPE either";
}

// Linux's pipe holds 16 pages; a write merges only its unaligned part into the last page.
TEST(FakePipe, CapacityIsCountedInPagesNotBytes) {
  FakeSyscalls os;
  auto fds = *os.pipe2(O_NONBLOCK);
  const std::string big(65536, 'b');
  ASSERT_EQ(*os.write(fds.write_end, "12345", 5), 5u);
  EXPECT_EQ(*os.write(fds.write_end, big.data(), big.size()), 61440u)
      << "the first page keeps its 4091 free bytes to itself";
  EXPECT_EQ(os.write(fds.write_end, "x", 1).error().code, EAGAIN);
  char head[5];
  ASSERT_EQ(*os.read(fds.read_end, head, sizeof head), 5u);
  EXPECT_EQ(*os.write(fds.write_end, big.data(), 100), 100u) << "a freed page";
  EXPECT_EQ(*os.write(fds.write_end, big.data(), 3996), 3996u) << "merged into that page";
  EXPECT_EQ(os.write(fds.write_end, "x", 1).error().code, EAGAIN);
  EXPECT_EQ(testing_support::read_all(os, fds.read_end).size(), 65536u);
}

// ---- Named pipes (FIFOs): fifo_open's rules ------------------------------------------------

TEST(FakeFifo, WriteOnlyOpenWithoutAReaderIsEnxioUnderNonblock) {
  FakeSyscalls os;
  os.make_fifo("/run/log.fifo");
  auto opened = os.open("/run/log.fifo", O_WRONLY | O_NONBLOCK, 0);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ENXIO);
}

TEST(FakeFifo, BlockingOpenWithoutThePeerWouldBlockForeverAndSaysWhy) {
  FakeSyscalls os;
  os.make_fifo("/run/log.fifo");
  auto writer = os.open("/run/log.fifo", O_WRONLY, 0);
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error().code, EDEADLK);
  EXPECT_THAT(os.transcript().back().note, HasSubstr("has no reader"));
  auto reader = os.open("/run/log.fifo", O_RDONLY, 0);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, EDEADLK);
  EXPECT_THAT(os.transcript().back().note, HasSubstr("has no writer"));
}

TEST(FakeFifo, AWriterReachesAReaderOpenedBeforeIt) {
  FakeSyscalls os;
  os.make_fifo("/run/log.fifo");
  const int reader = *os.open("/run/log.fifo", O_RDONLY | O_NONBLOCK, 0);
  const int writer = *os.open("/run/log.fifo", O_WRONLY | O_APPEND, 0);
  EXPECT_EQ(os.describe_fd(os.getpid(), writer).substr(0, 5), "pipe:");
  ASSERT_EQ(*os.write(writer, "started\n", 8), 8u);
  ASSERT_TRUE(os.close(writer));
  EXPECT_EQ(testing_support::read_all(os, reader), "started\n");
}

TEST(FakeFifo, ReadWriteOpenNeverWaitsAndCountsAsBothEnds) {
  FakeSyscalls os;
  os.make_fifo("/run/log.fifo");
  const int both = *os.open("/run/log.fifo", O_RDWR, 0);
  // Its reader lets a non-blocking writer in; its writer keeps a reader from seeing EOF.
  const int writer = *os.open("/run/log.fifo", O_WRONLY | O_NONBLOCK, 0);
  ASSERT_EQ(*os.write(writer, "x", 1), 1u);
  char c;
  ASSERT_EQ(*os.read(both, &c, 1), 1u);
  ASSERT_TRUE(os.close(writer));
  const std::string self = std::to_string(os.getpid());
  EXPECT_EQ(os.read(both, &c, 1).error().code, EDEADLK) << "its own write end is open";
  EXPECT_THAT(os.transcript().back().note,
              HasSubstr(":rw is empty and its write end is still open in pid(s) " + self));
  ASSERT_TRUE(os.close(both));
  // Every end closed: the next opener finds no reader again.
  EXPECT_EQ(os.open("/run/log.fifo", O_WRONLY | O_NONBLOCK, 0).error().code, ENXIO);
}

TEST(FakeFifo, IsAFifoToStat) {
  FakeSyscalls os;
  os.make_fifo("/run/log.fifo", 0620, 7, 8);
  auto st = os.stat_path("/run/log.fifo");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISFIFO(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0620u);
  EXPECT_EQ(st->st_uid, 7u);
}

}  // namespace
}  // namespace daemonkit::fake
