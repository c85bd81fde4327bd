// echod's server on the reactor, with its clients in the same fake kernel: the loop is turned
// by hand (run_until_current + iterate with a zero timeout), so nothing sleeps or blocks.
// Echoes, many clients at once, a client that sends and never reads, a hang-up, a SIGTERM
// routed through the reactor, the listen failures named by step, and an adopted socket.
#include "echo_server.h"
#include "echo_service.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/app/stream_server_service.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace echod {
namespace {

using daemonkit::core::Duration;
using daemonkit::core::OwnedFd;
using daemonkit::core::Reactor;
using daemonkit::core::ReactorOptions;
using daemonkit::core::SignalRouting;
using daemonkit::core::SocketAddress;
using daemonkit::fake::FakeSyscalls;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct World {
  FakeSyscalls os;
  std::vector<std::string> log;
  std::unique_ptr<Reactor> reactor;

  World() {
    ReactorOptions options;
    options.log = [this](std::string_view line) { log.emplace_back(line); };
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  std::unique_ptr<EchoServer> listen(const std::string& host = "127.0.0.1",
                                     std::uint16_t port = 0) {
    auto server = EchoServer::listen(*reactor, os, host, port,
                                     [this](std::string_view line) { log.emplace_back(line); });
    EXPECT_TRUE(server) << (server ? "" : server.error().message);
    return server ? std::move(*server) : nullptr;
  }

  void spin(int turns = 8) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  // A non-blocking client socket connected to the server.
  int client(const EchoServer& server) {
    const std::string address = server.address();
    const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto to = *SocketAddress::ip("127.0.0.1", port);
    auto done = os.connect(fd, to.data(), to.size());
    EXPECT_TRUE(done || done.error().code == EINPROGRESS);
    return fd;
  }

  // Everything readable now; `eof` says whether the peer closed.
  std::string read_all(int fd, bool* eof = nullptr) {
    std::string out;
    char buf[65536];
    for (;;) {
      auto n = os.read(fd, buf, sizeof buf);
      if (eof != nullptr) *eof = n && *n == 0;
      if (!n || *n == 0) return out;
      out.append(buf, *n);
    }
  }

  // Calls the handler the reactor installed for `sig`, as the kernel does on delivery (the
  // fake kernel records a signal as pending but never runs handlers).
  void deliver(int sig) {
    struct sigaction current {};
    ASSERT_TRUE(os.sigaction(sig, nullptr, &current));
    ASSERT_EQ(current.sa_handler, &SignalRouting::handle) << "signal " << sig << " not routed";
    current.sa_handler(sig);
  }
};

TEST(EchodFake, EchoesWhatAClientSends) {
  World w;
  auto server = w.listen();
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->address(), StartsWith("127.0.0.1:"));
  EXPECT_NE(server->address(), "127.0.0.1:0") << "port 0 resolved to the port bound";
  const int client = w.client(*server);
  ASSERT_EQ(*w.os.write(client, "hello, echod\n", 13), 13u);
  w.spin();
  EXPECT_EQ(w.read_all(client), "hello, echod\n");
  EXPECT_EQ(server->connections(), 1u);
}

TEST(EchodFake, ManyClientsEachGetTheirOwnBytesBack) {
  World w;
  auto server = w.listen();
  ASSERT_NE(server, nullptr);
  const std::size_t idle_fds = w.os.open_fds(w.os.current_pid()).size();
  // More than one accept batch (64 per wake-up).
  std::vector<int> clients;
  for (int i = 0; i < 200; ++i) clients.push_back(w.client(*server));
  w.spin(2);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string line = fmt::format("client {}\n", i);
    ASSERT_TRUE(w.os.write(clients[i], line.data(), line.size()));
  }
  w.spin();
  EXPECT_EQ(server->connections(), clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(w.read_all(clients[i]), fmt::format("client {}\n", i));
  }
  // Each hangs up: the server closes its end and forgets the connection.
  for (int fd : clients) ASSERT_TRUE(w.os.close(fd));
  w.spin();
  EXPECT_EQ(server->connections(), 0u);
  EXPECT_EQ(w.os.open_fds(w.os.current_pid()).size(), idle_fds);
}

