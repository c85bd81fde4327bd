// Socket activation on the fake kernel: $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES read as
// sd_listen_fds does (pid check, names, close-on-exec, every bad value refused with its name),
// adopted listening sockets serving connections, and adopted connected sockets.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"

namespace daemonkit::core {
namespace {

using fake::FailsWith;
using fake::FakeSyscalls;
using fake::IsOk;
using testing::ElementsAre;

// A process that was handed `count` listening TCP sockets on 3, 4, ...
struct Activated {
  FakeSyscalls os;
  std::vector<std::uint16_t> ports;

  explicit Activated(int count) {
    // 0, 1 and 2 taken, as in any started process.
    while (*os.open("/dev/null", O_RDWR, 0) < ActivatedSockets::kFirstFd - 1) {
    }
    for (int i = 0; i < count; ++i) {
      const int fd = *os.socket(AF_INET, SOCK_STREAM, 0);
      EXPECT_EQ(fd, ActivatedSockets::kFirstFd + i);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_TRUE(os.bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address));
      EXPECT_TRUE(os.listen(fd, 16));
      socklen_t len = sizeof address;
      EXPECT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len));
      ports.push_back(ntohs(address.sin_port));
    }
  }

  ActivationVariables variables(std::string fds, std::optional<std::string> names = {}) {
    return {std::to_string(os.getpid()), std::move(fds), std::move(names)};
  }

  bool cloexec(int fd) { return (*os.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC) != 0; }
  bool open(int fd) { return os.fcntl(fd, F_GETFD, 0).has_value(); }
};

TEST(SocketActivation, VariablesComeFromTheEnvironmentArrayAndEmptyMeansUnset) {
  const char* const envp[] = {"PATH=/bin",       "LISTEN_PID=42", "LISTEN_FDS=2",
                              "LISTEN_FDNAMES=", "LISTEN_FDSX=9", nullptr};
  const auto v = ActivationVariables::from_envp(envp);
  EXPECT_EQ(v.listen_pid, "42");
  EXPECT_EQ(v.listen_fds, "2");
  EXPECT_EQ(v.listen_fdnames, std::nullopt);
  EXPECT_EQ(ActivationVariables::from_envp(nullptr).listen_pid, std::nullopt);
}

TEST(SocketActivation, TakingFromTheEnvironmentRemovesTheVariables) {
  ASSERT_EQ(::setenv("LISTEN_PID", "7", 1), 0);
  ASSERT_EQ(::setenv("LISTEN_FDS", "1", 1), 0);
  ASSERT_EQ(::setenv("LISTEN_FDNAMES", "web", 1), 0);
  const auto v = ActivationVariables::take_from_environment();
  EXPECT_EQ(v.listen_pid, "7");
  EXPECT_EQ(v.listen_fds, "1");
  EXPECT_EQ(v.listen_fdnames, "web");
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) {
    EXPECT_EQ(std::getenv(name), nullptr) << name;
  }
}

TEST(SocketActivation, NothingWasPassedWithoutTheVariablesOrToAnotherProcess) {
  Activated a(2);
  a.os.clear_transcript();
  for (const ActivationVariables& v :
       {ActivationVariables{}, ActivationVariables{std::nullopt, "2", std::nullopt},
        ActivationVariables{std::to_string(a.os.getpid()), std::nullopt, std::nullopt},
        ActivationVariables{std::to_string(a.os.getpid() + 1), "2", std::nullopt}}) {
    auto got = listen_fds(a.os, v);
    ASSERT_THAT(got, IsOk());
    EXPECT_TRUE(got->empty());
  }
  EXPECT_THAT(a.os.transcript(),
              testing::Not(testing::Contains(testing::Field(&fake::CallRecord::name, "fcntl"))))
      << "not ours: not even looked at";
  EXPECT_TRUE(a.open(3));
  EXPECT_TRUE(a.open(4));
}

