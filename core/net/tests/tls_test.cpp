// TLS on the fake kernel: two TlsStreams over a fake socketpair, each on a StreamTransport, on one
// reactor driven by hand with the manual clock. Certificates are made in-process
// (tls_test_certificates.h). Every ciphertext byte crosses the fake kernel, so a failure here is
// the TLS layer's, never the network's.
#include <sys/socket.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_session.h"
#include "daemonkit/core/net/tls_stream.h"
#include "daemonkit/fake/fake_syscalls.h"
#include "tls_test_certificates.h"

namespace daemonkit::core {

// gtest shows a failed comparison of reasons as their text, not as bytes.
void PrintTo(const LossReason& reason, std::ostream* os) { *os << to_string(reason); }

namespace {

using fake::FakeSyscalls;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using tls_test::certificates;
using tls_test::KeyPair;
using tls_test::TestCertificates;

// What the plaintext side hears; hooks act from inside a callback.
struct Recorder : StreamHandler {
  std::string data;
  std::optional<LossReason> reason;
  int losses = 0;
  std::function<void(std::span<const std::byte>)> on_data;
  std::function<void()> on_lost;

  void data_received(std::span<const std::byte> bytes) override {
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (on_data) on_data(bytes);
  }
  void connection_lost(const LossReason& r) override {
    ++losses;
    reason = r;
    if (on_lost) on_lost();
  }
};

// One end of a TLS connection: the application's recorder above, the TLS stream, the transport.
struct End {
  Recorder app;
  std::unique_ptr<TlsStream> tls;
  std::unique_ptr<StreamTransport> transport;

  [[nodiscard]] bool lost() const { return app.losses > 0; }
  [[nodiscard]] std::string why() const { return app.reason ? to_string(*app.reason) : ""; }
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

  void spin(int turns = 20) {
    for (int i = 0; i < turns; ++i) {
      reactor->run_until_current();
      ASSERT_TRUE(reactor->iterate(Duration{0}));
    }
  }

  // Moves the manual clock by `d` in small steps, turning the loop as it goes.
  void wait(Duration d) {
    const Duration step = std::chrono::milliseconds(500);
    for (Duration gone{0}; gone < d; gone += step) {
      os.clock().advance(step);
      spin(2);
    }
  }

  sys::SocketPair pair() {
    auto p = os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    EXPECT_TRUE(p);
    return p ? *p : sys::SocketPair{};
  }

  std::unique_ptr<End> open(int fd, TlsSession session, TlsStreamOptions options = {}) {
    auto end = std::make_unique<End>();
    end->tls = std::make_unique<TlsStream>(*reactor, std::move(session), end->app, options);
    auto t = StreamTransport::open(*reactor, os, OwnedFd(os, fd), *end->tls);
    EXPECT_TRUE(t);
    if (!t) return end;
    end->transport = std::move(*t);
    end->tls->start(*end->transport);
    return end;
  }