TEST(EchodFake, AClientThatNeverReadsIsPausedAndOthersAreStillServed) {
  World w;
  auto server = w.listen();
  ASSERT_NE(server, nullptr);
  const int greedy = w.client(*server);
  // Send until the kernel refuses more: without the pause the server would read (and buffer)
  // everything, and these writes would never block.
  const std::string chunk(16 * 1024, 'x');
  std::string sent;
  int refused_in_a_row = 0;
  while (refused_in_a_row < 3 && sent.size() < 16u * 1024 * 1024) {
    const std::string piece(chunk.size(),
                            static_cast<char>('a' + (sent.size() / chunk.size()) % 26));
    auto n = w.os.write(greedy, piece.data(), piece.size());
    if (n) {
      sent.append(piece, 0, *n);
      refused_in_a_row = 0;
    } else {
      ASSERT_EQ(n.error().code, EAGAIN);
      ++refused_in_a_row;
    }
    w.spin(2);
  }
  ASSERT_EQ(refused_in_a_row, 3) << "sent " << sent.size() << " bytes and never blocked";
  // Both socket buffers, the high-water mark and one wake-up's reads: well under 2 MiB.
  EXPECT_LT(sent.size(), 2u * 1024 * 1024);

  const int polite = w.client(*server);
  ASSERT_TRUE(w.os.write(polite, "still there?", 12));
  w.spin();
  EXPECT_EQ(w.read_all(polite), "still there?");

  // Once the greedy client reads, the server resumes and echoes the rest, in order.
  std::string echoed;
  for (int i = 0; i < 200 && echoed.size() < sent.size(); ++i) {
    echoed += w.read_all(greedy);
    w.spin(1);
  }
  EXPECT_EQ(echoed.size(), sent.size());
  EXPECT_TRUE(echoed == sent) << "the echo differs from what was sent";
}

TEST(EchodFake, AClientThatHalfClosesGetsItsEchoThenEof) {
  World w;
  auto server = w.listen();
  ASSERT_NE(server, nullptr);
  const int client = w.client(*server);
  ASSERT_TRUE(w.os.write(client, "last words", 10));
  ASSERT_TRUE(w.os.shutdown(client, SHUT_WR));
  w.spin();
  bool eof = false;
  EXPECT_EQ(w.read_all(client, &eof), "last words");
  EXPECT_TRUE(eof);
  EXPECT_EQ(server->connections(), 0u);
}

TEST(EchodFake, SigtermIsRoutedThroughTheLoopAndStopsIt) {
  World w;
  auto server = w.listen();
  ASSERT_NE(server, nullptr);
  const int client = w.client(*server);
  ASSERT_TRUE(w.os.write(client, "ping", 4));
  std::string echoed;
  w.reactor->call_later(std::chrono::milliseconds(10), [&] {
    echoed = w.read_all(client);
    ASSERT_TRUE(w.os.kill(w.os.getpid(), SIGTERM));
    EXPECT_TRUE(w.os.process(w.os.getpid()).alive()) << "SIGTERM is caught, not fatal";
    w.deliver(SIGTERM);
  });
  ASSERT_TRUE(w.reactor->run());
  EXPECT_EQ(echoed, "ping");
  EXPECT_EQ(w.reactor->exit_signal(), SIGTERM);
  EXPECT_THAT(w.log, Contains("Received SIGTERM, shutting down."));
  // run() gave SIGTERM back to its previous owner (the default) when it returned.
  struct sigaction after {};
  ASSERT_TRUE(w.os.sigaction(SIGTERM, nullptr, &after));
  EXPECT_EQ(after.sa_handler, SIG_DFL);

  // The server closes its listener and its connection; the client sees EOF.
  server.reset();
  bool eof = false;
  EXPECT_EQ(w.read_all(client, &eof), "");
  EXPECT_TRUE(eof);
}

TEST(EchodFake, ABusyPortIsReportedWithTheStep) {
  World w;
  const int holder = *w.os.socket(AF_INET, SOCK_STREAM, 0);
  auto at = *SocketAddress::ip("127.0.0.1", 7007);
  ASSERT_TRUE(w.os.bind(holder, at.data(), at.size()));
  ASSERT_TRUE(w.os.listen(holder, 1));
  auto server = EchoServer::listen(*w.reactor, w.os, "127.0.0.1", 7007);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message, "bind(127.0.0.1:7007): Address already in use (EADDRINUSE)");
  EXPECT_EQ(server.error().error_number(), EADDRINUSE);
}

TEST(EchodFake, AnAddressOffLoopbackCannotBeBoundOnTheFakeMachine) {
  World w;
  auto server = EchoServer::listen(*w.reactor, w.os, "192.0.2.7", 7007);
  ASSERT_FALSE(server);
  EXPECT_THAT(server.error().message, HasSubstr("bind(192.0.2.7:7007)"));
  EXPECT_EQ(server.error().error_number(), EADDRNOTAVAIL);
}

TEST(EchodFake, EveryFailingStepOfListenIsNamedAndLeavesNoDescriptor) {
  std::size_t calls = 0;
  {
    World probe;
    probe.os.clear_transcript();
    auto server = EchoServer::listen(*probe.reactor, probe.os, "127.0.0.1", 0);
    ASSERT_TRUE(server);
    calls = probe.os.transcript().size();
  }
  ASSERT_GE(calls, 5u) << "socket, setsockopt, bind, listen, getsockname at least";
  for (std::size_t i = 0; i < calls; ++i) {
    World w;
    const std::size_t before = w.os.open_fds(w.os.current_pid()).size();
    w.os.clear_transcript();
    w.os.fail_call_at(i);
    auto server = EchoServer::listen(*w.reactor, w.os, "127.0.0.1", 0,
                                     [&w](std::string_view line) { w.log.emplace_back(line); });
    const auto& failed = w.os.transcript().at(i);
    if (failed.name == "close") continue;  // a close on the way out, after the step failed
    if (failed.name == "open") {
      // The reserve descriptor for EMFILE recovery: the server goes on without it, and says so.
      ASSERT_TRUE(server) << server.error().message;
      EXPECT_THAT(w.log, Contains(HasSubstr("could not reserve a descriptor")));
      continue;
    }
    ASSERT_FALSE(server) << "no error when " << failed.to_string();
    EXPECT_THAT(server.error().message, HasSubstr(failed.name)) << failed.to_string();
    EXPECT_EQ(server.error().error_number(), FakeSyscalls::typical_errno(failed.name));
    EXPECT_EQ(w.os.open_fds(w.os.current_pid()).size(), before) << failed.to_string();
  }
}

