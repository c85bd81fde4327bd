// The application layer on the real kernel: a log file in a temporary directory rotated by size
// (archives shifted, the cap, the stated mode whatever the umask), rotated by SIGUSR1 and
// reopened by SIGHUP after a logrotate-style rename, through route_log_signals on a running
// reactor; a forked daemon speaking sd_notify to a socket the test listens on, as a Type=notify
// unit's manager would (READY=1, keep-alives, STOPPING=1); a stream-server service answering on
// loopback.
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemonkit/core/app/log_file.h"
#include "daemonkit/core/app/log_signals.h"
#include "daemonkit/core/app/notifier.h"
#include "daemonkit/core/app/stream_server_service.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using std::chrono::milliseconds;
using testing::ElementsAre;
using testing::HasSubstr;

struct TempDir {
  std::string path;
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "daemonkit-app-XXXXXX").string();
    if (::mkdtemp(templ.data()) != nullptr) path = templ;
  }
  ~TempDir() {
    if (path.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string contents(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "<none>";
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// The umask a daemon has (077), for the duration of a test: the log's mode must not follow it.
struct DaemonUmask {
  mode_t saved = ::umask(077);
  ~DaemonUmask() { ::umask(saved); }
};

// "line 07 ....\n": 25 bytes, so a file of rotate_length 100 holds exactly four.
std::string numbered(int n) {
  std::string line = "line " + std::string(n < 10 ? "0" : "") + std::to_string(n) + " ";
  line.resize(24, '.');
  return line + "\n";
}

std::string numbered(int from, int to) {
  std::string lines;
  for (int n = from; n <= to; ++n) lines += numbered(n);
  return lines;
}

TEST(LogFileOnLinux, RotatesPastItsSizeShiftingArchivesUpToTheCapWithTheStatedMode) {
  sys::RealSyscalls os;
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  DaemonUmask umask;
  const std::string path = dir / "app.log";
  auto opened = LogFile::open(os, path, {.rotate_length = 100, .max_archives = 2});
  ASSERT_TRUE(opened) << opened.error().message;
  LogFile& log = **opened;
  // 4 lines a file: 1-4 into what becomes .2 and is dropped, 5-8, 9-12, 13-14 in the file.
  for (int n = 1; n <= 14; ++n) log.write_lines(numbered(n));
  EXPECT_EQ(contents(path), numbered(13, 14));
  EXPECT_EQ(contents(path + ".1"), numbered(9, 12));
  EXPECT_EQ(contents(path + ".2"), numbered(5, 8));
  EXPECT_FALSE(exists(path + ".3")) << "the cap of two archives";
  EXPECT_EQ(log.size(), 50u);
  for (const std::string& p : {path, path + ".1", path + ".2"}) {
    EXPECT_EQ(mode_of(p), 0640u) << p << ": 0640 exactly, whatever the umask";
  }
}

TEST(LogFileOnLinux, AnOperatorsModeIsKeptAcrossRotations) {
  sys::RealSyscalls os;
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string path = dir / "app.log";
  { std::ofstream(path) << ""; }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto opened = LogFile::open(os, path, {.rotate_length = 100});
  ASSERT_TRUE(opened) << opened.error().message;
  for (int n = 1; n <= 5; ++n) (*opened)->write_lines(numbered(n));
  EXPECT_EQ(contents(path + ".1"), numbered(1, 4));
  EXPECT_EQ(mode_of(path + ".1"), 0600u);
  EXPECT_EQ(mode_of(path), 0600u) << "the new file takes the mode of the one it replaces";
}

TEST(LogFileOnLinux, Sigusr1RotatesAndSighupReopensThroughTheReactor) {
  sys::RealSyscalls os;
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  DaemonUmask umask;
  const std::string path = dir / "app.log";
  auto opened = LogFile::open(os, path);
  ASSERT_TRUE(opened) << opened.error().message;
  LogFile& log = **opened;
  auto made = Reactor::create(os);
  ASSERT_TRUE(made);
  Reactor& reactor = **made;
  route_log_signals(reactor, log);

  log.write_lines("A before SIGUSR1\n");
  std::vector<std::string> seen;  // what each step found, checked after the run
  reactor.call_when_running([&] { (void)os.kill(os.getpid(), SIGUSR1); });
  (void)reactor.call_later(milliseconds(50), [&] {
    seen.push_back(contents(path + ".1"));
    seen.push_back(contents(path));
    log.write_lines("B after SIGUSR1\n");
    // logrotate's way: rename the file away, then SIGHUP. Until then lines go on into the
    // renamed file (the descriptor follows it), none is lost.
    seen.push_back(std::to_string(::rename(path.c_str(), (path + "-20261202").c_str())));
    log.write_lines("C renamed, not reopened\n");
    (void)os.kill(os.getpid(), SIGHUP);
  });
  (void)reactor.call_later(milliseconds(100), [&] {
    log.write_lines("D after SIGHUP\n");
    (void)reactor.stop();
  });
  ASSERT_TRUE(reactor.run());

  ASSERT_THAT(seen, ElementsAre("A before SIGUSR1\n", "", "0"));
  EXPECT_EQ(contents(path + ".1"), "A before SIGUSR1\n");
  EXPECT_EQ(contents(path + "-20261202"), "B after SIGUSR1\nC renamed, not reopened\n");
  EXPECT_EQ(contents(path), "D after SIGHUP\n");
  EXPECT_EQ(mode_of(path), 0640u);
  EXPECT_EQ(mode_of(path + ".1"), 0640u);
}

// ---- sd_notify, as a Type=notify unit's manager sees it --------------------------------------

// The manager's socket: a datagram socket bound at `path`.
int bind_notify_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof address.sun_path) return -1;
  path.copy(address.sun_path, path.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return -1;
  return fd;
}

// Datagrams until STOPPING=1 arrives or 10 s pass.
std::vector<std::string> receive_until_stopping(int fd) {
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) break;
    got.emplace_back(buf, static_cast<std::size_t>(n));
    if (got.back().starts_with("STOPPING=1")) break;
  }
  return got;
}

