// Datagram ports on the real kernel: UDP over IPv4 and IPv6 loopback, a connected port hearing
// the kernel's refusal (ICMP port unreachable) and an unconnected one not, multicast on the
// loopback interface (and IPv6 multicast, which lo cannot carry, on a TAP device in a network
// namespace of the test's own), UNIX datagram sockets by path and abstract name, and adopting
// a socket (a datagram one, and a connected stream one).
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/udp.h"
#include "daemonkit/core/net/unix_datagram.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

using namespace std::chrono_literals;

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

struct Heard : DatagramProtocol {
  std::vector<std::string> datagrams;
  std::vector<SocketAddress> senders;
  int refusals = 0;
  bool echo = false;
  void datagram_received(std::span<const std::byte> d, const SocketAddress& from) override {
    datagrams.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
    senders.push_back(from);
    if (echo) (void)port().write(d, from);
  }
  void connection_refused() override { ++refusals; }
};

// This thread in a network namespace of its own, with lo up and a TAP device "dk0" up beside
// it, until destroyed (the thread's namespace is then put back). lo cannot carry IPv6
// multicast (Linux gives it no ff00::/8 route), a device that can is needed, and making one
// is only harmless where nothing else sees it. DAD is off so that dk0's link-local address,
// the multicast source, is usable at once. `failure` says why it could not be set up.
class PrivateNetwork {
 public:
  PrivateNetwork() : failure_(set_up()) {}
  ~PrivateNetwork() {
    if (tap_ >= 0) ::close(tap_);
    if (moved_ && ::setns(saved_, CLONE_NEWNET) != 0) std::abort();  // the next test's network
    if (saved_ >= 0) ::close(saved_);
  }
  PrivateNetwork(const PrivateNetwork&) = delete;
  PrivateNetwork& operator=(const PrivateNetwork&) = delete;

  [[nodiscard]] const std::string& failure() const { return failure_; }
  [[nodiscard]] unsigned index() const { return index_; }

 private:
  static std::string failed(std::string_view what) {
    return fmt::format("{}: {}", what, std::strerror(errno));
  }
  std::string set_up() {
    saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0) return failed("open /proc/thread-self/ns/net");
    if (::unshare(CLONE_NEWNET) != 0) return failed("unshare(CLONE_NEWNET)");
    moved_ = true;
    for (const char* path :
         {"/proc/sys/net/ipv6/conf/default/accept_dad", "/proc/sys/net/ipv6/conf/all/accept_dad"}) {
      const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
      const bool written = fd >= 0 && ::write(fd, "0", 1) == 1;
      std::string why = written ? "" : failed(path);
      if (fd >= 0) ::close(fd);
      if (!written) return why;
    }
    tap_ = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tap_ < 0) return failed("open /dev/net/tun");
    ifreq request{};
    std::strncpy(request.ifr_name, "dk0", IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (::ioctl(tap_, TUNSETIFF, &request) != 0) return failed("TUNSETIFF");
    for (const char* name : {"lo", "dk0"}) {
      if (!bring_up(name)) return failed(fmt::format("bringing {} up", name));
    }
    index_ = ::if_nametoindex("dk0");
    if (index_ == 0) return failed("if_nametoindex(dk0)");
    // dk0's link-local address is the datagrams' source. The kernel makes it as dk0 comes up,
    // but tentative until a work item runs, DAD or not: bind() refuses it until then.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!link_local_usable("dk0")) {
      if (std::chrono::steady_clock::now() > deadline) return "dk0's link-local address never came";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return "";
  }
  static bool link_local_usable(const char* name) {
    ifaddrs* all = nullptr;
    if (::getifaddrs(&all) != 0) return false;
    bool usable = false;
    for (const ifaddrs* a = all; a != nullptr && !usable; a = a->ifa_next) {
      if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET6) continue;
      sockaddr_in6 at{};
      std::memcpy(&at, a->ifa_addr, sizeof at);
      if (std::strcmp(a->ifa_name, name) != 0 || !IN6_IS_ADDR_LINKLOCAL(&at.sin6_addr)) continue;
      const int probe = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      usable = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0;
      if (probe >= 0) ::close(probe);
    }
    ::freeifaddrs(all);
    return usable;
  }
  static bool bring_up(const char* name) {
    const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ifreq request{};
    std::strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    bool up = ::ioctl(fd, SIOCGIFFLAGS, &request) == 0;
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
    up = up && ::ioctl(fd, SIOCSIFFLAGS, &request) == 0;
    ::close(fd);
    return up;
  }

  int saved_ = -1;
  int tap_ = -1;
  bool moved_ = false;
  unsigned index_ = 0;
  std::string failure_;
};