TEST(EchodFake, ServesOnAnAdoptedListeningSocket) {
  World w;
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto at = *SocketAddress::ip("127.0.0.1", 7007);
  ASSERT_TRUE(w.os.bind(fd, at.data(), at.size()));
  ASSERT_TRUE(w.os.listen(fd, 16));
  auto server = EchoServer::adopt(*w.reactor, w.os, OwnedFd(w.os, fd));
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ((*server)->address(), "127.0.0.1:7007");
  const int client = w.client(**server);
  ASSERT_TRUE(w.os.write(client, "activated", 9));
  w.spin();
  EXPECT_EQ(w.read_all(client), "activated");
}

TEST(EchodFake, AnAdoptedSocketThatIsNotListeningIsRefusedAndClosed) {
  World w;
  const std::size_t before = w.os.open_fds(w.os.current_pid()).size();
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto server = EchoServer::adopt(*w.reactor, w.os, OwnedFd(w.os, fd));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().error_number(), EINVAL) << server.error().message;
  EXPECT_EQ(w.os.open_fds(w.os.current_pid()).size(), before);
}

// ---- The "echo" command: echod's service maker, as app::run calls it. ----------------------

struct Made {
  tl::expected<std::shared_ptr<daemonkit::core::Service>, std::string> service;
  std::string endpoint;  // the canonical string the service listens on
};

Made make_echo(World& w, daemonkit::core::ActivatedSockets& passed,
               std::vector<std::pair<std::string, std::string>> values) {
  daemonkit::core::Application app("echod");
  const daemonkit::core::ServiceContext context{
      *w.reactor, w.os, [&w](std::string_view line) { w.log.emplace_back(line); }, passed, app};
  daemonkit::core::MakerOptions options;
  options.values = std::move(values);
  Made made{echo_maker().make(options, context), ""};
  if (made.service) {
    auto* server = dynamic_cast<daemonkit::core::StreamServerService*>(made.service->get());
    if (server != nullptr) made.endpoint = daemonkit::core::to_string(server->endpoint());
  }
  return made;
}

TEST(EchodMaker, APortNumberIsLoopbackTcpAndAnEndpointStringIsTakenAsGiven) {
  World w;
  daemonkit::core::ActivatedSockets none;
  EXPECT_EQ(make_echo(w, none, {}).endpoint, make_echo(w, none, {{"port", "7007"}}).endpoint);
  EXPECT_THAT(make_echo(w, none, {{"port", "0"}}).endpoint, StartsWith("tcp:0:"));
  EXPECT_THAT(make_echo(w, none, {{"port", "0"}}).endpoint, HasSubstr("interface=127.0.0.1"));
  EXPECT_EQ(make_echo(w, none, {{"port", "unix:/run/echod.sock"}}).endpoint,
            "unix:/run/echod.sock");
}

TEST(EchodMaker, ABadEndpointIsAUsageErrorNamingTheOption) {
  World w;
  daemonkit::core::ActivatedSockets none;
  const Made made = make_echo(w, none, {{"port", "tcp:http"}});
  ASSERT_FALSE(made.service);
  EXPECT_THAT(made.service.error(), StartsWith("--port: tcp: "));
}

TEST(EchodMaker, StartedWithPassedSocketsAndNoPortItServesOnTheFirst) {
  World w;
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto at = *SocketAddress::ip("127.0.0.1", 7010);
  ASSERT_TRUE(w.os.bind(fd, at.data(), at.size()));
  ASSERT_TRUE(w.os.listen(fd, 16));
  std::vector<OwnedFd> fds;
  fds.emplace_back(w.os, fd);
  daemonkit::core::ActivatedSockets passed(std::move(fds), {"echo"});
  const Made made = make_echo(w, passed, {});
  ASSERT_TRUE(made.service) << made.service.error();
  EXPECT_THAT(made.endpoint, StartsWith("systemd:"));
  ASSERT_TRUE((*made.service)->start()) << "adopts the passed socket";
  EXPECT_THAT(w.log, Contains("listening on 127.0.0.1:7010"));
  const int client = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto done = w.os.connect(client, at.data(), at.size());
  ASSERT_TRUE(done || done.error().code == EINPROGRESS);
  ASSERT_TRUE(w.os.write(client, "passed", 6));
  w.spin();
  EXPECT_EQ(w.read_all(client), "passed");
  (void)(*made.service)->stop();
}

}  // namespace
}  // namespace echod
