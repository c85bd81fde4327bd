// Datagram ports on the fake kernel: UDP on loopback and UNIX datagram sockets, each lifecycle
// and failure path (a refusal heard only when connected, the send errors UDP drops or returns,
// each failing call of listen, connect and adopt by fault injection), and a property: datagrams
// between two ports arrive whole and in order, never merged nor split.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/udp.h"
#include "daemonkit/core/net/unix_datagram.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::HasSubstr;

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

struct Heard : DatagramProtocol {
  std::vector<std::string> datagrams;
  std::vector<SocketAddress> senders;
  std::vector<std::string> events;
  int refusals = 0;
  std::function<void(const std::string&, const SocketAddress&)> on_datagram;

  void started(DatagramPort&) override { events.emplace_back("started"); }
  void datagram_received(std::span<const std::byte> d, const SocketAddress& from) override {
    datagrams.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
    senders.push_back(from);
    events.emplace_back("datagram");
    if (on_datagram) on_datagram(datagrams.back(), from);
  }
  void connection_refused() override {
    ++refusals;
    events.emplace_back("refused");
  }
  void stopped() override { events.emplace_back("stopped"); }
};

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;

  World() {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
    os.make_dir("/run/app", 0755);
  }

  void spin(int turns = 4) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  UdpOptions udp_options() {
    UdpOptions o;
    o.interface = "127.0.0.1";
    o.port.log = [this](std::string_view line) { log.emplace_back(line); };
    return o;
  }

  std::unique_ptr<DatagramPort> udp(DatagramProtocol& protocol, UdpOptions options) {
    auto port = listen_udp(*reactor, os, 0, protocol, std::move(options));
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }
  std::unique_ptr<DatagramPort> udp(DatagramProtocol& protocol) {
    return udp(protocol, udp_options());
  }

  // A UDP port number nobody is bound to: bound once, then closed.
  std::uint16_t closed_port() {
    Heard nobody;
    auto port = udp(nobody);
    const std::uint16_t number = port->address().port();
    port.reset();
    return number;
  }

  std::size_t open_fds() { return os.open_fds(os.current_pid()).size(); }
};

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  std::size_t n = 0;
  for (const auto& r : os.transcript()) n += r.name == name ? 1 : 0;
  return n;
}

// ---- UDP: listening, sending, receiving -------------------------------------------------------

TEST(NetUdp, TwoPortsExchangeDatagramsAndEachKnowsTheSender) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  ASSERT_TRUE(pa && pb);
  EXPECT_NE(pa->address().port(), 0);
  EXPECT_EQ(pa->address().host(), "127.0.0.1");
  ASSERT_TRUE(pa->write(bytes("ping"), pb->address()));
  w.spin();
  ASSERT_THAT(b.datagrams, ElementsAre("ping"));
  EXPECT_EQ(b.senders[0], pa->address());
  b.on_datagram = nullptr;
  ASSERT_TRUE(pb->write(bytes("pong"), b.senders[0]));
  w.spin();
  EXPECT_THAT(a.datagrams, ElementsAre("pong"));
  EXPECT_THAT(a.events, ElementsAre("started", "datagram"));
}

TEST(NetUdp, AnEchoServerIsOneMethod) {
  struct Echo : DatagramProtocol {
    void datagram_received(std::span<const std::byte> d, const SocketAddress& from) override {
      (void)port().write(d, from);
    }
  };
  World w;
  Echo echo;
  Heard client;
  auto server = w.udp(echo);
  auto port = w.udp(client);
  ASSERT_TRUE(port->write(bytes("hello"), server->address()));
  w.spin();
  EXPECT_THAT(client.datagrams, ElementsAre("hello"));
}

TEST(NetUdp, TheSocketIsNonBlockingAndCloseOnExec) {
  World w;
  Heard h;
  auto port = w.udp(h);
  EXPECT_TRUE(*w.os.fcntl(port->fd(), F_GETFL, 0) & O_NONBLOCK);
  EXPECT_TRUE(*w.os.fcntl(port->fd(), F_GETFD, 0) & FD_CLOEXEC);
  int type = 0;
  socklen_t len = sizeof type;
  ASSERT_TRUE(w.os.getsockopt(port->fd(), SOL_SOCKET, SO_TYPE, &type, &len));
  EXPECT_EQ(type, SOCK_DGRAM);
}