TEST(SocketActivation, PassedSocketsAreTakenByIndexOrNameAndMadeCloseOnExec) {
  Activated a(3);
  EXPECT_FALSE(a.cloexec(3));
  auto got = listen_fds(a.os, a.variables("3", "web:admin:web"));
  ASSERT_THAT(got, IsOk());
  EXPECT_THAT(got->names(), ElementsAre("web", "admin", "web"));
  for (int fd : {3, 4, 5}) EXPECT_TRUE(a.cloexec(fd)) << fd;
  auto admin = got->take("admin");
  ASSERT_THAT(admin, IsOk());
  EXPECT_EQ(admin->get(), 4);
  EXPECT_EQ(got->take("web")->get(), 3);
  EXPECT_EQ(got->take("web")->get(), 5) << "the second socket of that name";
  EXPECT_THAT(got->take("web"), FailsWith(ENOENT));
  EXPECT_EQ(sys::to_string(got->take(1).error()),
            "socket activation(index 1 of 3): No such file or directory (ENOENT)")
      << "taken already";
  EXPECT_EQ(sys::to_string(got->take("db").error()),
            "socket activation(name db): No such file or directory (ENOENT)");
}

TEST(SocketActivation, WithoutNamesEachIsUnknownAndUntakenSocketsAreClosedWithTheSet) {
  Activated a(2);
  {
    auto got = listen_fds(a.os, a.variables("2"));
    ASSERT_THAT(got, IsOk());
    EXPECT_THAT(got->names(), ElementsAre("unknown", "unknown"));
    auto first = got->take(0);
    ASSERT_THAT(first, IsOk());
    (void)first->release();  // kept open past the set, as a caller that adopts it would
  }
  EXPECT_TRUE(a.open(3));
  EXPECT_FALSE(a.open(4)) << "nobody took it: closed, not leaked";
}

TEST(SocketActivation, BadValuesAreRefusedNamingTheVariable) {
  Activated a(2);
  const std::string pid = std::to_string(a.os.getpid());
  struct Case {
    ActivationVariables v;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"abc", "2", std::nullopt}, "socket activation(LISTEN_PID=abc)"},
      {{"-1", "2", std::nullopt}, "socket activation(LISTEN_PID=-1)"},
      {{"+" + pid, "2", std::nullopt}, "socket activation(LISTEN_PID=+" + pid + ")"},
      {{pid, "two", std::nullopt}, "socket activation(LISTEN_FDS=two)"},
      {{pid, "2 ", std::nullopt}, "socket activation(LISTEN_FDS=2 )"},
      {{pid, "-2", std::nullopt}, "socket activation(LISTEN_FDS=-2)"},
      {{pid, "99999999999999999999", std::nullopt},
       "socket activation(LISTEN_FDS=99999999999999999999)"},
      {{pid, "2", "web"}, "socket activation(LISTEN_FDNAMES=web)"},
      {{pid, "2", "a:b:c"}, "socket activation(LISTEN_FDNAMES=a:b:c)"},
  };
  for (const Case& c : cases) {
    auto got = listen_fds(a.os, c.v);
    ASSERT_FALSE(got) << c.message;
    EXPECT_EQ(sys::to_string(got.error()), c.message + ": Invalid argument (EINVAL)");
  }
  EXPECT_FALSE(a.cloexec(3)) << "refused before any descriptor was touched";
}

TEST(SocketActivation, ACountBeyondWhatIsOpenFailsAtTheFirstClosedNumberAndClosesTheRest) {
  Activated a(2);
  auto got = listen_fds(a.os, a.variables("1000000"));
  ASSERT_FALSE(got);
  EXPECT_EQ(sys::to_string(got.error()), "fcntl(descriptor 5): Bad file descriptor (EBADF)");
  EXPECT_FALSE(a.open(3));
  EXPECT_FALSE(a.open(4));
}

TEST(SocketActivation, FcntlFailuresAreReportedWithTheDescriptor) {
  for (const int nth : {1, 2}) {  // F_GETFD, then F_SETFD, of descriptor 3
    Activated a(1);
    a.os.fail_nth("fcntl", nth, EIO);
    auto got = listen_fds(a.os, a.variables("1"));
    ASSERT_FALSE(got);
    EXPECT_EQ(sys::to_string(got.error()), "fcntl(descriptor 3): Input/output error (EIO)");
  }
}

// ---- Adopting --------------------------------------------------------------------------------

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

struct Collect : Protocol {
  std::string* into;
  explicit Collect(std::string* s) : into(s) {}
  void connection_made(Connection& c) override { c.write("ping"); }
  void data_received(std::span<const std::byte> data) override {
    into->append(reinterpret_cast<const char*>(data.data()), data.size());
    if (*into == "ping") connection().lose_connection();
  }
};

struct Client : ClientFactory {
  std::string got;
  std::vector<std::string> failures;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Collect>(&got);
  }
  void connection_failed(const sys::Error& e) override { failures.push_back(sys::to_string(e)); }
};