  // A plain transport for a test that plays the peer by hand.
  std::unique_ptr<StreamTransport> plain(int fd, StreamHandler& handler) {
    auto t = StreamTransport::open(*reactor, os, OwnedFd(os, fd), handler);
    EXPECT_TRUE(t);
    return t ? std::move(*t) : nullptr;
  }
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

TlsContext server_context(World& w, TlsOptions o = server_options()) {
  auto c = TlsContext::server(w.os, std::move(o));
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return std::move(*c);
}

TlsContext client_context(World& w, TlsOptions o = client_options()) {
  auto c = TlsContext::client(w.os, std::move(o));
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return std::move(*c);
}

TlsSession client_session(const TlsContext& c, std::string_view host = "localhost") {
  auto s = TlsSession::client(c, host);
  EXPECT_TRUE(s) << (s ? "" : s.error().message);
  return std::move(*s);
}

TlsSession server_session(const TlsContext& c) {
  auto s = TlsSession::server(c);
  EXPECT_TRUE(s) << (s ? "" : s.error().message);
  return std::move(*s);
}

struct Connection {
  std::unique_ptr<End> client;
  std::unique_ptr<End> server;
};

Connection connect(World& w, const TlsContext& client, const TlsContext& server,
                   std::string_view host = "localhost", TlsStreamOptions client_stream = {},
                   TlsStreamOptions server_stream = {}) {
  const auto p = w.pair();
  Connection c;
  c.server = w.open(p.second, server_session(server), std::move(server_stream));
  c.client = w.open(p.first, client_session(client, host), std::move(client_stream));
  return c;
}

void echo(End& end) {
  end.app.on_data = [&end](std::span<const std::byte> bytes) {
    end.tls->write(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  };
}

std::size_t calls_of(const FakeSyscalls& os, const std::string& name) {
  const auto& t = os.transcript();
  return static_cast<std::size_t>(
      std::count_if(t.begin(), t.end(), [&](const fake::CallRecord& r) { return r.name == name; }));
}

// ---- Handshake and data ---------------------------------------------------------------------

TEST(TlsStream, HandshakesAndEchoesOverTheFakeKernel) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  echo(*c.server);
  // Written before the handshake: it waits for it.
  c.client->tls->write("hello over TLS");
  EXPECT_FALSE(c.client->tls->handshake_complete());
  w.os.clear_transcript();
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
  EXPECT_TRUE(c.server->tls->handshake_complete());
  EXPECT_EQ(c.server->app.data, "hello over TLS");
  EXPECT_EQ(c.client->app.data, "hello over TLS");
  EXPECT_EQ(c.client->tls->session().peer_subject(), "CN=localhost,O=daemonkit");
  EXPECT_EQ(c.server->tls->session().peer_subject(), "");
  // The bytes went through the fake kernel's sockets.
  EXPECT_GT(calls_of(w.os, "write") + calls_of(w.os, "writev"), 0U);
  EXPECT_GT(calls_of(w.os, "read"), 0U);
  EXPECT_FALSE(c.client->lost());
  EXPECT_FALSE(c.server->lost());
}

TEST(TlsStream, WhatCrossesTheSocketIsNotThePlaintext) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  const auto p = w.pair();
  auto end = w.open(p.first, client_session(client));
  // The server half is played by hand: a session fed from what the fake socket holds.
  TlsSession peer = server_session(server);
  std::string wire;
  auto shuttle = [&] {
    w.spin(2);
    char buf[65536];
    while (auto n = w.os.read(p.second, buf, sizeof buf)) {
      if (*n == 0) break;
      wire.append(buf, *n);
      peer.feed(std::as_bytes(std::span(buf, *n)));
    }
    std::byte out[4096];
    while (true) {
      auto got = peer.read(out);
      ASSERT_TRUE(got);
      if (*got == 0) break;
    }
    const std::string back = peer.take_ciphertext();
    if (!back.empty()) {
      ASSERT_TRUE(w.os.write(p.second, back.data(), back.size()));
    }
    w.spin(2);
  };
  shuttle();
  shuttle();
  end->tls->write("a secret that must not be seen");
  shuttle();
  EXPECT_TRUE(peer.handshake_complete());
  EXPECT_EQ(wire.find("a secret"), std::string::npos);
  EXPECT_GT(wire.size(), 200U);
}

TEST(TlsStream, NegotiatesAlpnByTheServersPreference) {
  World w;
  TlsOptions co = client_options();
  co.alpn = {"h2", "http/1.1"};
  TlsOptions so = server_options();
  so.alpn = {"http/1.1", "h2"};
  auto client = client_context(w, co);
  auto server = server_context(w, so);
  auto c = connect(w, client, server);
  w.spin();
  EXPECT_EQ(c.client->tls->session().alpn(), "http/1.1");
  EXPECT_EQ(c.server->tls->session().alpn(), "http/1.1");
}

TEST(TlsStream, AlpnWithNothingInCommonGoesOnWithout) {
  World w;
  TlsOptions co = client_options();
  co.alpn = {"h2"};
  TlsOptions so = server_options();
  so.alpn = {"imap"};
  auto client = client_context(w, co);
  auto server = server_context(w, so);
  auto c = connect(w, client, server);
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
  EXPECT_EQ(c.client->tls->session().alpn(), "");
  EXPECT_EQ(c.server->tls->session().alpn(), "");
}

TEST(TlsStream, OnHandshakeRunsOnceBeforeAnyData) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  std::vector<std::string> events;
  TlsStreamOptions so;
  so.on_handshake = [&] { events.emplace_back("handshake"); };
  auto c = connect(w, client, server, "localhost", {}, so);
  c.server->app.on_data = [&](auto) { events.emplace_back("data"); };
  c.client->tls->write("x");
  w.spin();
  c.client->tls->write("y");
  w.spin();
  EXPECT_THAT(events, ::testing::ElementsAre("handshake", "data", "data"));
}

TEST(TlsStream, VerifiesAnAddressAgainstTheCertificatesIpNames) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server, "127.0.0.1");
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
  auto d = connect(w, client, server, "127.0.0.2");
  w.spin();
  EXPECT_EQ(d.client->app.losses, 1);
  EXPECT_THAT(d.client->why(), HasSubstr("IP address mismatch"));
}

// ---- Verification failures: the client says why, both ends end once ------------------------

struct Refusal {
  const char* name;
  KeyPair TestCertificates::*server_pair;
  const char* host;
  const char* client_reason;
};

// gtest would print the pointers inside as raw bytes, which differ from run to run.
void PrintTo(const Refusal& refusal, std::ostream* os) { *os << refusal.name; }

class TlsVerification : public ::testing::TestWithParam<Refusal> {};

TEST_P(TlsVerification, FailsTheClientWithTheReasonAndEndsBothOnce) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w, server_options(certificates().*GetParam().server_pair));
  auto c = connect(w, client, server, GetParam().host);
  c.client->tls->write("never sent");
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.client->app.reason->kind, LossReason::Kind::kTls);
  EXPECT_THAT(c.client->why(), StartsWith("TLS handshake: "));
  EXPECT_THAT(c.client->why(), HasSubstr(GetParam().client_reason));
  EXPECT_THAT(c.client->why(), HasSubstr("(SSL routines::certificate verify failed)"));
  // The server hears the client's alert.
  ASSERT_EQ(c.server->app.losses, 1);
  EXPECT_EQ(c.server->app.reason->kind, LossReason::Kind::kTls);
  EXPECT_THAT(c.server->why(), HasSubstr("alert"));
  EXPECT_EQ(c.server->app.data, "");
  w.spin();
  EXPECT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.server->app.losses, 1);
}

