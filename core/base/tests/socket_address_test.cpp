// SocketAddress: the bytes each family's address is made of, the text users read, and the
// names refused.
#include "daemonkit/core/base/socket_address.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

namespace daemonkit::core {
namespace {

TEST(SocketAddress, Ipv4IsASockaddrInWithThePortInNetworkOrder) {
  auto a = SocketAddress::ip("127.0.0.1", 7000);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->size(), sizeof(sockaddr_in));
  const auto* in = reinterpret_cast<const sockaddr_in*>(a->data());
  EXPECT_EQ(in->sin_port, htons(7000));
  EXPECT_EQ(in->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(a->port(), 7000);
  EXPECT_EQ(to_string(*a), "127.0.0.1:7000");
}

TEST(SocketAddress, AnEmptyHostIsTheIpv4Wildcard) {
  auto a = SocketAddress::ip("", 80);
  ASSERT_TRUE(a);
  EXPECT_EQ(to_string(*a), "0.0.0.0:80");
}

TEST(SocketAddress, Ipv6IsBracketedInText) {
  auto a = SocketAddress::ip("::1", 443);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->size(), sizeof(sockaddr_in6));
  EXPECT_EQ(to_string(*a), "[::1]:443");
  EXPECT_EQ(to_string(a->with_port(8443)), "[::1]:8443");
}

TEST(SocketAddress, NamesAndMalformedHostsAreNotNumericAddresses) {
  EXPECT_FALSE(SocketAddress::ip("localhost", 80));
  EXPECT_FALSE(SocketAddress::ip("127.0.0.1.2", 80));
  EXPECT_FALSE(SocketAddress::ip("fe80::1%lo", 80));
}

TEST(SocketAddress, APathCountsItsNul) {
  auto a = SocketAddress::unix_name("/run/x.sock");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size(), offsetof(sockaddr_un, sun_path) + 12);
  EXPECT_TRUE(a->is_unix_path());
  EXPECT_FALSE(a->is_abstract());
  EXPECT_EQ(a->host(), "/run/x.sock");
  EXPECT_EQ(to_string(*a), "/run/x.sock");
}

TEST(SocketAddress, AnAbstractNameStartsWithNulAndCountsOnlyTheName) {
  auto a = SocketAddress::unix_name("@daemonkit");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size(), offsetof(sockaddr_un, sun_path) + 10);
  EXPECT_EQ(reinterpret_cast<const sockaddr_un*>(a->data())->sun_path[0], '\0');
  EXPECT_TRUE(a->is_abstract());
  EXPECT_FALSE(a->is_unix_path());
  EXPECT_EQ(to_string(*a), "@daemonkit");
}

TEST(SocketAddress, NamesThatDoNotFitAreRefused) {
  const std::size_t room = sizeof(sockaddr_un{}.sun_path);
  EXPECT_FALSE(SocketAddress::unix_name(""));
  EXPECT_TRUE(SocketAddress::unix_name("/" + std::string(room - 2, 'x')));
  EXPECT_FALSE(SocketAddress::unix_name("/" + std::string(room - 1, 'x')))
      << "a path needs room for its NUL";
  EXPECT_TRUE(SocketAddress::unix_name("@" + std::string(room - 1, 'x')));
  EXPECT_FALSE(SocketAddress::unix_name("@" + std::string(room, 'x')));
  EXPECT_FALSE(SocketAddress::unix_name(std::string("/a\0b", 4)));
}

TEST(SocketAddress, FromKernelBytesKeepsThemAndChecksTheLength) {
  auto a = *SocketAddress::ip("10.1.2.3", 9);
  auto copy = SocketAddress::from(a.data(), a.size());
  ASSERT_TRUE(copy);
  EXPECT_EQ(*copy, a);
  EXPECT_FALSE(SocketAddress::from(a.data(), sizeof(sockaddr_in) - 1));
  sockaddr_un unnamed{};
  unnamed.sun_family = AF_UNIX;
  auto u = SocketAddress::from(reinterpret_cast<const sockaddr*>(&unnamed), sizeof(sa_family_t));
  ASSERT_TRUE(u);
  EXPECT_EQ(to_string(*u), "(unnamed)");
  EXPECT_EQ(to_string(SocketAddress{}), "(unspecified)");
  EXPECT_EQ(SocketAddress::from(nullptr, 0), SocketAddress{});
}

}  // namespace
}  // namespace daemonkit::core
