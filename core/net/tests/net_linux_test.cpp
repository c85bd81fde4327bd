// The network area on the real kernel: loopback TCP over IPv4 and IPv6, UNIX paths and
// abstract names, a burst of connections into a process out of descriptors (in a forked child
// with a lowered RLIMIT_NOFILE), and 10,000 concurrent connections between two processes.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <malloc.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/descriptor_receiver.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/resolver.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/unix_stream.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using namespace std::chrono_literals;

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

// Writes `message` once connected, collects the answer, and closes once it has it whole.
struct Asker : Protocol {
  explicit Asker(std::string message, std::string* answer, int* done)
      : message_(std::move(message)), answer_(answer), done_(done) {}
  void connection_made(Connection& c) override { c.write(message_); }
  void data_received(std::span<const std::byte> data) override {
    answer_->append(reinterpret_cast<const char*>(data.data()), data.size());
    if (answer_->size() >= message_.size()) connection().lose_connection();
  }
  void connection_lost(const LossReason&) override { ++*done_; }
  std::string message_;
  std::string* answer_;
  int* done_;
};

struct AskerFactory : ClientFactory {
  std::string message;
  std::string answer;
  int done = 0;
  std::vector<std::string> failures;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Asker>(message, &answer, &done);
  }
  void connection_failed(const sys::Error& reason) override {
    failures.push_back(sys::to_string(reason));
  }
};

std::unique_ptr<Reactor> make_reactor(sys::Syscalls& os) {
  ReactorOptions options;
  options.install_signal_handlers = false;
  auto created = Reactor::create(os, std::move(options));
  return created ? std::move(*created) : nullptr;
}

// Turns the loop until `done` or the deadline (the test then fails, never hangs).
bool run_until(Reactor& reactor, const std::function<bool()>& done,
               std::chrono::seconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    reactor.run_until_current();
    if (!reactor.iterate(std::chrono::milliseconds(50))) return false;
  }
  return done();
}

class NetLinux : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(::signal(SIGPIPE, SIG_IGN), SIG_ERR);
    reactor_ = make_reactor(os_);
    ASSERT_TRUE(reactor_);
  }

  // Connects to `name` with `connect` and checks that the echo comes back.
  void expect_echo(const std::function<std::unique_ptr<Connector>(ClientFactory&)>& connect) {
    AskerFactory client;
    client.message = std::string(300000, 'e');  // more than one read and one write
    auto connector = connect(client);
    ASSERT_TRUE(run_until(*reactor_, [&] { return client.done == 1 || !client.failures.empty(); }));
    EXPECT_TRUE(client.failures.empty()) << client.failures.front();
    EXPECT_EQ(client.answer, client.message);
  }

  sys::RealSyscalls os_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(NetLinux, TcpOverIpv4EchoesOnAPortTheKernelChose) {
  ServerFactoryOf<Echo> factory;
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(*reactor_, os_, 0, factory, options);
  ASSERT_TRUE(port) << to_string(port.error());
  const std::uint16_t number = (*port)->address().port();
  EXPECT_NE(number, 0);
  expect_echo(
      [&](ClientFactory& f) { return connect_tcp(*reactor_, os_, "127.0.0.1", number, f); });
}

TEST_F(NetLinux, TcpOverIpv6Echoes) {
  ServerFactoryOf<Echo> factory;
  ListenOptions options;
  options.interface = "::1";
  auto port = listen_tcp(*reactor_, os_, 0, factory, options);
  if (!port && (port.error().error_number() == EAFNOSUPPORT ||
                port.error().error_number() == EADDRNOTAVAIL)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << to_string(port.error());
  }
  ASSERT_TRUE(port) << to_string(port.error());
  EXPECT_EQ((*port)->address().family(), AF_INET6);
  const std::uint16_t number = (*port)->address().port();
  expect_echo([&](ClientFactory& f) { return connect_tcp(*reactor_, os_, "::1", number, f); });
}

TEST_F(NetLinux, ARefusedTcpConnectNamesTheErrno) {
  // A port bound and not listening refuses, and nobody else can take it meanwhile.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  auto any = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, any.data(), any.size()), 0);
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&name), &len), 0);
  const std::uint16_t number = SocketAddress::from(reinterpret_cast<sockaddr*>(&name), len)->port();
  AskerFactory client;
  auto connector = connect_tcp(*reactor_, os_, "127.0.0.1", number, client);
  ASSERT_TRUE(run_until(*reactor_, [&] { return !client.failures.empty(); }));
  EXPECT_EQ(client.failures.front(),
            fmt::format("connect(127.0.0.1:{}): Connection refused (ECONNREFUSED)", number));
  ::close(fd);
}

