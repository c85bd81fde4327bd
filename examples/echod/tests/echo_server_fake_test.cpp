// echod's server in one fake kernel: the server process listens, a client process connects
// and sends a line, the server's loop echoes it, and a SIGTERM from the client stops it.
//
// serve() blocks in poll(-1). The fake never sleeps: when nothing is ready, poll goes through
// the would-block policy and fails with EDEADLK, which ends serve() with a "poll" error. That
// is how a test knows the server's loop has done all it can; it then switches to the client,
// and calls serve() again to let the server go on.
#include "echo_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"

namespace echod {
namespace {

using daemonkit::fake::FakeSyscalls;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Runs the server's loop until it has nothing left to do; true if it is idle (not stopped).
bool serve_until_idle(EchoServer& server) {
  auto served = server.serve();
  if (served) {
    ADD_FAILURE() << "the server stopped on signal " << *served;
    return false;
  }
  EXPECT_EQ(served.error().error_number(), EDEADLK) << served.error().message;
  return served.error().error_number() == EDEADLK;
}

std::uint16_t port_of(const EchoServer& server) {
  const std::string address = server.address();
  return static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
}

int connect_client(FakeSyscalls& os, std::uint16_t port) {
  const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_TRUE(os.connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to));
  return fd;
}

std::string read_some(FakeSyscalls& os, int fd) {
  char buf[256];
  auto n = os.read(fd, buf, sizeof buf);
  if (!n) return "error " + daemonkit::sys::errno_name(n.error().code);
  return std::string(buf, *n);
}

TEST(EchodFake, EchoesALineAndStopsCleanlyOnSigtermFromAnotherProcess) {
  FakeSyscalls os;
  const pid_t server_pid = os.getpid();
  const pid_t client_pid = *os.fork();  // before listening, so it holds none of the server's fds
  int client = -1;
  {
    EchoServer server(os);
    ASSERT_TRUE(server.listen("127.0.0.1", 0));
    EXPECT_THAT(server.address(), StartsWith("127.0.0.1:"));
    const std::uint16_t port = port_of(server);
    EXPECT_NE(port, 0);
    ASSERT_TRUE(serve_until_idle(server));

    os.switch_to(client_pid);
    client = connect_client(os, port);
    ASSERT_EQ(*os.write(client, "hello, echod\n", 13), 13u);

    os.switch_to(server_pid);
    ASSERT_TRUE(serve_until_idle(server));  // accepted, read, echoed

    os.switch_to(client_pid);
    EXPECT_EQ(read_some(os, client), "hello, echod\n");
    ASSERT_TRUE(os.kill(server_pid, SIGTERM));

    os.switch_to(server_pid);
    EXPECT_TRUE(os.process(server_pid).alive()) << "SIGTERM is blocked into the signalfd";
    auto stopped = server.serve();
    ASSERT_TRUE(stopped) << stopped.error().message;
    EXPECT_EQ(*stopped, SIGTERM);
  }
  // The server's destructor closed its signalfd, listener and connection.
  EXPECT_THAT(os.open_fds(server_pid), IsEmpty());
  EXPECT_THAT(os.process(server_pid).pending_signals, IsEmpty()) << "SIGTERM was consumed";
  os.switch_to(client_pid);
  EXPECT_EQ(read_some(os, client), "") << "the client sees EOF";
}

TEST(EchodFake, DropsAClientThatHangsUpAndServesTheNext) {
  FakeSyscalls os;
  const pid_t server_pid = os.getpid();
  const pid_t client_pid = *os.fork();
  EchoServer server(os);
  ASSERT_TRUE(server.listen("127.0.0.1", 7007));
  EXPECT_EQ(server.address(), "127.0.0.1:7007");

  os.switch_to(client_pid);
  const int first = connect_client(os, 7007);
  ASSERT_TRUE(os.close(first));
  const int second = connect_client(os, 7007);
  ASSERT_TRUE(os.write(second, "two", 3));

  os.switch_to(server_pid);
  ASSERT_TRUE(serve_until_idle(server));
  // The listener, the signalfd and the second connection remain: the first was dropped.
  EXPECT_EQ(os.open_fds(server_pid).size(), 3u);

  os.switch_to(client_pid);
  EXPECT_EQ(read_some(os, second), "two");
}

TEST(EchodFake, ABusyPortIsReportedWithTheStep) {
  FakeSyscalls os;
  const int holder = *os.socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(7007);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_TRUE(os.bind(holder, reinterpret_cast<const sockaddr*>(&at), sizeof at));
  ASSERT_TRUE(os.listen(holder, 1));
  EchoServer server(os);
  auto listening = server.listen("127.0.0.1", 7007);
  ASSERT_FALSE(listening);
  EXPECT_EQ(listening.error().message, "bind(127.0.0.1:7007): Address already in use (EADDRINUSE)");
}

TEST(EchodFake, AnAddressOffLoopbackCannotBeBoundOnTheFakeMachine) {
  FakeSyscalls os;
  EchoServer server(os);
  auto listening = server.listen("192.0.2.7", 7007);
  ASSERT_FALSE(listening);
  EXPECT_THAT(listening.error().message, HasSubstr("bind(192.0.2.7:7007)"));
  EXPECT_EQ(listening.error().error_number(), EADDRNOTAVAIL);
}

TEST(EchodFake, EveryFailingStepOfListenIsNamed) {
  FakeSyscalls probe;
  std::size_t calls = 0;
  {
    EchoServer server(probe);
    ASSERT_TRUE(server.listen("127.0.0.1", 0));
    calls = probe.transcript().size();  // listen's calls, not the destructor's closes
  }
  ASSERT_EQ(calls, 7u) << "sigprocmask, signalfd, socket, setsockopt, bind, listen, getsockname";
  for (std::size_t i = 0; i < calls; ++i) {
    FakeSyscalls os;
    os.fail_call_at(i);
    EchoServer server(os);
    auto listening = server.listen("127.0.0.1", 0);
    const auto& failed = os.transcript().at(i);
    if (failed.name == "close") continue;  // only the destructor closes
    ASSERT_FALSE(listening) << "no error when " << failed.to_string();
    EXPECT_THAT(listening.error().message, HasSubstr(failed.name)) << failed.to_string();
    EXPECT_EQ(listening.error().error_number(), FakeSyscalls::typical_errno(failed.name));
  }
}

TEST(EchodFake, ServeWithNothingToDoFailsInsteadOfHanging) {
  FakeSyscalls os;
  EchoServer server(os);
  ASSERT_TRUE(server.listen("127.0.0.1", 0));
  auto served = server.serve();
  ASSERT_FALSE(served);
  EXPECT_EQ(served.error().message, "poll: Resource deadlock avoided (EDEADLK)");
  EXPECT_THAT(os.transcript().back().note, HasSubstr("nothing is ready"));
}

}  // namespace
}  // namespace echod
