// TLS on core/net's connections, on the fake kernel: listen_ssl and connect_ssl, whose protocols
// read and write plaintext through the ordinary Connection calls, and start_tls switching an
// open connection to TLS (STARTTLS) with no byte lost or heard twice. Both ends of every
// connection run on one reactor driven by hand; every ciphertext byte crosses the fake kernel.
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "tls_test_certificates.h"

namespace daemonkit::core {
namespace {

using fake::FakeSyscalls;
using ::testing::HasSubstr;
using tls_test::certificates;
using tls_test::KeyPair;

// What one end's protocol heard; shared, so it outlives the protocol.
struct Heard {
  std::string data;
  std::optional<LossReason> reason;
  int losses = 0;
  Connection* connection = nullptr;
  std::function<void(Connection&)> on_made;
  std::function<void(Connection&, std::string_view)> on_data;
};

struct Recorder : Protocol {
  explicit Recorder(std::shared_ptr<Heard> heard) : h(std::move(heard)) {}
  void connection_made(Connection& c) override {
    h->connection = &c;
    if (h->on_made) h->on_made(c);
  }
  void data_received(std::span<const std::byte> bytes) override {
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    h->data.append(text);
    if (h->on_data) h->on_data(connection(), text);
  }
  void connection_lost(const LossReason& reason) override {
    h->connection = nullptr;
    ++h->losses;
    h->reason = reason;
  }
  std::shared_ptr<Heard> h;
};

struct Server : ServerFactory {
  std::vector<std::shared_ptr<Heard>> ends;
  std::function<void(Heard&)> setup;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    auto h = std::make_shared<Heard>();
    if (setup) setup(*h);
    ends.push_back(h);
    return std::make_unique<Recorder>(h);
  }
  Heard& last() { return *ends.back(); }
};

struct Client : ClientFactory {
  std::shared_ptr<Heard> heard = std::make_shared<Heard>();
  std::vector<std::string> failures;
  std::vector<LossReason> lost;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Recorder>(heard);
  }
  void connection_failed(const sys::Error& reason) override {
    failures.push_back(sys::to_string(reason));
  }
  void connection_lost(const LossReason& reason) override { lost.push_back(reason); }
};

// Echoes what it hears, in plaintext through the connection.
struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

TlsOptions server_options(const KeyPair& pair = certificates().localhost) {
  TlsOptions o;
  o.certificate_chain = Pem::text(pair.certificate);
  o.private_key = Pem::text(pair.key);
  return o;
}

TlsOptions client_options() {
  TlsOptions o;
  o.trusted_authorities = Pem::text(certificates().authority.certificate);
  return o;
}

struct World {
  FakeSyscalls os;
  std::unique_ptr<Reactor> reactor;
  std::vector<std::string> log;

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

  void spin(int turns = 30) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  TlsContext server_context(TlsOptions o = server_options()) {
    auto c = TlsContext::server(os, std::move(o));
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return std::move(*c);
  }
  TlsContext client_context(TlsOptions o = client_options()) {
    auto c = TlsContext::client(os, std::move(o));
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
    return std::move(*c);
  }

  ListenOptions listen_options() {
    ListenOptions o;
    o.interface = "127.0.0.1";
    o.port.log = [this](std::string_view line) { log.emplace_back(line); };
    return o;
  }

  std::unique_ptr<ListeningPort> listen_ssl(ServerFactory& factory, const TlsContext& context) {
    auto port = core::listen_ssl(*reactor, os, 0, factory, context, listen_options());
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }
  // connect_ssl to `port`, on 127.0.0.1 (the name its certificate must then hold).
  std::unique_ptr<Connector> connect_ssl(ClientFactory& factory, const ListeningPort& port,
                                         const TlsContext& context) {
    return core::connect_ssl(*reactor, os, "127.0.0.1", port.address().port(), factory, context);
  }
  std::unique_ptr<ListeningPort> listen_tcp(ServerFactory& factory) {
    auto port = core::listen_tcp(*reactor, os, 0, factory, listen_options());
    EXPECT_TRUE(port) << (port ? "" : to_string(port.error()));
    return port ? std::move(*port) : nullptr;
  }
};

// ---- listen_ssl and connect_ssl ---------------------------------------------------------------