INSTANTIATE_TEST_SUITE_P(Refusals, TlsVerification,
                         ::testing::Values(Refusal{"Expired", &TestCertificates::expired,
                                                   "localhost", "certificate has expired"},
                                           Refusal{"WrongHost", &TestCertificates::other_host,
                                                   "localhost", "hostname mismatch"},
                                           Refusal{"SelfSigned", &TestCertificates::self_signed,
                                                   "localhost", "self-signed certificate"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(TlsStream, CertificatesAreCheckedAtTheKernelsTimeNotOpenSsls) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  w.os.clock().set_realtime(std::chrono::seconds(2'100'000'000));  // 2036-07
  auto late = connect(w, client, server);
  w.spin();
  EXPECT_THAT(late.client->why(), HasSubstr("certificate has expired"));
  w.os.clock().set_realtime(std::chrono::seconds(1'600'000'000));  // 2020-09
  auto early = connect(w, client, server);
  w.spin();
  EXPECT_THAT(early.client->why(), HasSubstr("certificate is not yet valid"));
  w.os.fail_when(
      "clock_gettime", [](const fake::CallRecord&) { return true; }, EINVAL);
  auto s = TlsSession::client(client, "localhost");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message,
            "TLS session: clock_gettime(CLOCK_REALTIME): Invalid argument (EINVAL)");
}

TEST(TlsStream, AnAuthorityTheClientDoesNotTrustFailsTheHandshake) {
  World w;
  TlsOptions co;
  co.trusted_authorities = Pem::text(certificates().other_authority.certificate);
  auto client = client_context(w, co);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.client->why(),
            "TLS handshake: unable to get local issuer certificate (SSL routines::certificate "
            "verify failed)");
  EXPECT_EQ(c.server->app.losses, 1);
}

TEST(TlsStream, OptingOutOfVerificationAcceptsASelfSignedPeer) {
  World w;
  TlsOptions co;
  co.verify = TlsVerify::kNone;
  auto client = client_context(w, co);
  auto server = server_context(w, server_options(certificates().self_signed));
  auto c = connect(w, client, server, "");
  echo(*c.server);
  c.client->tls->write("ok");
  w.spin();
  EXPECT_EQ(c.client->app.data, "ok");
  EXPECT_FALSE(c.client->lost());
}

TEST(TlsStream, PeerOnlyVerificationIgnoresTheHostButNotTheChain) {
  World w;
  TlsOptions co = client_options();
  co.verify = TlsVerify::kPeerOnly;
  auto client = client_context(w, co);
  auto server = server_context(w, server_options(certificates().other_host));
  auto c = connect(w, client, server, "localhost");
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
  auto self = server_context(w, server_options(certificates().self_signed));
  auto d = connect(w, client, self, "localhost");
  w.spin();
  EXPECT_THAT(d.client->why(), HasSubstr("self-signed certificate"));
}

TEST(TlsSession, AClientThatVerifiesTheHostNeedsOne) {
  World w;
  auto client = client_context(w);
  auto s = TlsSession::client(client, "");
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("verifying the host name needs one"));
  auto server = server_context(w);
  EXPECT_FALSE(TlsSession::client(server, "localhost"));
  EXPECT_FALSE(TlsSession::server(client));
}

// ---- Client certificates --------------------------------------------------------------------

TEST(TlsStream, AServerThatRequiresAClientCertificateRefusesAClientWithout) {
  World w;
  TlsOptions so = server_options();
  so.client_certificates = TlsClientCertificates::kRequire;
  so.trusted_authorities = Pem::text(certificates().authority.certificate);
  auto server = server_context(w, so);
  auto anonymous = client_context(w);
  auto c = connect(w, anonymous, server);
  c.client->tls->write("hello");
  w.spin();
  ASSERT_EQ(c.server->app.losses, 1);
  EXPECT_EQ(c.server->why(),
            "TLS handshake failed (SSL routines::peer did not return a certificate)");
  EXPECT_EQ(c.server->app.data, "");
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_THAT(c.client->why(), HasSubstr("certificate required"));

  TlsOptions co = client_options();
  co.certificate_chain = Pem::text(certificates().client.certificate);
  co.private_key = Pem::text(certificates().client.key);
  auto named = client_context(w, co);
  auto d = connect(w, named, server);
  d.client->tls->write("hello");
  w.spin();
  EXPECT_EQ(d.server->app.data, "hello");
  EXPECT_EQ(d.server->tls->session().peer_subject(), "CN=client one,O=daemonkit");
}

TEST(TlsStream, AClientCertificateFromAnUntrustedAuthorityIsRefused) {
  World w;
  TlsOptions so = server_options();
  so.client_certificates = TlsClientCertificates::kRequest;
  so.trusted_authorities = Pem::text(certificates().other_authority.certificate);
  auto server = server_context(w, so);
  TlsOptions co = client_options();
  co.certificate_chain = Pem::text(certificates().client.certificate);
  co.private_key = Pem::text(certificates().client.key);
  auto client = client_context(w, co);
  auto c = connect(w, client, server);
  w.spin();
  ASSERT_EQ(c.server->app.losses, 1);
  // The client sends its authority along; the server trusts another.
  EXPECT_EQ(c.server->why(),
            "TLS handshake: self-signed certificate in certificate chain (SSL "
            "routines::certificate verify failed)");
  EXPECT_EQ(c.client->app.losses, 1);
}

// ---- Closing --------------------------------------------------------------------------------

TEST(TlsStream, AClientCloseSendsCloseNotifyAndWaitsForTheServers) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  c.client->tls->write("last words");
  c.client->tls->lose_connection();
  // Dropped: the close was asked for (Twisted drops writes after loseConnection).
  c.client->tls->write("too late");
  w.spin();
  EXPECT_EQ(c.server->app.data, "last words");
  ASSERT_EQ(c.client->app.losses, 1);
  ASSERT_EQ(c.server->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(*c.server->app.reason, LossReason::done());
  EXPECT_TRUE(c.client->tls->session().shutdown_complete());
  EXPECT_TRUE(c.server->tls->session().shutdown_complete());
}

TEST(TlsStream, NoDataIsDeliveredAfterLoseConnection) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  c.client->tls->write("ping");
  w.spin();
  ASSERT_EQ(c.server->app.data, "ping");
  // Crosses the client's close_notify: the server's reply is in flight when the client closes.
  c.server->tls->write("late reply");
  c.client->tls->lose_connection();
  w.spin();
  EXPECT_EQ(c.client->app.data, "");
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(*c.server->app.reason, LossReason::done());
}

TEST(TlsStream, AServerCloseIsAnsweredByTheClient) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  c.server->app.on_data = [&](auto) {
    c.server->tls->write("bye");
    c.server->tls->lose_connection();
  };
  c.client->tls->write("hi");
  w.spin();
  EXPECT_EQ(c.client->app.data, "bye");
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(*c.server->app.reason, LossReason::done());
  EXPECT_TRUE(c.client->tls->session().peer_closed());
  EXPECT_TRUE(c.server->tls->session().peer_closed());
  EXPECT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.server->app.losses, 1);
}