// getaddrinfo on the thread pool: "localhost" from /etc/hosts. Where it names ::1 first, that
// address is refused (the server listens on 127.0.0.1 only) and the next one is tried.
TEST_F(NetLinux, AHostNameIsResolvedOnTheThreadPool) {
  auto found = ThreadPoolResolver::lookup("localhost", 80);
  ASSERT_TRUE(found) << sys::to_string(found.error());
  ASSERT_FALSE(found->empty());
  bool v4 = false;
  for (const auto& a : *found) v4 = v4 || to_string(a) == "127.0.0.1:80";
  if (!v4) GTEST_SKIP() << "localhost has no 127.0.0.1 here";
  ServerFactoryOf<Echo> factory;
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(*reactor_, os_, 0, factory, options);
  ASSERT_TRUE(port) << to_string(port.error());
  const std::uint16_t number = (*port)->address().port();
  ThreadPoolResolver resolver(*reactor_);
  ConnectOptions connect;
  connect.resolver = &resolver;
  expect_echo([&](ClientFactory& f) {
    return connect_tcp(*reactor_, os_, "localhost", number, f, connect);
  });
}

TEST_F(NetLinux, UnixPathEchoesWithItsModeAndIsRemovedAtTheStop) {
  char dir[] = "/tmp/daemonkit-net-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/echo.sock";
  ServerFactoryOf<Echo> factory;
  UnixListenOptions options;
  options.mode = 0600;
  options.lock_file = true;
  auto port = listen_unix(*reactor_, os_, path, factory, options);
  ASSERT_TRUE(port) << to_string(port.error());
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  expect_echo([&](ClientFactory& f) { return connect_unix(*reactor_, os_, path, f); });
  port->reset();
  EXPECT_NE(::lstat(path.c_str(), &st), 0);
  EXPECT_NE(::lstat((path + ".lock").c_str(), &st), 0);
  ::rmdir(dir);
}

TEST_F(NetLinux, UnixAbstractNameEchoes) {
  const std::string name = fmt::format("@daemonkit-net-test-{}", ::getpid());
  ServerFactoryOf<Echo> factory;
  auto port = listen_unix(*reactor_, os_, name, factory);
  ASSERT_TRUE(port) << to_string(port.error());
  expect_echo([&](ClientFactory& f) { return connect_unix(*reactor_, os_, name, f); });
}

// A child that serves with no descriptor left: connections are shed with the reserve and the
// loop sleeps instead of spinning. Exit codes say which check failed.
TEST_F(NetLinux, AServerOutOfDescriptorsShedsConnectionsWithoutSpinning) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    sys::RealSyscalls os;
    auto reactor = make_reactor(os);
    ServerFactoryOf<Echo> factory;
    ListenOptions options;
    options.interface = "127.0.0.1";
    auto port = listen_tcp(*reactor, os, 0, factory, options);
    if (!reactor || !port) ::_exit(10);
    // Every descriptor number below the limit is taken: the next accept says EMFILE.
    const int lowest_free = ::dup(0);
    if (lowest_free < 0) ::_exit(11);
    ::close(lowest_free);
    const std::uint16_t number = (*port)->address().port();
    const rlimit low{static_cast<rlim_t>(lowest_free), static_cast<rlim_t>(lowest_free)};
    if (::write(ready[1], &number, sizeof number) != sizeof number) ::_exit(12);
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) ::_exit(13);
    const auto until = std::chrono::steady_clock::now() + 3s;
    int turns = 0;
    while ((*port)->shed() < 20 && std::chrono::steady_clock::now() < until) {
      reactor->run_until_current();
      if (!reactor->iterate(100ms)) ::_exit(14);
      ++turns;
    }
    if ((*port)->shed() < 20) ::_exit(15);
    // Shed: nothing is pending, so a second of waiting is a handful of turns, not a spin.
    turns = 0;
    const auto quiet = std::chrono::steady_clock::now() + 1s;
    while (std::chrono::steady_clock::now() < quiet) {
      reactor->run_until_current();
      if (!reactor->iterate(100ms)) ::_exit(16);
      ++turns;
    }
    ::_exit(turns <= 20 ? 0 : 17);
  }
  ::close(ready[1]);
  std::uint16_t number = 0;
  ASSERT_EQ(::read(ready[0], &number, sizeof number), static_cast<ssize_t>(sizeof number));
  ::close(ready[0]);
  auto to = *SocketAddress::ip("127.0.0.1", number);
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::connect(fd, to.data(), to.size()), 0) << "the backlog takes them";
    timeval wait{5, 0};
    ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait), 0);
    clients.push_back(fd);
  }
  for (int fd : clients) {
    char byte;
    EXPECT_EQ(::read(fd, &byte, 1), 0) << "each client is closed, not left waiting";
    ::close(fd);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 reactor, 13 setrlimit, 15 not all shed, 17 spinning";
}

