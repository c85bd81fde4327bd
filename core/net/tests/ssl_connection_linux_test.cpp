// listen_ssl and connect_ssl on the real kernel: a TLS echo over loopback TCP, large enough for
// many records, reads and writes, closed with close_notify from both ends.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/sys/real_syscalls.h"
#include "tls_test_certificates.h"

namespace daemonkit::core {
namespace {

using namespace std::chrono_literals;
using tls_test::certificates;

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

// Writes `message` once connected (before the handshake: it waits for it), and closes once the
// whole answer is back.
struct Asker : Protocol {
  Asker(const std::string& message, std::string& answer, std::optional<LossReason>& lost)
      : message_(message), answer_(answer), lost_(lost) {}
  void connection_made(Connection& c) override { c.write(message_); }
  void data_received(std::span<const std::byte> data) override {
    answer_.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (answer_.size() >= message_.size()) connection().lose_connection();
  }
  void connection_lost(const LossReason& reason) override { lost_ = reason; }
  const std::string& message_;
  std::string& answer_;
  std::optional<LossReason>& lost_;
};

struct AskerFactory : ClientFactory {
  std::string message = std::string(1 << 20, 't');
  std::string answer;
  std::optional<LossReason> lost;
  std::vector<std::string> failures;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Asker>(message, answer, lost);
  }
  void connection_failed(const sys::Error& reason) override {
    failures.push_back(sys::to_string(reason));
  }
};

TEST(SslLinux, TlsEchoOverLoopbackWithListenSslAndConnectSsl) {
  ASSERT_NE(::signal(SIGPIPE, SIG_IGN), SIG_ERR);
  sys::RealSyscalls os;
  ReactorOptions ro;
  ro.install_signal_handlers = false;
  auto reactor = Reactor::create(os, std::move(ro));
  ASSERT_TRUE(reactor);

  TlsOptions so;
  so.certificate_chain = Pem::text(certificates().localhost.certificate);
  so.private_key = Pem::text(certificates().localhost.key);
  auto server_ctx = TlsContext::server(os, so);
  ASSERT_TRUE(server_ctx) << server_ctx.error().message;
  TlsOptions co;
  co.trusted_authorities = Pem::text(certificates().authority.certificate);
  auto client_ctx = TlsContext::client(os, co);
  ASSERT_TRUE(client_ctx) << client_ctx.error().message;

  ServerFactoryOf<Echo> echo;
  ListenOptions lo;
  lo.interface = "127.0.0.1";
  auto port = listen_ssl(**reactor, os, 0, echo, *server_ctx, lo);
  ASSERT_TRUE(port) << to_string(port.error());
  AskerFactory client;
  auto connector =
      connect_ssl(**reactor, os, "127.0.0.1", (*port)->address().port(), client, *client_ctx);

  // Until both ends are gone, bounded: the test fails rather than hangs.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline &&
         !((client.lost || !client.failures.empty()) && (*port)->connections() == 0)) {
    (*reactor)->run_until_current();
    ASSERT_TRUE((*reactor)->iterate(std::chrono::milliseconds(50)));
  }
  EXPECT_TRUE(client.failures.empty()) << client.failures.front();
  EXPECT_TRUE(client.answer == client.message) << client.answer.size();
  ASSERT_TRUE(client.lost);
  EXPECT_EQ(*client.lost, LossReason::done()) << to_string(*client.lost);
  EXPECT_EQ((*port)->connections(), 0u);
}

}  // namespace
}  // namespace daemonkit::core
