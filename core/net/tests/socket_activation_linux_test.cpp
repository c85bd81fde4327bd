// Socket activation on the real kernel: a child process is handed a listening socket on
// descriptor 3 with a real $LISTEN_PID/$LISTEN_FDS/$LISTEN_FDNAMES environment, as systemd
// hands it, takes it, adopts it and answers a connection on it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "daemonkit/core/net/socket_activation.h"
#include "daemonkit/core/net/tcp.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

struct Echo : Protocol {
  void data_received(std::span<const std::byte> data) override { connection().write(data); }
};

struct Ping : Protocol {
  std::string* got;
  explicit Ping(std::string* into) : got(into) {}
  void connection_made(Connection& c) override { c.write("ping"); }
  void data_received(std::span<const std::byte> data) override {
    got->append(reinterpret_cast<const char*>(data.data()), data.size());
  }
};

struct Client : ClientFactory {
  std::string got;
  std::unique_ptr<Protocol> build_protocol(const SocketAddress&) override {
    return std::make_unique<Ping>(&got);
  }
  void connection_failed(const sys::Error&) override {}
};

// Each failed step exits with its own code, so the parent's message says which.
[[noreturn]] void activated_child() {
  const int listening = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof address;
  if (listening < 0 || ::bind(listening, reinterpret_cast<sockaddr*>(&address), len) != 0 ||
      ::listen(listening, 8) != 0 ||
      ::getsockname(listening, reinterpret_cast<sockaddr*>(&address), &len) != 0) {
    ::_exit(10);
  }
  // What a service manager leaves: the socket on 3, inheritable, and the three variables.
  if (listening != 3) {
    if (::dup2(listening, 3) != 3) ::_exit(11);
    ::close(listening);
  } else if (::fcntl(3, F_SETFD, 0) != 0) {
    ::_exit(11);
  }
  const std::string pid = std::to_string(::getpid());
  ::setenv("LISTEN_PID", pid.c_str(), 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("LISTEN_FDNAMES", "echo", 1);

  sys::RealSyscalls os;
  auto sockets = listen_fds(os, ActivationVariables::take_from_environment());
  if (!sockets || sockets->size() != 1) ::_exit(12);
  if (std::getenv("LISTEN_PID") != nullptr || std::getenv("LISTEN_FDS") != nullptr ||
      std::getenv("LISTEN_FDNAMES") != nullptr) {
    ::_exit(13);
  }
  if ((::fcntl(3, F_GETFD) & FD_CLOEXEC) == 0) ::_exit(14);
  ReactorOptions options;
  options.install_signal_handlers = false;
  auto reactor = Reactor::create(os, std::move(options));
  if (!reactor) ::_exit(15);
  auto fd = sockets->take("echo");
  if (!fd) ::_exit(16);
  ServerFactoryOf<Echo> echo;
  auto port = adopt_stream_port(**reactor, os, std::move(*fd), echo);
  if (!port || (*port)->address().port() != ntohs(address.sin_port)) ::_exit(17);
  Client client;
  auto connector = connect_tcp(**reactor, os, "127.0.0.1", ntohs(address.sin_port), client);
  auto done =
      (*reactor)->turn_until([&] { return client.got == "ping"; }, std::chrono::seconds(10));
  if (!done || !*done) ::_exit(18);
  ::_exit(0);
}

TEST(SocketActivationOnLinux, AChildHandedASocketOnDescriptorThreeServesOnIt) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) activated_child();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the step that failed: see activated_child's codes";
}

}  // namespace
}  // namespace daemonkit::core