// 10,000 connections open at once, between a server here and clients in a child (each side
// needs 10,000 descriptors, so the soft limit is raised within the hard one). Every client
// sends a ping, hears it echoed, and keeps its connection until all have; the server counts
// how many it held at once.
TEST_F(NetLinux, TenThousandConcurrentConnections) {
  constexpr int kConnections = 10000;
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  const rlim_t needed = kConnections + 64;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed) {
    GTEST_SKIP() << "the hard RLIMIT_NOFILE (" << limit.rlim_max << ") is below " << needed;
  }
  const rlimit raised{needed, limit.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);

  ServerFactoryOf<Echo> factory;
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(*reactor_, os_, 0, factory, options);
  ASSERT_TRUE(port) << to_string(port.error());
  const std::uint16_t number = (*port)->address().port();
  const auto started = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sys::RealSyscalls os;
    auto reactor = make_reactor(os);
    if (!reactor) ::_exit(10);
    struct Pinger : Protocol {
      int* echoed;
      explicit Pinger(int* e) : echoed(e) {}
      void connection_made(Connection& c) override { c.write("ping"); }
      void data_received(std::span<const std::byte> data) override {
        got += data.size();
        if (got == 4) ++*echoed;
      }
      std::size_t got = 0;
    };
    struct Clients : ClientFactory {
      int echoed = 0;
      int failed = 0;
      std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
        return std::make_unique<Pinger>(&echoed);
      }
      void connection_failed(const sys::Error&) override { ++failed; }
    } clients;
    std::vector<std::unique_ptr<Connector>> connectors;
    connectors.reserve(kConnections);
    for (int i = 0; i < kConnections; ++i) {
      connectors.push_back(connect_tcp(*reactor, os, "127.0.0.1", number, clients));
    }
    const bool all = run_until(
        *reactor, [&] { return clients.echoed + clients.failed == kConnections; }, 60s);
    if (!all) ::_exit(11);
    if (clients.failed > 0) ::_exit(12);
    connectors.clear();  // closes every connection at once
    ::_exit(0);
  }
  std::size_t most = 0;
  int status = 0;
  pid_t reaped = 0;
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (reaped == 0 && std::chrono::steady_clock::now() < deadline) {
    reactor_->run_until_current();
    ASSERT_TRUE(reactor_->iterate(10ms));
    most = std::max(most, (*port)->connections());
    reaped = ::waitpid(child, &status, WNOHANG);
  }
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the clients did not finish";
  }
  ASSERT_TRUE(run_until(*reactor_, [&] { return (*port)->connections() == 0; }));
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "11 not all echoed in time, 12 some failed to connect";
  EXPECT_EQ(most, static_cast<std::size_t>(kConnections));
  std::printf(
      "10,000 connections made, echoed and closed in %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
}

// What a server with many idle connections pays per connection, measured as the heap the
// allocator hands out (mallinfo2, chunk headers included) for N accepted connections that
// each echoed once and then sit idle: the Connection with its transport and place in the
// port's list, the protocol, and whatever the reactor allocates. Round 0 grows the reactor's
// per-descriptor table (40 bytes a descriptor, which round 1 reuses and so does not count: it
// is added by hand) and the thread's read buffer; round 1 is measured. Issue #15's target is
// 256 bytes; libuv's uv_tcp_t alone costs 269.
TEST_F(NetLinux, AnIdleAcceptedConnectionCostsAtMost256Bytes) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "ASan's allocator pads every block and mallinfo2 does not see it";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  GTEST_SKIP() << "ASan's allocator pads every block and mallinfo2 does not see it";
#endif
#endif
  constexpr int kConnections = 400;  // both ends in this process: within a soft limit of 1024
  constexpr std::size_t kReactorSlot = 40;
  ServerFactoryOf<Echo> factory;
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(*reactor_, os_, 0, factory, options);
  ASSERT_TRUE(port) << to_string(port.error());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons((*port)->address().port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<int> clients;
  clients.reserve(kConnections);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    const std::size_t before = ::mallinfo2().uordblks;
    for (int i = 0; i < kConnections; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to), 0);
      clients.push_back(fd);
      ASSERT_EQ(::write(fd, "ping", 4), 4);
    }
    // Each client's ping comes back before it is counted idle.
    std::size_t echoed = 0;
    ASSERT_TRUE(run_until(*reactor_, [&] {
      for (std::size_t i = echoed; i < clients.size(); ++i) {
        char pong[4];
        if (::recv(clients[i], pong, sizeof pong, MSG_DONTWAIT) != 4) break;
        ++echoed;
      }
      return echoed == clients.size();
    }));
    ASSERT_EQ((*port)->connections(), static_cast<std::size_t>(kConnections));
    reactor_->run_until_current();
    const std::size_t after = ::mallinfo2().uordblks;
    const std::size_t per_connection =
        (after > before ? after - before : 0) / kConnections + kReactorSlot;
    if (round == 1) {
      std::printf("an idle accepted connection: %zu bytes\n", per_connection);
      EXPECT_LE(per_connection, 256u);
    }
    for (const int fd : clients) ::close(fd);
    clients.clear();
    ASSERT_TRUE(run_until(*reactor_, [&] { return (*port)->connections() == 0; }));
  }
}

