// The network area over IPv6 on the fake kernel, which models ::1 and dual-stack sockets as
// Linux does (fake/tests/differential_inet6_test.cpp compares it): what net_linux_test and
// datagram_linux_test check on the real kernel's ::1 — TCP listening on port 0 and connecting,
// UDP connected and not, multicast by lo — plus what the real kernel cannot show on every
// machine (a refusal, IPv4 clients of a dual-stack listener, multicast where lo has no route),
// and each failing call of listen, connect and a join by fault injection.
#include <signal.h>
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/udp.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::HasSubstr;

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

// A client that sends a greeting and keeps what comes back.
struct Greeter : ClientFactory {
  struct Speaker : Protocol {
    explicit Speaker(Greeter& g) : greeter(g) {}
    void connection_made(Connection& c) override { c.write("hello over six"); }
    void data_received(std::span<const std::byte> data) override {
      greeter.answer.append(reinterpret_cast<const char*>(data.data()), data.size());
    }
    Greeter& greeter;
  };
  std::string answer;
  std::vector<std::string> failures;
  std::vector<int> errors;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Speaker>(*this);
  }
  void connection_failed(const sys::Error& reason) override {
    failures.push_back(sys::to_string(reason));
    errors.push_back(reason.code);
  }
};

// An echo server that remembers its peers.
struct EchoServer : ServerFactory {
  std::vector<SocketAddress> peers;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress& peer) override {
    peers.push_back(peer);
    return std::make_unique<Echo>();
  }
};

struct Heard : DatagramProtocol {
  std::vector<std::string> datagrams;
  std::vector<SocketAddress> senders;
  int refusals = 0;
  void datagram_received(std::span<const std::byte> d, const SocketAddress& from) override {
    datagrams.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
    senders.push_back(from);
  }
  void connection_refused() override { ++refusals; }
};

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;

  World() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    EXPECT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }

  void spin(int turns = 8) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  std::unique_ptr<ListeningPort> listen(ServerFactory& factory, const std::string& interface) {
    ListenOptions options;
    options.interface = interface;
    auto port = listen_tcp(*reactor, os, 0, factory, std::move(options));
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }

  std::unique_ptr<DatagramPort> udp(DatagramProtocol& protocol, const std::string& interface,
                                    std::uint16_t number = 0, bool reuse = false) {
    UdpOptions options;
    options.interface = interface;
    options.reuse_address = reuse;
    auto port = listen_udp(*reactor, os, number, protocol, std::move(options));
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }

  std::size_t open_fds() { return os.open_fds(os.current_pid()).size(); }
};

// ---- TCP ---------------------------------------------------------------------------------------

TEST(NetIpv6, ListenTcpOnLoopbackPortZeroEchoesToConnectTcp) {
  World w;
  EchoServer server;
  auto port = w.listen(server, "::1");
  ASSERT_TRUE(port);
  EXPECT_EQ(port->address().family(), AF_INET6);
  EXPECT_EQ(port->address().host(), "::1");
  EXPECT_NE(port->address().port(), 0);
  Greeter client;
  auto connector = connect_tcp(*w.reactor, w.os, "::1", port->address().port(), client);
  w.spin();
  EXPECT_TRUE(client.failures.empty()) << client.failures.front();
  EXPECT_EQ(client.answer, "hello over six");
  ASSERT_EQ(server.peers.size(), 1u);
  EXPECT_EQ(server.peers[0].family(), AF_INET6);
  EXPECT_EQ(server.peers[0].host(), "::1");
}

TEST(NetIpv6, ADualStackListenerHearsAnIpv4ClientAsAMappedAddress) {
  World w;
  EchoServer server;
  auto port = w.listen(server, "::");
  ASSERT_TRUE(port);
  EXPECT_EQ(port->address().host(), "::");
  Greeter v4, v6;
  auto c4 = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), v4);
  auto c6 = connect_tcp(*w.reactor, w.os, "::1", port->address().port(), v6);
  w.spin();
  EXPECT_EQ(v4.answer, "hello over six");
  EXPECT_EQ(v6.answer, "hello over six");
  ASSERT_EQ(server.peers.size(), 2u);
  std::vector<std::string> hosts;
  for (const auto& peer : server.peers) hosts.push_back(peer.host());
  EXPECT_THAT(hosts, testing::UnorderedElementsAre("::ffff:127.0.0.1", "::1"));
}

