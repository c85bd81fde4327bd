// StreamServerService on the reactor over the fake kernel: it listens in privileged start (or in
// start, once), serves connections, names the endpoint when listening fails, and stops by
// closing the port at once or after a bounded drain of the open connections.
#include "daemonkit/core/app/stream_server_service.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemonkit/core/app/multi_service.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/result_matchers.h"
#include "tls_test_certificates.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using fake::IsOk;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

struct Server {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;
  ServerFactoryOf<Echo> factory;

  Server() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    EXPECT_TRUE(os.sigaction(SIGPIPE, &ignore, nullptr));
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os, std::move(options));
    EXPECT_TRUE(created);
    if (created) reactor = std::move(*created);
  }
  StreamServerOptions options() {
    StreamServerOptions o;
    o.log = [this](std::string_view line) { log.emplace_back(line); };
    return o;
  }
  std::shared_ptr<StreamServerService> service(std::string_view endpoint, StreamServerOptions o) {
    auto made =
        StreamServerService::from_string(*reactor, os, endpoint, factory, std::move(o), "web");
    EXPECT_TRUE(made) << (made ? "" : made.error().message);
    return made ? *made : nullptr;
  }
  std::shared_ptr<StreamServerService> service(std::string_view endpoint) {
    return service(endpoint, options());
  }
  // As a program that links TLS (app::run given listen_ssl_endpoint) makes it.
  std::shared_ptr<StreamServerService> ssl_service(std::string_view endpoint) {
    StreamServerOptions o = options();
    o.listen_ssl = &listen_ssl_endpoint;
    return service(endpoint, std::move(o));
  }
  void spin(int turns = 8) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }
  // A client socket connected to 127.0.0.1:port (the fake completes it once the loop accepts).
  int client(std::uint16_t port) {
    const int fd = *os.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto to = *SocketAddress::ip("127.0.0.1", port);
    auto done = os.connect(fd, to.data(), to.size());
    EXPECT_TRUE(done || done.error().code == EINPROGRESS);
    return fd;
  }
  std::string echo(int fd, std::string_view text) {
    EXPECT_TRUE(os.write(fd, text.data(), text.size()));
    spin();
    char buf[256];
    auto n = os.read(fd, buf, sizeof buf);
    return n ? std::string(buf, *n) : std::string("error: ") + sys::to_string(n.error());
  }
  // What reading `fd` gives now: "eof", an errno name, or the bytes.
  std::string read_now(int fd) {
    char buf[256];
    auto n = os.read(fd, buf, sizeof buf);
    if (!n) return sys::errno_name(n.error().code);
    return *n == 0 ? std::string("eof") : std::string(buf, *n);
  }
};

TEST(StreamServerService, ListensInPrivilegedStartAndServes) {
  Server w;
  auto web = w.service("tcp:0:interface=127.0.0.1");
  ASSERT_THAT(web->privileged_start(), IsOk());
  ASSERT_NE(web->port(), nullptr);
  ListeningPort* bound = web->port();
  ASSERT_THAT(web->start(), IsOk());
  EXPECT_EQ(web->port(), bound) << "start listens only if privileged start did not";
  const int fd = w.client(bound->address().port());
  EXPECT_EQ(w.echo(fd, "ping"), "ping");
  EXPECT_EQ(web->port()->connections(), 1u);
}

TEST(StreamServerService, StartAloneListens) {
  Server w;
  auto web = w.service("tcp:0:interface=127.0.0.1");
  EXPECT_EQ(web->port(), nullptr);
  ASSERT_THAT(web->start(), IsOk());
  ASSERT_NE(web->port(), nullptr);
  EXPECT_TRUE(web->port()->listening());
  EXPECT_NE(web->port()->address().port(), 0) << "the kernel's choice for tcp:0";
}

TEST(StreamServerService, AListenFailureIsTheStartErrorNamingTheEndpoint) {
  Server w;
  ASSERT_TRUE(w.os.setresuid(1000, 1000, 1000));
  auto web = w.service("tcp:80");
  auto started = web->privileged_start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().message, "tcp: bind(0.0.0.0:80): Permission denied (EACCES)");
  EXPECT_EQ(started.error().error_number(), EACCES);
  EXPECT_EQ(web->state(), ServiceState::kStopped);
  EXPECT_EQ(web->port(), nullptr);
}