TEST(TlsStream, ACloseWaitsForThePeersCloseNotifyOnlyUntilItsBound) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  TlsStreamOptions co;
  co.close_timeout = std::chrono::seconds(5);
  auto c = connect(w, client, server, "localhost", co);
  w.spin();
  ASSERT_TRUE(c.server->tls->handshake_complete());
  // The server stops reading: it will never see our close_notify, nor answer it.
  c.server->tls->pause_producing();
  c.client->tls->lose_connection();
  w.wait(std::chrono::seconds(4));
  EXPECT_FALSE(c.client->lost());
  EXPECT_TRUE(c.client->tls->session().close_sent());
  w.wait(std::chrono::seconds(2));
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(c.server->app.losses, 0);
}

TEST(TlsStream, ACloseToAPeerThatReadsNothingIsAbortedAtTheBound) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  TlsStreamOptions co;
  co.close_timeout = std::chrono::seconds(5);
  auto c = connect(w, client, server, "localhost", co);
  w.spin();
  c.server->tls->pause_producing();
  // Far more than the socket holds: the transport keeps the rest.
  c.client->tls->write(std::string(4 << 20, 'x'));
  c.client->tls->lose_connection();
  w.wait(std::chrono::seconds(6));
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::aborted());
}

TEST(TlsStream, APeerThatClosesWithoutCloseNotifyIsNotAClean) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  // The server's transport closes under TLS: no close_notify.
  c.server->transport->lose_connection();
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.client->why(), "TLS: the peer closed the connection without close_notify");
  EXPECT_EQ(c.client->app.reason->kind, LossReason::Kind::kTls);
}

TEST(TlsStream, LosingBeforeTheHandshakeWithNothingToSendAborts) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  c.client->tls->lose_connection();
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::aborted());
  EXPECT_EQ(c.server->app.losses, 1);
}

TEST(TlsStream, LosingBeforeTheHandshakeWithDataSendsItFirst) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  c.client->tls->write("queued");
  c.client->tls->lose_connection();
  w.spin();
  EXPECT_EQ(c.server->app.data, "queued");
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(*c.server->app.reason, LossReason::done());
}

TEST(TlsStream, AbortEndsBothSidesOnce) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  c.client->tls->abort_connection();
  c.client->tls->write("dropped");
  c.client->tls->abort_connection();
  w.spin();
  EXPECT_EQ(*c.client->app.reason, LossReason::aborted());
  EXPECT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.server->app.losses, 1);
  EXPECT_EQ(c.server->app.data, "");
}

TEST(TlsStream, AHandshakeThatNeverCompletesIsBounded) {
  World w;
  auto client = client_context(w);
  const auto p = w.pair();
  TlsStreamOptions o;
  o.handshake_timeout = std::chrono::seconds(10);
  auto end = w.open(p.first, client_session(client), o);
  w.wait(std::chrono::seconds(11));
  ASSERT_EQ(end->app.losses, 1);
  EXPECT_EQ(end->why(), "TLS handshake: timed out after 10 s");
  ASSERT_TRUE(w.os.close(p.second));
}