class DatagramLinux : public ::testing::Test {
 protected:
  void SetUp() override {
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os_, std::move(options));
    ASSERT_TRUE(created);
    reactor_ = std::move(*created);
  }

  // Turns the loop until `done` or the deadline (the test then fails, never hangs).
  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      reactor_->run_until_current();
      if (!reactor_->iterate(std::chrono::milliseconds(50))) return false;
    }
    return done();
  }

  ReactorResult<std::unique_ptr<DatagramPort>> udp(DatagramProtocol& p, std::string interface,
                                                   std::uint16_t port = 0, bool reuse = false) {
    UdpOptions options;
    options.interface = std::move(interface);
    options.reuse_address = reuse;
    options.port.max_packet_size = 65535;
    return listen_udp(*reactor_, os_, port, p, options);
  }

  void expect_round_trip(const std::string& host) {
    Heard server, client;
    server.echo = true;
    auto ps = udp(server, host);
    if (!ps && host == "::1" &&
        (ps.error().error_number() == EAFNOSUPPORT || ps.error().error_number() == EADDRNOTAVAIL)) {
      GTEST_SKIP() << "no IPv6 loopback here: " << to_string(ps.error());
    }
    ASSERT_TRUE(ps) << to_string(ps.error());
    EXPECT_NE((*ps)->address().port(), 0);
    EXPECT_EQ((*ps)->address().host(), host);
    auto pc = udp(client, host);
    ASSERT_TRUE(pc) << to_string(pc.error());
    const std::string big(60000, 'b');
    ASSERT_TRUE((*pc)->write(bytes("small"), (*ps)->address()));
    ASSERT_TRUE((*pc)->write(bytes(big), (*ps)->address()));
    ASSERT_TRUE(run_until([&] { return client.datagrams.size() == 2; }));
    EXPECT_EQ(client.datagrams[0], "small");
    EXPECT_EQ(client.datagrams[1], big);
    EXPECT_EQ(server.senders[0], (*pc)->address());
  }

  sys::RealSyscalls os_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(DatagramLinux, UdpOverIpv4RoundTripsWholeDatagrams) { expect_round_trip("127.0.0.1"); }

TEST_F(DatagramLinux, UdpOverIpv6RoundTripsWholeDatagrams) { expect_round_trip("::1"); }

TEST_F(DatagramLinux, TooLongForUdpIsEmsgsize) {
  Heard a;
  auto pa = udp(a, "127.0.0.1");
  ASSERT_TRUE(pa);
  auto sent = (*pa)->write(bytes(std::string(65508, 'x')), (*pa)->address());
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, EMSGSIZE);
}

TEST_F(DatagramLinux, ADatagramLongerThanTheMaxPacketSizeArrivesCut) {
  Heard a, b;
  auto pa = udp(a, "127.0.0.1");
  UdpOptions small;
  small.interface = "127.0.0.1";
  small.port.max_packet_size = 4;
  auto pb = listen_udp(*reactor_, os_, 0, b, small);
  ASSERT_TRUE(pa && pb);
  ASSERT_TRUE((*pa)->write(bytes("abcdefgh"), (*pb)->address()));
  ASSERT_TRUE(run_until([&] { return !b.datagrams.empty(); }));
  EXPECT_EQ(b.datagrams[0], "abcd");
}

