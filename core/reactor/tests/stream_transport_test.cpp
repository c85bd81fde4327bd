// The stream transport on the fake kernel, driven by Reactor::iterate with the manual clock: no
// threads, no sleeps. Pipes (a read end, a write end) and AF_UNIX stream sockets made with
// socket/bind/listen/connect/accept4; every loss path by fault injection; owners that destroy,
// lose, abort or write from inside each callback; and a property over random interleavings.
#include "daemonkit/core/reactor/stream_transport.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "daemonkit/fake/transcript_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::IsEmpty;

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
}

// An EPOLL_CTL_DEL in the transcript (epoll_ctl's arguments: epfd, op, fd, event).
auto AnEpollDelete() {
  return fake::HasCallWithArgs(
      "epoll_ctl", ElementsAre(testing::_, std::to_string(EPOLL_CTL_DEL), testing::_, testing::_));
}

// Records what a transport tells its handler; each hook lets a test act from inside a callback.
struct Recorder : StreamHandler {
  std::string data;
  std::vector<std::string> events;
  std::optional<LossReason> reason;
  int losses = 0;
  bool half_close = false;
  std::function<void()> on_data, on_eof, on_write_eof, on_lost;

  void data_received(std::span<const std::byte> bytes) override {
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    events.emplace_back("data");
    if (on_data) on_data();
  }
  bool read_eof() override {
    events.emplace_back("read_eof");
    if (on_eof) on_eof();
    return half_close;
  }
  void write_eof() override {
    events.emplace_back("write_eof");
    if (on_write_eof) on_write_eof();
  }
  void connection_lost(const LossReason& r) override {
    ++losses;
    reason = r;
    events.emplace_back("lost");
    if (on_lost) on_lost();
  }
};

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  std::function<void()> on_resume, on_pause, on_stop;
  void pause_producing() override {
    ++pauses;
    if (on_pause) on_pause();
  }
  void resume_producing() override {
    ++resumes;
    if (on_resume) on_resume();
  }
  void stop_producing() override {
    ++stops;
    if (on_stop) on_stop();
  }
};

struct Pair {
  int mine = -1;
  int peer = -1;
};

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;

  World() {
    // A write to a reader that is gone must be an EPIPE the transport reports, not a SIGPIPE
    // that ends the process (daemons ignore it, as Python does for Twisted).
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    EXPECT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  // Turns of the loop: due calls (deferred losses), then ready descriptors.
  void spin(int turns = 6) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  std::unique_ptr<StreamTransport> open(int fd, StreamHandler& handler,
                                        StreamOptions options = {}) {
    auto t = StreamTransport::open(*reactor, os, OwnedFd(os, fd), handler, options);
    EXPECT_TRUE(t) << (t ? "" : to_string(t.error()));
    return t ? std::move(*t) : nullptr;
  }

  // A pipe: `mine` is the end given to a transport of `direction`, `peer` the other.
  Pair pipe(StreamDirection direction) {
    auto p = *os.pipe2(O_CLOEXEC | O_NONBLOCK);
    return direction == StreamDirection::kReadOnly ? Pair{p.read_end, p.write_end}
                                                   : Pair{p.write_end, p.read_end};
  }

  // A connected AF_UNIX stream pair, the listener closed again.
  Pair unix_pair() {
    sockaddr_un at{};
    at.sun_family = AF_UNIX;
    std::memcpy(at.sun_path, "\0stream", 7);
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 7);
    const int listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_TRUE(os.bind(listener, reinterpret_cast<sockaddr*>(&at), len));
    EXPECT_TRUE(os.listen(listener, 1));
    const int client = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    EXPECT_TRUE(os.connect(client, reinterpret_cast<sockaddr*>(&at), len));
    const int server = *os.accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    EXPECT_TRUE(os.close(listener));
    return Pair{client, server};
  }

  // Everything the peer can read now (stops at EAGAIN or EOF).
  std::string drain(int fd, std::size_t most = SIZE_MAX) {
    std::string out;
    char buf[65536];
    while (out.size() < most) {
      auto n = os.read(fd, buf, std::min(sizeof buf, most - out.size()));
      if (!n || *n == 0) break;
      out.append(buf, *n);
    }
    return out;
  }

  // Fills a pipe or socket until writes say EAGAIN; returns how much went in.
  std::size_t fill(int fd) {
    const std::string chunk(4096, 'f');
    std::size_t total = 0;
    while (auto n = os.write(fd, chunk.data(), chunk.size())) total += *n;
    return total;
  }

  bool is_open(int fd) {
    const auto fds = os.open_fds(os.getpid());
    return std::find(fds.begin(), fds.end(), fd) != fds.end();
  }
};

