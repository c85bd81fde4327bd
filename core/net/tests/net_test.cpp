// The network area on the fake kernel: servers and clients of TCP and UNIX stream sockets in one
// simulated kernel, driven by Reactor::iterate with the manual clock (no threads, no sleeps).
// Every lifecycle and failure path: refused, timed out, stopped, reset, aborted, half-closed,
// a peer that never reads, descriptors running out, and each failing call of listen, accept
// and connect by fault injection; then a property over random interleavings on both ends.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/descriptor_receiver.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/net/resolver.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/unix_stream.h"
#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using testing::ElementsAre;
using testing::HasSubstr;
using namespace std::chrono_literals;

// What a protocol heard; shared, so that it outlives the protocol (destroyed with its
// connection after connection_lost).
struct Record {
  std::string data;
  std::vector<std::string> events;
  std::optional<LossReason> reason;
  int losses = 0;
  Connection* connection = nullptr;
  bool half_close = false;
  std::function<void(Connection&)> on_made;
  std::function<void(Connection&)> on_data;
  std::function<void(Connection&)> on_eof;
  std::function<void()> on_lost;
};

struct Recorder : Protocol {
  explicit Recorder(std::shared_ptr<Record> record) : r(std::move(record)) {}
  void connection_made(Connection& c) override {
    r->connection = &c;
    r->events.emplace_back("made");
    if (r->on_made) r->on_made(c);
  }
  void data_received(std::span<const std::byte> bytes) override {
    r->data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    r->events.emplace_back("data");
    if (r->on_data) r->on_data(connection());
  }
  bool read_eof() override {
    r->events.emplace_back("read_eof");
    if (r->on_eof) r->on_eof(connection());
    return r->half_close;
  }
  void write_eof() override { r->events.emplace_back("write_eof"); }
  void connection_lost(const LossReason& reason) override {
    r->connection = nullptr;
    ++r->losses;
    r->reason = reason;
    r->events.emplace_back("lost");
    // Last: the hook may destroy what owns the connection, and so this protocol.
    if (auto hook = r->on_lost) hook();
  }
  std::shared_ptr<Record> r;
};

struct Server : ServerFactory {
  std::vector<std::shared_ptr<Record>> records;
  std::vector<SocketAddress> peers;
  bool refuse = false;
  std::function<void(Record&)> setup;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress& peer) override {
    peers.push_back(peer);
    if (refuse) return nullptr;
    auto r = std::make_shared<Record>();
    if (setup) setup(*r);
    records.push_back(r);
    return std::make_unique<Recorder>(r);
  }
  Record& last() { return *records.back(); }
};

struct Client : ClientFactory {
  std::shared_ptr<Record> record = std::make_shared<Record>();
  std::vector<std::string> failures;
  std::vector<sys::Error> errors;
  std::vector<std::string> order;
  std::vector<LossReason> lost;
  bool refuse = false;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    if (refuse) return nullptr;
    return std::make_unique<Recorder>(record);
  }
  void connection_failed(const sys::Error& reason) override {
    failures.push_back(sys::to_string(reason));
    errors.push_back(reason);
  }
  void connection_lost(const LossReason& reason) override {
    order.push_back(fmt::format("factory lost after {} protocol losses", record->losses));
    lost.push_back(reason);
  }
};

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

struct CountingProducer : Producer {
  int pauses = 0, resumes = 0, stops = 0;
  void pause_producing() override { ++pauses; }
  void resume_producing() override { ++resumes; }
  void stop_producing() override { ++stops; }
};

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
}

const fake::CallRecord* first_call(const FakeSyscalls& os, const std::string& name) {
  for (const auto& r : os.transcript()) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

// Fails the first `call` on the descriptor that the first `maker` call (since the transcript
// was cleared) returned: "accept4" for the server's end of a connection, "socket" for a
// client's. By descriptor, not by count: the reactor serves ready descriptors in an order of its
// own (writable ones first), so which end gets there first is not the test's to pin.
void fail_first_on(FakeSyscalls& os, const std::string& call, const std::string& maker, int error) {
  auto failed = std::make_shared<bool>(false);
  // epoll_ctl's descriptor is its third argument.
  const std::size_t fd_arg = call == "epoll_ctl" ? 2 : 0;
  os.fail_when(
      call,
      [&os, maker, failed, fd_arg](const fake::CallRecord& r) {
        const fake::CallRecord* made = first_call(os, maker);
        if (*failed || made == nullptr || !made->finished || r.args.size() <= fd_arg ||
            r.args[fd_arg] != made->value) {
          return false;
        }
        *failed = true;
        return true;
      },
      error);
}

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;

  World() {
    // A write to a peer that is gone is an EPIPE the transport reports, not a SIGPIPE that
    // ends the process (daemons ignore it).
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

  PortOptions port_options() {
    PortOptions o;
    o.log = [this](std::string_view line) { log.emplace_back(line); };
    return o;
  }

  std::unique_ptr<ListeningPort> listen(ServerFactory& factory, ListenOptions options = {}) {
    if (options.interface.empty()) options.interface = "127.0.0.1";
    if (!options.port.log) options.port.log = port_options().log;
    auto port = listen_tcp(*reactor, os, 0, factory, std::move(options));
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }

  std::unique_ptr<Connector> connect(const ListeningPort& port, ClientFactory& factory,
                                     ConnectOptions options = {}) {
    return connect_tcp(*reactor, os, "127.0.0.1", port.address().port(), factory,
                       std::move(options));
  }

  // A raw non-blocking client socket connected (or connecting) to `port`.
  int raw_client(std::uint16_t port) {
    const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto to = *SocketAddress::ip("127.0.0.1", port);
    auto done = os.connect(fd, to.data(), to.size());
    EXPECT_TRUE(done || done.error().code == EINPROGRESS);
    return fd;
  }

  std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    for (;;) {
      auto n = os.read(fd, buf, sizeof buf);
      if (!n || *n == 0) return out;
      out.append(buf, *n);
    }
  }

  // A listening TCP socket outside the reactor, its backlog (of 0: one connection) full, so
  // that the next connect to it stays in progress.
  std::uint16_t full_listener() {
    const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto any = *SocketAddress::ip("127.0.0.1", 0);
    EXPECT_TRUE(os.bind(fd, any.data(), any.size()));
    EXPECT_TRUE(os.listen(fd, 0));
    sockaddr_storage name{};
    socklen_t len = sizeof name;
    EXPECT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&name), &len));
    const std::uint16_t port = SocketAddress::from(reinterpret_cast<sockaddr*>(&name), len)->port();
    (void)raw_client(port);
    return port;
  }

  std::size_t open_fds() { return os.open_fds(os.current_pid()).size(); }
};

// ---- Protocols, factories, the echo server ----------------------------------------------------

TEST(NetEcho, AnEchoServerIsOneMethod) {
  World w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen(factory);
  Client client;
  client.record->on_made = [](Connection& c) { c.write("hello"); };
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_EQ(client.record->data, "hello");
  EXPECT_EQ(port->connections(), 1u);
  ASSERT_NE(client.record->connection, nullptr);
  client.record->connection->lose_connection();
  w.spin();
  EXPECT_EQ(client.record->losses, 1);
  EXPECT_TRUE(client.record->reason->clean());
  EXPECT_EQ(port->connections(), 0u) << "the server's connection ended with the client's close";
  EXPECT_EQ(connector->state(), Connector::State::kDisconnected);
  EXPECT_EQ(connector->connection(), nullptr);
}

TEST(NetServer, EachAcceptedConnectionGetsItsOwnProtocolAndItsPeerAddress) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client a, b;
  auto ca = w.connect(*port, a);
  auto cb = w.connect(*port, b);
  w.spin();
  ASSERT_EQ(server.records.size(), 2u);
  EXPECT_EQ(server.records[0]->events, std::vector<std::string>{"made"});
  ASSERT_NE(a.record->connection, nullptr);
  auto local = a.record->connection->local_address();
  ASSERT_TRUE(local);
  EXPECT_EQ(server.peers[0], *local) << "the peer is the client's own address";
  EXPECT_EQ(a.record->connection->peer_address(), port->address());
  auto server_local = server.records[0]->connection->local_address();
  ASSERT_TRUE(server_local);
  EXPECT_EQ(server_local->port(), port->address().port());
}

