// echod's "echo" service as app::run makes it (its ServiceMaker), with its clients in the same
// fake kernel: the loop is turned by hand (run_until_current + iterate with a zero timeout), so
// nothing sleeps or blocks. Echoes, many clients at once, a client that sends and never reads,
// a hang-up, a SIGTERM routed through the reactor, the listen failures named by step, sockets
// passed by a service manager, and the maker's command line.
#include "echo_service.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/core/app/application.h"
#include "daemonkit/core/app/stream_server_service.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/reactor/signal_routing.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace echod {
namespace {

using daemonkit::core::ActivatedSockets;
using daemonkit::core::Application;
using daemonkit::core::Duration;
using daemonkit::core::MakerOptions;
using daemonkit::core::OwnedFd;
using daemonkit::core::Reactor;
using daemonkit::core::ReactorOptions;
using daemonkit::core::Service;
using daemonkit::core::ServiceContext;
using daemonkit::core::SignalRouting;
using daemonkit::core::SocketAddress;
using daemonkit::core::StepResult;
using daemonkit::core::StreamServerService;
using daemonkit::fake::FakeSyscalls;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The service the "echo" command made, started.
struct Server {
  std::shared_ptr<Service> service;

  StreamServerService& stream() const { return dynamic_cast<StreamServerService&>(*service); }
  std::string address() const { return daemonkit::core::to_string(stream().port()->address()); }
  std::size_t connections() const { return stream().port()->connections(); }
};

struct World {
  FakeSyscalls os;
  std::vector<std::string> log;
  std::unique_ptr<Reactor> reactor;
  Application app{"echod"};
  ActivatedSockets passed;

  World() {
    ReactorOptions options;
    options.log = [this](std::string_view line) { log.emplace_back(line); };
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  // The "echo" command's service, made as app::run makes it (no --port: none given) but not
  // started.
  tl::expected<std::shared_ptr<Service>, std::string> make(std::optional<std::string> port) {
    const ServiceContext context{
        *reactor, os, [this](std::string_view line) { log.emplace_back(line); }, passed, app};
    MakerOptions options;
    if (port) options.values = {{"port", *port}};
    return echo_maker().make(options, context);
  }

  // Made and started: the start's error, or the running server.
  StepResult<Server> start(std::optional<std::string> port) {
    auto made = make(std::move(port));
    EXPECT_TRUE(made) << made.error();
    if (!made)
      return daemonkit::core::step_failed(
          daemonkit::core::StepError::plain(daemonkit::core::StepKind::kOptions, made.error()));
    if (auto started = (*made)->start(); !started) return tl::unexpected(started.error());
    return Server{*made};
  }

  // Listening on loopback, on a port the kernel picks.
  Server listen() {
    auto server = start("0");
    EXPECT_TRUE(server) << (server ? "" : server.error().message);
    return server ? *server : Server{};
  }

  void spin(int turns = 8) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  // A non-blocking client socket connected to the server.
  int client(const Server& server) {
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

  // A listening TCP socket on 127.0.0.1:port, as a service manager passes it.
  void pass_listening_socket(std::uint16_t port, bool listening = true) {
    const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto at = *SocketAddress::ip("127.0.0.1", port);
    ASSERT_TRUE(os.bind(fd, at.data(), at.size()));
    if (listening) {
      ASSERT_TRUE(os.listen(fd, 16));
    }
    std::vector<OwnedFd> fds;
    fds.emplace_back(os, fd);
    passed = ActivatedSockets(std::move(fds), {"echo"});
  }
};

TEST(EchodFake, EchoesWhatAClientSends) {
  World w;
  const Server server = w.listen();
  ASSERT_NE(server.service, nullptr);
  EXPECT_THAT(server.address(), StartsWith("127.0.0.1:"));
  EXPECT_NE(server.address(), "127.0.0.1:0") << "port 0 resolved to the port bound";
  const int client = w.client(server);
  ASSERT_EQ(*w.os.write(client, "hello, echod\n", 13), 13u);
  w.spin();
  EXPECT_EQ(w.read_all(client), "hello, echod\n");
  EXPECT_EQ(server.connections(), 1u);
}

TEST(EchodFake, ManyClientsEachGetTheirOwnBytesBack) {
  World w;
  const Server server = w.listen();
  ASSERT_NE(server.service, nullptr);
  const std::size_t idle_fds = w.os.open_fds(w.os.current_pid()).size();
  // More than one accept batch (64 per wake-up).
  std::vector<int> clients;
  for (int i = 0; i < 200; ++i) clients.push_back(w.client(server));
  w.spin(2);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string line = fmt::format("client {}\n", i);
    ASSERT_TRUE(w.os.write(clients[i], line.data(), line.size()));
  }
  w.spin();
  EXPECT_EQ(server.connections(), clients.size());
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(w.read_all(clients[i]), fmt::format("client {}\n", i));
  }
  // Each hangs up: the server closes its end and forgets the connection.
  for (int fd : clients) ASSERT_TRUE(w.os.close(fd));
  w.spin();
  EXPECT_EQ(server.connections(), 0u);
  EXPECT_EQ(w.os.open_fds(w.os.current_pid()).size(), idle_fds);
}

TEST(EchodFake, AClientThatNeverReadsIsPausedAndOthersAreStillServed) {
  World w;
  const Server server = w.listen();
  ASSERT_NE(server.service, nullptr);
  const int greedy = w.client(server);
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

  const int polite = w.client(server);
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
  const Server server = w.listen();
  ASSERT_NE(server.service, nullptr);
  const int client = w.client(server);
  ASSERT_TRUE(w.os.write(client, "last words", 10));
  ASSERT_TRUE(w.os.shutdown(client, SHUT_WR));
  w.spin();
  bool eof = false;
  EXPECT_EQ(w.read_all(client, &eof), "last words");
  EXPECT_TRUE(eof);
  EXPECT_EQ(server.connections(), 0u);
}

TEST(EchodFake, SigtermIsRoutedThroughTheLoopAndStopsIt) {
  World w;
  const Server server = w.listen();
  ASSERT_NE(server.service, nullptr);
  const int client = w.client(server);
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

  // Stopped (no drain asked for), the service closes its listener and the connection; the
  // client sees EOF.
  const auto stopped = server.service->stop();
  w.spin();
  EXPECT_TRUE(stopped.completed());
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
  auto server = w.start("7007");
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message,
            "tcp: bind(127.0.0.1:7007): Address already in use (EADDRINUSE)");
  EXPECT_EQ(server.error().error_number(), EADDRINUSE);
}