std::string text(std::size_t n, char c) { return std::string(n, c); }

// ---- Reading --------------------------------------------------------------------------------

TEST(StreamTransport, ReadsInOrderThenEofLosesCleanlyAndClosesTheDescriptor) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kReadOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kReadOnly});
  ASSERT_TRUE(w.os.write(p.peer, "hello ", 6));
  w.spin(1);
  ASSERT_TRUE(w.os.write(p.peer, "world", 5));
  ASSERT_TRUE(w.os.close(p.peer));
  w.spin();
  EXPECT_EQ(r.data, "hello world");
  EXPECT_EQ(r.events.back(), "lost");
  EXPECT_EQ(r.losses, 1);
  EXPECT_EQ(*r.reason, LossReason::done());
  EXPECT_EQ(to_string(*r.reason), "Connection was closed cleanly.");
  EXPECT_FALSE(t->connected());
  EXPECT_EQ(t->fd(), -1);
  EXPECT_THAT(w.os.open_fds(w.os.getpid()),
              ElementsAre(w.reactor->epoll_fd(), w.reactor->waker_fd()));
}

TEST(StreamTransport, ReadsAreBoundedPerWakeup) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kReadOnly);
  auto t = w.open(p.mine, r,
                  {.direction = StreamDirection::kReadOnly, .read_size = 4, .reads_per_wakeup = 2});
  ASSERT_TRUE(w.os.write(p.peer, "0123456789abcdefghij", 20));
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(r.data, "01234567") << "two reads of four bytes, then the loop moves on";
  w.spin(3);
  EXPECT_EQ(r.data, "0123456789abcdefghij");
  EXPECT_EQ(r.losses, 0);
}

TEST(StreamTransport, PauseProducingStopsReadingAndResumeStartsAgain) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kReadOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kReadOnly});
  t->pause_producing();
  ASSERT_TRUE(w.os.write(p.peer, "later", 5));
  w.spin();
  EXPECT_EQ(r.data, "");
  t->resume_producing();
  w.spin();
  EXPECT_EQ(r.data, "later");
}

TEST(StreamTransport, AReadOnlyTransportRefusesWritesClearly) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kReadOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kReadOnly});
  EXPECT_THROW(t->write("x"), std::logic_error);
  EXPECT_THROW(t->lose_write_connection(), std::logic_error);
  try {
    t->write("x");
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), testing::HasSubstr("write on a read-only descriptor"));
  }
}

// ---- Writing --------------------------------------------------------------------------------

TEST(StreamTransport, WriteGoesOutAtOnceWhenNothingIsQueued) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  t->write("now");
  EXPECT_EQ(t->buffered(), 0u);
  EXPECT_EQ(w.drain(p.peer), "now");
  EXPECT_THAT(w.reactor->writers(), IsEmpty()) << "nothing queued: no writable events wanted";
}

TEST(StreamTransport, QueuedWritesGoOutInOneWritevPerWritableEvent) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  const std::size_t full = w.fill(p.mine);
  t->write("a");
  t->write(std::string("bb"));
  std::vector<std::byte> owned(3, std::byte{'c'});
  t->write(std::move(owned));
  const std::string d = "d";
  const std::string e = "ee";
  const std::span<const std::byte> seq[] = {std::as_bytes(std::span(d)),
                                            std::as_bytes(std::span(e))};
  t->write_sequence(seq);
  EXPECT_EQ(t->buffered(), 9u);
  EXPECT_EQ(w.drain(p.peer).size(), full);
  const std::size_t before = calls_of(w.os, "writev");
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(calls_of(w.os, "writev"), before + 1) << "one writev for five queued buffers";
  EXPECT_EQ(w.drain(p.peer), "abbcccdee");
  EXPECT_EQ(t->buffered(), 0u);
  EXPECT_THAT(w.reactor->writers(), IsEmpty());
}

TEST(StreamTransport, OneBufferGoesOutByWriteWithoutAnIovecArray) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  w.os.clear_transcript();
  t->write("one");
  const std::string two[] = {"tw", "o"};
  const std::span<const std::byte> seq[] = {std::as_bytes(std::span(two[0])),
                                            std::as_bytes(std::span(two[1]))};
  t->write_sequence(seq);
  EXPECT_EQ(calls_of(w.os, "write"), 1U) << "the lone buffer";
  EXPECT_EQ(calls_of(w.os, "writev"), 1U) << "the sequence of two";
  EXPECT_EQ(w.drain(p.peer), "onetwo");
}