TEST(NetServer, AFactoryRefusingAConnectionClosesIt) {
  World w;
  Server server;
  server.refuse = true;
  auto port = w.listen(server);
  Client client;
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_EQ(server.peers.size(), 1u);
  EXPECT_EQ(port->connections(), 0u);
  EXPECT_EQ(client.record->events, (std::vector<std::string>{"made", "read_eof", "lost"}));
  EXPECT_TRUE(client.record->reason->clean()) << "the client reads EOF";
}

TEST(NetClient, AClientFactoryRefusingItsProtocolClosesTheConnectionSilently) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client client;
  client.refuse = true;
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_EQ(connector->state(), Connector::State::kDisconnected);
  EXPECT_TRUE(client.failures.empty());
  EXPECT_TRUE(client.lost.empty());
  ASSERT_EQ(server.records.size(), 1u);
  EXPECT_EQ(server.last().losses, 1);
  EXPECT_TRUE(server.last().reason->clean());
}

TEST(NetClient, TheProtocolHearsTheLossBeforeTheFactory) {
  World w;
  Server server;
  server.setup = [](Record& r) { r.on_made = [](Connection& c) { c.lose_connection(); }; };
  auto port = w.listen(server);
  Client client;
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_THAT(client.order, ElementsAre("factory lost after 1 protocol losses"));
  ASSERT_EQ(client.lost.size(), 1u);
  EXPECT_TRUE(client.lost[0].clean());
}

// ---- Listening --------------------------------------------------------------------------------

TEST(NetListen, PortZeroTakesAFreePortThatTheAddressReports) {
  World w;
  Server server;
  auto port = w.listen(server);
  EXPECT_GE(port->address().port(), 32768);
  EXPECT_EQ(to_string(port->address()), fmt::format("127.0.0.1:{}", port->address().port()));
  EXPECT_TRUE(port->listening());
}

TEST(NetListen, TheSocketIsNonBlockingCloexecWithReuseaddrAndASomaxconnBacklog) {
  World w;
  Server server;
  auto port = w.listen(server);
  const auto* socket = first_call(w.os, "socket");
  ASSERT_NE(socket, nullptr);
  EXPECT_THAT(socket->args[1], HasSubstr("SOCK_NONBLOCK"));
  EXPECT_THAT(socket->args[1], HasSubstr("SOCK_CLOEXEC"));
  const auto* opt = first_call(w.os, "setsockopt");
  ASSERT_NE(opt, nullptr);
  EXPECT_THAT(opt->args[1], HasSubstr("SO_REUSEADDR"));
  const auto* listen = first_call(w.os, "listen");
  ASSERT_NE(listen, nullptr);
  EXPECT_EQ(listen->args[1], std::to_string(SOMAXCONN));
}

TEST(NetListen, ABusyPortFailsNamingTheStepAndTheAddress) {
  World w;
  Server server;
  auto port = w.listen(server);
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto second = listen_tcp(*w.reactor, w.os, port->address().port(), server, options);
  ASSERT_FALSE(second);
  EXPECT_EQ(to_string(second.error()),
            fmt::format("bind(127.0.0.1:{}): Address already in use (EADDRINUSE)",
                        port->address().port()));
}

TEST(NetListen, AnInterfaceThatIsNotANumericAddressIsRefused) {
  World w;
  Server server;
  ListenOptions options;
  options.interface = "localhost";
  auto port = listen_tcp(*w.reactor, w.os, 7000, server, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EINVAL);
  EXPECT_THAT(to_string(port.error()), HasSubstr("localhost:7000, not a numeric address"));
}

struct FailingCall {
  const char* call;
  int error;
  int nth = 1;
};

void PrintTo(const FailingCall& f, std::ostream* out) {
  *out << f.call << " #" << f.nth << " " << sys::errno_name(f.error);
}

std::string call_name(const testing::TestParamInfo<FailingCall>& param) {
  return param.param.call + (param.param.nth == 1 ? "" : std::to_string(param.param.nth));
}

class NetListenFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetListenFailure, EachFailingCallIsReturnedAndLeavesNoDescriptor) {
  World w;
  Server server;
  const std::size_t before = w.open_fds();
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, 1, GetParam().error);
  ListenOptions options;
  options.interface = "127.0.0.1";
  auto port = listen_tcp(*w.reactor, w.os, 0, server, options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_STREQ(port.error().os.call, GetParam().call);
  EXPECT_EQ(w.open_fds(), before);
}

INSTANTIATE_TEST_SUITE_P(
    Calls, NetListenFailure,
    testing::Values(FailingCall{"socket", EMFILE}, FailingCall{"setsockopt", ENOMEM},
                    FailingCall{"bind", EACCES}, FailingCall{"listen", EADDRINUSE},
                    FailingCall{"getsockname", ENOBUFS}, FailingCall{"epoll_ctl", ENOMEM}),
    call_name);

TEST(NetListen, NoReserveDescriptorIsLoggedNotFatal) {
  World w;
  Server server;
  w.os.fail_nth("open", 1, EMFILE);
  auto port = w.listen(server);
  ASSERT_TRUE(port);
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("could not reserve a descriptor for EMFILE recovery: "
                                           "open: Too many open files (EMFILE)")));
}

TEST(NetListen, StopListeningClosesTheSocketAndLeavesConnectionsAlone) {
  World w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen(factory);
  Client a;
  auto ca = w.connect(*port, a);
  w.spin();
  const std::uint16_t number = port->address().port();
  EXPECT_TRUE(port->stop_listening());
  EXPECT_FALSE(port->stop_listening());
  EXPECT_FALSE(port->listening());
  Client b;
  auto cb = connect_tcp(*w.reactor, w.os, "127.0.0.1", number, b);
  w.spin();
  EXPECT_THAT(b.failures, ElementsAre(fmt::format(
                              "connect(127.0.0.1:{}): Connection refused (ECONNREFUSED)", number)));
  ASSERT_NE(a.record->connection, nullptr);
  a.record->connection->write("still here");
  w.spin();
  EXPECT_EQ(a.record->data, "still here");
}

// A port destroyed with connections open ends each of them: its protocol hears "aborted" once,
// from inside the destruction (the port cannot wait for the loop: it is gone on return), and
// never again after; the client sees the close.
TEST(NetListenDestroyed, EachConnectionHearsAbortedExactlyOnce) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client a, b;
  auto ca = w.connect(*port, a);
  auto cb = w.connect(*port, b);
  w.spin();
  ASSERT_EQ(server.records.size(), 2u);
  ASSERT_EQ(port->connections(), 2u);
  port.reset();
  for (const auto& r : server.records) {
    EXPECT_EQ(r->losses, 1);
    EXPECT_EQ(r->reason, LossReason::aborted());
  }
  w.spin();
  for (const auto& r : server.records) EXPECT_EQ(r->losses, 1) << "told once";
  EXPECT_EQ(a.record->losses, 1) << "the client reads EOF";
  EXPECT_EQ(b.record->losses, 1);
}

// A connection whose end was already decided (lose_connection with nothing to send: "done" on
// the loop's next turn) hears that end, once, when the port goes first.
TEST(NetListenDestroyed, ALossAboutToBeToldIsToldWithItsOwnReason) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client a;
  auto ca = w.connect(*port, a);
  w.spin();
  ASSERT_EQ(server.records.size(), 1u);
  ASSERT_NE(server.last().connection, nullptr);
  server.last().connection->lose_connection();
  EXPECT_EQ(server.last().losses, 0) << "not from inside lose_connection";
  port.reset();
  EXPECT_EQ(server.last().losses, 1);
  EXPECT_EQ(server.last().reason, LossReason::done());
  w.spin();
  EXPECT_EQ(server.last().losses, 1);
}

// A protocol that destroys the port (its service stopping itself) from connection_lost while
// the port is being destroyed already: nothing is freed twice, every protocol is told once, and
// each sees a port that holds only connections still open.
TEST(NetListenDestroyed, AProtocolMayDestroyThePortFromConnectionLostDuringTheDestruction) {
  World w;
  Server server;
  std::unique_ptr<ListeningPort> port;
  std::vector<std::size_t> counts;
  ListeningPort* raw = nullptr;
  server.setup = [&](Record& r) {
    r.on_lost = [&] {
      counts.push_back(raw->connections());
      port.reset();  // null already while its destructor runs: a nested reset does nothing
    };
  };
  port = w.listen(server);
  raw = port.get();
  Client a, b, c;
  auto ca = w.connect(*port, a);
  auto cb = w.connect(*port, b);
  auto cc = w.connect(*port, c);
  w.spin();
  ASSERT_EQ(server.records.size(), 3u);
  port.reset();
  EXPECT_THAT(counts, ElementsAre(2u, 1u, 0u));
  for (const auto& r : server.records) {
    EXPECT_EQ(r->losses, 1);
    EXPECT_EQ(r->reason, LossReason::aborted());
  }
  w.spin();
  for (const auto& r : server.records) EXPECT_EQ(r->losses, 1);
}

