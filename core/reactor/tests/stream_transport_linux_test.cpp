// The stream transport on the real kernel: what the fake's model rests on, checked where it
// matters — a pipe carried end to end through a write-only and a read-only transport, Linux's
// EPOLLERR on a write end whose reader left (the forceReadHack), and a half-close over a real
// socketpair.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>
#include <optional>
#include <string>

#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/real_syscalls.h"

// Heap blocks made and freed while a test counts (this program's own operator new): what an
// idle transport holds is measured, not guessed from sizeof.
namespace {
bool g_counting = false;
long g_news = 0;
long g_deletes = 0;
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting) ++g_news;
  if (void* p = std::malloc(n != 0 ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (g_counting && p != nullptr) ++g_deletes;
  std::free(p);
}
void operator delete(void* p, std::size_t /*n*/) noexcept {
  if (g_counting && p != nullptr) ++g_deletes;
  std::free(p);
}

namespace daemonkit::core {
namespace {

// Counts the heap blocks made minus those freed in its lifetime.
struct LiveBlocks {
  LiveBlocks() {
    g_news = g_deletes = 0;
    g_counting = true;
  }
  ~LiveBlocks() { g_counting = false; }
  [[nodiscard]] long now() const { return g_news - g_deletes; }
};

struct Recorder : StreamHandler {
  std::string data;
  std::optional<LossReason> reason;
  int losses = 0;
  bool eof = false;
  bool half_close = false;
  void data_received(std::span<const std::byte> bytes) override {
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  bool read_eof() override {
    eof = true;
    return half_close;
  }
  void connection_lost(const LossReason& r) override {
    ++losses;
    reason = r;
  }
};

class StreamTransportLinux : public ::testing::Test {
 protected:
  void SetUp() override {
    // As a daemon does: a write to a reader that is gone is an EPIPE, not the end.
    ASSERT_NE(::signal(SIGPIPE, SIG_IGN), SIG_ERR);
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os_, std::move(options));
    ASSERT_TRUE(created);
    reactor_ = std::move(*created);
  }

  // Turns the loop until `done` or a few seconds pass (the test then fails, never hangs).
  template <typename Done>
  void run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      reactor_->run_until_current();
      ASSERT_TRUE(reactor_->iterate(std::chrono::milliseconds(100)));
    }
    ASSERT_TRUE(done());
  }

  std::unique_ptr<StreamTransport> open(int fd, StreamHandler& handler, StreamDirection d) {
    auto t = StreamTransport::open(*reactor_, os_, OwnedFd(os_, fd), handler, {.direction = d});
    EXPECT_TRUE(t);
    return t ? std::move(*t) : nullptr;
  }

  sys::RealSyscalls os_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(StreamTransportLinux, APipeCarriesManyMegabytesInOrderThroughBothEnds) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Recorder reader_side, writer_side;
  auto reader = open(fds[0], reader_side, StreamDirection::kReadOnly);
  auto writer = open(fds[1], writer_side, StreamDirection::kWriteOnly);
  std::string sent;
  constexpr std::size_t kChunk = 1 << 20;
  for (int i = 0; i < 32; ++i) {
    std::string chunk(kChunk, static_cast<char>('a' + i % 26));
    sent += chunk;
    writer->write(std::move(chunk));
  }
  writer->lose_connection();
  reader_side.data.reserve(sent.size());  // time the transports, not the string's growth
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  run_until([&] { return reader_side.losses == 1 && writer_side.losses == 1; });
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  EXPECT_EQ(reader_side.data.size(), sent.size());
  EXPECT_TRUE(reader_side.data == sent);
  EXPECT_EQ(*reader_side.reason, LossReason::done());
  EXPECT_EQ(*writer_side.reason, LossReason::done());
  // The floor in the same run: the same bytes through a raw pipe, 64 KiB write then read, no
  // loop. CPU time is the steady figure on a shared machine; the wall clock swings.
  int raw[2];
  ASSERT_EQ(::pipe2(raw, O_CLOEXEC), 0);
  std::string sink(sent.size(), '\0');
  const std::clock_t raw_start = std::clock();
  for (std::size_t at = 0; at < sent.size(); at += 65536) {
    ASSERT_EQ(::write(raw[1], sent.data() + at, 65536), 65536);
    ASSERT_EQ(::read(raw[0], sink.data() + at, 65536), 65536);
  }
  const double raw_cpu = static_cast<double>(std::clock() - raw_start) / CLOCKS_PER_SEC;
  ::close(raw[0]);
  ::close(raw[1]);
  std::printf(
      "32 MiB through a pipe, both ends on one loop: %.0f MiB/s of CPU (%.0f MiB/s wall); "
      "raw write/read loop %.0f MiB/s of CPU: ratio %.2f\n",
      32.0 / cpu, 32.0 / took.count(), 32.0 / raw_cpu, raw_cpu / cpu);
}

TEST_F(StreamTransportLinux, AWriteEndHearsItsReaderLeaveWithNothingToWrite) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  Recorder r;
  auto writer = open(fds[1], r, StreamDirection::kWriteOnly);
  ASSERT_TRUE(reactor_->iterate(std::chrono::milliseconds(0)));
  EXPECT_EQ(r.losses, 0) << "an idle write end is quiet while its reader is there";
  ASSERT_EQ(::close(fds[0]), 0);
  run_until([&] { return r.losses == 1; });
  EXPECT_EQ(to_string(*r.reason), "epoll_wait(EPOLLERR): Broken pipe (EPIPE)");
}