std::unique_ptr<Reactor> reactor_on(FakeSyscalls& os) {
  ReactorOptions options;
  options.install_signal_handlers = false;
  auto made = Reactor::create(os, std::move(options));
  EXPECT_TRUE(made);
  return made ? std::move(*made) : nullptr;
}

TEST(SocketActivation, AnAdoptedListeningSocketServesConnectionsAndIsMadeNonBlocking) {
  Activated a(1);
  auto reactor = reactor_on(a.os);
  auto sockets = listen_fds(a.os, a.variables("1", "echo"));
  ASSERT_THAT(sockets, IsOk());
  ServerFactoryOf<Echo> echo;
  auto port = adopt_stream_port(*reactor, a.os, *sockets->take("echo"), echo);
  ASSERT_THAT(port, IsOk());
  EXPECT_NE(*a.os.fcntl(3, F_GETFL, 0) & O_NONBLOCK, 0);
  EXPECT_EQ((*port)->address().port(), a.ports[0]);
  Client client;
  auto connector = connect_tcp(*reactor, a.os, "127.0.0.1", a.ports[0], client);
  auto done = reactor->turn_until([&] { return client.got == "ping"; }, std::chrono::seconds(5));
  ASSERT_THAT(done, IsOk());
  EXPECT_TRUE(*done) << (client.failures.empty() ? "" : client.failures[0]);
  EXPECT_EQ((*port)->connections(), 1u);
}

TEST(SocketActivation, AdoptingASocketThatIsNotAListeningStreamFailsAndClosesIt) {
  FakeSyscalls os;
  auto reactor = reactor_on(os);
  ServerFactoryOf<Echo> echo;
  auto made = os.socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_THAT(made, IsOk());
  const int datagram = *made;
  auto refused = adopt_stream_port(*reactor, os, OwnedFd(os, datagram), echo);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().os.code, EPROTOTYPE);
  EXPECT_FALSE(os.fcntl(datagram, F_GETFD, 0)) << "closed";
  const int idle = *os.socket(AF_INET, SOCK_STREAM, 0);
  auto not_listening = adopt_stream_port(*reactor, os, OwnedFd(os, idle), echo);
  ASSERT_FALSE(not_listening);
  EXPECT_EQ(sys::to_string(not_listening.error().os),
            "listen(adopted descriptor " + std::to_string(idle) + "): Invalid argument (EINVAL)");
  EXPECT_FALSE(os.fcntl(idle, F_GETFD, 0)) << "closed";
}

TEST(SocketActivation, EveryFailingCallOfAnAdoptionIsReportedAndTheSocketClosed) {
  for (const char* call : {"getsockopt", "fcntl", "getsockname"}) {
    Activated a(1);
    auto reactor = reactor_on(a.os);
    ServerFactoryOf<Echo> echo;
    a.os.fail_when(
        call, [](const fake::CallRecord&) { return true; }, ENOBUFS);
    auto port = adopt_stream_port(*reactor, a.os, OwnedFd(a.os, 3), echo);
    ASSERT_FALSE(port) << call;
    EXPECT_EQ(sys::to_string(port.error().os),
              std::string(call) + "(adopted descriptor 3): No buffer space available (ENOBUFS)");
    a.os.clear_faults();
    EXPECT_FALSE(a.open(3)) << call;
  }
}

}  // namespace
}  // namespace daemonkit::core