// The other way round: one connection ends on its own and its protocol destroys the port from
// connection_lost; the others hear "aborted" from inside that, the ending one only its own end.
TEST(NetListenDestroyed, AProtocolMayDestroyThePortWhenItsConnectionEnds) {
  World w;
  Server server;
  std::unique_ptr<ListeningPort> port = w.listen(server);
  Client a, b;
  auto ca = w.connect(*port, a);
  auto cb = w.connect(*port, b);
  w.spin();
  ASSERT_EQ(server.records.size(), 2u);
  Record& first = *server.records[0];
  Record& second = *server.records[1];
  first.on_lost = [&] { port.reset(); };
  ASSERT_NE(first.connection, nullptr);
  first.connection->abort_connection();
  w.spin();
  EXPECT_EQ(port, nullptr);
  EXPECT_EQ(first.losses, 1);
  EXPECT_EQ(first.reason, LossReason::aborted());
  EXPECT_EQ(second.losses, 1);
  EXPECT_EQ(second.reason, LossReason::aborted());
  EXPECT_THAT(second.events, ElementsAre("made", "lost"));
}

// The peer's close ends a connection whose protocol destroys the port: the other connection
// is ended from inside, and the ending one hears only its own clean end.
TEST(NetListenDestroyed, APeerCloseWhoseProtocolDestroysThePortEndsTheOthers) {
  World w;
  Server server;
  std::unique_ptr<ListeningPort> port = w.listen(server);
  Client a, b;
  auto ca = w.connect(*port, a);
  auto cb = w.connect(*port, b);
  w.spin();
  ASSERT_EQ(server.records.size(), 2u);
  server.records[0]->on_lost = [&] { port.reset(); };
  ASSERT_NE(a.record->connection, nullptr);
  a.record->connection->lose_connection();
  w.spin();
  EXPECT_EQ(port, nullptr);
  EXPECT_EQ(server.records[0]->losses, 1);
  EXPECT_EQ(server.records[0]->reason, LossReason::done());
  EXPECT_EQ(server.records[1]->losses, 1);
  EXPECT_EQ(server.records[1]->reason, LossReason::aborted());
  EXPECT_EQ(b.record->losses, 1) << "b's client reads EOF";
}

// A connector destroyed before its connect finishes tells its factory nothing, then or later:
// not connection_failed, not a protocol made.
TEST(NetConnectorDestroyed, BeforeItConnectsTellsNobody) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client a;
  auto ca = w.connect(*port, a);  // connecting starts on the loop's next turn
  ca.reset();
  w.spin();
  Client b;
  auto cb = w.connect(*port, b);
  w.reactor->run_until_current();  // the connect is under way: the socket exists
  cb.reset();
  w.spin();
  for (Client* c : {&a, &b}) {
    EXPECT_TRUE(c->failures.empty());
    EXPECT_TRUE(c->lost.empty());
    EXPECT_TRUE(c->record->events.empty());
  }
}

// stop_connecting reports ECANCELED on the next turn; a connector destroyed before that turn
// tells nobody even that.
TEST(NetConnectorDestroyed, AfterStopConnectingTellsNobody) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client a;
  auto ca = w.connect(*port, a);
  EXPECT_TRUE(ca->stop_connecting());
  ca.reset();
  w.spin();
  EXPECT_TRUE(a.failures.empty());
  EXPECT_TRUE(a.record->events.empty());
}

TEST(NetListen, AProtocolMayStopThePortFromConnectionMade) {
  World w;
  Server server;
  std::unique_ptr<ListeningPort> port;
  server.setup = [&](Record& r) { r.on_made = [&](Connection&) { (void)port->stop_listening(); }; };
  port = w.listen(server);
  const int a = w.raw_client(port->address().port());
  const int b = w.raw_client(port->address().port());
  w.spin();
  EXPECT_EQ(server.records.size(), 1u);
  EXPECT_FALSE(port->listening());
  char byte;
  auto got = w.os.read(b, &byte, 1);
  EXPECT_FALSE(got);
  if (!got) {
    EXPECT_EQ(got.error().code, ECONNRESET) << "the connection never accepted is reset";
  }
  (void)a;
}

TEST(NetAccept, AcceptsAreBoundedPerWakeUp) {
  World w;
  Server server;
  ListenOptions options;
  options.port.accepts_per_wakeup = 2;
  auto port = w.listen(server, options);
  for (int i = 0; i < 5; ++i) (void)w.raw_client(port->address().port());
  w.reactor->run_until_current();
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(server.records.size(), 2u);
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(server.records.size(), 4u);
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(server.records.size(), 5u);
}

TEST(NetAccept, AnAbortedConnectionIsLoggedAndTheBatchGoesOn) {
  World w;
  Server server;
  auto port = w.listen(server);
  (void)w.raw_client(port->address().port());
  w.os.fail_nth("accept4", 1, ECONNABORTED);
  w.reactor->run_until_current();
  ASSERT_TRUE(w.reactor->iterate(Duration{0}));
  EXPECT_EQ(server.records.size(), 1u);
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("Software caused connection abort (ECONNABORTED)")));
}

// accept4 and socket made them non-blocking: asking again cost every accept an fcntl (bench/net:
// accepts at 1.13x raw epoll's CPU).
TEST(NetAccept, ConnectionsMadeNonBlockingAreNotAskedAgain) {
  World w;
  Server server;
  auto port = w.listen(server);
  w.os.clear_transcript();
  Client client;
  auto connector = w.connect(*port, client);
  w.spin();
  ASSERT_EQ(port->connections(), 1u);
  ASSERT_NE(client.record->connection, nullptr);
  EXPECT_EQ(calls_of(w.os, "fcntl"), 0u) << to_string(w.os.transcript());
}

TEST(NetAccept, AConnectionThatCannotBeWatchedIsLoggedAndClosed) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client client;
  auto connector = w.connect(*port, client);
  w.os.clear_transcript();
  fail_first_on(w.os, "epoll_ctl", "accept4", ENOMEM);
  w.spin();
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("epoll_ctl")));
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("(ENOMEM)")));
  EXPECT_EQ(port->connections(), 0u);
  EXPECT_EQ(client.record->losses, 1) << "the client reads EOF";
  EXPECT_TRUE(server.records.empty() || server.records[0]->losses == 0)
      << "a protocol that never heard connection_made hears no loss";
}

TEST(NetAccept, APersistentErrorPausesAcceptingInsteadOfSpinning) {
  World w;
  Server server;
  auto port = w.listen(server);
  (void)w.raw_client(port->address().port());
  w.os.fail_nth("accept4", 1, ENOBUFS);
  w.spin(20);
  EXPECT_EQ(calls_of(w.os, "accept4"), 1u) << "one try, then no more until the pause ends";
  EXPECT_TRUE(server.records.empty());
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("accepting again in 100 ms")));
  w.os.clock().advance(100ms);
  w.spin();
  EXPECT_EQ(server.records.size(), 1u);
}

// Out of descriptors with connections waiting: the reserve is closed, the waiting connections
// accepted and closed with the slot it frees, the reserve taken again; no spinning.
TEST(NetAccept, AnEmfileStormIsShedWithTheReserveDescriptor) {
  World w;
  Server server;
  auto port = w.listen(server);
  std::vector<int> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(w.raw_client(port->address().port()));
  const auto open = static_cast<rlim_t>(w.open_fds());
  ASSERT_TRUE(w.os.setrlimit(RLIMIT_NOFILE, rlimit{open, 4096}));
  w.os.clear_transcript();
  w.spin(10);
  EXPECT_EQ(port->shed(), 10u);
  EXPECT_TRUE(server.records.empty());
  EXPECT_EQ(calls_of(w.os, "accept4"), 12u)
      << "the EMFILE, ten shed, the EAGAIN; then nothing: the socket is no longer readable";
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("accept4: Too many open files (EMFILE) on 127.0.0.1:")));
  EXPECT_THAT(w.log.back(), HasSubstr("closed 10 waiting connection(s)"));
  for (int fd : clients) {
    char byte;
    auto got = w.os.read(fd, &byte, 1);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, 0u) << "each client reads EOF";
  }
  // The reserve is back: room again, and a new connection is served.
  ASSERT_TRUE(w.os.setrlimit(RLIMIT_NOFILE, rlimit{4096, 4096}));
  Client c;
  auto connector = w.connect(*port, c);
  w.spin();
  EXPECT_EQ(server.records.size(), 1u);
}