// The daemon: a reactor and a Notifier given `envp`, READY=1 once running, STOPPING=1 after
// `run_for`, then exit. Each failed step exits with its own code.
[[noreturn]] void notifying_daemon(std::vector<std::string> environment, milliseconds run_for) {
  sys::RealSyscalls os;
  environment.push_back("WATCHDOG_PID=" + std::to_string(::getpid()));
  std::vector<const char*> envp;
  for (const auto& e : environment) envp.push_back(e.c_str());
  envp.push_back(nullptr);
  ReactorOptions options;
  options.install_signal_handlers = false;
  auto reactor = Reactor::create(os, std::move(options));
  if (!reactor) ::_exit(10);
  Notifier notifier(**reactor, os, NotifyVariables::from_envp(envp.data()));
  if (!notifier.enabled()) ::_exit(11);
  (*reactor)->call_when_running([&] {
    if (!notifier.ready("serving")) ::_exit(12);
  });
  (void)(*reactor)->call_later(run_for, [&] {
    if (!notifier.stopping()) ::_exit(13);
    (void)(*reactor)->stop();
  });
  if (!(*reactor)->run()) ::_exit(14);
  ::_exit(notifier.failed_sends() == 0 ? 0 : 15);
}

int run_daemon(std::vector<std::string> environment, milliseconds run_for) {
  const pid_t pid = ::fork();
  if (pid == 0) notifying_daemon(std::move(environment), run_for);
  int status = -1;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(NotifierOnLinux, ATypeNotifyManagerSeesReadyThenStopping) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const int manager = bind_notify_socket(dir / "notify");
  ASSERT_GE(manager, 0);
  EXPECT_EQ(run_daemon({"NOTIFY_SOCKET=" + (dir / "notify")}, milliseconds(20)), 0);
  EXPECT_THAT(receive_until_stopping(manager),
              ElementsAre("READY=1\nSTATUS=serving\n", "STOPPING=1\n"));
  ::close(manager);
}