TEST(NetUdp, DatagramsArriveWholeAndSeparateEvenWhenSentTogether) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  for (const char* d : {"one", "", "three"}) ASSERT_TRUE(pa->write(bytes(d), pb->address()));
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("one", "", "three"));
}

TEST(NetUdp, ADatagramLongerThanTheMaxPacketSizeArrivesCutToIt) {
  World w;
  Heard a, b;
  UdpOptions small = w.udp_options();
  small.port.max_packet_size = 4;
  auto pa = w.udp(a);
  auto pb = w.udp(b, small);
  EXPECT_EQ(pb->max_packet_size(), 4u);
  ASSERT_TRUE(pa->write(bytes("abcdefgh"), pb->address()));
  ASSERT_TRUE(pa->write(bytes("xy"), pb->address()));
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("abcd", "xy"));
}

TEST(NetUdp, ReadsAreBoundedPerWakeUp) {
  World w;
  Heard a, b;
  UdpOptions bounded = w.udp_options();
  bounded.port.reads_per_wakeup = 3;
  auto pa = w.udp(a);
  auto pb = w.udp(b, bounded);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(pa->write(bytes(std::to_string(i)), pb->address()));
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(b.datagrams.size(), 3u);
  w.spin();
  EXPECT_EQ(b.datagrams.size(), 8u);
}

TEST(NetUdp, AFullReceiveBufferDropsDatagramsAsUdpDoes) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  const std::string big(60000, 'x');
  int sent = 0;
  for (; sent < 20; ++sent) ASSERT_TRUE(pa->write(bytes(big), pb->address()));
  w.spin(40);
  EXPECT_LT(b.datagrams.size(), 20u);
  EXPECT_GT(b.datagrams.size(), 0u);
  for (const auto& d : b.datagrams) EXPECT_EQ(d.size(), 8192u);  // the default max cuts them
}

TEST(NetUdp, TooLongForUdpIsTheCallersErrorWithEmsgsize) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  const std::string too_long(65508, 'x');
  auto sent = pa->write(bytes(too_long), pb->address());
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, EMSGSIZE);
  EXPECT_THAT(sys::to_string(sent.error()), HasSubstr(to_string(pb->address())));
  ASSERT_TRUE(pa->write(bytes(std::string(65507, 'y')), pb->address()));
}

TEST(NetUdp, PortZeroTakesAFreePortAndABusyOneIsAddressInUseNamingIt) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto second = listen_udp(*w.reactor, w.os, pa->address().port(), b, w.udp_options());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().error_number(), EADDRINUSE);
  EXPECT_THAT(to_string(second.error()),
              HasSubstr(fmt::format("bind(127.0.0.1:{})", pa->address().port())));
  EXPECT_TRUE(b.events.empty());
}

TEST(NetUdp, WithReuseAddressTwoReceiversShareAPort) {
  World w;
  Heard a, b;
  UdpOptions shared = w.udp_options();
  shared.reuse_address = true;
  auto pa = w.udp(a, shared);
  auto pb = listen_udp(*w.reactor, w.os, pa->address().port(), b, shared);
  EXPECT_TRUE(pb) << (pb ? "" : to_string(pb.error()));
}

TEST(NetUdp, AnInterfaceThatIsNotANumericAddressIsRefused) {
  World w;
  Heard h;
  UdpOptions options = w.udp_options();
  options.interface = "localhost";
  auto port = listen_udp(*w.reactor, w.os, 7000, h, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EINVAL);
  EXPECT_THAT(to_string(port.error()), HasSubstr("localhost:7000, not a numeric address"));
}

// ---- Connected UDP and refusals -----------------------------------------------------------------

TEST(NetUdpConnected, ARefusalIsHeardOnlyByAConnectedPort) {
  World w;
  const std::uint16_t nobody = w.closed_port();
  const auto to = *SocketAddress::ip("127.0.0.1", nobody);
  Heard unconnected, connected;
  auto pu = w.udp(unconnected);
  auto pc = w.udp(connected);
  ASSERT_TRUE(pu->write(bytes("x"), to));
  ASSERT_TRUE(pc->connect(to));
  EXPECT_EQ(pc->peer(), to);
  ASSERT_TRUE(pc->write(bytes("x")));
  w.spin();
  EXPECT_EQ(unconnected.refusals, 0);
  EXPECT_EQ(connected.refusals, 1);
  // The port goes on: the refusal was read and cleared, and the next one is heard again.
  ASSERT_TRUE(pc->write(bytes("y")));
  ASSERT_TRUE(pc->write(bytes("z")));  // the kernel reports the first refusal here
  w.spin();
  EXPECT_EQ(connected.refusals, 2);
  EXPECT_TRUE(pc->listening());
}