TEST(StreamTransport, AFailingWritevOfSeveralBuffersEndsTheConnectionWithItsName) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  w.os.fail_nth("writev", 1, ECONNRESET);
  const std::string two[] = {"a", "b"};
  const std::span<const std::byte> seq[] = {std::as_bytes(std::span(two[0])),
                                            std::as_bytes(std::span(two[1]))};
  t->write_sequence(seq);
  w.spin();
  ASSERT_EQ(r.losses, 1);
  EXPECT_EQ(to_string(*r.reason), "writev: Connection reset by peer (ECONNRESET)");
}

TEST(StreamTransport, AnOwnedBufferIsSentFromWhereItIsAndAPartialWriteKeepsTheRest) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  std::string big = text(100000, 'x');
  big[99999] = 'y';
  t->write(std::move(big));
  EXPECT_EQ(t->buffered(), 100000u - 65536u) << "the pipe took 64 KiB at once";
  std::string got = w.drain(p.peer);
  w.spin(1);
  got += w.drain(p.peer);
  EXPECT_EQ(got.size(), 100000u);
  EXPECT_EQ(got.back(), 'y');
}

TEST(StreamTransport, LoseConnectionSendsEverythingThenLosesCleanly) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  const std::size_t full = w.fill(p.mine);
  t->write("tail");
  t->lose_connection();
  t->write("+more");  // still sent: the close waits for the buffer (Twisted's rule)
  w.spin();
  EXPECT_EQ(r.losses, 0) << "the reader has not made room yet";
  std::string got = w.drain(p.peer);
  w.spin();
  got += w.drain(p.peer);
  EXPECT_EQ(got.size(), full + 9);
  EXPECT_EQ(got.substr(full), "tail+more");
  EXPECT_EQ(*r.reason, LossReason::done());
  auto eof = w.os.read(p.peer, nullptr, 0);
  char c;
  EXPECT_EQ(*w.os.read(p.peer, &c, 1), 0u) << "EOF: the write end is closed";
  t->write("dropped");
  EXPECT_EQ(r.losses, 1);
  (void)eof;
}

// With nothing queued there is nothing to wait for: a peer whose receive buffer is full and
// who never reads would otherwise never make the socket writable, and the close never come.
TEST(StreamTransport, LoseConnectionWithNothingQueuedClosesOnTheNextTurnEvenIfNeverWritable) {
  World w;
  Recorder r;
  const auto p = w.unix_pair();
  auto t = w.open(p.mine, r);
  (void)w.fill(p.mine);  // the peer never reads: the socket never becomes writable again
  ASSERT_EQ(t->buffered(), 0u);
  t->lose_connection();
  EXPECT_EQ(r.losses, 0) << "never from inside lose_connection";
  w.spin(1);
  EXPECT_EQ(r.losses, 1);
  ASSERT_TRUE(r.reason);
  EXPECT_EQ(*r.reason, LossReason::done());
  EXPECT_FALSE(w.is_open(p.mine));
}

// The same once a producer that held the close back is unregistered with nothing queued.
TEST(StreamTransport, UnregisteringTheProducerAClosingTransportWaitedForClosesAtOnce) {
  World w;
  Recorder r;
  CountingProducer producer;
  const auto p = w.unix_pair();
  auto t = w.open(p.mine, r);
  (void)w.fill(p.mine);
  ASSERT_TRUE(t->register_producer(producer, false));
  t->lose_connection();
  w.spin(2);
  EXPECT_EQ(r.losses, 0) << "a pull producer holds the close";
  t->unregister_producer();
  w.spin(1);
  EXPECT_EQ(r.losses, 1);
  EXPECT_FALSE(w.is_open(p.mine));
  EXPECT_EQ(producer.stops, 0) << "unregistered before the loss";
}

TEST(StreamTransport, AbortDuringAWriteDropsTheBufferClosesNowAndReportsOnTheNextTurn) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  const std::size_t full = w.fill(p.mine);
  t->write("never sent");
  t->abort_connection();
  EXPECT_FALSE(w.is_open(p.mine)) << "closed at once";
  EXPECT_EQ(r.losses, 0) << "never from inside abort_connection";
  t->write("dropped");
  EXPECT_EQ(t->buffered(), 0u);
  w.spin();
  EXPECT_EQ(*r.reason, LossReason::aborted());
  EXPECT_EQ(to_string(*r.reason), "Connection was aborted.");
  EXPECT_EQ(w.drain(p.peer).size(), full);
  EXPECT_EQ(r.losses, 1);
}