TEST(NetIpv6, AnIpv4ListenerAndAnIpv6OneShareAPortOnlyWhenTheyDoNotOverlap) {
  World w;
  EchoServer a, b, c;
  auto v4 = w.listen(a, "127.0.0.1");
  ASSERT_TRUE(v4);
  ListenOptions options;
  options.interface = "::";
  auto dual = listen_tcp(*w.reactor, w.os, v4->address().port(), b, options);
  ASSERT_FALSE(dual) << ":: covers 127.0.0.1";
  EXPECT_EQ(dual.error().error_number(), EADDRINUSE);
  options.interface = "::1";
  auto six = listen_tcp(*w.reactor, w.os, v4->address().port(), c, options);
  ASSERT_TRUE(six) << to_string(six.error());
  Greeter client;
  auto connector = connect_tcp(*w.reactor, w.os, "::1", v4->address().port(), client);
  w.spin();
  EXPECT_EQ(client.answer, "hello over six");
  EXPECT_EQ(c.peers.size(), 1u);
  EXPECT_TRUE(a.peers.empty());
}

TEST(NetIpv6, ARefusedConnectNamesTheAddressAndTheErrno) {
  World w;
  EchoServer server;
  auto port = w.listen(server, "::1");
  const std::uint16_t number = port->address().port();
  port.reset();  // nobody listens there now
  Greeter client;
  auto connector = connect_tcp(*w.reactor, w.os, "::1", number, client);
  w.spin();
  ASSERT_EQ(client.errors.size(), 1u);
  EXPECT_EQ(client.errors[0], ECONNREFUSED);
  EXPECT_THAT(client.failures[0], HasSubstr("Connection refused (ECONNREFUSED)"));
}

TEST(NetIpv6, AnAddressLoLacksIsEaddrnotavailAndABindAddressOnLoopbackWorks) {
  World w;
  EchoServer server;
  ListenOptions options;
  options.interface = "2001:db8::1";
  auto port = listen_tcp(*w.reactor, w.os, 0, server, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EADDRNOTAVAIL);
  auto there = w.listen(server, "::1");
  Greeter client;
  ConnectOptions connect;
  connect.bind_address = SocketAddress::ip("::1", 0);
  auto connector = connect_tcp(*w.reactor, w.os, "::1", there->address().port(), client, connect);
  w.spin();
  EXPECT_EQ(client.answer, "hello over six") << "a bind address of the same family";
}

// ---- UDP ---------------------------------------------------------------------------------------

TEST(NetIpv6, UdpPortsOnLoopbackExchangeDatagramsAndKnowTheSender) {
  World w;
  Heard a, b;
  auto pa = w.udp(a, "::1");
  auto pb = w.udp(b, "::1");
  ASSERT_TRUE(pa && pb);
  EXPECT_EQ(pa->address().family(), AF_INET6);
  EXPECT_EQ(pa->address().host(), "::1");
  const std::string big(60000, 'b');
  ASSERT_TRUE(pa->write(bytes("small"), pb->address()));
  ASSERT_TRUE(pa->write(bytes(big), pb->address()));
  w.spin();
  ASSERT_EQ(b.datagrams.size(), 2u);
  EXPECT_EQ(b.datagrams[0], "small");
  EXPECT_EQ(b.datagrams[1].size(), 8192u) << "cut to the port's default max packet size";
  EXPECT_EQ(b.senders[0], pa->address());
}

TEST(NetIpv6, ADualStackUdpPortHearsIpv4AsAMappedSender) {
  World w;
  Heard dual, v4;
  auto pd = w.udp(dual, "::");
  auto p4 = w.udp(v4, "127.0.0.1");
  ASSERT_TRUE(pd && p4);
  ASSERT_TRUE(p4->write(bytes("four"), *SocketAddress::ip("127.0.0.1", pd->address().port())));
  w.spin();
  ASSERT_THAT(dual.datagrams, ElementsAre("four"));
  EXPECT_EQ(dual.senders[0].host(), "::ffff:127.0.0.1");
  EXPECT_EQ(dual.senders[0].port(), p4->address().port());
  // The answer goes back to the mapped address, which is the IPv4 port.
  ASSERT_TRUE(pd->write(bytes("back"), dual.senders[0]));
  w.spin();
  EXPECT_THAT(v4.datagrams, ElementsAre("back"));
}