TEST(NetAccept, EnfileIsShedLikeEmfile) {
  World w;
  Server server;
  auto port = w.listen(server);
  for (int i = 0; i < 3; ++i) (void)w.raw_client(port->address().port());
  w.os.fail_nth("accept4", 1, ENFILE);
  w.spin();
  EXPECT_EQ(port->shed(), 3u);
  EXPECT_TRUE(server.records.empty());
  EXPECT_THAT(w.log, ElementsAre(HasSubstr("Too many open files in system (ENFILE)")));
}

TEST(NetAccept, EmfileWithoutAReservePausesInsteadOfSpinning) {
  World w;
  Server server;
  w.os.fail_nth("open", 1, EMFILE);  // no reserve
  auto port = w.listen(server);
  (void)w.raw_client(port->address().port());
  w.os.clear_transcript();
  w.os.fail_nth("accept4", 1, EMFILE);
  w.spin(20);
  EXPECT_EQ(calls_of(w.os, "accept4"), 1u);
  w.os.clock().advance(100ms);
  w.spin();
  EXPECT_EQ(server.records.size(), 1u);
  EXPECT_EQ(calls_of(w.os, "open"), 1u) << "the pause's end tries to reserve again";
}

// ---- Connecting -------------------------------------------------------------------------------

TEST(NetConnect, ARefusalNamesTheStepTheAddressAndTheErrno) {
  World w;
  Client client;
  const std::uint16_t nobody = 40000;
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", nobody, client);
  EXPECT_TRUE(client.failures.empty()) << "never from inside the call";
  EXPECT_EQ(connector->state(), Connector::State::kConnecting);
  const std::size_t before = w.open_fds();
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("connect(127.0.0.1:40000): Connection refused (ECONNREFUSED)"));
  EXPECT_EQ(connector->state(), Connector::State::kDisconnected);
  EXPECT_EQ(w.open_fds(), before) << "the socket is closed";
  EXPECT_FALSE(connector->stop_connecting());
}

TEST(NetConnect, AConnectThatHangsTimesOut) {
  World w;
  const std::uint16_t port = w.full_listener();
  Client client;
  ConnectOptions options;
  options.timeout = 5s;
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port, client, options);
  w.spin();
  EXPECT_TRUE(client.failures.empty());
  EXPECT_EQ(connector->state(), Connector::State::kConnecting);
  w.os.clock().advance(5s);
  w.spin();
  EXPECT_THAT(
      client.failures,
      ElementsAre(fmt::format("connect(127.0.0.1:{}): Connection timed out (ETIMEDOUT)", port)));
}

TEST(NetConnect, StopConnectingReportsCancelledOnTheNextTurn) {
  World w;
  const std::uint16_t port = w.full_listener();
  Client client;
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port, client);
  w.spin();
  const std::size_t before = w.open_fds();
  EXPECT_TRUE(connector->stop_connecting());
  EXPECT_EQ(w.open_fds(), before - 1);
  EXPECT_TRUE(client.failures.empty());
  EXPECT_FALSE(connector->stop_connecting());
  w.spin();
  EXPECT_THAT(client.failures, ElementsAre(HasSubstr("Operation canceled (ECANCELED)")));
  w.os.clock().advance(60s);
  w.spin();
  EXPECT_EQ(client.failures.size(), 1u) << "the timeout went with the stop";
}

TEST(NetConnect, StopBeforeTheFirstTurnNeverOpensASocket) {
  World w;
  Client client;
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", 9, client);
  EXPECT_TRUE(connector->stop_connecting());
  w.spin();
  EXPECT_EQ(calls_of(w.os, "socket"), 0u);
  EXPECT_THAT(client.failures, ElementsAre(HasSubstr("ECANCELED")));
}

TEST(NetConnect, DestroyingAConnectorTellsNobody) {
  World w;
  const std::uint16_t port = w.full_listener();
  Client client;
  const std::size_t before = w.open_fds();
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port, client);
  w.spin();
  connector.reset();
  w.os.clock().advance(60s);
  w.spin();
  EXPECT_TRUE(client.failures.empty());
  EXPECT_EQ(w.open_fds(), before);
}

TEST(NetConnect, AHostThatIsNotANumericAddressFailsOnTheNextTurn) {
  World w;
  Client client;
  auto connector = connect_tcp(*w.reactor, w.os, "example.org", 80, client);
  EXPECT_TRUE(client.failures.empty());
  w.spin();
  EXPECT_THAT(client.failures, ElementsAre("connect(example.org:80, not a numeric address): "
                                           "Invalid argument (EINVAL)"));
}

TEST(NetConnect, ABindAddressIsTheConnectionsLocalAddress) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client client;
  ConnectOptions options;
  options.bind_address = SocketAddress::ip("127.0.0.2", 0);
  auto connector = w.connect(*port, client, options);
  w.spin();
  ASSERT_EQ(server.peers.size(), 1u);
  EXPECT_EQ(server.peers[0].host(), "127.0.0.2");
}

TEST(NetConnect, AnUnreachableAddressFails) {
  World w;
  Client client;
  auto connector = connect_tcp(*w.reactor, w.os, "192.0.2.1", 80, client);
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("connect(192.0.2.1:80): Network is unreachable (ENETUNREACH)"));
}

class NetConnectFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetConnectFailure, EachFailingCallReachesTheFactoryAndLeavesNoDescriptor) {
  World w;
  Server server;
  auto port = w.listen(server);
  const std::size_t before = w.open_fds();
  Client client;
  ConnectOptions options;
  options.bind_address = SocketAddress::ip("127.0.0.1", 0);
  w.os.clear_transcript();
  if (std::string_view(GetParam().call) == "epoll_ctl") {
    fail_first_on(w.os, "epoll_ctl", "socket", GetParam().error);
  } else {
    w.os.fail_nth(GetParam().call, GetParam().nth, GetParam().error);
  }
  auto connector = w.connect(*port, client, options);
  w.spin();
  ASSERT_EQ(client.errors.size(), 1u);
  EXPECT_STREQ(client.errors[0].call, GetParam().call);
  EXPECT_EQ(client.errors[0].code, GetParam().error);
  EXPECT_EQ(client.record->losses, 0);
  w.spin();
  // The server may have accepted a connection the client then closed.
  for (const auto& r : server.records) EXPECT_EQ(r->losses, 1);
  EXPECT_EQ(w.open_fds(), before);
}

INSTANTIATE_TEST_SUITE_P(Calls, NetConnectFailure,
                         testing::Values(FailingCall{"socket", EMFILE},
                                         FailingCall{"bind", EADDRINUSE},
                                         FailingCall{"connect", ECONNREFUSED},
                                         FailingCall{"getsockopt", ENOBUFS},
                                         // On the client's socket (see fail_first_on).
                                         FailingCall{"epoll_ctl", ENOMEM}),
                         call_name);

// ---- Host names, through a resolver that answers from a table -------------------------------

struct TableResolver : Resolver {
  Reactor& reactor;
  std::map<std::string, sys::Result<std::vector<SocketAddress>>> table;
  Duration latency{0};
  std::vector<std::string> asked;
  explicit TableResolver(Reactor& r) : reactor(r) {}
  void resolve(const std::string& host, std::uint16_t port, Done done) override {
    asked.push_back(fmt::format("{}:{}", host, port));
    auto it = table.find(host);
    sys::Result<std::vector<SocketAddress>> answer =
        it != table.end() ? it->second : sys::fail(sys::Error{ENXIO, "getaddrinfo", host});
    (void)reactor.call_later(latency, [done, answer] { done(answer); });
  }
};