TEST(TlsStream, HandlerMayDestroyEverythingFromConnectionLost) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  End* raw = c.client.get();
  raw->app.on_lost = [&] { c.client.reset(); };
  w.spin();
  c.server->tls->lose_connection();
  w.spin();
  EXPECT_EQ(c.client, nullptr);
  EXPECT_EQ(c.server->app.losses, 1);
}

// ---- A peer that sends garbage ----------------------------------------------------------------

TEST(TlsStream, GarbageFromTheServerFailsTheClientOnce) {
  World w;
  auto client = client_context(w);
  const auto p = w.pair();
  auto end = w.open(p.first, client_session(client));
  w.spin();
  const std::string junk = "HTTP/1.1 400 Bad Request\r\n\r\nnot TLS at all";
  ASSERT_TRUE(w.os.write(p.second, junk.data(), junk.size()));
  w.spin();
  ASSERT_EQ(end->app.losses, 1);
  EXPECT_EQ(end->app.reason->kind, LossReason::Kind::kTls);
  EXPECT_THAT(end->why(), StartsWith("TLS handshake failed (SSL routines::"));
  ASSERT_TRUE(w.os.close(p.second));
}

TEST(TlsStream, APlaintextRequestToAServerFailsItsHandshake) {
  World w;
  auto server = server_context(w);
  const auto p = w.pair();
  auto end = w.open(p.second, server_session(server));
  const std::string request = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_TRUE(w.os.write(p.first, request.data(), request.size()));
  w.spin();
  ASSERT_EQ(end->app.losses, 1);
  EXPECT_EQ(end->why(), "TLS handshake failed (SSL routines::http request)");
  ASSERT_TRUE(w.os.close(p.first));
}

TEST(TlsStream, ATransportFailureUnderTlsReachesTheHandlerWithItsErrno) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  const std::string client_fd = std::to_string(c.client->transport->fd());
  auto on_client = [client_fd](const fake::CallRecord& r) {
    return !r.args.empty() && r.args[0] == client_fd;
  };
  w.os.fail_when("write", on_client, ECONNRESET);
  c.client->tls->write("lost on the way");
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(c.client->app.reason->kind, LossReason::Kind::kLost);
  EXPECT_EQ(c.client->app.reason->error.code, ECONNRESET);
  EXPECT_EQ(c.server->app.losses, 1);

  w.os.clear_faults();
  auto d = connect(w, client, server);
  w.spin();
  const std::string d_fd = std::to_string(d.client->transport->fd());
  w.os.fail_when(
      "read", [d_fd](const fake::CallRecord& r) { return !r.args.empty() && r.args[0] == d_fd; },
      EIO);
  d.server->tls->write("x");
  w.spin();
  ASSERT_EQ(d.client->app.losses, 1);
  EXPECT_EQ(d.client->why(), "read: Input/output error (EIO)");
}

TEST(TlsStream, GarbageAfterTheHandshakeFailsTheRecordLayer) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  const auto p = w.pair();
  auto end = w.open(p.second, server_session(server));
  // The client is a bare session over the other socket, so the test can corrupt its records.
  TlsSession peer = client_session(client);
  auto exchange = [&] {
    const std::string out = peer.take_ciphertext();
    if (!out.empty()) {
      ASSERT_TRUE(w.os.write(p.first, out.data(), out.size()));
    }
    w.spin(3);
    char buf[65536];
    while (auto n = w.os.read(p.first, buf, sizeof buf)) {
      if (*n == 0) break;
      peer.feed(std::as_bytes(std::span(buf, *n)));
    }
    std::byte plain[1024];
    ASSERT_TRUE(peer.read(plain));
  };
  for (int i = 0; i < 3; ++i) exchange();
  ASSERT_TRUE(peer.handshake_complete());
  peer.write("fine");
  std::string record = peer.take_ciphertext();
  ASSERT_GT(record.size(), 10U);
  record[record.size() - 3] ^= 0x55;  // inside the authentication tag
  ASSERT_TRUE(w.os.write(p.first, record.data(), record.size()));
  w.spin();
  ASSERT_EQ(end->app.losses, 1);
  EXPECT_THAT(end->why(), StartsWith("TLS record failed (SSL routines::"));
  EXPECT_EQ(end->app.data, "");
}

// ---- Flow control -----------------------------------------------------------------------------

// A streaming producer that writes `total` patterned bytes in 64 KiB pieces while not paused.
struct Source : Producer {
  TlsStream* stream = nullptr;
  std::size_t total = 0;
  std::size_t sent = 0;
  bool paused = false;
  int pauses = 0;
  int stops = 0;