// The kernel answers a datagram to a closed loopback port with ICMP port unreachable, which
// it reports to a connected socket only.
TEST_F(DatagramLinux, ARefusalIsHeardByAConnectedPortOnly) {
  Heard gone, connected, unconnected;
  auto closed = udp(gone, "127.0.0.1");
  ASSERT_TRUE(closed);
  const SocketAddress nobody = (*closed)->address();
  closed->reset();
  auto pc = udp(connected, "127.0.0.1");
  auto pu = udp(unconnected, "127.0.0.1");
  ASSERT_TRUE(pc && pu);
  ASSERT_TRUE((*pc)->connect(nobody));
  ASSERT_TRUE((*pc)->write(bytes("anyone?")));
  ASSERT_TRUE((*pu)->write(bytes("anyone?"), nobody));
  ASSERT_TRUE(run_until([&] { return connected.refusals == 1; }));
  // The unconnected port's ICMP came back as synchronously as the connected one's; a datagram
  // to itself, sent after, arrives after anything the kernel would have reported.
  ASSERT_TRUE((*pu)->write(bytes("marker"), (*pu)->address()));
  ASSERT_TRUE(run_until([&] { return !unconnected.datagrams.empty(); }));
  EXPECT_EQ(unconnected.refusals, 0);
}