TEST(NetUdpConnected, AConnectedPortHearsOnlyItsPeer) {
  World w;
  Heard server, other, client;
  auto ps = w.udp(server);
  auto po = w.udp(other);
  auto pc = w.udp(client);
  ASSERT_TRUE(pc->connect(ps->address()));
  ASSERT_TRUE(po->write(bytes("stranger"), pc->address()));
  ASSERT_TRUE(ps->write(bytes("peer"), pc->address()));
  w.spin();
  EXPECT_THAT(client.datagrams, ElementsAre("peer"));
}

TEST(NetUdpConnected, WritingElsewhereOrReconnectingIsEisconnAndUnconnectedWriteIsEdestaddrreq) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  auto unconnected = pa->write(bytes("x"));
  ASSERT_FALSE(unconnected);
  EXPECT_EQ(unconnected.error().code, EDESTADDRREQ);
  ASSERT_TRUE(pa->connect(pb->address()));
  auto elsewhere = pa->write(bytes("x"), *SocketAddress::ip("127.0.0.1", 9));
  ASSERT_FALSE(elsewhere);
  EXPECT_EQ(elsewhere.error().code, EISCONN);
  auto again = pa->connect(*SocketAddress::ip("127.0.0.1", 9));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EISCONN);
  ASSERT_TRUE(pa->write(bytes("to the peer by name"), pb->address()));
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("to the peer by name"));
}

TEST(NetUdpConnected, AFailedConnectNamesThePeerAndLeavesThePortUnconnected) {
  World w;
  Heard h;
  auto port = w.udp(h);
  auto off_loopback = port->connect(*SocketAddress::ip("192.0.2.1", 53));
  ASSERT_FALSE(off_loopback);
  EXPECT_EQ(off_loopback.error().code, ENETUNREACH);
  EXPECT_THAT(sys::to_string(off_loopback.error()), HasSubstr("192.0.2.1:53"));
  EXPECT_FALSE(port->peer());
}

// ---- Send errors ------------------------------------------------------------------------------

struct SendCase {
  int error;
  bool returned;  // false: dropped, counted, write succeeds
};

class NetUdpSendError : public testing::TestWithParam<SendCase> {};

TEST_P(NetUdpSendError, IsDroppedOrReturnedAsUdpWants) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  w.os.fail_nth("sendto", 1, GetParam().error);
  auto sent = pa->write(bytes("x"), pb->address());
  if (GetParam().returned) {
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, GetParam().error);
    EXPECT_STREQ(sent.error().call, "sendto");
    EXPECT_EQ(pa->dropped(), 0u);
  } else {
    EXPECT_TRUE(sent);
    EXPECT_EQ(pa->dropped(), 1u);
  }
  w.spin();
  EXPECT_TRUE(b.datagrams.empty());
  EXPECT_TRUE(pa->listening());
}

INSTANTIATE_TEST_SUITE_P(Errors, NetUdpSendError,
                         testing::Values(SendCase{EAGAIN, false}, SendCase{ENOBUFS, false},
                                         SendCase{EMSGSIZE, true}, SendCase{EPERM, true},
                                         SendCase{ENETUNREACH, true}),
                         [](const testing::TestParamInfo<SendCase>& p) {
                           return std::string(sys::errno_name(p.param.error));
                         });

TEST(NetUdpSendError, AnInterruptedSendIsSentAgain) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  w.os.fail_nth("sendto", 1, EINTR);
  ASSERT_TRUE(pa->write(bytes("x"), pb->address()));
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("x"));
}

TEST(NetUdpSendError, EndlessInterruptionsEndWithEintr) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  w.os.fail_when(
      "sendto", [](const fake::CallRecord&) { return true; }, EINTR);
  auto sent = pa->write(bytes("x"), pb->address());
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, EINTR);
  EXPECT_EQ(calls_of(w.os, "sendto"), 5u);
}

