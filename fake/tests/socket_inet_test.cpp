// AF_INET stream sockets on the fake kernel's loopback: binding (ephemeral ports, privileged
// ports, EADDRINUSE with and without SO_REUSEADDR), listen/connect/accept4 between processes,
// byte streams, EOF, EPIPE, the non-blocking connect's EINPROGRESS, readiness, and honest
// refusals off loopback; and the same over AF_INET6 (the differential tests pin the rest).
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "socket_test_support.h"

namespace daemonkit::fake {
namespace {

using testing_support::as_sockaddr;
using testing_support::inet_address;
using testing_support::poll_events;
using testing_support::recv_text;

int tcp(FakeSyscalls& os, int flags = SOCK_CLOEXEC) {
  return *os.socket(AF_INET, SOCK_STREAM | flags, 0);
}

sys::Result<void> bind_to(FakeSyscalls& os, int fd, const char* host, std::uint16_t port) {
  const auto a = inet_address(host, port);
  return os.bind(fd, as_sockaddr(a), sizeof a);
}

sys::Result<void> connect_to(FakeSyscalls& os, int fd, const char* host, std::uint16_t port) {
  const auto a = inet_address(host, port);
  return os.connect(fd, as_sockaddr(a), sizeof a);
}

std::uint16_t port_of(FakeSyscalls& os, int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  EXPECT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len));
  EXPECT_EQ(len, sizeof a);
  return ntohs(a.sin_port);
}

TEST(FakeTcp, PortZeroTakesAnEphemeralPortThatGetsocknameReports) {
  FakeSyscalls os;
  const int a = tcp(os);
  const int b = tcp(os);
  ASSERT_TRUE(bind_to(os, a, "127.0.0.1", 0));
  ASSERT_TRUE(bind_to(os, b, "127.0.0.1", 0));
  EXPECT_GE(port_of(os, a), 32768);
  EXPECT_LE(port_of(os, a), 60999);
  EXPECT_NE(port_of(os, a), port_of(os, b));
  const int fresh = tcp(os);
  EXPECT_EQ(port_of(os, fresh), 0) << "unbound: 0.0.0.0:0";
}