TEST(NetResolve, ANameIsLookedUpThenConnected) {
  World w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen(factory);
  TableResolver resolver(*w.reactor);
  resolver.table.emplace("echo.test", std::vector<SocketAddress>{
                                          *SocketAddress::ip("127.0.0.1", port->address().port())});
  Client client;
  client.record->on_made = [](Connection& c) { c.write("by name"); };
  ConnectOptions options;
  options.resolver = &resolver;
  auto connector =
      connect_tcp(*w.reactor, w.os, "echo.test", port->address().port(), client, options);
  EXPECT_EQ(connector->address().family(), AF_UNSPEC);
  w.spin();
  EXPECT_THAT(resolver.asked, ElementsAre(fmt::format("echo.test:{}", port->address().port())));
  EXPECT_EQ(client.record->data, "by name");
  EXPECT_EQ(connector->address(), port->address());
}

TEST(NetResolve, AnUnknownNameFailsWithTheLookUpsError) {
  World w;
  TableResolver resolver(*w.reactor);
  Client client;
  ConnectOptions options;
  options.resolver = &resolver;
  auto connector = connect_tcp(*w.reactor, w.os, "nope.test", 80, client, options);
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("getaddrinfo(nope.test): No such device or address (ENXIO)"));
  EXPECT_EQ(calls_of(w.os, "socket"), 0u);
}

TEST(NetResolve, EachAddressIsTriedInTurnUntilOneAnswers) {
  World w;
  Server server;
  auto port = w.listen(server);
  TableResolver resolver(*w.reactor);
  resolver.table.emplace("two.test", std::vector<SocketAddress>{
                                         *SocketAddress::ip("127.0.0.1", 40000),
                                         *SocketAddress::ip("127.0.0.1", port->address().port())});
  Client client;
  ConnectOptions options;
  options.resolver = &resolver;
  auto connector = connect_tcp(*w.reactor, w.os, "two.test", 80, client, options);
  w.spin();
  EXPECT_TRUE(client.failures.empty());
  EXPECT_EQ(server.records.size(), 1u);
  EXPECT_EQ(connector->state(), Connector::State::kConnected);
}

TEST(NetResolve, WhenEveryAddressFailsTheLastFailureIsReported) {
  World w;
  TableResolver resolver(*w.reactor);
  resolver.table.emplace("none.test",
                         std::vector<SocketAddress>{*SocketAddress::ip("127.0.0.1", 40000),
                                                    *SocketAddress::ip("127.0.0.1", 40001)});
  Client client;
  ConnectOptions options;
  options.resolver = &resolver;
  auto connector = connect_tcp(*w.reactor, w.os, "none.test", 80, client, options);
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("connect(127.0.0.1:40001): Connection refused (ECONNREFUSED)"));
}

TEST(NetResolve, ASlowLookUpTimesOutAndItsLateAnswerIsIgnored) {
  World w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen(factory);
  TableResolver resolver(*w.reactor);
  resolver.latency = 60s;
  resolver.table.emplace("slow.test", std::vector<SocketAddress>{
                                          *SocketAddress::ip("127.0.0.1", port->address().port())});
  Client client;
  ConnectOptions options;
  options.resolver = &resolver;
  options.timeout = 5s;
  auto connector = connect_tcp(*w.reactor, w.os, "slow.test", 80, client, options);
  w.os.clock().advance(5s);
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("connect(slow.test:80): Connection timed out (ETIMEDOUT)"));
  w.os.clock().advance(60s);
  w.spin();
  EXPECT_EQ(client.failures.size(), 1u);
  EXPECT_EQ(port->connections(), 0u) << "the late answer started nothing";
}

TEST(NetResolve, StoppingOrDestroyingDuringTheLookUpIgnoresTheAnswer) {
  World w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen(factory);
  TableResolver resolver(*w.reactor);
  resolver.latency = 1s;
  resolver.table.emplace("slow.test", std::vector<SocketAddress>{
                                          *SocketAddress::ip("127.0.0.1", port->address().port())});
  ConnectOptions options;
  options.resolver = &resolver;
  Client stopped, destroyed;
  auto a = connect_tcp(*w.reactor, w.os, "slow.test", 80, stopped, options);
  auto b = connect_tcp(*w.reactor, w.os, "slow.test", 80, destroyed, options);
  EXPECT_TRUE(a->stop_connecting());
  b.reset();
  w.spin();
  EXPECT_THAT(stopped.failures,
              ElementsAre("connect(slow.test:80): Operation canceled (ECANCELED)"));
  w.os.clock().advance(1s);
  w.spin();
  EXPECT_EQ(stopped.failures.size(), 1u);
  EXPECT_TRUE(destroyed.failures.empty());
  EXPECT_EQ(port->connections(), 0u);
}

// ---- Connections: flow control, half-close, reset, abort, options -----------------------------

TEST(NetConnection, APeerThatNeverReadsPausesTheProducerUntilItReads) {
  World w;
  Server server;
  CountingProducer producer;
  server.setup = [&](Record& r) {
    r.on_made = [&](Connection& c) {
      ASSERT_TRUE(c.register_producer(producer, true));
      c.write(std::string(1024 * 1024, 'x'));
    };
  };
  auto port = w.listen(server);
  const int client = w.raw_client(port->address().port());
  w.spin();
  EXPECT_EQ(producer.pauses, 1);
  EXPECT_EQ(producer.resumes, 0);
  std::size_t got = 0;
  for (int i = 0; i < 20 && producer.resumes == 0; ++i) {
    got += w.read_all(client).size();
    w.spin(1);
  }
  EXPECT_EQ(producer.resumes, 1);
  got += w.read_all(client).size();
  EXPECT_EQ(got, 1024u * 1024u);
}

TEST(NetConnection, TheClientHalfClosesAndTheServerAnswersBeforeClosing) {
  World w;
  Server server;
  server.setup = [](Record& r) {
    r.half_close = true;
    r.on_eof = [](Connection& c) {
      c.write("bye");
      c.lose_connection();
    };
  };
  auto port = w.listen(server);
  Client client;
  client.record->half_close = true;
  client.record->on_made = [](Connection& c) {
    c.write("request");
    c.lose_write_connection();
  };
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_EQ(server.last().data, "request");
  EXPECT_EQ(client.record->data, "bye");
  EXPECT_EQ(client.record->events, (std::vector<std::string>{"made", "write_eof", "data", "lost"}));
  EXPECT_TRUE(client.record->reason->clean());
  EXPECT_EQ(server.last().events, (std::vector<std::string>{"made", "data", "read_eof", "lost"}));
}

TEST(NetConnection, TheServerHalfClosesAndKeepsReading) {
  World w;
  Server server;
  server.setup = [](Record& r) {
    r.on_made = [](Connection& c) {
      c.write("greeting");
      c.lose_write_connection();
    };
  };
  auto port = w.listen(server);
  Client client;
  client.record->half_close = true;
  client.record->on_eof = [](Connection& c) {
    c.write("thanks");
    c.lose_connection();
  };
  auto connector = w.connect(*port, client);
  w.spin();
  EXPECT_EQ(client.record->data, "greeting");
  EXPECT_EQ(server.last().data, "thanks");
  EXPECT_EQ(server.last().events, (std::vector<std::string>{"made", "write_eof", "data", "lost"}));
  EXPECT_TRUE(server.last().reason->clean());
}

TEST(NetConnection, APeerClosingWithBytesUnreadResetsTheConnection) {
  World w;
  Server server;
  server.setup = [](Record& r) { r.on_made = [](Connection& c) { c.pause_reading(); }; };
  auto port = w.listen(server);
  Client client;
  client.record->on_made = [](Connection& c) { c.write("never read"); };
  auto connector = w.connect(*port, client);
  w.spin();
  ASSERT_EQ(server.records.size(), 1u);
  server.last().connection->abort_connection();
  w.spin();
  EXPECT_EQ(server.last().reason, LossReason::aborted());
  ASSERT_TRUE(client.record->reason);
  EXPECT_EQ(client.record->reason->kind, LossReason::Kind::kLost);
  EXPECT_EQ(client.record->reason->error.code, ECONNRESET);
}