// The close takes the socket out of the epoll set, so the transport makes no EPOLL_CTL_DEL
// (Reactor::remove_before_close). A forked child that still holds the socket keeps its
// registration alive past the close: the loop drops it at its first event instead of being
// woken by it for as long as the child lives.
TEST(StreamTransport, ItsCloseEndsTheRegistrationEvenWhileAForkedChildHoldsTheSocket) {
  World w;
  Recorder r;
  const auto pair = w.unix_pair();
  auto t = w.open(pair.mine, r);
  w.os.script_fork(fake::ForkAs::kParent);
  ASSERT_GT(*w.os.fork(), 0);
  t->abort_connection();
  w.spin(2);
  EXPECT_EQ(r.losses, 1);
  EXPECT_THAT(w.os.transcript(), testing::Not(AnEpollDelete()));
  ASSERT_TRUE(w.os.write(pair.peer, "x", 1));  // the child's copy is readable now
  w.spin(2);
  EXPECT_EQ(r.losses, 1);
  EXPECT_TRUE(r.data.empty());
  const auto start = w.os.clock().monotonic();
  ASSERT_TRUE(w.reactor->iterate(std::chrono::milliseconds(10)));
  EXPECT_EQ(w.os.clock().monotonic() - start, std::chrono::milliseconds(10))
      << "the loop sleeps: nothing is reported for the socket it closed";
}

TEST(StreamTransport, AReaderLeavingWhileBytesWaitIsALossWithWritesEpipe) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  w.fill(p.mine);
  t->write("stuck");
  ASSERT_TRUE(w.os.close(p.peer));
  w.spin();
  ASSERT_EQ(r.losses, 1);
  EXPECT_EQ(to_string(*r.reason), "write: Broken pipe (EPIPE)");
  EXPECT_FALSE(w.is_open(p.mine));
}

TEST(StreamTransport, AWriteOnlyTransportHearsItsReaderLeaveWithNothingToWrite) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  w.spin();
  EXPECT_EQ(r.losses, 0) << "an idle write end with its reader present reports nothing";
  ASSERT_TRUE(w.os.close(p.peer));
  w.spin();
  ASSERT_EQ(r.losses, 1);
  EXPECT_EQ(r.reason->error.code, EPIPE);
  EXPECT_EQ(to_string(*r.reason), "epoll_wait(EPOLLERR): Broken pipe (EPIPE)");
}

TEST(StreamTransport, EagainAndEintrAreNotLosses) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  w.os.fail_nth("write", 1, EINTR);
  w.os.fail_nth("write", 2, EAGAIN);
  t->write("x");  // EINTR is retried at once; the EAGAIN leaves it queued
  EXPECT_EQ(t->buffered(), 1u);
  w.spin();
  EXPECT_EQ(w.drain(p.peer), "x");
  EXPECT_EQ(r.losses, 0);
}

// ---- Half-close over AF_UNIX stream sockets --------------------------------------------------

TEST(StreamTransport, LoseWriteConnectionShutsTheWriteSideAfterTheBufferAndKeepsReading) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  t->write("bye");
  t->lose_write_connection();
  t->write("dropped");
  w.spin();
  EXPECT_THAT(r.events, ElementsAre("write_eof"));
  EXPECT_EQ(w.drain(s.peer), "bye");
  char c;
  EXPECT_EQ(*w.os.read(s.peer, &c, 1), 0u) << "the peer reads EOF";
  ASSERT_TRUE(w.os.write(s.peer, "back", 4));
  w.spin();
  EXPECT_EQ(r.data, "back");
  ASSERT_TRUE(w.os.close(s.peer));
  w.spin();
  EXPECT_THAT(r.events, ElementsAre("write_eof", "data", "lost"))
      << "EOF once the write side is shut ends it without asking";
  EXPECT_EQ(*r.reason, LossReason::done());
}

TEST(StreamTransport, APeersHalfCloseWithTheOptInLeavesTheWriteSideOpen) {
  World w;
  Recorder r;
  r.half_close = true;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  ASSERT_TRUE(w.os.write(s.peer, "question", 8));
  ASSERT_TRUE(w.os.shutdown(s.peer, SHUT_WR));
  w.spin();
  EXPECT_THAT(r.events, ElementsAre("data", "read_eof"));
  t->write("answer");
  w.spin();
  EXPECT_EQ(w.drain(s.peer), "answer");
  t->lose_connection();
  w.spin();
  EXPECT_EQ(*r.reason, LossReason::done());
  char c;
  EXPECT_EQ(*w.os.read(s.peer, &c, 1), 0u);
}