// ---- Descriptor passing and peer credentials on the real kernel ---------------------------

struct Taker : Protocol, DescriptorReceiver {
  std::string* data;
  std::vector<OwnedFd>* kept;
  std::vector<std::string>* events;
  void data_received(std::span<const std::byte> bytes) override {
    data->append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    events->push_back("data");
  }
  void descriptors_received(std::vector<OwnedFd> fds) override {
    events->push_back(fmt::format("fds:{}", fds.size()));
    for (auto& f : fds) kept->push_back(std::move(f));
  }
  void descriptors_truncated(std::size_t closed) override {
    events->push_back(fmt::format("truncated:{}", closed));
  }
};

struct TakerFactory : ServerFactory {
  std::string data;
  std::vector<OwnedFd> kept;
  std::vector<std::string> events;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    auto p = std::make_unique<Taker>();
    p->data = &data;
    p->kept = &kept;
    p->events = &events;
    return p;
  }
};

struct Quiet : Protocol {
  void data_received(std::span<const std::byte>) override {}
};

class NetLinuxDescriptors : public NetLinux {
 protected:
  // Both ends of a socketpair on the reactor: a receiver's and a sender's connection.
  void SetUp() override {
    NetLinux::SetUp();
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto r = adopt_stream_connection(*reactor_, os_, OwnedFd(os_, sv[0]), taker_);
    ASSERT_TRUE(r) << to_string(r.error());
    receiver_ = std::move(*r);
    auto s = adopt_stream_connection(*reactor_, os_, OwnedFd(os_, sv[1]), quiet_);
    ASSERT_TRUE(s) << to_string(s.error());
    sender_ = std::move(*s);
  }
  // The lowest descriptor number free now.
  static int lowest_free() {
    const int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    return fd;
  }

  TakerFactory taker_;
  ServerFactoryOf<Quiet> quiet_;
  std::unique_ptr<Connection> receiver_;
  std::unique_ptr<Connection> sender_;
};

TEST_F(NetLinuxDescriptors, APipeCrossesTheSocketAndIsReadThrough) {
  int pipe[2];
  ASSERT_EQ(::pipe2(pipe, O_CLOEXEC), 0);
  const int ends[] = {pipe[0]};
  ASSERT_TRUE(sender_->write_with_descriptors("x", ends));
  ::close(pipe[0]);  // the connection sent its own copy
  ASSERT_EQ(::write(pipe[1], "through the pipe", 16), 16);
  ::close(pipe[1]);
  ASSERT_TRUE(run_until(*reactor_, [&] { return taker_.data == "x"; }));
  EXPECT_EQ(taker_.events, (std::vector<std::string>{"fds:1", "data"}));
  ASSERT_EQ(taker_.kept.size(), 1u);
  EXPECT_NE(::fcntl(taker_.kept[0].get(), F_GETFD) & FD_CLOEXEC, 0);
  char buf[32];
  const ssize_t n = ::read(taker_.kept[0].get(), buf, sizeof buf);
  ASSERT_EQ(n, 16);
  EXPECT_EQ(std::string(buf, 16), "through the pipe");
}

TEST_F(NetLinuxDescriptors, MoreThanAReadTakesAreClosedAndReported) {
  int pipe[2];
  ASSERT_EQ(::pipe2(pipe, O_CLOEXEC), 0);
  const int free_before = lowest_free();
  const std::vector<int> many(StreamTransport::kMaxDescriptorsPerRead + 1, pipe[0]);
  ASSERT_TRUE(sender_->write_with_descriptors("m", many));
  ASSERT_TRUE(run_until(*reactor_, [&] { return taker_.data == "m"; }));
  EXPECT_EQ(taker_.events,
            (std::vector<std::string>{
                fmt::format("truncated:{}", StreamTransport::kMaxDescriptorsPerRead), "data"}));
  EXPECT_EQ(lowest_free(), free_before);
  ::close(pipe[0]);
  ::close(pipe[1]);
}

TEST_F(NetLinuxDescriptors, PeerCredentialsNameThisProcess) {
  auto credentials = receiver_->peer_credentials();
  ASSERT_TRUE(credentials) << sys::to_string(credentials.error());
  EXPECT_EQ(*credentials, (PeerCredentials{::getpid(), ::geteuid(), ::getegid()}));
}

}  // namespace
}  // namespace daemonkit::core