TEST(NetUdpSendError, ARefusalOnAConnectedSendReachesTheProtocol) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  ASSERT_TRUE(pa->connect(pb->address()));
  w.os.fail_nth("sendto", 1, ECONNREFUSED);
  EXPECT_TRUE(pa->write(bytes("x")));
  EXPECT_EQ(a.refusals, 1);
}

// ---- Read errors ------------------------------------------------------------------------------

TEST(NetUdpReadError, AFailedReadIsLoggedAndTheNextTurnReadsOn) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  ASSERT_TRUE(pa->write(bytes("kept"), pb->address()));
  w.os.fail_nth("recvfrom", 1, ENOMEM);
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_TRUE(b.datagrams.empty());
  ASSERT_EQ(w.log.size(), 1u);
  EXPECT_THAT(w.log[0], HasSubstr("could not read a datagram on 127.0.0.1:"));
  EXPECT_THAT(w.log[0], HasSubstr("ENOMEM"));
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("kept"));
}

TEST(NetUdpReadError, InterruptedAndUnconnectedRefusedReadsAreSkipped) {
  World w;
  Heard a, b;
  auto pa = w.udp(a);
  auto pb = w.udp(b);
  ASSERT_TRUE(pa->write(bytes("kept"), pb->address()));
  w.os.fail_nth("recvfrom", 1, EINTR);
  w.os.fail_nth("recvfrom", 2, ECONNREFUSED);
  w.spin();
  EXPECT_THAT(b.datagrams, ElementsAre("kept"));
  EXPECT_EQ(b.refusals, 0);
  EXPECT_TRUE(w.log.empty());
}

// ---- Lifecycle --------------------------------------------------------------------------------

TEST(NetUdpLifecycle, StopListeningClosesOnceAndTheProtocolHearsItOnce) {
  World w;
  Heard h, sender;
  auto port = w.udp(h);
  auto from = w.udp(sender);
  const std::size_t before = w.open_fds();
  const SocketAddress address = port->address();
  EXPECT_TRUE(port->stop_listening());
  EXPECT_FALSE(port->stop_listening());
  EXPECT_FALSE(port->listening());
  EXPECT_EQ(w.open_fds(), before - 1);
  auto after = port->write(bytes("x"), address);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, EBADF);
  EXPECT_EQ(port->connect(address).error().code, EBADF);
  EXPECT_EQ(port->join_group("239.1.2.3").error().code, EBADF);
  EXPECT_EQ(port->set_ttl(2).error().code, EBADF);
  ASSERT_TRUE(from->write(bytes("late"), address));
  w.spin();
  port.reset();
  EXPECT_THAT(h.events, ElementsAre("started", "stopped"));
}

TEST(NetUdpLifecycle, DestroyingAListeningPortStopsTheProtocol) {
  World w;
  Heard h;
  auto port = w.udp(h);
  const std::size_t before = w.open_fds();
  port.reset();
  EXPECT_EQ(w.open_fds(), before - 1);
  EXPECT_THAT(h.events, ElementsAre("started", "stopped"));
}

TEST(NetUdpLifecycle, AProtocolMayStopOrDestroyItsPortFromADatagram) {
  World w;
  Heard a, stopper, destroyer;
  auto pa = w.udp(a);
  auto ps = w.udp(stopper);
  auto pd = w.udp(destroyer);
  stopper.on_datagram = [&](const std::string&, const SocketAddress&) {
    stopper.port().stop_listening();
  };
  destroyer.on_datagram = [&](const std::string&, const SocketAddress&) { pd.reset(); };
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pa->write(bytes("x"), ps->address()));
    ASSERT_TRUE(pa->write(bytes("x"), pd->address()));
  }
  w.spin();
  EXPECT_THAT(stopper.events, ElementsAre("started", "datagram", "stopped"));
  EXPECT_THAT(destroyer.events, ElementsAre("started", "datagram", "stopped"));
}

TEST(NetUdpLifecycle, AProtocolMayBeStartedAgainOnAnotherPort) {
  World w;
  Heard h;
  auto first = w.udp(h);
  first->stop_listening();
  auto second = w.udp(h);
  EXPECT_EQ(&h.port(), second.get());
  first.reset();  // stopped already: tells nobody
  EXPECT_THAT(h.events, ElementsAre("started", "stopped", "started"));
}

