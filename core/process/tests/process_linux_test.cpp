// Process on the real kernel: 64 MiB through cat and back, a PTY child that sees a terminal,
// a child run as nobody (as root), an exec failure, and the end's order with real pipes.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "daemonkit/core/process/process.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;

class Collect : public ProcessProtocol {
 public:
  void child_data_received(int child_fd, std::span<const std::byte> data) override {
    if (child_fd == 1) {
      if (keep) out.append(reinterpret_cast<const char*>(data.data()), data.size());
      for (std::byte b : data) {  // the pattern the cat test writes: order and loss show
        if (static_cast<char>(b) != static_cast<char>('a' + out_bytes % 26)) ++out_of_order;
        ++out_bytes;
      }
    } else {
      err.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
  }
  void process_ended(const ProcessEnd& e) override { end = e; }

  bool keep = true;
  std::size_t out_bytes = 0;
  std::size_t out_of_order = 0;
  std::string out;
  std::string err;
  std::optional<ProcessEnd> end;
};

struct Loop {
  sys::RealSyscalls os;
  std::unique_ptr<Reactor> reactor;
  Loop() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto made = Reactor::create(os, std::move(options));
    EXPECT_TRUE(made);
    if (made) reactor = std::move(*made);
  }
  bool run_until_ended(const Collect& c, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto turned = reactor->turn_until([&] { return c.end.has_value(); }, limit);
    return turned && *turned;
  }
};

SpawnOptions options(std::string path, std::vector<std::string> argv) {
  SpawnOptions o;
  o.executable = std::move(path);
  o.argv = std::move(argv);
  o.environment = {"PATH=/usr/bin:/bin"};
  return o;
}

TEST(ProcessOnLinux, SixtyFourMebibytesGoThroughCatAndBackInOrder) {
  Loop loop;
  Collect c;
  c.keep = false;
  auto process = Process::spawn(*loop.reactor, loop.os, c, options("/bin/cat", {"cat"}));
  ASSERT_TRUE(process) << process.error().message;
  constexpr std::size_t kChunk = 1 << 20;
  constexpr int kChunks = 64;
  for (int j = 0; j < kChunks; ++j) {
    std::string chunk(kChunk, '\0');
    for (std::size_t i = 0; i < kChunk; ++i) {
      chunk[i] = static_cast<char>('a' + (static_cast<std::size_t>(j) * kChunk + i) % 26);
    }
    ASSERT_TRUE((*process)->write(chunk));
  }
  (*process)->close_stdin();
  ASSERT_TRUE(loop.run_until_ended(c));
  EXPECT_EQ(c.out_bytes, kChunk * kChunks);
  EXPECT_EQ(c.out_of_order, 0u);
  EXPECT_TRUE(c.end->clean()) << c.end->describe();
}

TEST(ProcessOnLinux, APtyChildSeesATerminalOfTheGivenSize) {
  Loop loop;
  Collect c;
  SpawnOptions o = options("/bin/sh", {"sh", "-c", "test -t 0 && test -t 1 && stty size"});
  o.use_pty = true;
  o.window_size = {33, 77, 0, 0};
  auto process = Process::spawn(*loop.reactor, loop.os, c, std::move(o));
  ASSERT_TRUE(process) << process.error().message;
  ASSERT_TRUE(loop.run_until_ended(c));
  EXPECT_TRUE(c.end->clean()) << c.end->describe() << ": " << c.out;
  EXPECT_EQ(c.out, "33 77\r\n");
}

TEST(ProcessOnLinux, AsRootTheChildRunsAsNobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching to nobody needs root";
  Loop loop;
  Collect c;
  SpawnOptions o = options("/bin/sh", {"sh", "-c", "id -u; id -g; id -G"});
  o.uid = 65534;
  o.gid = 65534;
  auto process = Process::spawn(*loop.reactor, loop.os, c, std::move(o));
  ASSERT_TRUE(process) << process.error().message;
  ASSERT_TRUE(loop.run_until_ended(c));
  EXPECT_EQ(c.out, "65534\n65534\n65534\n");
  EXPECT_EQ(::geteuid(), 0u);
}

TEST(ProcessOnLinux, AnExecFailureNamesTheStepAndErrno) {
  Loop loop;
  Collect c;
  auto process = Process::spawn(*loop.reactor, loop.os, c, options("/no/such/program", {"x"}));
  ASSERT_TRUE(process) << process.error().message;
  ASSERT_TRUE(loop.run_until_ended(c));
  EXPECT_FALSE(c.end->started());
  EXPECT_EQ(c.end->describe(), "exec /no/such/program: No such file or directory (ENOENT)");
}

TEST(ProcessOnLinux, SigtermThroughThePidfdEndsAChildThatWouldRunForever) {
  Loop loop;
  Collect c;
  auto process = Process::spawn(*loop.reactor, loop.os, c, options("/bin/sleep", {"sleep", "60"}));
  ASSERT_TRUE(process) << process.error().message;
  ASSERT_TRUE((*process)->signal(SIGTERM));
  ASSERT_TRUE(loop.run_until_ended(c));
  EXPECT_EQ(c.end->describe(), "killed by signal 15 (SIGTERM)");
  EXPECT_EQ(to_string((*process)->signal(SIGTERM).error()), "process exited already");
}

}  // namespace
}  // namespace daemonkit::core
