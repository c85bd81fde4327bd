// UDP over AF_INET on the fake kernel's loopback: what the differential test cannot show on a
// machine with a network (no route off loopback), privileged ports, a full receive buffer,
// readiness of a refused socket, and how descriptors of UDP sockets are described.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "socket_test_support.h"

namespace daemonkit::fake {
namespace {

using testing_support::as_sockaddr;
using testing_support::inet_address;
using testing_support::poll_events;

int udp(FakeSyscalls& os) {
  return *os.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

std::uint16_t port_of(FakeSyscalls& os, int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  EXPECT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len));
  return ntohs(a.sin_port);
}

TEST(FakeUdp, OnlyLoopbackExistsAndLowPortsNeedRoot) {
  FakeSyscalls os;
  const int s = udp(os);
  const auto far = inet_address("192.0.2.1", 9);
  EXPECT_EQ(os.sendto(s, "x", 1, 0, as_sockaddr(far), sizeof far).error().code, ENETUNREACH);
  EXPECT_EQ(os.connect(s, as_sockaddr(far), sizeof far).error().code, ENETUNREACH);
  EXPECT_EQ(os.bind(udp(os), as_sockaddr(far), sizeof far).error().code, EADDRNOTAVAIL);
  ASSERT_TRUE(os.setresuid(1000, 1000, 1000));
  const auto low = inet_address("127.0.0.1", 53);
  EXPECT_EQ(os.bind(udp(os), as_sockaddr(low), sizeof low).error().code, EACCES);
}

TEST(FakeUdp, AFullReceiveBufferDropsDatagramsSilently) {
  FakeSyscalls os;
  const int server = udp(os);
  const auto any = inet_address("127.0.0.1", 0);
  ASSERT_TRUE(os.bind(server, as_sockaddr(any), sizeof any));
  const auto to = inet_address("127.0.0.1", port_of(os, server));
  const int client = udp(os);
  const std::string chunk(60000, 'c');
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(*os.sendto(client, chunk.data(), chunk.size(), 0, as_sockaddr(to), sizeof to),
              chunk.size());
  }
  int received = 0;
  std::string buf(65536, '\0');
  while (os.recvfrom(server, buf.data(), buf.size(), 0, nullptr, nullptr)) ++received;
  EXPECT_EQ(received, 3) << "212992 bytes of room hold three";
}

TEST(FakeUdp, ARefusedConnectedSocketPollsAsAnErrorUntilItIsReported) {
  FakeSyscalls os;
  const int gone = udp(os);
  const auto any = inet_address("127.0.0.1", 0);
  ASSERT_TRUE(os.bind(gone, as_sockaddr(any), sizeof any));
  const auto to = inet_address("127.0.0.1", port_of(os, gone));
  ASSERT_TRUE(os.close(gone));
  const int client = udp(os);
  ASSERT_TRUE(os.connect(client, as_sockaddr(to), sizeof to));
  EXPECT_EQ(poll_events(os, client, POLLIN | POLLOUT), POLLOUT);
  ASSERT_TRUE(os.write(client, "x", 1));
  EXPECT_EQ(poll_events(os, client, POLLIN | POLLOUT), POLLOUT | POLLERR);
  int error = -1;
  socklen_t len = sizeof error;
  ASSERT_TRUE(os.getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &len));
  EXPECT_EQ(error, ECONNREFUSED) << "SO_ERROR reports and clears it";
  EXPECT_EQ(poll_events(os, client, POLLIN | POLLOUT), POLLOUT);
  EXPECT_THAT(os.describe_fd(os.getpid(), client), ::testing::StartsWith("socket:["));
  EXPECT_THAT(os.describe_fd(os.getpid(), client), ::testing::HasSubstr(":udp udp:127.0.0.1:"));
}

TEST(FakeUdp, ProtocolsOtherThanUdpAreRefused) {
  FakeSyscalls os;
  EXPECT_EQ(os.socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP).error().code, EPROTONOSUPPORT);
  EXPECT_EQ(os.socket(AF_INET, SOCK_RAW, 0).error().code, ESOCKTNOSUPPORT);
  EXPECT_TRUE(os.socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP));
}

TEST(FakeOptions, BufferSizesAreCappedAtLinuxsDefaultMaximumAndDoubled) {
  FakeSyscalls os;
  const int fd = udp(os);
  const int huge = 1 << 30;
  ASSERT_TRUE(os.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &huge, sizeof huge));
  int value = 0;
  socklen_t len = sizeof value;
  ASSERT_TRUE(os.getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, &len));
  EXPECT_EQ(value, 2 * 212992) << "net.core.wmem_max's default, doubled";
  const int negative = -1;
  ASSERT_TRUE(os.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &negative, sizeof negative));
  ASSERT_TRUE(os.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, &len));
  EXPECT_EQ(value, 2 * 212992) << "a negative size is a huge one";
  EXPECT_EQ(os.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &huge, 2).error().code, EINVAL);
}

}  // namespace
}  // namespace daemonkit::fake