TEST(StreamServerService, AParentReportsWhichChildCouldNotListen) {
  Server w;
  // Taken by another socket first: the second listen finds the address in use.
  auto first = w.service("tcp:0:interface=127.0.0.1");
  ASSERT_THAT(first->start(), IsOk());
  const std::string taken =
      "tcp:" + std::to_string(first->port()->address().port()) + ":interface=127.0.0.1";
  auto second = w.service(taken);
  MultiService app("app");
  ASSERT_THAT(app.add(second), IsOk());
  auto started = app.start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().message, HasSubstr("service 'web': tcp: bind(127.0.0.1:"));
  EXPECT_EQ(started.error().error_number(), EADDRINUSE);
}

TEST(StreamServerService, AFailedStartOfTheApplicationClosesThePortsAlreadyOpen) {
  Server w;
  ASSERT_TRUE(w.os.setresuid(1000, 1000, 1000));
  auto admin = w.service("tcp:0:interface=127.0.0.1");
  auto web = w.service("tcp:80");
  ASSERT_THAT(web->set_name("web80"), IsOk());
  MultiService app("app");
  ASSERT_THAT(app.add(admin), IsOk());
  ASSERT_THAT(app.add(web), IsOk());
  auto started = app.privileged_start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().message, HasSubstr("service 'web80': tcp: bind(0.0.0.0:80)"));
  ASSERT_NE(admin->port(), nullptr);
  EXPECT_FALSE(admin->port()->listening()) << "closed as the failed start is undone";
  w.reactor->run_until_current();
  EXPECT_EQ(admin->port(), nullptr);
  EXPECT_EQ(admin->state(), ServiceState::kStopped);
  EXPECT_EQ(app.state(), ServiceState::kStopped);
}

TEST(StreamServerService, AStringThatIsNotAServerEndpointIsRefusedByTheParser) {
  Server w;
  auto made = StreamServerService::from_string(*w.reactor, w.os, "tcp:http", w.factory);
  ASSERT_FALSE(made);
  EXPECT_THAT(made.error().message, HasSubstr("port"));
}

TEST(StreamServerService, StopClosesThePortAndItsConnectionsOnTheNextTurn) {
  Server w;
  auto web = w.service("tcp:0:interface=127.0.0.1");
  ASSERT_THAT(web->start(), IsOk());
  const std::uint16_t port = web->port()->address().port();
  const int fd = w.client(port);
  EXPECT_EQ(w.echo(fd, "a"), "a");
  Completion stopped = web->stop();
  EXPECT_FALSE(web->port()->listening()) << "no connection is accepted after stop()";
  EXPECT_FALSE(stopped.completed()) << "the port goes on the loop's next turn";
  w.reactor->run_until_current();
  EXPECT_TRUE(stopped.completed());
  EXPECT_THAT(stopped.errors(), IsEmpty());
  EXPECT_EQ(web->state(), ServiceState::kStopped);
  EXPECT_EQ(web->port(), nullptr);
  EXPECT_EQ(web->aborted_connections(), 1u);
  EXPECT_THAT(w.log, IsEmpty()) << "no drain was asked for: nothing to report";
  EXPECT_EQ(w.read_now(fd), "eof");
  const int late = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto to = *SocketAddress::ip("127.0.0.1", port);
  EXPECT_THAT(w.os.connect(late, to.data(), to.size()), fake::FailsWith(ECONNREFUSED))
      << "nobody listens any more";
}

// An admin command that stops its own service: the connection whose callback is running must
// outlive the call (it is destroyed on the next turn, not inside stop()).
struct StopsItsService : Protocol {
  std::shared_ptr<StreamServerService>* service;
  std::optional<Completion>* stopped;
  void data_received(std::span<const std::byte> data) override {
    *stopped = (*service)->stop();
    connection().write(data);  // the connection is still whole here
  }
};

struct StopFactory : ServerFactory {
  std::shared_ptr<StreamServerService> service;
  std::optional<Completion> stopped;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    auto p = std::make_unique<StopsItsService>();
    p->service = &service;
    p->stopped = &stopped;
    return p;
  }
};