struct FailingCall {
  const char* call;
  int error;
};

void PrintTo(const FailingCall& f, std::ostream* out) {
  *out << f.call << " " << sys::errno_name(f.error);
}

std::string call_name(const testing::TestParamInfo<FailingCall>& param) { return param.param.call; }

class NetUdpListenFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetUdpListenFailure, EachFailingCallIsReturnedLeavesNoDescriptorAndStartsNothing) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  UdpOptions options = w.udp_options();
  options.reuse_address = true;
  auto port = listen_udp(*w.reactor, w.os, 0, h, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_TRUE(h.events.empty());
}

INSTANTIATE_TEST_SUITE_P(Calls, NetUdpListenFailure,
                         testing::Values(FailingCall{"socket", EMFILE},
                                         FailingCall{"setsockopt", ENOMEM},
                                         FailingCall{"bind", EACCES},
                                         FailingCall{"getsockname", ENOBUFS},
                                         FailingCall{"epoll_ctl", ENOMEM}),
                         call_name);

// ---- The property -----------------------------------------------------------------------------

RC_GTEST_PROP(NetUdpProperty, DatagramsUpToTheMaxArriveWholeInOrderNeverMergedNorSplit, ()) {
  const auto sizes =
      *rc::gen::container<std::vector<std::size_t>>(rc::gen::inRange<std::size_t>(0, 2049));
  const auto max = *rc::gen::inRange<std::size_t>(1, 2049);
  World w;
  Heard a, b;
  UdpOptions options = w.udp_options();
  options.port.max_packet_size = max;
  options.port.reads_per_wakeup = *rc::gen::inRange(1, 8);
  auto pa = w.udp(a);
  auto pb = w.udp(b, options);
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string d(sizes[i], static_cast<char>('a' + i % 26));
    RC_ASSERT(pa->write(bytes(d), pb->address()).has_value());
    sent.push_back(d.substr(0, max));
  }
  w.spin(static_cast<int>(sizes.size()) + 2);
  RC_ASSERT(b.datagrams == sent);
}

// ---- Multicast --------------------------------------------------------------------------------

TEST(NetMulticast, AGroupOrInterfaceThatIsNotANumericAddressIsEinval) {
  World w;
  Heard h;
  auto port = w.udp(h);
  auto group = port->join_group("all-hosts");
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().code, EINVAL);
  EXPECT_THAT(sys::to_string(group.error()), HasSubstr("group all-hosts, not a numeric address"));
  EXPECT_EQ(port->join_group("239.1.2.3", "eth0").error().code, EINVAL);
  EXPECT_EQ(port->set_outgoing_interface("eth0").error().code, EINVAL);
  EXPECT_EQ(calls_of(w.os, "setsockopt"), 0u);
}