TEST(NotifierOnLinux, WatchdogKeepAlivesArriveBetweenReadyAndStopping) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const int manager = bind_notify_socket(dir / "notify");
  ASSERT_GE(manager, 0);
  // WatchdogSec=100ms: a keep-alive every 50 ms, four in 230 ms of running on an idle machine;
  // one is what a loop stalled for the whole run still sends (due before the stop).
  EXPECT_EQ(
      run_daemon({"NOTIFY_SOCKET=" + (dir / "notify"), "WATCHDOG_USEC=100000"}, milliseconds(230)),
      0);
  const auto got = receive_until_stopping(manager);
  ASSERT_GE(got.size(), 3u);
  EXPECT_EQ(got.front(), "READY=1\nSTATUS=serving\n");
  EXPECT_EQ(got.back(), "STOPPING=1\n");
  for (std::size_t i = 1; i + 1 < got.size(); ++i) EXPECT_EQ(got[i], "WATCHDOG=1\n");
  ::close(manager);
}

TEST(NotifierOnLinux, AnAbstractNotifySocketIsReached) {
  const std::string name = "daemonkit-app-test-" + std::to_string(::getpid());
  const int manager = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(manager, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  name.copy(address.sun_path + 1, name.size());
  ASSERT_EQ(::bind(manager, reinterpret_cast<sockaddr*>(&address),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
            0);
  EXPECT_EQ(run_daemon({"NOTIFY_SOCKET=@" + name}, milliseconds(10)), 0);
  EXPECT_THAT(receive_until_stopping(manager),
              ElementsAre("READY=1\nSTATUS=serving\n", "STOPPING=1\n"));
  ::close(manager);
}

// ---- The stream-server service ---------------------------------------------------------------

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

struct Ping : Protocol {
  std::string* got;
  Reactor* reactor;
  Ping(std::string* into, Reactor* r) : got(into), reactor(r) {}
  void connection_made(Connection& c) override { c.write("ping"); }
  void data_received(std::span<const std::byte> data) override {
    got->append(reinterpret_cast<const char*>(data.data()), data.size());
    (void)reactor->stop();
  }
};

struct PingClient : ClientFactory {
  std::string got;
  std::string failure;
  Reactor* reactor = nullptr;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Ping>(&got, reactor);
  }
  void connection_failed(const sys::Error& reason) override {
    failure = sys::to_string(reason);
    (void)reactor->stop();
  }
};

TEST(StreamServerServiceOnLinux, ServesOnLoopbackAndStopsListening) {
  sys::RealSyscalls os;
  ReactorOptions options;
  options.install_signal_handlers = false;
  auto made = Reactor::create(os, std::move(options));
  ASSERT_TRUE(made);
  Reactor& reactor = **made;
  ServerFactoryOf<Echo> echo;
  auto web = StreamServerService::from_string(reactor, os, "tcp:0:interface=127.0.0.1", echo);
  ASSERT_TRUE(web);
  ASSERT_TRUE((*web)->privileged_start()) << "tcp:0 needs no privilege";
  ASSERT_TRUE((*web)->start());
  const std::uint16_t port = (*web)->port()->address().port();
  PingClient client;
  client.reactor = &reactor;
  std::unique_ptr<Connector> connector;
  reactor.call_when_running(
      [&] { connector = connect_tcp(reactor, os, "127.0.0.1", port, client); });
  (void)reactor.call_later(std::chrono::seconds(10), [&] { (void)reactor.stop(); });
  ASSERT_TRUE(reactor.run());
  EXPECT_EQ(client.got, "ping") << client.failure;
  Completion stopped = (*web)->stop();
  reactor.run_until_current();
  EXPECT_TRUE(stopped.completed());
  // Nobody listens on the port any more.
  const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto to = *SocketAddress::ip("127.0.0.1", port);
  EXPECT_NE(::connect(probe, to.data(), to.size()), 0);
  ::close(probe);
}

}  // namespace
}  // namespace daemonkit::core