TEST(StreamServerService, AProtocolMayStopItsOwnService) {
  Server w;
  StopFactory factory;
  auto made = StreamServerService::from_string(*w.reactor, w.os, "tcp:0:interface=127.0.0.1",
                                               factory, w.options(), "admin");
  ASSERT_TRUE(made);
  factory.service = *made;
  ASSERT_THAT(factory.service->start(), IsOk());
  const int fd = w.client(factory.service->port()->address().port());
  w.spin();
  ASSERT_TRUE(w.os.write(fd, "quit", 4));
  w.spin();
  ASSERT_TRUE(factory.stopped);
  EXPECT_TRUE(factory.stopped->completed());
  EXPECT_EQ(factory.service->port(), nullptr);
  EXPECT_EQ(w.read_now(fd), "quit");
  EXPECT_EQ(w.read_now(fd), "eof");
}

// A stop without a drain ends the open connections with the port (each protocol hears
// "aborted"); a protocol that lets go of its service from there (the last reference to it)
// must not leave the stop finishing inside a service that is gone.
struct DropsItsService : Protocol {
  std::shared_ptr<StreamServerService>* service;
  std::vector<std::string>* heard;
  void data_received(std::span<const std::byte> /*data*/) override {}
  void connection_lost(const LossReason& reason) override {
    heard->push_back(to_string(reason));
    service->reset();
  }
};

struct DropFactory : ServerFactory {
  std::shared_ptr<StreamServerService> service;
  std::vector<std::string> heard;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    auto p = std::make_unique<DropsItsService>();
    p->service = &service;
    p->heard = &heard;
    return p;
  }
};

TEST(StreamServerService, AProtocolMayDestroyItsServiceWhenAStopEndsItsConnection) {
  Server w;
  DropFactory factory;
  auto made = StreamServerService::from_string(*w.reactor, w.os, "tcp:0:interface=127.0.0.1",
                                               factory, w.options(), "admin");
  ASSERT_TRUE(made);
  factory.service = std::move(*made);  // the only reference
  ASSERT_THAT(factory.service->start(), IsOk());
  const int a = w.client(factory.service->port()->address().port());
  const int b = w.client(factory.service->port()->address().port());
  w.spin();
  ASSERT_EQ(factory.service->port()->connections(), 2u);
  Completion stopped = factory.service->stop();
  w.reactor->run_until_current();
  EXPECT_TRUE(stopped.completed());
  EXPECT_EQ(factory.service, nullptr);
  EXPECT_THAT(factory.heard, ElementsAre("Connection was aborted.", "Connection was aborted."));
  EXPECT_EQ(w.read_now(a), "eof");
  EXPECT_EQ(w.read_now(b), "eof");
}

TEST(StreamServerService, ADrainingStopWaitsForTheConnectionsToEnd) {
  Server w;
  auto o = w.options();
  o.drain_timeout = seconds(30);
  auto web = w.service("tcp:0:interface=127.0.0.1", std::move(o));
  ASSERT_THAT(web->start(), IsOk());
  const std::uint16_t port = web->port()->address().port();
  const int fd = w.client(port);
  EXPECT_EQ(w.echo(fd, "a"), "a");
  Completion stopped = web->stop();
  EXPECT_FALSE(stopped.completed());
  EXPECT_EQ(web->state(), ServiceState::kStopping);
  ASSERT_NE(web->port(), nullptr);
  EXPECT_FALSE(web->port()->listening()) << "no new connections while draining";
  EXPECT_EQ(w.echo(fd, "b"), "b") << "the open connection is still served";
  w.os.clock().advance(seconds(5));
  w.spin();
  EXPECT_FALSE(stopped.completed());
  ASSERT_TRUE(w.os.close(fd));
  w.spin();
  w.os.clock().advance(milliseconds(100));
  w.spin();
  EXPECT_TRUE(stopped.completed());
  EXPECT_EQ(web->state(), ServiceState::kStopped);
  EXPECT_EQ(web->aborted_connections(), 0u);
  EXPECT_THAT(w.log, IsEmpty());
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
}