TEST(FakeTcp, ASecondBindToABusyPortIsEaddrinuseUnlessBothReuseAndNoneListens) {
  FakeSyscalls os;
  const int on = 1;
  const int first = tcp(os);
  ASSERT_TRUE(bind_to(os, first, "127.0.0.1", 7007));
  EXPECT_EQ(bind_to(os, tcp(os), "127.0.0.1", 7007).error().code, EADDRINUSE);
  EXPECT_EQ(bind_to(os, tcp(os), "0.0.0.0", 7007).error().code, EADDRINUSE) << "ANY overlaps";
  EXPECT_TRUE(bind_to(os, tcp(os), "127.0.0.2", 7007)) << "another address, another socket";
  ASSERT_TRUE(os.setsockopt(first, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  const int second = tcp(os);
  ASSERT_TRUE(os.setsockopt(second, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  ASSERT_TRUE(bind_to(os, second, "127.0.0.1", 7007)) << "both reuse, neither listens";
  ASSERT_TRUE(os.listen(first, 4));
  EXPECT_EQ(os.listen(second, 4).error().code, EADDRINUSE) << "only one may listen";
  const int third = tcp(os);
  ASSERT_TRUE(os.setsockopt(third, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  EXPECT_EQ(bind_to(os, third, "127.0.0.1", 7007).error().code, EADDRINUSE)
      << "SO_REUSEADDR does not share a listening port";
}

TEST(FakeTcp, ReuseAddrLetsARestartedServerBindWhileOldConnectionsRemain) {
  FakeSyscalls os;
  const int on = 1;
  const int listener = tcp(os);
  ASSERT_TRUE(os.setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 8080));
  ASSERT_TRUE(os.listen(listener, 4));
  const int client = tcp(os);
  ASSERT_TRUE(connect_to(os, client, "127.0.0.1", 8080));
  const int served = *os.accept4(listener, nullptr, nullptr, 0);
  ASSERT_TRUE(os.close(listener));
  EXPECT_EQ(bind_to(os, tcp(os), "127.0.0.1", 8080).error().code, EADDRINUSE)
      << "the accepted connection still holds the port";
  const int restarted = tcp(os);
  ASSERT_TRUE(os.setsockopt(restarted, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  EXPECT_TRUE(bind_to(os, restarted, "127.0.0.1", 8080));
  EXPECT_TRUE(os.listen(restarted, 4));
  static_cast<void>(served);
}

TEST(FakeTcp, OnlyLoopbackExistsAndLowPortsNeedRoot) {
  FakeSyscalls os;
  EXPECT_EQ(bind_to(os, tcp(os), "192.0.2.1", 80).error().code, EADDRNOTAVAIL);
  EXPECT_EQ(connect_to(os, tcp(os), "192.0.2.1", 80).error().code, ENETUNREACH);
  EXPECT_TRUE(bind_to(os, tcp(os), "127.0.0.1", 80)) << "root";
  const int fd = tcp(os);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  EXPECT_EQ(bind_to(os, fd, "127.0.0.1", 81).error().code, EACCES);
  EXPECT_TRUE(bind_to(os, fd, "127.0.0.1", 1024));
  EXPECT_EQ(bind_to(os, fd, "127.0.0.1", 1025).error().code, EINVAL) << "bound already";
}

TEST(FakeTcp, ConnectingWhereNobodyListensIsRefused) {
  FakeSyscalls os;
  EXPECT_EQ(connect_to(os, tcp(os), "127.0.0.1", 9).error().code, ECONNREFUSED);
  const int bound = tcp(os);
  ASSERT_TRUE(bind_to(os, bound, "127.0.0.1", 9));
  EXPECT_EQ(connect_to(os, tcp(os), "127.0.0.1", 9).error().code, ECONNREFUSED);
}

TEST(FakeTcp, NonblockingConnectSaysEinprogressAndReportsItsOutcomeLater) {
  FakeSyscalls os;
  const int refused = tcp(os, SOCK_NONBLOCK);
  EXPECT_EQ(connect_to(os, refused, "127.0.0.1", 9).error().code, EINPROGRESS);
  EXPECT_EQ(poll_events(os, refused, POLLOUT), POLLOUT | POLLERR | POLLHUP);
  int error = 0;
  socklen_t len = sizeof error;
  ASSERT_TRUE(os.getsockopt(refused, SOL_SOCKET, SO_ERROR, &error, &len));
  EXPECT_EQ(error, ECONNREFUSED);
  ASSERT_TRUE(os.getsockopt(refused, SOL_SOCKET, SO_ERROR, &error, &len));
  EXPECT_EQ(error, 0) << "reading SO_ERROR clears it";

  const int listener = tcp(os);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 5000));
  ASSERT_TRUE(os.listen(listener, 4));
  const int client = tcp(os, SOCK_NONBLOCK);
  EXPECT_EQ(connect_to(os, client, "127.0.0.1", 5000).error().code, EINPROGRESS);
  EXPECT_EQ(poll_events(os, client, POLLOUT), POLLOUT);
  EXPECT_EQ(connect_to(os, client, "127.0.0.1", 5000).error().code, EISCONN);
}

TEST(FakeTcp, TwoProcessesTalkThroughLoopback) {
  FakeSyscalls os;
  const pid_t server_pid = os.getpid();
  const pid_t client_pid = *os.fork();
  const int listener = tcp(os, SOCK_NONBLOCK | SOCK_CLOEXEC);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 0));
  ASSERT_TRUE(os.listen(listener, 64));
  const std::uint16_t port = port_of(os, listener);

  os.switch_to(client_pid);
  const int client = tcp(os);
  ASSERT_TRUE(connect_to(os, client, "127.0.0.1", port));
  ASSERT_EQ(*os.write(client, "ping\n", 5), 5u);

  os.switch_to(server_pid);
  EXPECT_EQ(poll_events(os, listener, POLLIN), POLLIN);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  const int conn =
      *os.accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  EXPECT_EQ(len, sizeof peer);
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_GE(ntohs(peer.sin_port), 32768) << "the client was bound to an ephemeral port";
  EXPECT_EQ(*os.fcntl(conn, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(port_of(os, conn), port);
  char line[16];
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  ASSERT_EQ(*os.recvfrom(conn, line, sizeof line, 0, reinterpret_cast<sockaddr*>(&from), &from_len),
            5u);
  EXPECT_EQ(std::string(line, 5), "ping\n");
  EXPECT_EQ(from_len, 0u) << "TCP names no sender";
  ASSERT_EQ(*os.sendto(conn, "pong\n", 5, MSG_NOSIGNAL, nullptr, 0), 5u);

  os.switch_to(client_pid);
  EXPECT_EQ(recv_text(os, client), "pong\n");
  ASSERT_TRUE(os.close(client));

  os.switch_to(server_pid);
  EXPECT_EQ(poll_events(os, conn), POLLIN | POLLOUT | POLLRDHUP) << "a FIN: no POLLHUP yet";
  EXPECT_EQ(recv_text(os, conn), "") << "EOF";
}

TEST(FakeTcp, WritingAfterThePeerClosedIsSentOnceThenEpipe) {
  FakeSyscalls os;
  const int listener = tcp(os);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 6000));
  ASSERT_TRUE(os.listen(listener, 1));
  const int client = tcp(os, SOCK_NONBLOCK);
  EXPECT_EQ(connect_to(os, client, "127.0.0.1", 6000).error().code, EINPROGRESS);
  const int conn = *os.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  ASSERT_TRUE(os.close(client));
  EXPECT_EQ(*os.sendto(conn, "x", 1, MSG_NOSIGNAL, nullptr, 0), 1u) << "the peer answers RST";
  EXPECT_EQ(poll_events(os, conn), POLLIN | POLLOUT | POLLRDHUP | POLLHUP | POLLERR);
  EXPECT_EQ(os.sendto(conn, "x", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
}

TEST(FakeTcp, ShutdownWriteSendsAFinAndShutdownReadTellsThePeerNothing) {
  FakeSyscalls os;
  const int listener = tcp(os);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 6001));
  ASSERT_TRUE(os.listen(listener, 2));
  const int client = tcp(os, SOCK_NONBLOCK);
  EXPECT_EQ(connect_to(os, client, "127.0.0.1", 6001).error().code, EINPROGRESS);
  const int conn = *os.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  ASSERT_TRUE(os.shutdown(client, SHUT_WR));
  EXPECT_EQ(poll_events(os, client), POLLOUT);
  EXPECT_EQ(poll_events(os, conn), POLLIN | POLLOUT | POLLRDHUP);
  EXPECT_EQ(os.sendto(client, "", 0, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
  EXPECT_EQ(recv_text(os, conn), "") << "EOF";
  ASSERT_EQ(*os.sendto(conn, "q", 1, MSG_NOSIGNAL, nullptr, 0), 1u);
  EXPECT_EQ(recv_text(os, client), "q");
  ASSERT_TRUE(os.shutdown(conn, SHUT_WR));
  EXPECT_EQ(poll_events(os, client), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);

  const int other = tcp(os, SOCK_NONBLOCK);
  EXPECT_EQ(connect_to(os, other, "127.0.0.1", 6001).error().code, EINPROGRESS);
  const int peer = *os.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  ASSERT_TRUE(os.shutdown(other, SHUT_RD));
  EXPECT_EQ(poll_events(os, other), POLLIN | POLLOUT | POLLRDHUP);
  EXPECT_EQ(poll_events(os, peer), POLLOUT);
  EXPECT_EQ(recv_text(os, other), "");
  ASSERT_EQ(*os.sendto(peer, "w", 1, MSG_NOSIGNAL, nullptr, 0), 1u) << "the peer was not told";
  EXPECT_EQ(recv_text(os, other), "w");
  EXPECT_EQ(recv_text(os, other), "");
}

TEST(FakeTcp, ShutdownOfAnUnconnectedSocketIsEnotconnAndOfAListenerStopsIt) {
  FakeSyscalls os;
  const int fd = tcp(os);
  EXPECT_EQ(os.shutdown(fd, 7).error().code, EINVAL) << "how is checked first";
  EXPECT_EQ(os.shutdown(fd, SHUT_WR).error().code, ENOTCONN);
  const int listener = tcp(os, SOCK_NONBLOCK);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 6002));
  ASSERT_TRUE(os.listen(listener, 2));
  EXPECT_TRUE(os.shutdown(listener, SHUT_WR)) << "nothing to send: ignored";
  EXPECT_EQ(os.accept4(listener, nullptr, nullptr, 0).error().code, EAGAIN);
  EXPECT_TRUE(os.shutdown(listener, SHUT_RD)) << "tcp_disconnect: it stops listening";
  EXPECT_EQ(os.accept4(listener, nullptr, nullptr, 0).error().code, EINVAL);
}

TEST(FakeTcp, UnconnectedSocketsRefuseToReadAndWrite) {
  FakeSyscalls os;
  const int fd = tcp(os);
  char c;
  EXPECT_EQ(os.read(fd, &c, 1).error().code, ENOTCONN);
  EXPECT_EQ(os.sendto(fd, "x", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
  EXPECT_EQ(poll_events(os, fd), POLLOUT | POLLHUP);
}

TEST(FakeTcp, ListenWithoutBindTakesAnEphemeralPortOnAnyAddress) {
  FakeSyscalls os;
  const int fd = tcp(os);
  ASSERT_TRUE(os.listen(fd, 1));
  const std::uint16_t port = port_of(os, fd);
  EXPECT_GE(port, 32768);
  EXPECT_TRUE(connect_to(os, tcp(os), "127.0.0.1", port));
  EXPECT_TRUE(connect_to(os, tcp(os), "0.0.0.0", port)) << "0.0.0.0 means this host";
}

TEST(FakeTcp, EpollSeesEdgesOfDataAndTheListenersQueue) {
  FakeSyscalls os;
  const int listener = tcp(os, SOCK_NONBLOCK);
  ASSERT_TRUE(bind_to(os, listener, "127.0.0.1", 4000));
  ASSERT_TRUE(os.listen(listener, 8));
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = listener;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev));
  struct epoll_event out[2];
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
  const int client = tcp(os);
  ASSERT_TRUE(connect_to(os, client, "127.0.0.1", 4000));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(out[0].data.fd, listener);
  const int conn = *os.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  ev.data.fd = conn;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev));
  EXPECT_EQ(*os.epoll_wait(ep, out, 2, 0), 0);
  ASSERT_TRUE(os.write(client, "a", 1));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<std::uint32_t>(EPOLLIN));
  ASSERT_TRUE(os.close(client));
  ASSERT_EQ(*os.epoll_wait(ep, out, 2, 0), 1);
  EXPECT_EQ(out[0].events, static_cast<std::uint32_t>(EPOLLIN | EPOLLRDHUP));
}