TEST(StreamTransport, APeersHalfCloseWithoutTheOptInLosesCleanly) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  ASSERT_TRUE(w.os.shutdown(s.peer, SHUT_WR));
  w.spin();
  EXPECT_THAT(r.events, ElementsAre("read_eof", "lost"));
  EXPECT_EQ(*r.reason, LossReason::done());
  // The short connection's usual end: its close ends the registration, no EPOLL_CTL_DEL first.
  EXPECT_THAT(w.os.transcript(), testing::Not(AnEpollDelete()));
}

TEST(StreamTransport, EofWithoutTheOptInDropsWhatWasNotSentAsTwistedDoes) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  const std::size_t full = w.fill(s.mine);
  t->write("queued");
  ASSERT_TRUE(w.os.shutdown(s.peer, SHUT_WR));
  w.spin();
  EXPECT_EQ(*r.reason, LossReason::done());
  EXPECT_EQ(w.drain(s.peer).size(), full) << "the queued bytes were dropped with the connection";
}

TEST(StreamTransport, HalfCloseOfADescriptorThatIsNotASocketEndsWithEnotsock) {
  World w;
  Recorder r;
  // A pipe driven as read-write (as a PTY master would be): shutdown says ENOTSOCK.
  auto p = *w.os.pipe2(O_CLOEXEC | O_NONBLOCK);
  auto t = w.open(p.write_end, r);
  t->lose_write_connection();
  w.spin();
  ASSERT_EQ(r.losses, 1);
  EXPECT_EQ(to_string(*r.reason), "shutdown: Socket operation on non-socket (ENOTSOCK)");
}

TEST(StreamTransport, APeerResetIsALossWithReadsErrno) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r);
  t->write("unread by the peer");
  ASSERT_TRUE(w.os.write(s.peer, "x", 1));
  w.spin(1);
  ASSERT_TRUE(w.os.close(s.peer));  // with our bytes unread: a reset
  w.spin();
  ASSERT_EQ(r.losses, 1);
  EXPECT_EQ(to_string(*r.reason), "read: Connection reset by peer (ECONNRESET)");
}

// ---- Producers ------------------------------------------------------------------------------

TEST(StreamTransport, AStreamingProducerPausesAboveHighWaterAndResumesWhenDrained) {
  World w;
  Recorder r;
  const auto s = w.unix_pair();
  auto t = w.open(s.mine, r, {.high_water = 1000});
  CountingProducer producer;
  ASSERT_TRUE(t->register_producer(producer, true));
  w.fill(s.mine);  // a peer that never reads
  t->write(text(1000, 'a'));
  EXPECT_EQ(producer.pauses, 0) << "at the mark, not above it";
  t->write("b");
  EXPECT_EQ(producer.pauses, 1);
  t->write("c");
  EXPECT_EQ(producer.pauses, 1) << "paused once";
  w.spin();
  EXPECT_EQ(producer.resumes, 0) << "the peer still reads nothing";
  w.drain(s.peer);
  w.spin();
  EXPECT_EQ(producer.resumes, 1);
  EXPECT_EQ(t->buffered(), 0u);
  ASSERT_TRUE(w.os.close(s.peer));
  w.spin();
  EXPECT_EQ(producer.stops, 1);
  EXPECT_EQ(r.losses, 1);
}

TEST(StreamTransport, APullProducerIsAskedWhileTheBufferIsEmptyAndACloseWaitsForIt) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  CountingProducer producer;
  int left = 3;
  w.fill(p.mine);
  producer.on_resume = [&] {
    if (left-- > 0) t->write("chunk;");
  };
  ASSERT_TRUE(t->register_producer(producer, false));
  EXPECT_EQ(producer.resumes, 1) << "asked at once";
  t->lose_connection();
  std::string got;
  for (int i = 0; i < 6; ++i) {
    got += w.drain(p.peer);
    w.spin(1);
  }
  EXPECT_EQ(got.substr(got.size() - 18), "chunk;chunk;chunk;");
  EXPECT_EQ(r.losses, 0) << "the close waits for unregister_producer";
  t->unregister_producer();
  w.spin();
  EXPECT_EQ(*r.reason, LossReason::done());
  EXPECT_EQ(producer.stops, 0) << "unregistered before the loss";
}

TEST(StreamTransport, APullProducerIsAskedAgainEvenWhenTheKernelTookEverythingAtOnce) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  CountingProducer producer;
  int left = 3;
  producer.on_resume = [&] {
    if (left-- > 0) t->write("chunk;");
  };
  ASSERT_TRUE(t->register_producer(producer, false));
  w.spin();
  EXPECT_EQ(w.drain(p.peer), "chunk;chunk;chunk;");
  EXPECT_EQ(producer.resumes, 4) << "asked after each drained write, until it wrote nothing";
  EXPECT_THAT(w.reactor->writers(), IsEmpty()) << "a producer that wrote nothing is not polled";
}