TEST(NetConnection, AbortDuringAWriteDropsTheBufferAndIsHeardOnTheNextTurn) {
  World w;
  Server server;
  server.setup = [](Record& r) {
    r.on_made = [](Connection& c) { c.write(std::string(1024 * 1024, 'x')); };
  };
  auto port = w.listen(server);
  const int client = w.raw_client(port->address().port());
  w.spin();
  Connection& c = *server.last().connection;
  EXPECT_GT(c.buffered(), 0u);
  c.abort_connection();
  EXPECT_EQ(server.last().losses, 0) << "never from inside the call";
  w.spin(1);
  EXPECT_EQ(server.last().reason, LossReason::aborted());
  EXPECT_EQ(port->connections(), 0u);
  EXPECT_LT(w.read_all(client).size(), 1024u * 1024u);
}

TEST(NetConnection, NoDelayAndKeepAliveAreOffThenSet) {
  World w;
  Server server;
  auto port = w.listen(server);
  Client client;
  auto connector = w.connect(*port, client);
  w.spin();
  Connection& c = *server.last().connection;
  EXPECT_EQ(c.no_delay().value_or(true), false);
  EXPECT_EQ(c.keep_alive().value_or(true), false);
  EXPECT_TRUE(c.set_no_delay(true));
  EXPECT_TRUE(c.set_keep_alive(true));
  EXPECT_EQ(c.no_delay().value_or(false), true);
  EXPECT_EQ(c.keep_alive().value_or(false), true);
}

// ---- UNIX stream ------------------------------------------------------------------------------

struct UnixWorld : World {
  UnixWorld() { os.make_dir("/run/app", 0755); }

  ReactorResult<std::unique_ptr<ListeningPort>> listen_unix(ServerFactory& factory,
                                                            std::string_view name,
                                                            UnixListenOptions options = {}) {
    options.port.log = port_options().log;
    return core::listen_unix(*reactor, os, name, factory, std::move(options));
  }

  // A socket file left by a server that is gone.
  void leftover_socket(const std::string& path) {
    const int fd = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto at = *SocketAddress::unix_name(path);
    EXPECT_TRUE(os.bind(fd, at.data(), at.size()));
    EXPECT_TRUE(os.close(fd));
  }
};

TEST(NetUnix, APathServesAndIsUnlinkedAtTheStop) {
  UnixWorld w;
  ServerFactoryOf<Echo> factory;
  UnixListenOptions options;
  options.mode = 0660;
  auto port =
      w.listen_unix(factory, "/run/app/a-socket-name-longer-than-sockaddr-in6.sock", options);
  ASSERT_TRUE(port) << to_string(port.error());
  auto st = w.os.stat_path("/run/app/a-socket-name-longer-than-sockaddr-in6.sock");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISSOCK(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0660u);
  Client client;
  client.record->on_made = [](Connection& c) { c.write("over unix"); };
  auto connector = connect_unix(*w.reactor, w.os,
                                "/run/app/a-socket-name-longer-than-sockaddr-in6.sock", client);
  w.spin();
  EXPECT_EQ(client.record->data, "over unix");
  // A path longer than what the connection keeps inline (an IPv6 address) comes back whole.
  EXPECT_EQ(client.record->connection->peer_address(), (*port)->address());
  EXPECT_EQ(client.record->connection->set_no_delay(true).error().code, EOPNOTSUPP);
  EXPECT_TRUE((*port)->stop_listening());
  EXPECT_FALSE(w.os.stat_path("/run/app/a-socket-name-longer-than-sockaddr-in6.sock"));
}

// chmod after bind and before listen: until listen nobody can connect, so the moment the file
// has the umask's mode exposes nothing.
TEST(NetUnix, TheModeIsSetBeforeListening) {
  UnixWorld w;
  Server server;
  auto port = w.listen_unix(server, "/run/app/x.sock");
  ASSERT_TRUE(port);
  std::vector<std::string> order;
  for (const auto& r : w.os.transcript()) {
    if (r.name == "bind" || r.name == "chmod" || r.name == "listen") order.push_back(r.name);
  }
  EXPECT_THAT(order, ElementsAre("bind", "chmod", "listen"));
  EXPECT_EQ(w.os.stat_path("/run/app/x.sock")->st_mode & 07777, 0666u);
}

TEST(NetUnix, AnAbstractNameIsNeitherChmoddedNorUnlinked) {
  UnixWorld w;
  ServerFactoryOf<Echo> factory;
  auto port = w.listen_unix(factory, "@daemonkit-test");
  ASSERT_TRUE(port);
  EXPECT_EQ(to_string((*port)->address()), "@daemonkit-test");
  Client client;
  client.record->on_made = [](Connection& c) { c.write("abstract"); };
  auto connector = connect_unix(*w.reactor, w.os, "@daemonkit-test", client);
  w.spin();
  EXPECT_EQ(client.record->data, "abstract");
  port->reset();
  EXPECT_EQ(calls_of(w.os, "chmod"), 0u);
  EXPECT_EQ(calls_of(w.os, "unlink"), 0u);
}

TEST(NetUnix, ALeftoverSocketWithoutTheLockIsAddressInUse) {
  UnixWorld w;
  Server server;
  w.leftover_socket("/run/app/x.sock");
  auto port = w.listen_unix(server, "/run/app/x.sock");
  ASSERT_FALSE(port);
  EXPECT_EQ(to_string(port.error()), "bind(/run/app/x.sock): Address already in use (EADDRINUSE)");
  EXPECT_TRUE(w.os.stat_path("/run/app/x.sock")) << "not ours to remove";
}

TEST(NetUnix, WithTheLockALeftoverSocketIsStaleAndReplaced) {
  UnixWorld w;
  Server server;
  w.leftover_socket("/run/app/x.sock");
  UnixListenOptions options;
  options.lock_file = true;
  auto port = w.listen_unix(server, "/run/app/x.sock", options);
  ASSERT_TRUE(port) << to_string(port.error());
  EXPECT_THAT(w.log, ElementsAre("Removing stale socket /run/app/x.sock"));
  EXPECT_EQ(w.os.read_file("/run/app/x.sock.lock"), fmt::format("{}\n", w.os.getpid()));
  port->reset();
  EXPECT_FALSE(w.os.stat_path("/run/app/x.sock"));
  EXPECT_FALSE(w.os.stat_path("/run/app/x.sock.lock"));
}

TEST(NetUnix, ALockHeldElsewhereFailsAndTouchesNothing) {
  UnixWorld w;
  Server server;
  w.leftover_socket("/run/app/x.sock");
  const int held = *w.os.open("/run/app/x.sock.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_TRUE(w.os.flock(held, LOCK_EX));
  UnixListenOptions options;
  options.lock_file = true;
  auto port = w.listen_unix(server, "/run/app/x.sock", options);
  ASSERT_FALSE(port);
  EXPECT_EQ(to_string(port.error()),
            "flock(/run/app/x.sock.lock): Resource temporarily unavailable (EAGAIN)");
  EXPECT_TRUE(w.os.stat_path("/run/app/x.sock"));
  EXPECT_TRUE(w.os.stat_path("/run/app/x.sock.lock"));
}

// Twisted leaks the lock when bind fails after it was taken (a regular file at the path).
TEST(NetUnix, AFailedBindReleasesTheLock) {
  UnixWorld w;
  Server server;
  w.os.write_file("/run/app/x.sock", "not a socket");
  UnixListenOptions options;
  options.lock_file = true;
  auto port = w.listen_unix(server, "/run/app/x.sock", options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EADDRINUSE);
  EXPECT_EQ(w.os.read_file("/run/app/x.sock"), "not a socket") << "only a socket is stale";
  EXPECT_FALSE(w.os.stat_path("/run/app/x.sock.lock"));
}

class NetUnixFailure : public testing::TestWithParam<FailingCall> {};

TEST_P(NetUnixFailure, EachFailingCallLeavesNeitherTheSocketFileNorTheLock) {
  UnixWorld w;
  Server server;
  const std::size_t before = w.open_fds();
  UnixListenOptions options;
  options.lock_file = true;
  w.os.clear_transcript();
  w.os.fail_nth(GetParam().call, GetParam().nth, GetParam().error);
  auto port = w.listen_unix(server, "/run/app/x.sock", options);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), GetParam().error);
  EXPECT_FALSE(w.os.stat_path("/run/app/x.sock"));
  // A lock that could not be taken is not ours to remove (an empty, unlocked file is free).
  if (GetParam().call != std::string("flock")) {
    EXPECT_FALSE(w.os.stat_path("/run/app/x.sock.lock"));
  }
  EXPECT_EQ(w.open_fds(), before);
}