TEST(NetIpv6, AConnectedUdpPortHearsOnlyItsPeerAndRefusals) {
  World w;
  Heard server, other, client;
  auto ps = w.udp(server, "::1");
  auto po = w.udp(other, "::1");
  auto pc = w.udp(client, "::1");
  ASSERT_TRUE(pc->connect(ps->address()));
  EXPECT_EQ(pc->peer(), ps->address());
  ASSERT_TRUE(po->write(bytes("stranger"), pc->address()));
  ASSERT_TRUE(ps->write(bytes("peer"), pc->address()));
  ASSERT_TRUE(pc->write(bytes("to the peer")));
  w.spin();
  EXPECT_THAT(client.datagrams, ElementsAre("peer"));
  EXPECT_THAT(server.datagrams, ElementsAre("to the peer"));
  // The peer goes: the next send is refused, and the connected port hears of it.
  ps.reset();
  ASSERT_TRUE(pc->write(bytes("x")));
  w.spin();
  EXPECT_EQ(client.refusals, 1);
  EXPECT_EQ(other.refusals, 0);
}

// ---- Multicast by lo ---------------------------------------------------------------------------

// DatagramLinux.Ipv6MulticastOnLoopbackReachesAMember on the fake, which models a machine whose
// lo carries ff00::/8 (the real one may not).
TEST(NetIpv6, MulticastOnLoopbackReachesEveryPortOnTheGroupsPort) {
  World w;
  Heard member, bystander, sender;
  auto pm = w.udp(member, "::", 0, true);
  auto pb = w.udp(bystander, "::", pm->address().port(), true);
  auto ps = w.udp(sender, "::1");
  ASSERT_TRUE(pm && pb && ps);
  const std::string lo = "1";
  const std::string group = "ff02::7777";
  ASSERT_TRUE(pm->join_group(group, lo));
  ASSERT_TRUE(pm->leave_group(group, lo));
  EXPECT_EQ(pm->leave_group(group, lo).error().code, EADDRNOTAVAIL);
  EXPECT_EQ(pm->join_group(group, "lo").error().code, EINVAL) << "an index, not a name";
  EXPECT_EQ(pm->join_group(group, "7").error().code, ENODEV);
  ASSERT_TRUE(pm->join_group(group, lo));
  auto again = pm->join_group(group, lo);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EADDRINUSE);
  EXPECT_THAT(sys::to_string(again.error()), HasSubstr("IPV6_JOIN_GROUP ff02::7777"));
  const auto to = *SocketAddress::ip(group, pm->address().port());
  auto unrouted = ps->write(bytes("x"), to);
  ASSERT_FALSE(unrouted) << "no interface named, and no default route";
  EXPECT_EQ(unrouted.error().code, ENETUNREACH);
  EXPECT_EQ(ps->set_outgoing_interface("7").error().code, ENODEV);
  ASSERT_TRUE(ps->set_outgoing_interface(lo));
  ASSERT_TRUE(ps->set_ttl(1));
  EXPECT_EQ(*ps->ttl(), 1);
  EXPECT_EQ(ps->set_ttl(256).error().code, EINVAL);
  ASSERT_TRUE(ps->set_loopback_mode(false));
  EXPECT_FALSE(*ps->loopback_mode());
  ASSERT_TRUE(ps->write(bytes("to the v6 group"), to));
  w.spin();
  EXPECT_THAT(member.datagrams, ElementsAre("to the v6 group"));
  EXPECT_THAT(bystander.datagrams, ElementsAre("to the v6 group"))
      << "IPv6's MC6_ALL: a port on the port hears a group the host joined";
  EXPECT_EQ(member.senders[0], ps->address());
  ASSERT_TRUE(pm->leave_group(group, lo));
  ASSERT_TRUE(ps->write(bytes("after the leave"), to));
  w.spin();
  EXPECT_EQ(member.datagrams.size(), 1u);
}

// ---- Each failing call, over IPv6 --------------------------------------------------------------

struct FailingCall {
  const char* call;
  int error;
};

void PrintTo(const FailingCall& f, std::ostream* out) {
  *out << f.call << " " << sys::errno_name(f.error);
}

std::string call_name(const testing::TestParamInfo<FailingCall>& param) { return param.param.call; }