TEST_F(StreamTransportLinux, HalfCloseOverASocketpairBothWays) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Recorder a, b;
  b.half_close = true;
  auto ta = open(sv[0], a, StreamDirection::kReadWrite);
  auto tb = open(sv[1], b, StreamDirection::kReadWrite);
  ta->write("request");
  ta->lose_write_connection();
  run_until([&] { return b.eof; });
  EXPECT_EQ(b.data, "request");
  EXPECT_EQ(b.losses, 0) << "b opted to stay open for writing";
  tb->write("reply");
  tb->lose_connection();
  run_until([&] { return a.losses == 1 && b.losses == 1; });
  EXPECT_EQ(a.data, "reply");
  EXPECT_EQ(*a.reason, LossReason::done());
  EXPECT_EQ(*b.reason, LossReason::done());
}

}  // namespace
}  // namespace daemonkit::core

namespace daemonkit::core {
namespace {

// An idle connection's cost is what a server with 10,000 of them pays per connection: the
// transport must hold no heap block beyond itself while nothing waits to be sent (a
// std::deque write queue held some 600 bytes, the reactor two shared callbacks and a node),
// and a write that had to wait gives its block back once sent.
TEST_F(StreamTransportLinux, AnIdleTransportHoldsNoHeapBlockBeyondItself) {
  // The test's own buffers, made before counting starts.
  const std::string chunk(65536, 'x');
  std::string got;
  got.reserve(64 << 20);
  // Round 0 warms up what is made once per reactor or thread (the reactor's table for these
  // descriptor numbers, which round 1 reuses; the thread's read buffer); round 1 is counted.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    const bool check = round == 1;
    Recorder r;
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    got.clear();
    std::unique_ptr<StreamTransport> t;
    LiveBlocks blocks;
    {
      auto opened = StreamTransport::open(*reactor_, os_, OwnedFd(os_, sv[0]), r);
      ASSERT_TRUE(opened);
      t = std::move(*opened);
    }
    if (check) {
      EXPECT_EQ(blocks.now(), 1) << "the transport itself, nothing more";
    }
    t->write("ping");  // goes out at once: nothing queued
    char buf[8];
    EXPECT_EQ(::read(sv[1], buf, sizeof buf), 4);
    ASSERT_EQ(::write(sv[1], "pong", 4), 4);
    run_until([&] { return r.data == "pong"; });
    if (check) {
      EXPECT_EQ(blocks.now(), 1);
    }

    // Fill the socket so a write must wait, then let the peer read it all.
    while (::send(sv[0], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
    }
    t->write("queued");
    EXPECT_GT(t->buffered(), 0u);
    if (check) {
      EXPECT_GT(blocks.now(), 1);
    }
    run_until([&] {
      char big[65536];
      const auto n = ::recv(sv[1], big, sizeof big, MSG_DONTWAIT);
      if (n > 0) got.append(big, static_cast<std::size_t>(n));
      return t->buffered() == 0 && got.ends_with("queued");
    });
    EXPECT_EQ(t->buffered(), 0u);
    if (check) {
      EXPECT_EQ(blocks.now(), 1) << "the queue's block is given back once drained";
    }
    t.reset();
    ::close(sv[1]);
  }
}

}  // namespace
}  // namespace daemonkit::core