TEST(FakeTcp, TcpNodelayIsAnOptionAndUnknownLevelsAreEnoprotoopt) {
  FakeSyscalls os;
  const int fd = tcp(os);
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
  int value = 0;
  socklen_t len = sizeof value;
  ASSERT_TRUE(os.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len));
  EXPECT_EQ(value, 1);
  EXPECT_EQ(os.setsockopt(fd, IPPROTO_TCP, 9999, &on, sizeof on).error().code, ENOPROTOOPT);
  EXPECT_EQ(os.setsockopt(fd, 4242, 1, &on, sizeof on).error().code, ENOPROTOOPT);
}

TEST(FakeTcp, TheTranscriptShowsAddresses) {
  FakeSyscalls os;
  const int fd = tcp(os);
  ASSERT_TRUE(bind_to(os, fd, "127.0.0.1", 7007));
  EXPECT_EQ(os.transcript().back().call_text(), "bind(0, tcp:127.0.0.1:7007, 16)");
  EXPECT_EQ(os.describe_fd(os.getpid(), fd), "socket:[" + std::to_string(os.fstat(fd)->st_ino) +
                                                 "]:tcp tcp:127.0.0.1:7007 (cloexec)");
}

sockaddr_in6 inet6_address(const char* host, std::uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, host, &a.sin6_addr);
  return a;
}