class NetIpv6ListenFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetIpv6ListenFailure, EachFailingCallIsReturnedAndLeavesNoDescriptor) {
  World w;
  EchoServer server;
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();  // fail_nth counts calls from here
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  ListenOptions options;
  options.interface = "::1";
  auto port = listen_tcp(*w.reactor, w.os, 0, server, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
}

INSTANTIATE_TEST_SUITE_P(
    Calls, NetIpv6ListenFailure,
    testing::Values(FailingCall{"socket", EAFNOSUPPORT}, FailingCall{"setsockopt", ENOMEM},
                    FailingCall{"bind", EADDRNOTAVAIL}, FailingCall{"listen", EADDRINUSE},
                    FailingCall{"getsockname", ENOBUFS}, FailingCall{"epoll_ctl", ENOMEM}),
    call_name);

class NetIpv6ConnectFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetIpv6ConnectFailure, EachFailingCallReachesTheFactoryAndLeavesNoDescriptor) {
  World w;
  EchoServer server;
  auto port = w.listen(server, "::1");
  const std::size_t before = w.open_fds();
  Greeter client;
  ConnectOptions options;
  options.bind_address = SocketAddress::ip("::1", 0);
  w.os.clear_transcript();  // fail_nth counts calls from here
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  auto connector =
      connect_tcp(*w.reactor, w.os, "::1", port->address().port(), client, std::move(options));
  w.spin();
  ASSERT_EQ(client.errors.size(), 1u);
  EXPECT_EQ(client.errors[0], GetParam().error);
  connector.reset();
  w.spin();
  EXPECT_EQ(w.open_fds(), before);
}

INSTANTIATE_TEST_SUITE_P(Calls, NetIpv6ConnectFailure,
                         testing::Values(FailingCall{"socket", EAFNOSUPPORT},
                                         FailingCall{"bind", EADDRINUSE},
                                         FailingCall{"connect", ENETUNREACH},
                                         FailingCall{"getsockopt", ENOBUFS}),
                         call_name);

class NetIpv6UdpListenFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetIpv6UdpListenFailure, EachFailingCallIsReturnedAndLeavesNoDescriptor) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();  // fail_nth counts calls from here
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  UdpOptions options;
  options.interface = "::";
  options.reuse_address = true;
  auto port = listen_udp(*w.reactor, w.os, 0, h, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_TRUE(h.datagrams.empty());
}

INSTANTIATE_TEST_SUITE_P(Calls, NetIpv6UdpListenFailure,
                         testing::Values(FailingCall{"socket", EAFNOSUPPORT},
                                         FailingCall{"setsockopt", ENOMEM},
                                         FailingCall{"bind", EADDRINUSE},
                                         FailingCall{"getsockname", ENOBUFS},
                                         FailingCall{"epoll_ctl", ENOMEM}),
                         call_name);

// The IPv6 options go through setsockopt and getsockopt at IPPROTO_IPV6, and a failure of
// either names the option (a getsockopt failure is the kernel's own).
TEST(NetIpv6, AFailingMulticastOptionIsReturnedNamingIt) {
  World w;
  Heard h;
  auto port = w.udp(h, "::");
  ASSERT_TRUE(port);
  w.os.clear_transcript();
  w.os.fail_nth("setsockopt", 1, ENOBUFS);
  auto joined = port->join_group("ff02::1:3", "1");
  ASSERT_FALSE(joined);
  EXPECT_EQ(joined.error().code, ENOBUFS);
  EXPECT_THAT(sys::to_string(joined.error()), HasSubstr("IPV6_JOIN_GROUP ff02::1:3"));
  ASSERT_FALSE(w.os.transcript().empty());
  EXPECT_THAT(w.os.transcript().back().call_text(), HasSubstr("IPPROTO_IPV6, IPV6_JOIN_GROUP"))
      << "the transcript names the option";
  w.os.clear_faults();
  w.os.clear_transcript();
  w.os.fail_nth("setsockopt", 1, ENOMEM);
  EXPECT_THAT(sys::to_string(port->set_ttl(4).error()), HasSubstr("IPV6_MULTICAST_HOPS 4"));
  w.os.clear_faults();
  w.os.clear_transcript();
  w.os.fail_nth("getsockopt", 1, ENOBUFS);
  EXPECT_EQ(port->loopback_mode().error().code, ENOBUFS);
  w.os.clear_faults();
  EXPECT_TRUE(*port->loopback_mode());
}

}  // namespace
}  // namespace daemonkit::core