TEST(SslConnection, EchoOverListenSslAndConnectSslIsPlaintextToBothProtocols) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_ssl(echo, server_ctx);
  ASSERT_TRUE(port);
  Client client;
  // Written before the handshake: it waits for it, then goes out encrypted.
  client.heard->on_made = [](Connection& c) { c.write("hello over TLS"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  EXPECT_EQ(client.heard->data, "hello over TLS");
  ASSERT_NE(client.heard->connection, nullptr);
  Connection& c = *client.heard->connection;
  ASSERT_NE(c.tls(), nullptr);
  EXPECT_TRUE(c.tls()->handshake_complete());
  EXPECT_EQ(c.tls()->peer_subject(), "CN=localhost,O=daemonkit");
  EXPECT_EQ(c.peer_address().port(), port->address().port());
  EXPECT_TRUE(c.local_address());

  c.lose_connection();
  w.spin();
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::done()) << to_string(*client.heard->reason);
  ASSERT_EQ(client.lost.size(), 1u);
  EXPECT_EQ(client.lost[0], LossReason::done());
  EXPECT_TRUE(client.failures.empty());
  EXPECT_EQ(port->connections(), 0u);
  EXPECT_EQ(connector->state(), Connector::State::kDisconnected);
}

TEST(SslConnection, APlainConnectionHasNoTlsSession) {
  World w;
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_tcp(echo);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("plain"); };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  EXPECT_EQ(client.heard->data, "plain");
  ASSERT_NE(client.heard->connection, nullptr);
  EXPECT_EQ(client.heard->connection->tls(), nullptr);
}

TEST(SslConnection, LoseConnectionSendsCloseNotifyAndEachEndHearsOneCleanLoss) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  Server server;
  // The server closes after answering: close_notify, so the client's loss is clean, not a
  // truncation ("without close_notify").
  server.setup = [](Heard& h) {
    h.on_data = [](Connection& c, std::string_view) {
      c.write("bye");
      c.lose_connection();
      c.write("dropped after close");
    };
  };
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("hi"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  EXPECT_EQ(server.last().data, "hi");
  EXPECT_EQ(client.heard->data, "bye");
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::done()) << to_string(*client.heard->reason);
  ASSERT_EQ(server.last().losses, 1);
  EXPECT_EQ(*server.last().reason, LossReason::done()) << to_string(*server.last().reason);
  EXPECT_EQ(client.lost.size(), 1u);
  EXPECT_EQ(port->connections(), 0u);
}

TEST(SslConnection, AbortIsHeardOnceAtEachEnd) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("x"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  ASSERT_EQ(server.last().data, "x");
  ASSERT_NE(client.heard->connection, nullptr);
  client.heard->connection->abort_connection();
  client.heard->connection->abort_connection();
  w.spin();
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::aborted());
  EXPECT_EQ(client.lost.size(), 1u);
  ASSERT_EQ(server.last().losses, 1);
  EXPECT_FALSE(server.last().reason->clean()) << "an abort is no close_notify";
}

// A TLS port destroyed with its connections open ends them as a plain one does: each
// protocol hears "aborted" once, through the TLS layer, from inside the destruction.
TEST(NetListenDestroyed, ATlsConnectionHearsAbortedOnceThroughItsLayer) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("x"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  ASSERT_EQ(server.last().data, "x");
  port.reset();
  ASSERT_EQ(server.last().losses, 1);
  EXPECT_EQ(*server.last().reason, LossReason::aborted());
  w.spin();
  EXPECT_EQ(server.last().losses, 1);
  EXPECT_EQ(client.heard->losses, 1) << "the client sees the socket close";
}