  void produce() {
    while (!paused && sent < total) {
      std::string piece(std::min<std::size_t>(64 * 1024, total - sent), '\0');
      for (std::size_t i = 0; i < piece.size(); ++i) piece[i] = static_cast<char>((sent + i) % 251);
      sent += piece.size();
      stream->write(std::move(piece));
    }
    if (sent == total && stream != nullptr) {
      TlsStream* s = std::exchange(stream, nullptr);
      s->unregister_producer();
      s->lose_connection();
    }
  }
  void pause_producing() override {
    paused = true;
    ++pauses;
  }
  void resume_producing() override {
    paused = false;
    produce();
  }
  void stop_producing() override { ++stops; }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

TEST(TlsStream, ALargeTransferPausesTheProducerAndArrivesWhole) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  Source source;
  source.stream = c.server->tls.get();
  source.total = 6 << 20;
  ASSERT_TRUE(c.server->tls->register_producer(source, true));
  source.produce();
  // The client reads in bursts, pausing in between, so the server's buffer fills.
  for (int i = 0; i < 400 && !c.client->lost(); ++i) {
    c.client->tls->pause_producing();
    w.spin(2);
    c.client->tls->resume_producing();
    w.spin(2);
  }
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(c.client->app.data.size(), source.total);
  EXPECT_TRUE(c.client->app.data == pattern(source.total));
  EXPECT_GT(source.pauses, 0);
  EXPECT_EQ(source.stops, 0);
  w.spin();
  ASSERT_EQ(c.server->app.losses, 1);
  EXPECT_EQ(*c.server->app.reason, LossReason::done());
}

TEST(TlsStream, AProducerIsPausedWhilePlaintextWaitsForTheHandshake) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  Source source;
  source.stream = c.client->tls.get();
  source.total = 1 << 20;
  ASSERT_TRUE(c.client->tls->register_producer(source, true));
  source.produce();
  EXPECT_TRUE(source.paused);
  EXPECT_LT(c.client->tls->session().pending(), 200U * 1024);
  w.spin(200);
  EXPECT_EQ(c.server->app.data.size(), source.total);
  EXPECT_TRUE(c.server->app.data == pattern(source.total));
}

TEST(TlsStream, AProducerRegisteredTwiceIsRefusedAndALostStreamStopsIt) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  Source a, b;
  ASSERT_TRUE(c.client->tls->register_producer(a, true));
  auto again = c.client->tls->register_producer(b, true);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ReactorErrc::kAlreadyRegistered);
  c.client->tls->abort_connection();
  w.spin();
  EXPECT_EQ(a.stops, 1);
  c.client->tls->unregister_producer();
  ASSERT_TRUE(c.client->tls->register_producer(b, true));
  EXPECT_EQ(b.stops, 1);
}

// A pull producer: asked each time the transport has drained; writes one piece per ask.
struct Puller : Producer {
  TlsStream* stream = nullptr;
  int asks = 0;
  int stops = 0;
  void pause_producing() override {}
  void resume_producing() override {
    ++asks;
    if (stream != nullptr) stream->write(std::string(1000, 'p'));
  }
  void stop_producing() override { ++stops; }
};

TEST(TlsStream, APeersCloseNotifyEndsTheConnectionEvenWithAPullProducerRegistered) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  auto c = connect(w, client, server);
  w.spin();
  Puller puller;
  puller.stream = c.client->tls.get();
  ASSERT_TRUE(c.client->tls->register_producer(puller, false));
  w.spin(4);
  EXPECT_GT(puller.asks, 0);
  c.server->tls->lose_connection();
  w.spin();
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(puller.stops, 1);
  const int asks = puller.asks;
  w.spin();
  EXPECT_EQ(puller.asks, asks);
  EXPECT_EQ(c.server->app.losses, 1);
}

TEST(TlsStream, ACloseWaitsForTheProducerWithoutCountingItAgainstTheBound) {
  World w;
  auto client = client_context(w);
  auto server = server_context(w);
  TlsStreamOptions co;
  co.close_timeout = std::chrono::seconds(2);
  auto c = connect(w, client, server, "localhost", co);
  w.spin();
  Source source;
  source.stream = c.client->tls.get();
  ASSERT_TRUE(c.client->tls->register_producer(source, true));
  c.client->tls->lose_connection();
  // The producer still writes long after close_timeout, and the close waits for it.
  for (int i = 0; i < 5; ++i) {
    c.client->tls->write("more ");
    w.wait(std::chrono::seconds(1));
  }
  EXPECT_FALSE(c.client->lost());
  c.client->tls->unregister_producer();
  w.spin();
  EXPECT_EQ(c.server->app.data, "more more more more more ");
  ASSERT_EQ(c.client->app.losses, 1);
  EXPECT_EQ(*c.client->app.reason, LossReason::done());
  EXPECT_EQ(source.stops, 0);
}

// ---- start_tls ----------------------------------------------------------------------------------

// What a connection does for start_tls: it is its transport's handler, hands the plaintext to its
// protocol, and once TLS starts turns every call over to the TLS stream.
struct Switch : StreamHandler {
  StreamHandler* to = nullptr;
  void data_received(std::span<const std::byte> data) override { to->data_received(data); }
  bool read_eof() override { return to->read_eof(); }
  void connection_lost(const LossReason& reason) override { to->connection_lost(reason); }
};