INSTANTIATE_TEST_SUITE_P(Calls, NetUnixFailure,
                         testing::Values(FailingCall{"open", EACCES}, FailingCall{"flock", ENOLCK},
                                         FailingCall{"fstat", EIO}, FailingCall{"ftruncate", EIO},
                                         FailingCall{"write", ENOSPC},
                                         FailingCall{"socket", EMFILE}, FailingCall{"bind", EACCES},
                                         FailingCall{"lstat", EIO}, FailingCall{"lstat", EIO, 2},
                                         FailingCall{"lstat", EIO, 3}, FailingCall{"chmod", EPERM},
                                         FailingCall{"listen", ENOBUFS}),
                         call_name);

TEST(NetUnix, TheStopUnlinksOnlyTheSocketBoundHere) {
  UnixWorld w;
  Server server;
  auto port = w.listen_unix(server, "/run/app/x.sock");
  ASSERT_TRUE(port);
  // A successor removed ours and bound its own.
  ASSERT_TRUE(w.os.unlink("/run/app/x.sock"));
  w.leftover_socket("/run/app/x.sock");
  const auto successor = w.os.stat_path("/run/app/x.sock")->st_ino;
  port->reset();
  auto still = w.os.stat_path("/run/app/x.sock");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->st_ino, successor);
}

TEST(NetUnix, ConnectingToAMissingPathFails) {
  UnixWorld w;
  Client client;
  auto connector = connect_unix(*w.reactor, w.os, "/run/app/none.sock", client);
  w.spin();
  EXPECT_THAT(client.failures,
              ElementsAre("connect(/run/app/none.sock): No such file or directory (ENOENT)"));
}

TEST(NetUnix, AFullBacklogRefusesTheConnect) {
  UnixWorld w;
  Server server;
  UnixListenOptions options;
  options.backlog = 0;
  auto port = w.listen_unix(server, "@full", options);
  ASSERT_TRUE(port);
  Client a, b;
  auto ca = connect_unix(*w.reactor, w.os, "@full", a);
  auto cb = connect_unix(*w.reactor, w.os, "@full", b);
  // Both connect before the port's first turn: the second finds the queue full.
  w.reactor->run_until_current();
  w.spin();
  EXPECT_TRUE(a.failures.empty());
  EXPECT_THAT(b.failures, ElementsAre("connect(@full): Resource temporarily unavailable (EAGAIN)"));
}

TEST(NetUnix, ANameThatDoesNotFitIsRefused) {
  UnixWorld w;
  Server server;
  auto port = w.listen_unix(server, "/" + std::string(200, 'x'));
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().error_number(), EINVAL);
}

// ---- Property: random interleavings on both ends of a connection ------------------------------

namespace property {

struct End {
  std::shared_ptr<Record> record;
  std::string sent;
  std::uint64_t counter = 0;
  bool closed_reading = false;  // lose_connection or abort: it stops reading for good
  bool aborted = false;
  bool write_shut = false;

  Connection* connection() const { return record->connection; }
  bool alive() const { return connection() != nullptr; }

  // Bytes numbered by this end's counter, so a byte lost, repeated or reordered shows.
  void write(std::size_t n, char side) {
    std::string bytes(n, '\0');
    for (char& b : bytes) b = static_cast<char>((counter++ * 7 + side) % 251);
    Connection* c = connection();
    const bool accepted = c != nullptr && c->connected() && !write_shut;
    if (c != nullptr) c->write(bytes);
    if (accepted) sent += bytes;
  }
};

// Everything one end sent reached the other when neither stopped it: the sender was not
// aborted and ended cleanly (or is still up), the receiver kept reading and ended cleanly (or
// is still up). A receiver lost with an error (EPIPE on its own write to a sender gone) may
// drop what the kernel still held for it.
bool must_be_complete(const End& from, const End& to) {
  const auto fine = [](const End& e) {
    return e.alive() || (e.record->reason && e.record->reason->clean());
  };
  return !from.aborted && !to.aborted && !to.closed_reading && fine(from) && fine(to);
}

}  // namespace property

RC_GTEST_PROP(NetProperty, BytesArriveInOrderOnceAndEachConnectionEndsOnce, ()) {
  using property::End;
  World w;
  Server server;
  server.setup = [](Record& r) { r.half_close = true; };
  auto port = w.listen(server);
  Client client;
  client.record->half_close = true;
  auto connector = w.connect(*port, client);
  w.spin(4);
  RC_ASSERT(server.records.size() == 1u);
  End ends[2];
  ends[0].record = client.record;
  ends[1].record = server.records[0];
  RC_ASSERT(ends[0].alive() && ends[1].alive());

  const auto steps = *rc::gen::container<std::vector<std::pair<int, int>>>(
      rc::gen::pair(rc::gen::inRange(0, 14), rc::gen::inRange(1, 300000)));
  for (const auto& [op, size] : steps) {
    End& e = ends[op % 2];
    Connection* c = e.connection();
    switch (op / 2) {
      case 0:
        e.write(static_cast<std::size_t>(size), static_cast<char>(op % 2));
        break;
      case 1:
        if (c != nullptr) c->pause_reading();
        break;
      case 2:
        if (c != nullptr) c->resume_reading();
        break;
      case 3:
        w.spin(1 + size % 3);
        break;
      case 4:
        if (c != nullptr) {
          c->lose_connection();
          e.closed_reading = true;
        }
        break;
      case 5:
        if (c != nullptr) {
          c->lose_write_connection();
          e.write_shut = true;
        }
        break;
      case 6:
        if (c != nullptr && size % 4 == 0) {  // rarer: an abort ends most of the story
          c->abort_connection();
          e.aborted = e.closed_reading = true;
        }
        break;
    }
  }
  for (End& e : ends) {
    if (e.alive()) e.connection()->resume_reading();
  }
  w.spin(200);
  for (int i = 0; i < 2; ++i) {
    const End& from = ends[i];
    const End& to = ends[1 - i];
    RC_ASSERT(from.sent.compare(0, to.record->data.size(), to.record->data) == 0);
    const bool complete = property::must_be_complete(from, to);
    if (complete) RC_ASSERT(to.record->data.size() == from.sent.size());
    RC_CLASSIFY(complete && !from.sent.empty(),
                i == 0 ? "client bytes all checked" : "server bytes all checked");
  }
  for (End& e : ends) {
    if (e.alive()) e.connection()->lose_connection();
  }
  w.spin(200);
  // A close waits for the kernel to take what is queued, and for the socket to be writable
  // once more (Twisted's rule): when both ends closed with full kernel buffers, neither reads
  // and neither close can finish. Only an abort ends that; it must still end it once.
  for (End& e : ends) {
    if (e.alive()) e.connection()->abort_connection();
  }
  w.spin(4);
  RC_ASSERT(ends[0].record->losses == 1);
  RC_ASSERT(ends[1].record->losses == 1);
  RC_ASSERT(port->connections() == 0u);
  RC_ASSERT(connector->state() == Connector::State::kDisconnected);
}

// ---- Descriptor passing and peer credentials ------------------------------------------------

// A protocol that takes descriptors: what it heard, in order, and the descriptors it kept.
struct Taker : Protocol, DescriptorReceiver {
  struct Heard {
    std::vector<std::string> events;
    std::string data;
    std::vector<OwnedFd> kept;
    // How many bytes had arrived when each set of descriptors did.
    std::vector<std::size_t> fds_at;
    // How many bytes had arrived once the read that brought them was heard.
    std::vector<std::size_t> fds_until;
    Connection* connection = nullptr;
    bool pause = false;
  };
  explicit Taker(Heard& h) : heard(h) {}
  void connection_made(Connection& c) override {
    heard.connection = &c;
    if (heard.pause) c.pause_reading();
  }
  void data_received(std::span<const std::byte> bytes) override {
    heard.data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    heard.events.push_back("data");
    if (heard.fds_until.size() < heard.fds_at.size()) heard.fds_until.push_back(heard.data.size());
  }
  void descriptors_received(std::vector<OwnedFd> fds) override {
    heard.events.push_back(fmt::format("fds:{}", fds.size()));
    heard.fds_at.push_back(heard.data.size());
    for (auto& f : fds) heard.kept.push_back(std::move(f));
  }
  void descriptors_truncated(std::size_t closed) override {
    heard.events.push_back(fmt::format("truncated:{}", closed));
  }
  void connection_lost(const LossReason&) override { heard.connection = nullptr; }
  Heard& heard;
};