TEST(SslConnection, AWrongHostNameIsRefusedWithTheReasonReachingProtocolAndFactory) {
  World w;
  // The server shows a certificate for example.org; the client connects to 127.0.0.1.
  auto server_ctx = w.server_context(server_options(certificates().other_host));
  auto client_ctx = w.client_context();
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("must not reach the server"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_EQ(client.heard->reason->kind, LossReason::Kind::kTls);
  EXPECT_THAT(to_string(*client.heard->reason), HasSubstr("TLS handshake"));
  EXPECT_THAT(to_string(*client.heard->reason), HasSubstr("IP address mismatch"))
      << to_string(*client.heard->reason);
  ASSERT_EQ(client.lost.size(), 1u);
  EXPECT_EQ(client.lost[0], *client.heard->reason);
  EXPECT_TRUE(client.failures.empty()) << "the TCP connection was made";
  EXPECT_TRUE(client.heard->data.empty());
  ASSERT_EQ(server.ends.size(), 1u);
  EXPECT_EQ(server.last().data, "");
  EXPECT_EQ(server.last().losses, 1);
}

TEST(SslConnection, TheHostGivenToConnectSslIsTheNameChecked) {
  World w;
  auto server_ctx = w.server_context(server_options(certificates().other_host));
  TlsOptions o = client_options();
  o.verify = TlsVerify::kPeerOnly;  // written out: the chain only
  auto client_ctx = w.client_context(o);
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("chain only"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  EXPECT_EQ(server.last().data, "chain only");
  EXPECT_EQ(client.heard->losses, 0);
}

TEST(SslConnection, ContextsOfTheWrongRoleAreRefused) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  ServerFactoryOf<Echo> echo;
  auto port = listen_ssl(*w.reactor, w.os, 0, echo, client_ctx, w.listen_options());
  ASSERT_FALSE(port);
  EXPECT_THAT(to_string(port.error()), HasSubstr("listen_ssl"));
  Client client;
  auto connector = connect_ssl(*w.reactor, w.os, "127.0.0.1", 1, client, server_ctx);
  w.spin();
  ASSERT_EQ(client.failures.size(), 1u);
  EXPECT_THAT(client.failures[0], HasSubstr("connect_ssl"));
}

TEST(SslConnection, AlpnIsSettledAndSeenByBothProtocols) {
  World w;
  TlsOptions so = server_options();
  so.alpn = {"h2", "http/1.1"};
  auto server_ctx = w.server_context(so);
  TlsOptions co = client_options();
  co.alpn = {"http/1.1", "spdy/3"};
  auto client_ctx = w.client_context(co);
  Server server;
  std::string server_alpn;
  server.setup = [&](Heard& h) {
    h.on_data = [&](Connection& c, std::string_view) { server_alpn = c.tls()->alpn(); };
  };
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  client.heard->on_made = [](Connection& c) { c.write("GET /"); };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  EXPECT_EQ(server_alpn, "http/1.1");
  ASSERT_NE(client.heard->connection, nullptr);
  EXPECT_EQ(client.heard->connection->tls()->alpn(), "http/1.1");
}

TEST(SslConnection, AStreamingProducerWritesPlaintextThroughTls) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  struct Source : Producer {
    int stops = 0;
    void pause_producing() override {}
    void resume_producing() override {}
    void stop_producing() override { ++stops; }
  } source;
  client.heard->on_made = [&](Connection& c) {
    ASSERT_TRUE(c.register_producer(source, true));
    EXPECT_FALSE(c.register_producer(source, true)) << "one producer at a time";
    c.write("from a producer");
  };
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  EXPECT_EQ(server.last().data, "from a producer");
  ASSERT_NE(client.heard->connection, nullptr);
  client.heard->connection->lose_connection();
  w.spin();
  EXPECT_EQ(client.heard->losses, 0) << "the close waits for the producer";
  client.heard->connection->unregister_producer();
  w.spin();
  EXPECT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::done());
  EXPECT_EQ(server.last().losses, 1);
  EXPECT_EQ(source.stops, 0);
}

// ---- start_tls ----------------------------------------------------------------------------------

// The server's side of a STARTTLS exchange: plaintext lines until "STARTTLS\n", then TLS. What
// the same read held past that line is the client's first TLS bytes and is handed over.
struct StartTlsServer {
  explicit StartTlsServer(TlsContext c) : context(std::move(c)) {}
  TlsContext context;
  std::string plaintext;        // what was heard before TLS
  std::string reply;            // plaintext written just before switching ("" for none)
  std::string tls_result;       // the start_tls outcome, "ok" or the error
  std::size_t handed_over = 0;  // bytes read past "STARTTLS\n", given to start_tls
  void setup(Heard& h) {
    h.on_data = [this](Connection& c, std::string_view bytes) {
      if (c.tls() != nullptr) {
        c.write(std::string("echo: ").append(bytes));
        return;
      }
      plaintext.append(bytes);
      const auto at = plaintext.find("STARTTLS\n");
      if (at == std::string::npos) return;
      const std::string rest = plaintext.substr(at + 9);
      plaintext.resize(at + 9);
      if (!reply.empty()) c.write(reply);
      handed_over = rest.size();
      auto started = c.start_tls(context, {}, std::as_bytes(std::span(rest)));
      tls_result = started ? "ok" : started.error().message;
    };
  }
};