TEST(StreamServerService, ADrainThatTimesOutClosesWhatIsLeftAndSaysSo) {
  Server w;
  auto o = w.options();
  o.drain_timeout = seconds(2);
  auto web = w.service("tcp:0:interface=127.0.0.1", std::move(o));
  ASSERT_THAT(web->start(), IsOk());
  const int a = w.client(web->port()->address().port());
  const int b = w.client(web->port()->address().port());
  w.spin();
  ASSERT_EQ(web->port()->connections(), 2u);
  Completion stopped = web->stop();
  w.os.clock().advance(milliseconds(1900));
  w.spin();
  EXPECT_FALSE(stopped.completed());
  w.os.clock().advance(milliseconds(100));
  w.spin();
  ASSERT_TRUE(stopped.completed());
  EXPECT_THAT(stopped.errors(), IsEmpty()) << "a drain cut short is logged, not an error";
  EXPECT_EQ(web->aborted_connections(), 2u);
  EXPECT_THAT(w.log, ElementsAre("service 'web': closing 2 connections still open after 2.000 "
                                 "seconds"));
  EXPECT_EQ(w.read_now(a), "eof");
  EXPECT_EQ(w.read_now(b), "eof");
}

TEST(StreamServerService, ADrainWithNothingOpenCompletesOnTheNextTurn) {
  Server w;
  auto o = w.options();
  o.drain_timeout = seconds(30);
  auto web = w.service("tcp:0:interface=127.0.0.1", std::move(o));
  ASSERT_THAT(web->start(), IsOk());
  Completion stopped = web->stop();
  w.reactor->run_until_current();
  EXPECT_TRUE(stopped.completed());
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
}

TEST(StreamServerService, DestroyedWhileDrainingLeavesNoTimerBehind) {
  Server w;
  auto o = w.options();
  o.drain_timeout = seconds(30);
  auto web = w.service("tcp:0:interface=127.0.0.1", std::move(o));
  ASSERT_THAT(web->start(), IsOk());
  (void)w.client(web->port()->address().port());
  w.spin();
  (void)web->stop();
  web.reset();
  EXPECT_THAT(w.reactor->delayed_calls(), IsEmpty());
  w.os.clock().advance(seconds(31));
  w.spin();
}

TEST(StreamServerService, RestartsAfterAStop) {
  Server w;
  auto web = w.service("tcp:0:interface=127.0.0.1");
  ASSERT_THAT(web->start(), IsOk());
  EXPECT_FALSE(web->start()) << "a start while running is refused";
  Completion stopped = web->stop();
  EXPECT_FALSE(web->start()) << "and so is one while stopping";
  w.reactor->run_until_current();
  ASSERT_TRUE(stopped.completed());
  ASSERT_THAT(web->start(), IsOk());
  ASSERT_NE(web->port(), nullptr);
  const int fd = w.client(web->port()->address().port());
  EXPECT_EQ(w.echo(fd, "again"), "again");
}

TEST(StreamServerService, AUnixEndpointGetsItsModeAndIsUnlinkedOnStop) {
  Server w;
  w.os.make_dir("/run");
  auto web = w.service("unix:/run/web.sock:mode=600:lockfile=0");
  ASSERT_THAT(web->start(), IsOk());
  auto st = w.os.lstat("/run/web.sock");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISSOCK(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0600u);
  (void)web->stop();
  EXPECT_FALSE(w.os.lstat("/run/web.sock")) << "unlinked when the socket is closed, in stop()";
}

TEST(StreamServerService, ASystemdEndpointWithoutPassedSocketsFailsToStart) {
  Server w;
  auto web = w.service("systemd:domain=INET:index=0");
  auto started = web->start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().message, HasSubstr("no sockets were passed"));
  EXPECT_EQ(web->state(), ServiceState::kStopped);
}

TEST(StreamServerService, ASystemdEndpointAdoptsThePassedSocketOfItsDomain) {
  Server w;
  // What a service manager passes: a bound, listening TCP socket.
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto any = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_TRUE(w.os.bind(fd, any.data(), any.size()));
  ASSERT_TRUE(w.os.listen(fd, 8));
  std::vector<OwnedFd> fds;
  fds.emplace_back(w.os, fd);
  ActivatedSockets sockets(std::move(fds), {"web"});
  auto o = w.options();
  o.activated = &sockets;

  auto wrong = w.service("systemd:domain=INET6:name=web", o);
  auto refused = wrong->start();
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("not of the domain asked for"));

  // The one socket was taken by the refused endpoint and closed: nothing is left to adopt.
  auto right = w.service("systemd:domain=INET:name=web", o);
  auto none = right->start();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().error_number(), ENOENT);
}