namespace daemonkit::core {
namespace {

// ---- Adopting a connected stream socket ----------------------------------------------------

struct Refusing : ServerFactory {
  std::vector<SocketAddress> peers;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress& peer) override {
    peers.push_back(peer);
    return nullptr;
  }
};

std::string read_some(FakeSyscalls& os, int fd) {
  char buf[64];
  auto n = os.read(fd, buf, sizeof buf);
  return n ? std::string(buf, *n) : std::string();
}

TEST(AdoptConnection, AConnectedSocketSpeaksThroughItsProtocolAndTheConnectionOwnsIt) {
  FakeSyscalls os;
  auto reactor = reactor_on(os);
  auto pair = os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_THAT(pair, IsOk());
  ServerFactoryOf<Echo> echo;
  struct Counter : Connection::Owner {
    int ended = 0;
    void connection_ended(Connection&, const LossReason&) override { ++ended; }
  } owner;
  const int& ended = owner.ended;
  auto connection = adopt_stream_connection(*reactor, os, OwnedFd(os, pair->first), echo, &owner);
  ASSERT_THAT(connection, IsOk());
  EXPECT_NE(*os.fcntl(pair->first, F_GETFL, 0) & O_NONBLOCK, 0);
  ASSERT_THAT(os.write(pair->second, "ping", 4), IsOk());
  std::string back;
  auto done = reactor->turn_until(
      [&] {
        back += read_some(os, pair->second);
        return back == "ping";
      },
      std::chrono::seconds(5));
  ASSERT_THAT(done, IsOk());
  EXPECT_TRUE(*done) << back;
  // The peer closes: the protocol hears the loss, then its owner; destroying the
  // connection closes the adopted descriptor.
  ASSERT_THAT(os.close(pair->second), IsOk());
  auto lost = reactor->turn_until([&] { return ended == 1; }, std::chrono::seconds(5));
  ASSERT_THAT(lost, IsOk());
  EXPECT_TRUE(*lost);
  connection->reset();
  EXPECT_FALSE(os.fcntl(pair->first, F_GETFD, 0)) << "closed with the connection";
}

TEST(AdoptConnection, AFactoryRefusingATcpConnectionWasToldItsPeerAndItIsClosed) {
  Activated a(1);
  auto reactor = reactor_on(a.os);
  const int client = *a.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto to = *SocketAddress::ip("127.0.0.1", a.ports[0]);
  ASSERT_THAT(a.os.connect(client, to.data(), to.size()), IsOk());
  Refusing factory;
  auto connection = adopt_stream_connection(*reactor, a.os, OwnedFd(a.os, client), factory);
  ASSERT_FALSE(connection);
  EXPECT_EQ(connection.error().os.code, ECONNABORTED);
  ASSERT_EQ(factory.peers.size(), 1u);
  EXPECT_EQ(factory.peers[0], to);
  EXPECT_FALSE(a.open(client)) << "a refused connection is closed";
}

TEST(AdoptConnection, ASocketThatIsNotAConnectedStreamFailsAndIsClosed) {
  FakeSyscalls os;
  auto reactor = reactor_on(os);
  ServerFactoryOf<Echo> echo;
  const int datagram = *os.socket(AF_UNIX, SOCK_DGRAM, 0);
  auto refused = adopt_stream_connection(*reactor, os, OwnedFd(os, datagram), echo);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().os.code, EPROTOTYPE);
  EXPECT_FALSE(os.fcntl(datagram, F_GETFD, 0)) << "closed";
  const int idle = *os.socket(AF_INET, SOCK_STREAM, 0);
  auto unconnected = adopt_stream_connection(*reactor, os, OwnedFd(os, idle), echo);
  ASSERT_FALSE(unconnected);
  EXPECT_EQ(sys::to_string(unconnected.error().os),
            "getpeername(adopted descriptor " + std::to_string(idle) +
                "): Transport endpoint is not connected (ENOTCONN)");
  EXPECT_FALSE(os.fcntl(idle, F_GETFD, 0)) << "closed";
  const int listening = *os.socket(AF_INET, SOCK_STREAM, 0);
  auto any = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_THAT(os.bind(listening, any.data(), any.size()), IsOk());
  ASSERT_THAT(os.listen(listening, 1), IsOk());
  auto port = adopt_stream_connection(*reactor, os, OwnedFd(os, listening), echo);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().os.code, EINVAL);
  EXPECT_FALSE(os.fcntl(listening, F_GETFD, 0)) << "closed";
}

TEST(AdoptConnection, EveryFailingCallIsReportedAndTheSocketClosed) {
  for (const char* call : {"getsockopt", "getpeername", "fcntl", "epoll_ctl"}) {
    FakeSyscalls os;
    auto reactor = reactor_on(os);
    auto pair = os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_THAT(pair, IsOk());
    ServerFactoryOf<Echo> echo;
    os.fail_when(
        call, [](const fake::CallRecord&) { return true; }, ENOBUFS);
    auto connection = adopt_stream_connection(*reactor, os, OwnedFd(os, pair->first), echo);
    ASSERT_FALSE(connection) << call;
    EXPECT_EQ(connection.error().os.code, ENOBUFS) << call;
    EXPECT_STREQ(connection.error().os.call, call);
    os.clear_faults();
    EXPECT_FALSE(os.fcntl(pair->first, F_GETFD, 0)) << call << ": closed";
  }
}

}  // namespace
}  // namespace daemonkit::core