TEST_F(DatagramLinux, MulticastOnLoopbackReachesAMemberUntilItLeaves) {
  Heard member, sender;
  auto pm = udp(member, "", 0, true);
  ASSERT_TRUE(pm) << to_string(pm.error());
  auto ps = udp(sender, "127.0.0.1");
  ASSERT_TRUE(ps);
  const std::string group = "239.255.77.77";
  if (auto joined = (*pm)->join_group(group, "127.0.0.1"); !joined) {
    GTEST_SKIP() << "cannot join a group on loopback here: " << sys::to_string(joined.error());
  }
  ASSERT_TRUE((*ps)->set_outgoing_interface("127.0.0.1"));
  ASSERT_TRUE((*ps)->set_ttl(1));
  EXPECT_EQ(*(*ps)->ttl(), 1);
  EXPECT_TRUE(*(*ps)->loopback_mode());
  const auto to = *SocketAddress::ip(group, (*pm)->address().port());
  if (auto sent = (*ps)->write(bytes("to the group"), to); !sent) {
    GTEST_SKIP() << "no multicast route by loopback here: " << sys::to_string(sent.error());
  }
  if (!run_until([&] { return !member.datagrams.empty(); }, 3s)) {
    GTEST_SKIP() << "the loopback interface does not deliver multicast here";
  }
  EXPECT_EQ(member.datagrams[0], "to the group");
  // Loopback off keeps a copy from this host's members only when the datagram leaves by a real
  // device: sent by lo, the device itself brings it back, so they hear it anyway (Linux).
  ASSERT_TRUE((*ps)->set_loopback_mode(false));
  EXPECT_FALSE(*(*ps)->loopback_mode());
  ASSERT_TRUE((*ps)->write(bytes("by lo"), to));
  const auto unicast = *SocketAddress::ip("127.0.0.1", (*pm)->address().port());
  ASSERT_TRUE((*ps)->write(bytes("marker"), unicast));
  ASSERT_TRUE(run_until([&] { return member.datagrams.size() >= 3; }));
  EXPECT_EQ(fmt::format("{}", fmt::join(member.datagrams, ",")), "to the group,by lo,marker");
  // After leaving, the group's datagrams stop.
  ASSERT_TRUE((*ps)->set_loopback_mode(true));
  ASSERT_TRUE((*pm)->leave_group(group, "127.0.0.1"));
  ASSERT_TRUE((*ps)->write(bytes("left"), to));
  ASSERT_TRUE((*ps)->write(bytes("marker"), unicast));
  ASSERT_TRUE(run_until([&] { return member.datagrams.size() >= 4; }));
  EXPECT_EQ(member.datagrams.back(), "marker");
  EXPECT_EQ(member.datagrams.size(), 4u);
  auto again = (*pm)->leave_group(group, "127.0.0.1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EADDRNOTAVAIL);
}

TEST_F(DatagramLinux, Ipv6MulticastOnLoopbackReachesAMember) {
  Heard member, sender;
  auto pm = udp(member, "::", 0, true);
  if (!pm) GTEST_SKIP() << "no IPv6 here: " << to_string(pm.error());
  auto ps = udp(sender, "::1");
  ASSERT_TRUE(ps) << to_string(ps.error());
  const std::string lo = std::to_string(::if_nametoindex("lo"));
  const std::string group = "ff02::7777";
  if (auto joined = (*pm)->join_group(group, lo); !joined) {
    GTEST_SKIP() << "cannot join an IPv6 group on lo here: " << sys::to_string(joined.error());
  }
  // Membership is the kernel's to refuse even where lo cannot carry the datagrams.
  ASSERT_TRUE((*pm)->leave_group(group, lo));
  EXPECT_EQ((*pm)->leave_group(group, lo).error().code, EADDRNOTAVAIL);
  EXPECT_EQ((*pm)->join_group(group, "lo").error().code, EINVAL) << "an index, not a name";
  ASSERT_TRUE((*pm)->join_group(group, lo));
  ASSERT_TRUE((*ps)->set_outgoing_interface(lo));
  ASSERT_TRUE((*ps)->set_ttl(1));
  EXPECT_EQ(*(*ps)->ttl(), 1);
  ASSERT_TRUE((*ps)->set_loopback_mode(true));
  EXPECT_TRUE(*(*ps)->loopback_mode());
  const auto to = *SocketAddress::ip(group, (*pm)->address().port());
  if (auto sent = (*ps)->write(bytes("to the v6 group"), to); !sent) {
    // lo is not multicast-capable by default, so Linux gives it no ff00::/8 route.
    GTEST_SKIP() << "no IPv6 multicast route by lo here: " << sys::to_string(sent.error());
  }
  if (!run_until([&] { return !member.datagrams.empty(); }, 3s)) {
    GTEST_SKIP() << "lo does not deliver IPv6 multicast here";
  }
  EXPECT_EQ(member.datagrams[0], "to the v6 group");
}

// What the test above cannot show on lo: IPv6 multicast delivered, by a device that carries
// it (a TAP device in a network namespace of the test's own), and stopped by leaving.
TEST_F(DatagramLinux, Ipv6MulticastReachesAMemberOnADeviceThatCarriesItUntilItLeaves) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, for a network namespace and a TAP device";
  PrivateNetwork network;
  if (!network.failure().empty()) GTEST_SKIP() << "no private network: " << network.failure();
  Heard member, sender;
  auto pm = udp(member, "::", 0, true);
  ASSERT_TRUE(pm) << to_string(pm.error());
  auto ps = udp(sender, "::");
  ASSERT_TRUE(ps) << to_string(ps.error());
  const std::string device = std::to_string(network.index());
  const std::string group = "ff02::7777";
  ASSERT_TRUE((*pm)->join_group(group, device));
  ASSERT_TRUE((*ps)->set_outgoing_interface(device));
  ASSERT_TRUE((*ps)->set_ttl(1));
  ASSERT_TRUE((*ps)->set_loopback_mode(true));
  const auto to = *SocketAddress::ip(group, (*pm)->address().port());
  auto sent = (*ps)->write(bytes("to the v6 group"), to);
  ASSERT_TRUE(sent) << sys::to_string(sent.error());
  ASSERT_TRUE(run_until([&] { return !member.datagrams.empty(); }, 3s));
  EXPECT_EQ(member.datagrams[0], "to the v6 group");
  // Sent from dk0's link-local address, which the kernel chose.
  EXPECT_EQ(member.senders[0].host().rfind("fe80::", 0), 0u) << to_string(member.senders[0]);
  // With loopback off, a datagram that leaves by a real device is not copied back.
  ASSERT_TRUE((*ps)->set_loopback_mode(false));
  ASSERT_TRUE((*ps)->write(bytes("not looped"), to));
  const auto unicast = *SocketAddress::ip("::1", (*pm)->address().port());
  ASSERT_TRUE((*ps)->write(bytes("marker"), unicast));
  ASSERT_TRUE(run_until([&] { return member.datagrams.size() >= 2; }));
  EXPECT_EQ(member.datagrams.back(), "marker");
  // After leaving, the group's datagrams stop.
  ASSERT_TRUE((*ps)->set_loopback_mode(true));
  ASSERT_TRUE((*pm)->leave_group(group, device));
  ASSERT_TRUE((*ps)->write(bytes("left"), to));
  ASSERT_TRUE((*ps)->write(bytes("marker 2"), unicast));
  ASSERT_TRUE(run_until([&] { return member.datagrams.size() >= 3; }));
  EXPECT_EQ(fmt::format("{}", fmt::join(member.datagrams, ",")), "to the v6 group,marker,marker 2");
  // Ports and sockets close here, inside the namespace they were made in.
  pm->reset();
  ps->reset();
}