TEST(StreamServerService, ASystemdEndpointServesOnTheAdoptedSocket) {
  Server w;
  const int fd = *w.os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto any = *SocketAddress::ip("127.0.0.1", 0);
  ASSERT_TRUE(w.os.bind(fd, any.data(), any.size()));
  ASSERT_TRUE(w.os.listen(fd, 8));
  std::vector<OwnedFd> fds;
  fds.emplace_back(w.os, fd);
  ActivatedSockets sockets(std::move(fds), {"web"});
  auto o = w.options();
  o.activated = &sockets;
  auto web = w.service("systemd:domain=INET:index=0", o);
  ASSERT_THAT(web->privileged_start(), IsOk());
  const int client = w.client(web->port()->address().port());
  EXPECT_EQ(w.echo(client, "sd"), "sd");
}

struct TlsPing : Protocol {
  std::string* heard;
  explicit TlsPing(std::string* into) : heard(into) {}
  void connection_made(Connection& c) override { c.write("over TLS"); }
  void data_received(std::span<const std::byte> data) override {
    heard->append(reinterpret_cast<const char*>(data.data()), data.size());
  }
};

struct TlsPingClient : ClientFactory {
  std::string heard;
  std::string failure;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<TlsPing>(&heard);
  }
  void connection_failed(const sys::Error& reason) override { failure = sys::to_string(reason); }
};

TEST(StreamServerService, AnSslEndpointServesTlsWithTheKeyAndCertificateItNames) {
  Server w;
  const auto& certs = tls_test::certificates();
  w.os.make_dir("/etc/web");
  w.os.write_file("/etc/web/cert.pem", certs.localhost.certificate, 0644);
  w.os.write_file("/etc/web/key.pem", certs.localhost.key, 0600);
  auto web = w.ssl_service(
      "ssl:0:privateKey=/etc/web/key.pem:certKey=/etc/web/cert.pem:interface=127.0.0.1");
  ASSERT_THAT(web->privileged_start(), IsOk());
  TlsOptions trust;
  trust.trusted_authorities = Pem::text(certs.authority.certificate);
  auto context = TlsContext::client(w.os, std::move(trust));
  ASSERT_TRUE(context) << context.error().message;
  TlsPingClient client;
  auto connector =
      connect_ssl(*w.reactor, w.os, "127.0.0.1", web->port()->address().port(), client, *context);
  w.spin(30);
  EXPECT_EQ(client.heard, "over TLS") << client.failure;
}

TEST(StreamServerService, AnSslEndpointWhoseKeyCannotBeReadFailsNamingIt) {
  Server w;
  auto web = w.ssl_service("ssl:0:privateKey=/etc/missing.pem");
  auto started = web->start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().message, HasSubstr("ssl:0:privateKey=/etc/missing.pem: "));
  EXPECT_THAT(started.error().message, HasSubstr("open(/etc/missing.pem)"));
  EXPECT_EQ(started.error().error_number(), ENOENT);
}

TEST(StreamServerService, AnSslEndpointRefusesOptionsItCannotHonour) {
  Server w;
  auto web = w.ssl_service("ssl:0:dhParameters=/etc/dh.pem");
  auto started = web->start();
  ASSERT_FALSE(started);
  EXPECT_THAT(started.error().message, HasSubstr("not supported"));
}

// A program that did not link TLS in (no listen_ssl) says so rather than listen in plaintext.
TEST(StreamServerService, AnSslEndpointInAProgramWithoutTlsIsRefusedSayingSo) {
  Server w;
  auto web = w.service("ssl:0:privateKey=/etc/web/key.pem");
  auto started = web->start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().message,
            "ssl:0:privateKey=/etc/web/key.pem: this program has no TLS (give app::run or "
            "StreamServerOptions listen_ssl: core::listen_ssl_endpoint)");
  EXPECT_EQ(web->port(), nullptr);
}

}  // namespace
}  // namespace daemonkit::core