TEST(NetMulticast, EveryPortOnTheGroupsPortHearsItWhileTheHostIsAMember) {
  World w;
  Heard member, bystander, sender;
  UdpOptions shared = w.udp_options();
  shared.interface = "";
  shared.reuse_address = true;
  auto pm = w.udp(member, shared);
  auto pb = listen_udp(*w.reactor, w.os, pm->address().port(), bystander, shared);
  ASSERT_TRUE(pb);
  auto ps = w.udp(sender);
  const auto group = *SocketAddress::ip("239.255.7.7", pm->address().port());
  ASSERT_TRUE(pm->join_group("239.255.7.7", "127.0.0.1"));
  // No route for a group but by lo, and the port has not named lo yet.
  auto unrouted = ps->write(bytes("x"), group);
  ASSERT_FALSE(unrouted);
  EXPECT_EQ(unrouted.error().code, ENETUNREACH);
  ASSERT_TRUE(ps->set_outgoing_interface("127.0.0.1"));
  ASSERT_TRUE(ps->set_ttl(3));
  EXPECT_EQ(*ps->ttl(), 3);
  ASSERT_TRUE(ps->set_loopback_mode(false));
  EXPECT_FALSE(*ps->loopback_mode());
  ASSERT_TRUE(ps->write(bytes("to the group"), group));
  w.spin();
  EXPECT_THAT(member.datagrams, ElementsAre("to the group"));
  // Linux's IP_MULTICAST_ALL: a port on the port hears a group some socket of the host joined.
  EXPECT_THAT(bystander.datagrams, ElementsAre("to the group"));
  EXPECT_EQ(member.senders[0].host(), "127.0.0.1");
  ASSERT_TRUE(pm->leave_group("239.255.7.7", "127.0.0.1"));
  ASSERT_TRUE(ps->write(bytes("after the leave"), group));
  w.spin();
  EXPECT_EQ(member.datagrams.size(), 1u);
  auto again = pm->leave_group("239.255.7.7", "127.0.0.1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EADDRNOTAVAIL);
  EXPECT_THAT(sys::to_string(again.error()),
              HasSubstr("setsockopt(IP_DROP_MEMBERSHIP 239.255.7.7)"));
}

TEST(NetMulticast, TheKernelsRefusalsAreReturnedNamingTheOption) {
  World w;
  Heard h;
  auto port = w.udp(h);
  auto not_a_group = port->join_group("127.0.0.1");
  ASSERT_FALSE(not_a_group);
  EXPECT_EQ(not_a_group.error().code, EINVAL);
  EXPECT_THAT(sys::to_string(not_a_group.error()),
              HasSubstr("setsockopt(IP_ADD_MEMBERSHIP 127.0.0.1)"));
  EXPECT_EQ(port->join_group("239.1.2.3", "192.0.2.1").error().code, ENODEV);
  ASSERT_TRUE(port->join_group("239.1.2.3"));
  EXPECT_EQ(port->join_group("239.1.2.3").error().code, EADDRINUSE);
  EXPECT_EQ(port->set_ttl(256).error().code, EINVAL);
  EXPECT_THAT(sys::to_string(port->set_ttl(256).error()), HasSubstr("IP_MULTICAST_TTL 256"));
  EXPECT_EQ(port->set_outgoing_interface("192.0.2.1").error().code, EADDRNOTAVAIL);
  EXPECT_TRUE(port->set_outgoing_interface(""));
  w.os.clear_transcript();
  w.os.fail_nth("getsockopt", 1, ENOBUFS);
  w.os.fail_nth("getsockopt", 2, ENOBUFS);
  EXPECT_EQ(port->ttl().error().code, ENOBUFS);
  EXPECT_EQ(port->loopback_mode().error().code, ENOBUFS);
  w.os.fail_nth("setsockopt", 1, ENOMEM);
  EXPECT_EQ(port->set_loopback_mode(true).error().code, ENOMEM);
}

TEST(NetMulticast, AUnixDatagramPortHasNoMulticast) {
  World w;
  Heard h;
  auto port = listen_unix_datagram(*w.reactor, w.os, "/run/app/x.sock", h);
  ASSERT_TRUE(port);
  EXPECT_EQ((*port)->join_group("239.1.2.3").error().code, EOPNOTSUPP);
}

// ---- UNIX datagram ----------------------------------------------------------------------------

TEST(NetUnixDatagram, AServerAndABoundClientExchangeDatagramsAndPathsGoAtTheStop) {
  World w;
  Heard server, client;
  auto ps = listen_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", server);
  ASSERT_TRUE(ps) << to_string(ps.error());
  EXPECT_EQ(to_string((*ps)->address()), "/run/app/server.sock");
  EXPECT_EQ(w.os.stat_path("/run/app/server.sock")->st_mode & 07777, 0666u);
  auto pc = connect_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", client,
                                  "/run/app/client.sock");
  ASSERT_TRUE(pc) << to_string(pc.error());
  EXPECT_EQ(to_string((*pc)->address()), "/run/app/client.sock");
  ASSERT_TRUE((*pc)->write(bytes("ping")));
  server.on_datagram = [&](const std::string&, const SocketAddress& from) {
    (void)server.port().write(bytes("pong"), from);
  };
  w.spin();
  EXPECT_THAT(server.datagrams, ElementsAre("ping"));
  EXPECT_EQ(to_string(server.senders[0]), "/run/app/client.sock");
  EXPECT_THAT(client.datagrams, ElementsAre("pong"));
  ps->reset();
  pc->reset();
  EXPECT_FALSE(w.os.stat_path("/run/app/server.sock"));
  EXPECT_FALSE(w.os.stat_path("/run/app/client.sock"));
}