TEST_F(DatagramLinux, UnixDatagramRoundTripsByPathAndAbstractName) {
  char dir[] = "/tmp/daemonkit-dgram-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string server_path = std::string(dir) + "/server.sock";
  const std::string client_path = std::string(dir) + "/client.sock";
  const std::string abstract = fmt::format("@daemonkit-dgram-{}", ::getpid());
  for (const auto& [server_name, client_name] :
       {std::pair{server_path, client_path}, std::pair{abstract, abstract + "-client"}}) {
    Heard server, client;
    server.echo = true;
    auto ps = listen_unix_datagram(*reactor_, os_, server_name, server);
    ASSERT_TRUE(ps) << to_string(ps.error());
    auto pc = connect_unix_datagram(*reactor_, os_, server_name, client, client_name);
    ASSERT_TRUE(pc) << to_string(pc.error());
    ASSERT_TRUE((*pc)->write(bytes("over unix")));
    ASSERT_TRUE(run_until([&] { return !client.datagrams.empty(); }));
    EXPECT_EQ(client.datagrams[0], "over unix");
    EXPECT_EQ(to_string(server.senders[0]), client_name);
    // The server goes: the connected client's next write is refused.
    ps->reset();
    ASSERT_TRUE((*pc)->write(bytes("anyone?")));
    EXPECT_EQ(client.refusals, 1);
  }
  EXPECT_NE(::access(server_path.c_str(), F_OK), 0);
  EXPECT_NE(::access(client_path.c_str(), F_OK), 0);
  ::rmdir(dir);
}

TEST_F(DatagramLinux, AnAdoptedBlockingSocketIsReadOnTheLoop) {
  Heard adopted, sender;
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  const auto any = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, any.data(), any.size()), 0);
  auto port = adopt_datagram_port(*reactor_, os_, OwnedFd(os_, fd), adopted);
  ASSERT_TRUE(port) << to_string(port.error());
  auto ps = udp(sender, "127.0.0.1");
  ASSERT_TRUE(ps);
  ASSERT_TRUE((*ps)->write(bytes("adopted"), (*port)->address()));
  ASSERT_TRUE(run_until([&] { return !adopted.datagrams.empty(); }));
  EXPECT_EQ(adopted.datagrams[0], "adopted");
}

// Not a datagram, but adopted the same way: one end of a real socketpair, served by an echo
// protocol while the other end is plain blocking I/O.
TEST_F(DatagramLinux, AnAdoptedConnectedStreamSocketEchoes) {
  struct Echo : Protocol {
    void data_received(std::span<const std::byte> d) override { connection().write(d); }
  };
  int ends[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
  ServerFactoryOf<Echo> echo;
  struct Flag : Connection::Owner {
    bool ended = false;
    void connection_ended(Connection&, const LossReason&) override { ended = true; }
  } owner;
  const bool& ended = owner.ended;
  auto connection = adopt_stream_connection(*reactor_, os_, OwnedFd(os_, ends[0]), echo, &owner);
  ASSERT_TRUE(connection) << to_string(connection.error());
  ASSERT_EQ(::write(ends[1], "adopted", 7), 7);
  std::string back;
  ASSERT_TRUE(run_until([&] {
    char buf[16];
    const ssize_t n = ::recv(ends[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) back.append(buf, static_cast<std::size_t>(n));
    return back == "adopted";
  }));
  ::close(ends[1]);
  ASSERT_TRUE(run_until([&] { return ended; }));
}

}  // namespace
}  // namespace daemonkit::core