TEST(SslStartTls, AStarttlsExchangeSwitchesBothEndsWithNoByteLostOrRepeated) {
  World w;
  StartTlsServer s{w.server_context()};
  s.reply = "220 go ahead\n";
  Server server;
  server.setup = [&](Heard& h) { s.setup(h); };
  auto port = w.listen_tcp(server);
  auto client_ctx = w.client_context();
  Client client;
  std::string client_plain, client_tls;
  client.heard->on_made = [](Connection& c) { c.write("EHLO me\nSTARTTLS\n"); };
  client.heard->on_data = [&](Connection& c, std::string_view bytes) {
    if (c.tls() != nullptr) {
      client_tls.append(bytes);
      return;
    }
    client_plain.append(bytes);
    if (client_plain == "220 go ahead\n") {
      ASSERT_TRUE(c.start_tls(client_ctx, {"127.0.0.1", {}}));
      c.write("secret");
    }
  };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  EXPECT_EQ(s.tls_result, "ok");
  EXPECT_EQ(s.plaintext, "EHLO me\nSTARTTLS\n");
  EXPECT_EQ(client_plain, "220 go ahead\n");
  EXPECT_EQ(client_tls, "echo: secret");
  ASSERT_NE(client.heard->connection, nullptr);
  ASSERT_NE(client.heard->connection->tls(), nullptr);
  EXPECT_TRUE(client.heard->connection->tls()->handshake_complete());

  auto again = client.heard->connection->start_tls(client_ctx, {"127.0.0.1", {}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "start_tls: TLS has started already on this connection");

  client.heard->connection->lose_connection();
  w.spin();
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::done());
  ASSERT_EQ(server.last().losses, 1);
  EXPECT_EQ(*server.last().reason, LossReason::done()) << to_string(*server.last().reason);
}

TEST(SslStartTls, BytesReadPastTheSwitchAreHandedToTls) {
  World w;
  StartTlsServer s{w.server_context()};
  Server server;
  server.setup = [&](Heard& h) { s.setup(h); };
  auto port = w.listen_tcp(server);
  auto client_ctx = w.client_context();
  Client client;
  std::string client_heard;
  // The client pipelines: a lot of plaintext, STARTTLS, then at once its ClientHello and a
  // secret, so that the server reads the start of TLS with its last plaintext.
  const std::string bulk(200 * 1024, 'p');
  client.heard->on_made = [&](Connection& c) {
    c.write(bulk);
    c.write("STARTTLS\n");
    ASSERT_TRUE(c.start_tls(client_ctx, {"127.0.0.1", {}}));
    c.write("pipelined secret");
  };
  client.heard->on_data = [&](Connection&, std::string_view bytes) { client_heard.append(bytes); };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin(80);
  EXPECT_EQ(s.tls_result, "ok");
  EXPECT_TRUE(s.plaintext == bulk + "STARTTLS\n") << s.plaintext.size();
  EXPECT_GT(s.handed_over, 0u) << "the ClientHello came in the same read as STARTTLS";
  EXPECT_EQ(client_heard, "echo: pipelined secret");
  EXPECT_EQ(client.heard->losses, 0);
}

TEST(SslStartTls, AClientThatVerifiesTheHostNeedsAName) {
  World w;
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_tcp(echo);
  auto client_ctx = w.client_context();
  Client client;
  std::optional<TlsResult<void>> started;
  client.heard->on_made = [&](Connection& c) {
    started = c.start_tls(client_ctx);
    c.write("still plain");
  };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  ASSERT_TRUE(started);
  ASSERT_FALSE(*started);
  EXPECT_FALSE(started->error().message.empty());
  EXPECT_EQ(client.heard->data, "still plain") << "a failed start_tls changes nothing";
  ASSERT_NE(client.heard->connection, nullptr);
  EXPECT_EQ(client.heard->connection->tls(), nullptr);
}

TEST(SslStartTls, AClosedConnectionCannotStartTls) {
  World w;
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_tcp(echo);
  auto client_ctx = w.client_context();
  Client client;
  std::optional<TlsResult<void>> started;
  client.heard->on_made = [&](Connection& c) {
    c.abort_connection();
    started = c.start_tls(client_ctx, {"127.0.0.1", {}});
  };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  ASSERT_TRUE(started);
  ASSERT_FALSE(*started);
  EXPECT_EQ(started->error().message, "start_tls: the connection is closed");
  EXPECT_EQ(client.heard->losses, 1);
}