TEST(NetUnixDatagram, AnUnboundClientIsHeardFromNoName) {
  World w;
  Heard server, client;
  auto ps = listen_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", server);
  auto pc = connect_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", client);
  ASSERT_TRUE(ps && pc);
  ASSERT_TRUE((*pc)->write(bytes("anonymous")));
  w.spin();
  ASSERT_THAT(server.datagrams, ElementsAre("anonymous"));
  // Linux gives an unnamed sender no address at all (a name length of 0).
  EXPECT_EQ(server.senders[0].family(), AF_UNSPEC);
}

TEST(NetUnixDatagram, AnAbstractNameIsNeitherChmoddedNorUnlinked) {
  World w;
  Heard server, client;
  auto ps = listen_unix_datagram(*w.reactor, w.os, "@daemonkit-dgram", server);
  ASSERT_TRUE(ps);
  EXPECT_EQ(to_string((*ps)->address()), "@daemonkit-dgram");
  auto pc = connect_unix_datagram(*w.reactor, w.os, "@daemonkit-dgram", client, "@client");
  ASSERT_TRUE(pc);
  ASSERT_TRUE((*pc)->write(bytes("abstract")));
  w.spin();
  EXPECT_THAT(server.datagrams, ElementsAre("abstract"));
  EXPECT_EQ(to_string(server.senders[0]), "@client");
  ps->reset();
  pc->reset();
  EXPECT_EQ(calls_of(w.os, "chmod"), 0u);
  EXPECT_EQ(calls_of(w.os, "unlink"), 0u);
}

TEST(NetUnixDatagram, ALeftoverFileIsAddressInUseAndIsLeftAlone) {
  World w;
  Heard h;
  const int fd = *w.os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto at = *SocketAddress::unix_name("/run/app/x.sock");
  ASSERT_TRUE(w.os.bind(fd, at.data(), at.size()));
  ASSERT_TRUE(w.os.close(fd));
  auto port = listen_unix_datagram(*w.reactor, w.os, "/run/app/x.sock", h);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EADDRINUSE);
  EXPECT_THAT(to_string(port.error()), HasSubstr("bind(/run/app/x.sock)"));
  EXPECT_TRUE(w.os.stat_path("/run/app/x.sock"));
}

TEST(NetUnixDatagram, ConnectingToAMissingPathOrABadNameFails) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  auto missing =
      connect_unix_datagram(*w.reactor, w.os, "/run/app/none.sock", h, "/run/app/client.sock");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().error_number(), ENOENT);
  EXPECT_THAT(to_string(missing.error()), HasSubstr("connect(/run/app/none.sock)"));
  EXPECT_FALSE(w.os.stat_path("/run/app/client.sock"));
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_EQ(connect_unix_datagram(*w.reactor, w.os, "", h).error().error_number(), EINVAL);
  EXPECT_EQ(listen_unix_datagram(*w.reactor, w.os, "", h).error().error_number(), EINVAL);
  EXPECT_EQ(
      listen_unix_datagram(*w.reactor, w.os, "/" + std::string(200, 'x'), h).error().error_number(),
      EINVAL);
}

TEST(NetUnixDatagram, APeerThatGoesIsHeardAsARefusal) {
  World w;
  Heard server, client;
  auto ps = listen_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", server);
  auto pc = connect_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", client);
  ASSERT_TRUE(ps && pc);
  ps->reset();
  EXPECT_TRUE((*pc)->write(bytes("anyone?")));
  w.spin();
  EXPECT_EQ(client.refusals, 1);
  EXPECT_TRUE((*pc)->listening());
}

class NetUnixDatagramFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetUnixDatagramFailure, EachFailingCallLeavesNeitherTheFileNorADescriptor) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  auto port = listen_unix_datagram(*w.reactor, w.os, "/run/app/x.sock", h);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_FALSE(w.os.stat_path("/run/app/x.sock"));
  EXPECT_TRUE(h.events.empty());
}

INSTANTIATE_TEST_SUITE_P(Calls, NetUnixDatagramFailure,
                         testing::Values(FailingCall{"socket", ENFILE}, FailingCall{"bind", EACCES},
                                         FailingCall{"lstat", EIO}, FailingCall{"chmod", EPERM},
                                         FailingCall{"getsockname", ENOBUFS},
                                         FailingCall{"epoll_ctl", ENOMEM}),
                         call_name);

class NetUnixDatagramConnectFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetUnixDatagramConnectFailure, EachFailingCallLeavesNeitherTheFileNorADescriptor) {
  World w;
  Heard server, h;
  auto ps = listen_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", server);
  ASSERT_TRUE(ps);
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  auto port =
      connect_unix_datagram(*w.reactor, w.os, "/run/app/server.sock", h, "/run/app/client.sock");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_FALSE(w.os.stat_path("/run/app/client.sock"));
}

INSTANTIATE_TEST_SUITE_P(
    Calls, NetUnixDatagramConnectFailure,
    testing::Values(FailingCall{"socket", EMFILE}, FailingCall{"bind", EADDRINUSE},
                    FailingCall{"chmod", EPERM}, FailingCall{"connect", ECONNREFUSED},
                    FailingCall{"getsockname", ENOBUFS}, FailingCall{"epoll_ctl", ENOMEM}),
    call_name);

// ---- Adopting a datagram socket ---------------------------------------------------------------

TEST(NetAdoptDatagram, ABoundBlockingSocketIsMadeNonBlockingAndRead) {
  World w;
  Heard adopted, sender;
  const int fd = *w.os.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto at = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_TRUE(w.os.bind(fd, at.data(), at.size()));
  auto port = adopt_datagram_port(*w.reactor, w.os, OwnedFd(w.os, fd), adopted);
  ASSERT_TRUE(port) << to_string(port.error());
  EXPECT_TRUE(*w.os.fcntl(fd, F_GETFL, 0) & O_NONBLOCK);
  EXPECT_FALSE((*port)->peer());
  auto from = w.udp(sender);
  ASSERT_TRUE(from->write(bytes("adopted"), (*port)->address()));
  w.spin();
  EXPECT_THAT(adopted.datagrams, ElementsAre("adopted"));
  // The port owns the descriptor and closes it when it stops.
  const std::size_t before = w.open_fds();
  (*port)->stop_listening();
  EXPECT_EQ(w.open_fds(), before - 1);
}

TEST(NetAdoptDatagram, AConnectedSocketKeepsItsPeerAndHearsRefusals) {
  World w;
  Heard adopted;
  const std::uint16_t nobody = w.closed_port();
  const int fd = *w.os.socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  auto to = *SocketAddress::ip("127.0.0.1", nobody);
  ASSERT_TRUE(w.os.connect(fd, to.data(), to.size()));
  auto port = adopt_datagram_port(*w.reactor, w.os, OwnedFd(w.os, fd), adopted);
  ASSERT_TRUE(port);
  EXPECT_EQ((*port)->peer(), to);
  ASSERT_TRUE((*port)->write(bytes("x")));
  w.spin();
  EXPECT_EQ(adopted.refusals, 1);
}

TEST(NetAdoptDatagram, AStreamSocketIsEprototypeAndClosed) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto port = adopt_datagram_port(*w.reactor, w.os, OwnedFd(w.os, fd), h);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EPROTOTYPE);
  EXPECT_THAT(to_string(port.error()), HasSubstr(fmt::format("adopted descriptor {}", fd)));
  EXPECT_EQ(w.open_fds(), before);
}

class NetAdoptDatagramFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetAdoptDatagramFailure, EachFailingCallClosesTheDescriptor) {
  World w;
  Heard h;
  const std::size_t before = w.open_fds();
  const int fd = *w.os.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto at = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_TRUE(w.os.bind(fd, at.data(), at.size()));
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  auto port = adopt_datagram_port(*w.reactor, w.os, OwnedFd(w.os, fd), h);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
  EXPECT_TRUE(h.events.empty());
}

INSTANTIATE_TEST_SUITE_P(Calls, NetAdoptDatagramFailure,
                         testing::Values(FailingCall{"getsockopt", ENOTSOCK},
                                         FailingCall{"fcntl", EBADF},
                                         FailingCall{"getsockname", ENOBUFS},
                                         FailingCall{"getpeername", ENOBUFS},
                                         FailingCall{"epoll_ctl", ENOMEM}),
                         call_name);

}  // namespace
}  // namespace daemonkit::core