TEST(StreamTransport, APullProducersWriteGoesToTheKernelAtOnceUnqueued) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  CountingProducer producer;
  int left = 2;
  producer.on_resume = [&] {
    if (left-- > 0) t->write("chunk;");
  };
  ASSERT_TRUE(t->register_producer(producer, false));
  // No turn of the loop yet: the write was not held back in the buffer (a copy) for one.
  EXPECT_EQ(t->buffered(), 0u);
  EXPECT_EQ(w.drain(p.peer), "chunk;");
  EXPECT_EQ(producer.resumes, 1);
  w.spin(1);
  EXPECT_EQ(producer.resumes, 2) << "asked again on the next writable event";
  EXPECT_EQ(w.drain(p.peer), "chunk;");
}

TEST(StreamTransport, APullProducerThatKeepsWritingKeepsTheWriterWatchedWithoutEpollCtl) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  CountingProducer producer;
  int left = 20;
  producer.on_resume = [&] {
    if (left-- > 0) t->write("chunk;");
  };
  ASSERT_TRUE(t->register_producer(producer, false));
  const std::size_t before = calls_of(w.os, "epoll_ctl");
  w.spin(30);
  EXPECT_EQ(w.drain(p.peer), [] {
    std::string all;
    for (int i = 0; i < 20; ++i) all += "chunk;";
    return all;
  }());
  // One to drop the writer once the producer wrote nothing; none between the twenty chunks.
  EXPECT_EQ(calls_of(w.os, "epoll_ctl") - before, 1u);
}

TEST(StreamTransport, ProducerRulesRegisteringTwiceAndAfterTheLoss) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kWriteOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kWriteOnly});
  CountingProducer a, b;
  std::vector<std::string> order;
  a.on_stop = [&] { order.emplace_back("stop_producing"); };
  r.on_lost = [&] { order.emplace_back("connection_lost"); };
  ASSERT_TRUE(t->register_producer(a, true));
  EXPECT_THAT(t->register_producer(b, true), fake::FailsWith(ReactorErrc::kAlreadyRegistered));
  t->abort_connection();
  w.spin();
  EXPECT_THAT(order, ElementsAre("stop_producing", "connection_lost"));
  ASSERT_TRUE(t->register_producer(b, true));
  EXPECT_EQ(b.stops, 1) << "a lost transport stops a new producer at once";
}

// ---- Failures by fault injection --------------------------------------------------------------

struct Fault {
  const char* call;
  int error;
  const char* text;
};

TEST(StreamTransport, EveryFailingCallEndsTheConnectionOnceWithItsName) {
  const Fault faults[] = {
      {"read", EIO, "read: Input/output error (EIO)"},
      {"write", ECONNRESET, "write: Connection reset by peer (ECONNRESET)"},
      {"shutdown", ENOTCONN, "shutdown: Transport endpoint is not connected (ENOTCONN)"},
      {"close", EIO, "close: Input/output error (EIO)"},
      {"epoll_ctl", ENOMEM, "epoll_ctl: Cannot allocate memory (ENOMEM)"},
  };
  for (const Fault& f : faults) {
    SCOPED_TRACE(f.call);
    bool failed = false;  // before the world: its fault rule reads this until the world is gone
    World w;
    Recorder r;
    const auto s = w.unix_pair();
    auto t = w.open(s.mine, r);
    ASSERT_TRUE(w.os.write(s.peer, "in", 2));
    w.fill(s.mine);
    // The transport's own call on its descriptor, once (the test's reads of the peer and the
    // reactor's other descriptors are left alone).
    const std::string fd = std::to_string(s.mine);
    const std::size_t at = std::string(f.call) == "epoll_ctl" ? 2 : 0;
    w.os.fail_when(
        f.call,
        [&](const fake::CallRecord& call) {
          if (failed || call.args.size() <= at || call.args[at] != fd) return false;
          failed = true;
          return true;
        },
        f.error);
    t->write("out");             // queued: the socket is full (epoll_ctl: registering the writer)
    t->lose_write_connection();  // shutdown once drained
    w.drain(s.peer);
    w.spin();
    // The peer's end, for the close: it comes only once both sides are over (and the peer has
    // read everything, or its close would be a reset).
    w.drain(s.peer);
    ASSERT_TRUE(w.os.close(s.peer));
    w.spin();
    ASSERT_EQ(r.losses, 1);
    EXPECT_EQ(to_string(*r.reason), f.text);
    // An injected fault leaves the fake's descriptor open (faults act before any state
    // changes); Linux would have freed it.
    if (std::string(f.call) != "close") {
      EXPECT_FALSE(w.is_open(s.mine));
    }
    EXPECT_TRUE(failed) << "the fault was not reached";
  }
}