// A plain lose_connection has begun the close: TLS cannot start on a connection that is
// going away, whether its buffer is still draining or it is already closed.
TEST(SslStartTls, AConnectionThatIsClosingCannotStartTls) {
  World w;
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_tcp(echo);
  auto client_ctx = w.client_context();
  Client client;
  std::optional<TlsResult<void>> draining, idle;
  client.heard->on_made = [&](Connection& c) {
    c.lose_connection();
    idle = c.start_tls(client_ctx, {"127.0.0.1", {}});
  };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  ASSERT_TRUE(idle);
  ASSERT_FALSE(*idle);
  EXPECT_THAT(idle->error().message, HasSubstr("start_tls: the connection is clos"));
  EXPECT_EQ(client.heard->losses, 1);
  EXPECT_EQ(*client.heard->reason, LossReason::done());

  // Bytes still queued: the close waits for them, and start_tls is refused meanwhile.
  Client second;
  second.heard->on_made = [&](Connection& c) {
    const int fd = c.fd();
    const std::string chunk(4096, 'f');
    while (w.os.write(fd, chunk.data(), chunk.size())) {
    }
    c.write("queued");
    ASSERT_GT(c.buffered(), 0u);
    c.lose_connection();
    draining = c.start_tls(client_ctx, {"127.0.0.1", {}});
  };
  auto connector2 = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), second);
  w.spin(3);
  ASSERT_TRUE(draining);
  ASSERT_FALSE(*draining);
  EXPECT_EQ(draining->error().message,
            "start_tls: the connection is closing (lose_connection was called)");
  w.spin();
  EXPECT_EQ(second.heard->losses, 1);
  EXPECT_EQ(*second.heard->reason, LossReason::done()) << "the plaintext close went ahead";
}

TEST(SslStartTls, ARegisteredProducerMustBeUnregisteredFirst) {
  World w;
  ServerFactoryOf<Echo> echo;
  auto port = w.listen_tcp(echo);
  auto client_ctx = w.client_context();
  Client client;
  struct Idle : Producer {
    void pause_producing() override {}
    void resume_producing() override {}
    void stop_producing() override {}
  } idle;
  std::optional<TlsResult<void>> refused, started;
  client.heard->on_made = [&](Connection& c) {
    ASSERT_TRUE(c.register_producer(idle, true));
    refused = c.start_tls(client_ctx, {"127.0.0.1", {}});
    c.unregister_producer();
    started = c.start_tls(client_ctx, {"127.0.0.1", {}});
  };
  auto connector = connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client);
  w.spin();
  ASSERT_TRUE(refused && started);
  ASSERT_FALSE(*refused);
  EXPECT_EQ(refused->error().message, "start_tls: a producer is registered on the connection");
  EXPECT_TRUE(*started);
}

// ---- A session that cannot be made ------------------------------------------------------------

TEST(SslConnection, AClientSessionThatCannotBeMadeIsAFailedConnection) {
  World w;
  auto server_ctx = w.server_context();
  auto client_ctx = w.client_context();
  Server server;
  auto port = w.listen_ssl(server, server_ctx);
  Client client;
  ConnectOptions o;
  o.tls = client_ctx;  // verifies the host name, but none is given
  auto connector =
      connect_tcp(*w.reactor, w.os, "127.0.0.1", port->address().port(), client, std::move(o));
  w.spin();
  ASSERT_EQ(client.failures.size(), 1u);
  EXPECT_THAT(client.failures[0], HasSubstr("start_tls"));
  EXPECT_EQ(client.heard->losses, 0) << "its protocol never heard connection_made";
  EXPECT_EQ(connector->state(), Connector::State::kDisconnected);
  EXPECT_EQ(connector->connection(), nullptr);
  w.spin();
  EXPECT_EQ(port->connections(), 0u) << "the server saw the socket close";
}

TEST(SslConnection, AServerSessionThatCannotBeMadeIsLoggedAndTheConnectionClosed) {
  World w;
  auto client_ctx = w.client_context();
  Server server;
  ListenOptions lo = w.listen_options();
  // The side is the context's: a client context on a port would make a client session, which
  // verifies a host that an accepted connection has no name for.
  lo.port.tls = client_ctx;
  auto made = listen_tcp(*w.reactor, w.os, 0, server, std::move(lo));
  ASSERT_TRUE(made);
  auto& port = *made;
  Client client;
  auto connector = w.connect_ssl(client, *port, client_ctx);
  w.spin();
  ASSERT_EQ(w.log.size(), 1u);
  EXPECT_THAT(w.log[0], HasSubstr("could not start TLS on the connection from 127.0.0.1:"));
  EXPECT_THAT(w.log[0], HasSubstr("verifying the host name needs one"));
  EXPECT_EQ(port->connections(), 0u);
  ASSERT_EQ(server.ends.size(), 1u);
  EXPECT_EQ(server.last().losses, 0) << "its protocol never heard connection_made";
  ASSERT_EQ(client.heard->losses, 1);
  EXPECT_FALSE(client.heard->reason->clean()) << to_string(*client.heard->reason);
}

}  // namespace
}  // namespace daemonkit::core
