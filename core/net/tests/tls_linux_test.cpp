// TLS on the real kernel: the fake's model checked where it matters — a handshake, an echo of a
// few MiB and close_notify both ways over a real socketpair, with both ends on one real reactor.
#include <signal.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_session.h"
#include "daemonkit/core/net/tls_stream.h"
#include "daemonkit/sys/real_syscalls.h"
#include "tls_test_certificates.h"

namespace daemonkit::core {
namespace {

using tls_test::certificates;

struct Recorder : StreamHandler {
  std::string data;
  std::optional<LossReason> reason;
  int losses = 0;
  std::function<void(std::span<const std::byte>)> on_data;
  void data_received(std::span<const std::byte> bytes) override {
    data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (on_data) on_data(bytes);
  }
  void connection_lost(const LossReason& r) override {
    ++losses;
    reason = r;
  }
};

struct End {
  Recorder app;
  std::unique_ptr<TlsStream> tls;
  std::unique_ptr<StreamTransport> transport;
};

class TlsLinux : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(::signal(SIGPIPE, SIG_IGN), SIG_ERR);
    ReactorOptions options;
    options.install_signal_handlers = false;
    auto created = Reactor::create(os_, std::move(options));
    ASSERT_TRUE(created);
    reactor_ = std::move(*created);
  }

  // Turns the loop until `done` or a few seconds pass (the test then fails, never hangs).
  template <typename Done>
  void run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      reactor_->run_until_current();
      ASSERT_TRUE(reactor_->iterate(std::chrono::milliseconds(100)));
    }
    ASSERT_TRUE(done());
  }

  std::unique_ptr<End> open(int fd, TlsSession session) {
    auto end = std::make_unique<End>();
    end->tls = std::make_unique<TlsStream>(*reactor_, std::move(session), end->app);
    auto t = StreamTransport::open(*reactor_, os_, OwnedFd(os_, fd), *end->tls);
    EXPECT_TRUE(t);
    if (t) {
      end->transport = std::move(*t);
      end->tls->start(*end->transport);
    }
    return end;
  }

  sys::RealSyscalls os_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(TlsLinux, HandshakeEchoAndCloseNotifyOverARealSocketpair) {
  TlsOptions so;
  so.certificate_chain = Pem::text(certificates().localhost.certificate);
  so.private_key = Pem::text(certificates().localhost.key);
  so.alpn = {"echo/1"};
  TlsOptions co;
  co.trusted_authorities = Pem::text(certificates().authority.certificate);
  co.alpn = {"echo/1"};
  auto server_ctx = TlsContext::server(os_, so);
  auto client_ctx = TlsContext::client(os_, co);
  ASSERT_TRUE(server_ctx && client_ctx);
  auto pair = os_.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(pair);
  auto server = open(pair->second, *TlsSession::server(*server_ctx));
  auto client = open(pair->first, *TlsSession::client(*client_ctx, "localhost"));
  server->app.on_data = [&](std::span<const std::byte> bytes) { server->tls->write(bytes); };

  std::string sent(3 << 20, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 % 256);
  client->tls->write(sent);
  run_until([&] { return client->app.data.size() >= sent.size(); });
  EXPECT_TRUE(client->app.data == sent);
  EXPECT_EQ(client->tls->session().alpn(), "echo/1");
  EXPECT_EQ(client->tls->session().peer_subject(), "CN=localhost,O=daemonkit");

  client->tls->lose_connection();
  run_until([&] { return client->app.losses > 0 && server->app.losses > 0; });
  EXPECT_EQ(*client->app.reason, LossReason::done());
  EXPECT_EQ(*server->app.reason, LossReason::done());
  EXPECT_TRUE(client->tls->session().shutdown_complete());
  EXPECT_TRUE(server->tls->session().peer_closed());
  EXPECT_EQ(client->app.losses, 1);
  EXPECT_EQ(server->app.losses, 1);
}

TEST_F(TlsLinux, AnUntrustedServerFailsTheClientWithTheReason) {
  TlsOptions so;
  so.certificate_chain = Pem::text(certificates().self_signed.certificate);
  so.private_key = Pem::text(certificates().self_signed.key);
  TlsOptions co;
  co.trusted_authorities = Pem::text(certificates().authority.certificate);
  auto server_ctx = TlsContext::server(os_, so);
  auto client_ctx = TlsContext::client(os_, co);
  ASSERT_TRUE(server_ctx && client_ctx);
  auto pair = os_.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(pair);
  auto server = open(pair->second, *TlsSession::server(*server_ctx));
  auto client = open(pair->first, *TlsSession::client(*client_ctx, "localhost"));
  run_until([&] { return client->app.losses > 0 && server->app.losses > 0; });
  EXPECT_EQ(to_string(*client->app.reason),
            "TLS handshake: self-signed certificate (SSL routines::certificate verify failed)");
  EXPECT_EQ(client->app.losses, 1);
  EXPECT_EQ(server->app.losses, 1);
}

}  // namespace
}  // namespace daemonkit::core