TEST(StreamTransport, ACloseFailingAfterACleanEndIsNotClean) {
  World w;
  Recorder r;
  const auto p = w.pipe(StreamDirection::kReadOnly);
  auto t = w.open(p.mine, r, {.direction = StreamDirection::kReadOnly});
  w.os.fail_nth("close", static_cast<int>(calls_of(w.os, "close")) + 2, EIO);
  ASSERT_TRUE(w.os.close(p.peer));
  w.spin();
  EXPECT_EQ(to_string(*r.reason), "close: Input/output error (EIO)");
}

TEST(StreamTransport, OpenFailsWithTheErrorAndClosesTheDescriptor) {
  for (const char* call : {"fcntl", "epoll_ctl"}) {
    SCOPED_TRACE(call);
    World w;
    Recorder r;
    const auto p = w.pipe(StreamDirection::kReadOnly);
    w.os.fail_nth(call, static_cast<int>(calls_of(w.os, call)) + 1, EINVAL);
    auto t = StreamTransport::open(*w.reactor, w.os, OwnedFd(w.os, p.mine), r,
                                   {.direction = StreamDirection::kReadOnly});
    EXPECT_THAT(t, fake::FailsWith(EINVAL, call));
    EXPECT_FALSE(w.is_open(p.mine));
    EXPECT_EQ(r.losses, 0);
  }
}

// ---- The owner acting from inside callbacks ---------------------------------------------------

enum class Act { kDestroy, kLose, kAbort, kWrite };

void act(Act what, std::unique_ptr<StreamTransport>& t) {
  switch (what) {
    case Act::kDestroy:
      t.reset();
      break;
    case Act::kLose:
      t->lose_connection();
      break;
    case Act::kAbort:
      t->abort_connection();
      break;
    case Act::kWrite:
      t->write("w");
      break;
  }
}

TEST(StreamTransport, TheOwnerMayDestroyLoseAbortOrWriteFromInsideEveryCallback) {
  for (Act what : {Act::kDestroy, Act::kLose, Act::kAbort, Act::kWrite}) {
    for (const char* where : {"data", "read_eof", "write_eof", "lost", "pause", "resume", "stop"}) {
      SCOPED_TRACE(std::string(where) + " act " + std::to_string(static_cast<int>(what)));
      World w;
      Recorder r;
      r.half_close = true;
      const auto s = w.unix_pair();
      auto t = w.open(s.mine, r, {.high_water = 4});
      CountingProducer producer;
      bool acted = false;
      auto once = [&] {
        if (acted || !t) return;
        acted = true;
        act(what, t);
      };
      const std::string w_ = where;
      if (w_ == "data") r.on_data = once;
      if (w_ == "read_eof") r.on_eof = once;
      if (w_ == "write_eof") r.on_write_eof = once;
      if (w_ == "lost") r.on_lost = once;
      if (w_ == "pause") producer.on_pause = once;
      if (w_ == "resume") producer.on_resume = once;
      if (w_ == "stop") producer.on_stop = once;
      ASSERT_TRUE(t->register_producer(producer, true));
      w.fill(s.mine);
      t->write("12345");  // above the mark: paused
      // EPIPE once an act in pause_producing closed our end.
      static_cast<void>(w.os.write(s.peer, "in", 2));
      w.spin();
      w.drain(s.peer);
      w.spin();  // drained: resumed
      ASSERT_TRUE(w.os.shutdown(s.peer, SHUT_WR));
      w.spin();  // read_eof
      if (t) t->lose_write_connection();
      w.spin();  // write_eof, then done
      if (t && t->connected()) t->abort_connection();
      w.spin();  // lost, stop
      EXPECT_TRUE(acted);
      EXPECT_LE(r.losses, 1);
      if (t) {
        EXPECT_EQ(r.losses, 1);
        EXPECT_EQ(r.events.back(), "lost");
      }
      EXPECT_FALSE(w.is_open(s.mine));
    }
  }
}

// ---- A property over random interleavings ------------------------------------------------------