struct TakerFactory : ServerFactory {
  Taker::Heard heard;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Taker>(heard);
  }
};

// The lowest descriptor number free now: what the next open gets. Equal before and after a
// scenario, it says the scenario left no descriptor open.
int lowest_free(FakeSyscalls& os) {
  const int fd = *os.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  EXPECT_TRUE(os.close(fd));
  return fd;
}

std::string read_all(FakeSyscalls& os, int fd) {
  char buf[256];
  auto n = os.read(fd, buf, sizeof buf);
  return n ? std::string(buf, *n) : sys::to_string(n.error());
}

// A client connected to a UNIX port on /run/app/fd.sock served by `factory`. The world and the
// factory are the test's, declared first: what the factory's protocols kept closes in the world.
struct UnixPair {
  UnixWorld& w;
  std::unique_ptr<ListeningPort> port;
  Client client;
  std::unique_ptr<Connector> connector;

  UnixPair(UnixWorld& world, ServerFactory& factory) : w(world) {
    auto listening = w.listen_unix(factory, "/run/app/fd.sock");
    EXPECT_TRUE(listening) << to_string(listening.error());
    if (listening) port = std::move(*listening);
    connector = connect_unix(*w.reactor, w.os, "/run/app/fd.sock", client);
    w.spin();
    EXPECT_NE(client.record->connection, nullptr);
  }
  Connection* connection() const { return client.record->connection; }
};

TEST(NetDescriptors, APipePassedWithAByteIsReadThroughOnTheOtherSide) {
  UnixWorld w;
  TakerFactory server;
  UnixPair pair(w, server);
  auto& client = pair.client;
  ASSERT_NE(client.record->connection, nullptr);
  auto pipe = w.os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(pipe);
  const int ends[] = {pipe->read_end};
  ASSERT_TRUE(client.record->connection->write_with_descriptors("x", ends));
  ASSERT_TRUE(w.os.close(pipe->read_end)) << "the connection sent its own copy";
  ASSERT_TRUE(w.os.write(pipe->write_end, "through the pipe", 16));
  w.spin();
  EXPECT_THAT(server.heard.events, ElementsAre("fds:1", "data"));
  EXPECT_EQ(server.heard.data, "x");
  ASSERT_EQ(server.heard.kept.size(), 1u);
  EXPECT_EQ(read_all(w.os, server.heard.kept[0].get()), "through the pipe");
  auto flags = w.os.fcntl(server.heard.kept[0].get(), F_GETFD, 0);
  ASSERT_TRUE(flags);
  EXPECT_NE(*flags & FD_CLOEXEC, 0) << "received with MSG_CMSG_CLOEXEC";
  EXPECT_TRUE(w.os.close(pipe->write_end));
}

// Descriptors written while earlier bytes wait in the buffer go out behind them, with their
// own first byte: the receiver hears them no earlier than the bytes before.
TEST(NetDescriptors, DescriptorsWaitInOrderBehindQueuedBytes) {
  UnixWorld w;
  TakerFactory server;
  server.heard.pause = true;  // the server reads nothing yet: the client's writes must queue
  UnixPair pair(w, server);
  auto& client = pair.client;
  Connection* c = client.record->connection;
  ASSERT_NE(c, nullptr);
  const std::string bulk(4 << 20, 'b');
  c->write(bulk);
  ASSERT_GT(c->buffered(), 0u) << "the socket is full";
  auto pipe = w.os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(pipe);
  const int ends[] = {pipe->read_end};
  ASSERT_TRUE(c->write_with_descriptors("y", ends));
  c->write("z");
  ASSERT_TRUE(w.os.close(pipe->read_end));
  ASSERT_NE(server.heard.connection, nullptr);
  server.heard.connection->resume_reading();
  for (int i = 0; i < 200 && server.heard.data.size() < bulk.size() + 2; ++i) w.spin(1);
  EXPECT_EQ(server.heard.data, bulk + "yz");
  ASSERT_EQ(server.heard.fds_at.size(), 1u);
  EXPECT_LE(server.heard.fds_at[0], bulk.size()) << "heard before the byte they came with";
  ASSERT_EQ(server.heard.fds_until.size(), 1u);
  EXPECT_GT(server.heard.fds_until[0], bulk.size()) << "and with the read that brings it";
  ASSERT_EQ(server.heard.kept.size(), 1u);
  ASSERT_TRUE(w.os.write(pipe->write_end, "late", 4));
  EXPECT_EQ(read_all(w.os, server.heard.kept[0].get()), "late");
  EXPECT_TRUE(w.os.close(pipe->write_end));
}

// More descriptors than one read has room for: the kernel cuts them short (MSG_CTRUNC); what
// arrived is closed and reported, the bytes still come, and nothing is left open.
TEST(NetDescriptors, MoreThanAReadTakesAreClosedAndReported) {
  UnixWorld w;
  TakerFactory server;
  UnixPair pair(w, server);
  auto& client = pair.client;
  ASSERT_NE(client.record->connection, nullptr);
  auto pipe = w.os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(pipe);
  const int free_before = lowest_free(w.os);
  const std::vector<int> many(StreamTransport::kMaxDescriptorsPerRead + 1, pipe->read_end);
  ASSERT_TRUE(client.record->connection->write_with_descriptors("m", many));
  w.spin();
  EXPECT_THAT(
      server.heard.events,
      ElementsAre(fmt::format("truncated:{}", StreamTransport::kMaxDescriptorsPerRead), "data"));
  EXPECT_EQ(server.heard.data, "m");
  EXPECT_TRUE(server.heard.kept.empty());
  EXPECT_EQ(lowest_free(w.os), free_before) << "every copy and every arrival was closed";
}

// A protocol that does not take descriptors has them closed (the kernel's read drops them).
TEST(NetDescriptors, AProtocolThatTakesNoneHasThemClosed) {
  UnixWorld w;
  ServerFactoryOf<Echo> echo;
  UnixPair pair(w, echo);
  auto& client = pair.client;
  ASSERT_NE(client.record->connection, nullptr);
  auto pipe = w.os.pipe2(O_CLOEXEC);
  ASSERT_TRUE(pipe);
  const int free_before = lowest_free(w.os);
  const int ends[] = {pipe->read_end, pipe->write_end};
  ASSERT_TRUE(client.record->connection->write_with_descriptors("e", ends));
  w.spin();
  EXPECT_EQ(client.record->data, "e");
  EXPECT_EQ(lowest_free(w.os), free_before);
}

TEST(NetDescriptors, AWriteThatCannotCarryItsDescriptorsFailsAndSendsNothing) {
  UnixWorld w;
  TakerFactory server;
  UnixPair pair(w, server);
  auto& client = pair.client;
  Connection* c = client.record->connection;
  ASSERT_NE(c, nullptr);
  const int bad[] = {999};
  auto failed = c->write_with_descriptors("x", bad);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, EBADF);
  const int fine[] = {0};
  auto empty = c->write_with_descriptors(std::string_view(), fine);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, EINVAL);
  const std::vector<int> too_many(StreamTransport::kMaxDescriptorsPerWrite + 1, 0);
  auto many = c->write_with_descriptors("x", too_many);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, EINVAL);
  w.spin();
  EXPECT_TRUE(server.heard.events.empty());
  EXPECT_TRUE(c->connected());
}

TEST(NetDescriptors, PeerCredentialsNameTheProcessAtTheOtherEnd) {
  UnixWorld w;
  TakerFactory server;
  UnixPair pair(w, server);
  auto& client = pair.client;
  ASSERT_NE(server.heard.connection, nullptr);
  auto credentials = server.heard.connection->peer_credentials();
  ASSERT_TRUE(credentials) << sys::to_string(credentials.error());
  const auto uids = *w.os.getresuid();
  const auto gids = *w.os.getresgid();
  EXPECT_EQ(*credentials, (PeerCredentials{w.os.getpid(), uids.effective, gids.effective}));
  // The client's view: the listening process (the same one here).
  auto server_side = client.record->connection->peer_credentials();
  ASSERT_TRUE(server_side);
  EXPECT_EQ(server_side->pid, w.os.getpid());
}

}  // namespace
}  // namespace daemonkit::core