TEST(FakeTcp6, TheTranscriptAndDescriptionsShowBracketedAddresses) {
  FakeSyscalls os;
  const int listener = *os.socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const auto at = inet6_address("::1", 7007);
  ASSERT_TRUE(os.bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at));
  EXPECT_EQ(os.transcript().back().call_text(), "bind(0, tcp:[::1]:7007, 28)");
  ASSERT_TRUE(os.listen(listener, 1));
  const int udp = *os.socket(AF_INET6, SOCK_DGRAM, 0);
  const auto mapped = inet6_address("::ffff:127.0.0.1", 7008);
  ASSERT_TRUE(os.bind(udp, reinterpret_cast<const sockaddr*>(&mapped), sizeof mapped));
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(udp, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &on, sizeof on));
  EXPECT_EQ(os.transcript().back().call_text(),
            "setsockopt(1, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 1, 4)");
  EXPECT_EQ(os.describe_fd(os.getpid(), listener), "socket:[" +
                                                       std::to_string(os.fstat(listener)->st_ino) +
                                                       "]:tcp tcp:[::1]:7007 listening (cloexec)");
  EXPECT_EQ(os.describe_fd(os.getpid(), udp), "socket:[" + std::to_string(os.fstat(udp)->st_ino) +
                                                  "]:udp udp:[::ffff:127.0.0.1]:7008");
}