RC_GTEST_PROP(StreamTransport, BytesArriveInOrderOnceAndTheLossComesOnceLastWithNoLeak, ()) {
  World w;
  Recorder r;
  const bool socket = *rc::gen::arbitrary<bool>();
  Pair s = socket ? w.unix_pair() : w.pipe(StreamDirection::kWriteOnly);
  const StreamDirection direction =
      socket ? StreamDirection::kReadWrite : StreamDirection::kWriteOnly;
  auto t = w.open(s.mine, r, {.direction = direction, .high_water = 3000});
  RC_ASSERT(t != nullptr);
  CountingProducer producer;
  RC_ASSERT(t->register_producer(producer, true));
  std::string sent, received, peer_sent;
  bool aborted = false, peer_closed = false, write_shut = false, peer_shut = false;
  r.half_close = *rc::gen::arbitrary<bool>();
  char next = 'a';
  const auto steps = *rc::gen::inRange(1, 40);
  for (int i = 0; i < steps; ++i) {
    switch (*rc::gen::inRange(0, 9)) {
      case 0:
      case 1: {
        const auto n = static_cast<std::size_t>(*rc::gen::inRange(1, socket ? 150000 : 60000));
        std::string chunk(n, next);
        next = next == 'z' ? 'a' : static_cast<char>(next + 1);
        if (t->connected() && !aborted && !producer.stops && !write_shut) sent += chunk;
        if (*rc::gen::arbitrary<bool>()) {
          t->write(std::move(chunk));
        } else {
          t->write(std::string_view(chunk));
        }
        break;
      }
      case 2:
        if (!peer_closed) {
          received += w.drain(s.peer, static_cast<std::size_t>(*rc::gen::inRange(1, 70000)));
        }
        break;
      case 3:
        if (socket && !peer_closed) {
          const std::string in = "p" + std::to_string(i);
          if (*rc::gen::inRange(0, 6) == 0) {
            RC_ASSERT(w.os.shutdown(s.peer, SHUT_WR));  // the peer half-closes
            peer_shut = true;
          } else if (w.os.write(s.peer, in.data(), in.size())) {
            peer_sent += in;
          }
        }
        break;
      case 4:
        if (*rc::gen::arbitrary<bool>()) {
          t->pause_producing();
        } else {
          t->resume_producing();
        }
        break;
      case 5:
        if (socket && *rc::gen::arbitrary<bool>()) {
          t->lose_write_connection();
          write_shut = true;
        } else {
          t->lose_connection();
        }
        break;
      case 6:
        if (*rc::gen::inRange(0, 4) == 0) {
          if (t->connected()) aborted = true;
          t->abort_connection();
        }
        break;
      case 7:
        if (!peer_closed && *rc::gen::inRange(0, 4) == 0) {
          received += w.drain(s.peer);
          RC_ASSERT(w.os.close(s.peer));
          peer_closed = true;
        }
        break;
      default:
        w.spin(1);
        break;
    }
    RC_ASSERT(r.losses <= 1);
    if (r.losses == 1) RC_ASSERT(r.events.back() == "lost");
  }
  // Let it finish: the peer reads everything, then closes.
  for (int i = 0; i < 20 && !peer_closed; ++i) {
    received += w.drain(s.peer);
    w.spin(1);
  }
  if (!peer_closed) RC_ASSERT(w.os.close(s.peer));
  w.spin();
  if (r.losses == 0) t->abort_connection();
  w.spin();
  RC_ASSERT(r.losses == 1);
  RC_ASSERT(r.events.back() == "lost");
  RC_ASSERT(producer.stops <= 1);
  // In order and exactly once: what arrived is a prefix of what was accepted, and all of it
  // unless the connection was aborted or the peer left first.
  RC_ASSERT(sent.compare(0, received.size(), received) == 0);
  // A peer's EOF without the opt-in ends the connection cleanly and drops what waited, as
  // Twisted's does.
  const bool eof_ended_it = peer_shut && !r.half_close;
  if (!aborted && !peer_closed && !eof_ended_it && r.reason->clean()) {
    RC_ASSERT(received == sent);
  }
  RC_ASSERT(peer_sent.compare(0, r.data.size(), r.data) == 0);
  RC_ASSERT(w.os.open_fds(w.os.getpid()) ==
            (std::vector<int>{w.reactor->epoll_fd(), w.reactor->waker_fd()}));
}

TEST(LossReason, TextsNameTheOutcomeOrTheCallAndErrno) {
  EXPECT_EQ(to_string(LossReason::done()), "Connection was closed cleanly.");
  EXPECT_EQ(to_string(LossReason::aborted()), "Connection was aborted.");
  EXPECT_EQ(fmt::format("{}", LossReason::lost(sys::Error{EPIPE, "write", {}})),
            "write: Broken pipe (EPIPE)");
  EXPECT_TRUE(LossReason::done().clean());
  EXPECT_FALSE(LossReason::aborted().clean());
}

}  // namespace
}  // namespace daemonkit::core