TEST(EchodFake, AnAddressOffLoopbackCannotBeBoundOnTheFakeMachine) {
  World w;
  auto server = w.start("tcp:7007:interface=192.0.2.7");
  ASSERT_FALSE(server);
  EXPECT_THAT(server.error().message, HasSubstr("bind(192.0.2.7:7007)"));
  EXPECT_EQ(server.error().error_number(), EADDRNOTAVAIL);
}

TEST(EchodFake, EveryFailingStepOfListenIsNamedAndLeavesNoDescriptor) {
  std::size_t calls = 0;
  {
    World probe;
    probe.os.clear_transcript();
    const auto server = probe.start("0");
    ASSERT_TRUE(server);
    calls = probe.os.transcript().size();
  }
  ASSERT_GE(calls, 5u) << "socket, setsockopt, bind, listen, getsockname at least";
  for (std::size_t i = 0; i < calls; ++i) {
    World w;
    const std::size_t before = w.os.open_fds(w.os.current_pid()).size();
    w.os.clear_transcript();
    w.os.fail_call_at(i);
    auto server = w.start("0");
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

// A socket unit's socket, with no --port: the service serves on it.
TEST(EchodFake, ServesOnASocketPassedByAServiceManager) {
  World w;
  w.pass_listening_socket(7007);
  auto server = w.start(std::nullopt);
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_THAT(daemonkit::core::to_string(server->stream().endpoint()), StartsWith("systemd:"));
  EXPECT_EQ(server->address(), "127.0.0.1:7007");
  EXPECT_THAT(w.log, Contains("listening on 127.0.0.1:7007"));
  const int client = w.client(*server);
  ASSERT_TRUE(w.os.write(client, "activated", 9));
  w.spin();
  EXPECT_EQ(w.read_all(client), "activated");
}

TEST(EchodFake, APassedSocketThatIsNotListeningIsRefusedAndClosed) {
  World w;
  const std::size_t before = w.os.open_fds(w.os.current_pid()).size();
  w.pass_listening_socket(7007, /*listening=*/false);
  auto server = w.start(std::nullopt);
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().error_number(), EINVAL) << server.error().message;
  w.passed = ActivatedSockets();
  EXPECT_EQ(w.os.open_fds(w.os.current_pid()).size(), before);
}

// ---- The "echo" command: echod's service maker, as app::run calls it. ----------------------

std::string endpoint_of(World& w, std::optional<std::string> port) {
  auto made = w.make(std::move(port));
  if (!made) return "error: " + made.error();
  return daemonkit::core::to_string(dynamic_cast<StreamServerService&>(**made).endpoint());
}

TEST(EchodMaker, APortNumberIsLoopbackTcpAndAnEndpointStringIsTakenAsGiven) {
  World w;
  EXPECT_EQ(endpoint_of(w, std::nullopt), endpoint_of(w, "7007"));
  EXPECT_THAT(endpoint_of(w, "0"), StartsWith("tcp:0:"));
  EXPECT_THAT(endpoint_of(w, "0"), HasSubstr("interface=127.0.0.1"));
  EXPECT_EQ(endpoint_of(w, "unix:/run/echod.sock"), "unix:/run/echod.sock");
}

TEST(EchodMaker, ABadEndpointIsAUsageErrorNamingTheOption) {
  World w;
  auto made = w.make("tcp:http");
  ASSERT_FALSE(made);
  EXPECT_THAT(made.error(), StartsWith("--port: tcp: "));
}

TEST(EchodMaker, APortGivenWinsOverPassedSockets) {
  World w;
  w.pass_listening_socket(7010);
  EXPECT_THAT(endpoint_of(w, "0"), StartsWith("tcp:0:"));
  EXPECT_THAT(endpoint_of(w, std::nullopt), StartsWith("systemd:"));
}

}  // namespace
}  // namespace echod
