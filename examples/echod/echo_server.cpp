#include "echo_server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>

namespace echod {

using daemonkit::core::step_failed;
using daemonkit::core::StepError;
using daemonkit::core::StepKind;
using daemonkit::core::StepResult;

namespace {

// The server's start-up is the daemon's own work, after DaemonContext's steps.
StepError start_failed(std::string_view step, const daemonkit::sys::Error& error) {
  return StepError::from(StepKind::kApplication, step, error);
}

}  // namespace

EchoServer::~EchoServer() {
  for (const auto& [fd, unused] : pending_) (void)os_.close(fd);
  if (listen_fd_ >= 0) (void)os_.close(listen_fd_);
  if (signal_fd_ >= 0) (void)os_.close(signal_fd_);
}

StepResult<void> EchoServer::listen(const std::string& host, std::uint16_t port) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (auto blocked = os_.sigprocmask(SIG_BLOCK, &stop_signals, nullptr); !blocked) {
    return step_failed(start_failed("sigprocmask", blocked.error()));
  }
  auto sfd = os_.signalfd(-1, stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (!sfd) return step_failed(start_failed("signalfd", sfd.error()));
  signal_fd_ = *sfd;

  const std::string where = fmt::format("{}:{}", host, port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return step_failed(
        StepError::plain(StepKind::kApplication, fmt::format("not an IPv4 address: {}", host)));
  }
  auto fd = os_.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (!fd) return step_failed(start_failed("socket", fd.error()));
  listen_fd_ = *fd;
  const int on = 1;
  if (auto set = os_.setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); !set) {
    return step_failed(start_failed("setsockopt(SO_REUSEADDR)", set.error()));
  }
  if (auto bound = os_.bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
      !bound) {
    return step_failed(start_failed(fmt::format("bind({})", where), bound.error()));
  }
  if (auto listening = os_.listen(listen_fd_, 64); !listening) {
    return step_failed(start_failed(fmt::format("listen({})", where), listening.error()));
  }
  socklen_t len = sizeof bound_;
  if (auto named = os_.getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound_), &len);
      !named) {
    return step_failed(start_failed("getsockname", named.error()));
  }
  return {};
}

std::string EchoServer::address() const {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &bound_.sin_addr, text, sizeof text);
  return fmt::format("{}:{}", text, ntohs(bound_.sin_port));
}

StepResult<int> EchoServer::serve() {
  for (;;) {
    std::vector<pollfd> fds{{signal_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& [fd, out] : pending_) {
      fds.push_back({fd, static_cast<short>(out.empty() ? POLLIN : POLLOUT), 0});
    }
    auto ready = os_.poll(fds.data(), fds.size(), -1);
    if (!ready) {
      if (ready.error().code == EINTR) continue;
      return step_failed(start_failed("poll", ready.error()));
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info{};
      if (auto n = os_.read(signal_fd_, &info, sizeof info); n && *n == sizeof info) {
        return static_cast<int>(info.ssi_signo);
      }
    }
    if (fds[1].revents != 0) accept_all();
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if ((fds[i].revents & POLLOUT) != 0) {
        on_writable(fds[i].fd);
      } else {
        on_readable(fds[i].fd);
      }
    }
  }
}

void EchoServer::accept_all() {
  for (;;) {
    auto client = os_.accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!client) return;  // EAGAIN, or a client that went away before we took it
    pending_[*client];
  }
}

void EchoServer::on_readable(int fd) {
  char buffer[4096];
  auto n = os_.read(fd, buffer, sizeof buffer);
  if (!n) {
    if (n.error().code != EAGAIN && n.error().code != EINTR) drop(fd);
    return;
  }
  if (*n == 0) {
    drop(fd);
    return;
  }
  pending_[fd].append(buffer, *n);
  on_writable(fd);
}

void EchoServer::on_writable(int fd) {
  std::string& out = pending_[fd];
  while (!out.empty()) {
    auto n = os_.sendto(fd, out.data(), out.size(), MSG_NOSIGNAL, nullptr, 0);
    if (!n) {
      if (n.error().code == EAGAIN || n.error().code == EINTR) return;  // poll for POLLOUT
      drop(fd);
      return;
    }
    out.erase(0, *n);
  }
}

void EchoServer::drop(int fd) {
  (void)os_.close(fd);
  pending_.erase(fd);
}

}  // namespace echod