TEST(FakeTcp6, AClientInAnotherProcessReachesADualStackListenerByIpv4) {
  FakeSyscalls os;
  const pid_t server = os.getpid();
  const int listener = *os.socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_TRUE(os.listen(listener, 4));
  sockaddr_in6 name{};
  socklen_t len = sizeof name;
  ASSERT_TRUE(os.getsockname(listener, reinterpret_cast<sockaddr*>(&name), &len));
  EXPECT_EQ(len, sizeof(sockaddr_in6));
  const std::uint16_t port = ntohs(name.sin6_port);
  os.script_fork(ForkAs::kChild);
  ASSERT_EQ(*os.fork(), 0);
  const pid_t client = os.getpid();
  const int fd = tcp(os);
  ASSERT_TRUE(connect_to(os, fd, "127.0.0.1", port));
  ASSERT_TRUE(os.write(fd, "v4 hello", 8));
  os.switch_to(server);
  sockaddr_in6 peer{};
  socklen_t peer_len = sizeof peer;
  const int conn = *os.accept4(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len, 0);
  EXPECT_EQ(peer_len, sizeof(sockaddr_in6));
  EXPECT_TRUE(IN6_IS_ADDR_V4MAPPED(&peer.sin6_addr));
  EXPECT_EQ(recv_text(os, conn), "v4 hello");
  EXPECT_THAT(os.describe_fd(server, conn), testing::HasSubstr("-> tcp:[::ffff:127.0.0.1]:"));
  EXPECT_THAT(os.describe_fd(client, fd), testing::HasSubstr("-> tcp:127.0.0.1:"));
}

TEST(FakeTcp6, FaultsAreInjectedOnTheIpv6PathsByName) {
  FakeSyscalls os;
  os.fail_nth("bind", 1, EADDRINUSE);
  os.fail_nth("setsockopt", 1, ENOPROTOOPT);
  const int fd = *os.socket(AF_INET6, SOCK_STREAM, 0);
  const auto at = inet6_address("::1", 0);
  EXPECT_EQ(os.bind(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at).error().code,
            EADDRINUSE);
  const int on = 1;
  EXPECT_EQ(os.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on).error().code, ENOPROTOOPT);
  EXPECT_THAT(os.transcript(), CallFailedWith("setsockopt", ENOPROTOOPT));
  // Nothing was changed by the failed calls: the socket is unbound and dual-stack still.
  int v6only = -1;
  socklen_t len = sizeof v6only;
  ASSERT_TRUE(os.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len));
  EXPECT_EQ(v6only, 0);
  ASSERT_TRUE(os.bind(fd, reinterpret_cast<const sockaddr*>(&at), sizeof at));
}

}  // namespace
}  // namespace daemonkit::fake