TEST(TlsStream, StartTlsOnAnOpenConnectionLosesAndRepeatsNoByte) {
  World w;
  auto client_ctx = client_context(w);
  auto server_ctx = server_context(w);
  const auto p = w.pair();
  Recorder client_plain, server_plain;
  Switch client_switch, server_switch;
  client_switch.to = &client_plain;
  server_switch.to = &server_plain;
  auto client_t = w.plain(p.first, client_switch);
  auto server_t = w.plain(p.second, server_switch);
  Recorder client_app, server_app;
  std::unique_ptr<TlsStream> client_tls, server_tls;

  // The server's protocol: plaintext until "STARTTLS\n"; what follows it in the same read is
  // already the client's ClientHello, and goes to TLS.
  std::string before;
  server_plain.on_data = [&](std::span<const std::byte> bytes) {
    before.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto at = before.find("STARTTLS\n");
    if (at == std::string::npos) return;
    const std::string rest = before.substr(at + 9);
    before.resize(at + 9);
    server_tls = std::make_unique<TlsStream>(*w.reactor, server_session(server_ctx), server_app);
    server_switch.to = server_tls.get();
    server_tls->start(*server_t);
    server_tls->data_received(std::as_bytes(std::span(rest)));
  };
  server_t->write("220 plain banner\n");
  w.spin();
  EXPECT_EQ(client_plain.data, "220 plain banner\n");

  // The client pipelines: a lot of plaintext, STARTTLS, and at once the handshake and a secret.
  const std::string plain_part = pattern(300 * 1024);
  client_t->write(plain_part);
  client_t->write("STARTTLS\n");
  client_tls = std::make_unique<TlsStream>(*w.reactor, client_session(client_ctx), client_app);
  client_switch.to = client_tls.get();
  client_tls->start(*client_t);
  client_tls->write("secret from the client");
  server_app.on_data = [&](auto) { server_tls->write("secret from the server"); };
  w.spin(60);

  EXPECT_TRUE(before == plain_part + "STARTTLS\n");
  EXPECT_EQ(server_app.data, "secret from the client");
  EXPECT_EQ(client_app.data, "secret from the server");
  EXPECT_EQ(client_plain.data, "220 plain banner\n");
  ASSERT_TRUE(server_tls);
  EXPECT_TRUE(server_tls->handshake_complete());

  client_tls->lose_connection();
  w.spin();
  EXPECT_EQ(client_app.losses, 1);
  EXPECT_EQ(server_app.losses, 1);
  EXPECT_EQ(*server_app.reason, LossReason::done());
  EXPECT_EQ(client_plain.losses + server_plain.losses, 0);
}

// ---- Contexts ---------------------------------------------------------------------------------

TEST(TlsContext, AServerNeedsACertificateAndKey) {
  World w;
  auto c = TlsContext::server(w.os, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "TLS server context: a certificate chain and a private key are required");
}

TEST(TlsContext, TextThatIsNotPemSaysSoWithOpenSslsReason) {
  World w;
  TlsOptions o = server_options();
  o.certificate_chain = Pem::text("hello");
  auto c = TlsContext::server(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "load certificate chain: no certificate (PEM routines::no start line)");
}

TEST(TlsContext, AKeyThatDoesNotMatchTheCertificateIsRefused) {
  World w;
  TlsOptions o = server_options();
  o.private_key = Pem::text(certificates().other_host.key);
  auto c = TlsContext::server(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "load private key failed (x509 certificate routines::key values mismatch)");
}

TEST(TlsContext, ABrokenKeySaysWhichStep) {
  World w;
  TlsOptions o = server_options();
  o.private_key = Pem::text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  auto c = TlsContext::server(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message, StartsWith("load private key: no usable key ("));
}

TEST(TlsContext, ReadsCertificateAndKeyFilesThroughSyscalls) {
  World w;
  w.os.write_file("/etc/srv/cert.pem", certificates().localhost.certificate);
  w.os.write_file("/etc/srv/key.pem", certificates().localhost.key, 0600);
  TlsOptions o;
  o.certificate_chain = Pem::file("/etc/srv/cert.pem");
  o.private_key = Pem::file("/etc/srv/key.pem");
  w.os.clear_transcript();
  auto server = server_context(w, o);
  EXPECT_EQ(calls_of(w.os, "open"), 2U);
  auto client = client_context(w);
  auto c = connect(w, client, server);
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
}

TEST(TlsContext, AMissingOrUnreadableFileIsAnOsError) {
  World w;
  TlsOptions o = server_options();
  o.certificate_chain = Pem::file("/etc/srv/missing.pem");
  auto c = TlsContext::server(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "load certificate chain: open(/etc/srv/missing.pem): No such file or directory "
            "(ENOENT)");
  ASSERT_TRUE(c.error().os);
  EXPECT_EQ(c.error().os->code, ENOENT);

  w.os.write_file("/etc/srv/key.pem", certificates().localhost.key, 0600);
  o = server_options();
  o.private_key = Pem::file("/etc/srv/key.pem");
  w.os.fail_nth("read", 1, EIO);
  auto d = TlsContext::server(w.os, o);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message,
            "load private key: read(/etc/srv/key.pem): Input/output error (EIO)");
}

TEST(TlsContext, AFileFarLargerThanAnyPemIsRefused) {
  World w;
  w.os.write_file("/etc/srv/huge.pem", std::string(5 << 20, 'A'));
  TlsOptions o = server_options();
  o.certificate_chain = Pem::file("/etc/srv/huge.pem");
  auto c = TlsContext::server(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "load certificate chain: /etc/srv/huge.pem: larger than 4194304 bytes");
}

TEST(TlsContext, ACertificateWithoutItsKeyIsRefused) {
  World w;
  TlsOptions o = client_options();
  o.certificate_chain = Pem::text(certificates().client.certificate);
  auto c = TlsContext::client(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message,
            "TLS context: a certificate chain needs its private key, and the other way round");
}

TEST(TlsContext, AClientTrustsTheSystemStoreByDefault) {
  World w;
  // The bundle at OpenSSL's compiled-in path, on the fake filesystem: the test's authority
  // after another one, as a bundle has many.
  const std::string store = TlsOptions{}.system_store;
  EXPECT_EQ(store, TlsOptions::default_system_store());
  auto missing = TlsContext::client(w.os);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message,
            "load trusted authorities: open(" + store + "): No such file or directory (ENOENT)");
  w.os.write_file(
      store, certificates().other_authority.certificate + certificates().authority.certificate);
  auto client = TlsContext::client(w.os);
  ASSERT_TRUE(client) << client.error().message;
  auto server = server_context(w);
  auto c = connect(w, *client, server);
  w.spin();
  EXPECT_TRUE(c.client->tls->handshake_complete());
}

TEST(TlsContext, ACorruptBundleIsNotHalfLoaded) {
  World w;
  TlsOptions o;
  const std::string good = certificates().authority.certificate;
  o.trusted_authorities = Pem::text(good + good.substr(0, good.size() / 2));
  auto c = TlsContext::client(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message, StartsWith("load trusted authorities failed ("));
}

TEST(TlsContext, AlpnNamesMustFitALengthByte) {
  World w;
  TlsOptions o = client_options();
  o.alpn = {"h2", ""};
  auto c = TlsContext::client(w.os, o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "ALPN: protocol name '' is not 1 to 255 bytes");
}

TEST(TlsContext, AContextMayGoWhileItsConnectionsLiveOn) {
  World w;
  TlsOptions so = server_options();
  so.alpn = {"h2"};
  TlsOptions co = client_options();
  co.alpn = {"h2"};
  Connection c;
  {
    auto client = client_context(w, co);
    auto server = server_context(w, so);
    c = connect(w, client, server);
  }
  w.spin();
  EXPECT_EQ(c.client->tls->session().alpn(), "h2");
}

TEST(LossReason, ATlsReasonReadsAsItsDetail) {
  const LossReason r = LossReason::tls("TLS handshake: certificate has expired");
  EXPECT_EQ(to_string(r), "TLS handshake: certificate has expired");
  EXPECT_FALSE(r.clean());
  EXPECT_NE(r, LossReason::tls("other"));
}

// ---- Property: chunking cannot change what arrives --------------------------------------------

// Two bare sessions: every ciphertext byte is cut into random chunks on its way across, and
// plaintext is written at random moments. Whatever the cuts, each side reads exactly what the
// other wrote, in order, once.
RC_GTEST_PROP(TlsSession, RandomChunkingDeliversThePlaintextInOrderExactlyOnce, ()) {
  static World w;
  static const TlsContext client_ctx = client_context(w);
  static const TlsContext server_ctx = server_context(w);
  TlsSession client = client_session(client_ctx);
  TlsSession server = server_session(server_ctx);
  std::string in_flight[2];  // to the server, to the client
  std::string wrote[2], read[2];
  TlsSession* sessions[2] = {&client, &server};
  const auto steps = *rc::gen::inRange(20, 200);
  std::byte buffer[1000];
  for (int i = 0; i < steps; ++i) {
    const int who = *rc::gen::inRange(0, 2);
    TlsSession& s = *sessions[who];
    switch (*rc::gen::inRange(0, 3)) {
      case 0: {  // write plaintext
        const auto text = *rc::gen::container<std::string>(*rc::gen::inRange(1, 3000),
                                                           rc::gen::arbitrary<char>());
        s.write(text);
        wrote[who] += text;
        break;
      }
      case 1: {  // move some ciphertext across
        in_flight[who] += s.take_ciphertext();
        const std::size_t n = *rc::gen::inRange<std::size_t>(0, in_flight[who].size() + 1);
        sessions[1 - who]->feed(std::as_bytes(std::span(in_flight[who].data(), n)));
        in_flight[who].erase(0, n);
        break;
      }
      default: {  // read what has arrived
        auto got = s.read(buffer);
        RC_ASSERT(got.has_value());
        read[who].append(reinterpret_cast<const char*>(buffer), *got);
      }
    }
  }
  // Then deliver everything, in chunks of any size, until both are quiet.
  for (int round = 0; round < 50; ++round) {
    for (int who = 0; who < 2; ++who) {
      in_flight[who] += sessions[who]->take_ciphertext();
      while (!in_flight[who].empty()) {
        const std::size_t n = *rc::gen::inRange<std::size_t>(1, in_flight[who].size() + 1);
        sessions[1 - who]->feed(std::as_bytes(std::span(in_flight[who].data(), n)));
        in_flight[who].erase(0, n);
      }
      while (true) {
        auto got = sessions[1 - who]->read(buffer);
        RC_ASSERT(got.has_value());
        if (*got == 0) break;
        read[1 - who].append(reinterpret_cast<const char*>(buffer), *got);
      }
    }
  }
  RC_ASSERT(client.handshake_complete());
  RC_ASSERT(read[1] == wrote[0]);
  RC_ASSERT(read[0] == wrote[1]);
}

}  // namespace
}  // namespace daemonkit::core
