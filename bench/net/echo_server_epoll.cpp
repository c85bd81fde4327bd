// The floor of bench/net: an echo server on raw epoll, level-triggered, one thread. Every
// connection reads into one shared 64 KiB buffer and writes straight back; only a short write
// keeps bytes, on the heap, until they drain (and stops reading that connection meanwhile, so
// a client that never reads cannot grow it). An idle connection costs its descriptor and a
// 16-byte struct. Usage: echo_server_args.h.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "echo_server_args.h"

namespace daemonkit::bench {
namespace {

constexpr std::size_t kReadBytes = 64 * 1024;
constexpr int kMaxEvents = 256;

// What one connection holds between wake-ups. `pending` is non-null only while a short write
// left bytes to send.
struct Connection {
  int fd;
  unsigned pending_size;
  char* pending;
};
static_assert(sizeof(Connection) == 16);

char buffer[kReadBytes];

int listen_on(const EchoServerArgs& args) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(args.port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, args.backlog) != 0) {
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

void drop(Connection* c) {
  ::close(c->fd);  // also takes it out of the epoll set
  std::free(c->pending);
  std::free(c);
}

// Accepts until the queue is empty or a wake-up's worth is done, so one burst cannot starve
// the connections already open.
void accept_some(int epoll_fd, int listen_fd) {
  for (int i = 0; i < 1024; ++i) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) std::perror("accept4");
      return;
    }
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    auto* c = static_cast<Connection*>(std::malloc(sizeof(Connection)));
    *c = Connection{fd, 0, nullptr};
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = c;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) drop(c);
  }
}

void set_interest(int epoll_fd, Connection* c, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = c;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
}

// One read and its echo; false when the connection is over.
bool echo_once(int epoll_fd, Connection* c) {
  const ssize_t got = ::read(c->fd, buffer, sizeof buffer);
  if (got <= 0) return got < 0 && (errno == EAGAIN || errno == EINTR);
  ssize_t sent = ::write(c->fd, buffer, static_cast<std::size_t>(got));
  if (sent < 0) {
    if (errno != EAGAIN && errno != EINTR) return false;
    sent = 0;
  }
  if (sent < got) {
    c->pending_size = static_cast<unsigned>(got - sent);
    c->pending = static_cast<char*>(std::malloc(c->pending_size));
    std::memcpy(c->pending, buffer + sent, c->pending_size);
    set_interest(epoll_fd, c, EPOLLOUT);
  }
  return true;
}

// Sends what a short write left; false when the connection is over.
bool drain(int epoll_fd, Connection* c) {
  const ssize_t sent = ::write(c->fd, c->pending, c->pending_size);
  if (sent < 0) return errno == EAGAIN || errno == EINTR;
  c->pending_size -= static_cast<unsigned>(sent);
  if (c->pending_size > 0) {
    std::memmove(c->pending, c->pending + sent, c->pending_size);
    return true;
  }
  std::free(c->pending);
  c->pending = nullptr;
  set_interest(epoll_fd, c, EPOLLIN);
  return true;
}

int serve(const EchoServerArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);  // a peer's reset surfaces as EPIPE from write instead
  raise_descriptor_limit();
  const int listen_fd = listen_on(args);
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (listen_fd < 0 || epoll_fd < 0) {
    std::perror("echo_server_epoll: listen");
    return 1;
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;  // the listening socket
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &event);
  announce_port(port_of(listen_fd));
  epoll_event events[kMaxEvents];
  for (;;) {
    const int ready = ::epoll_wait(epoll_fd, events, kMaxEvents, -1);
    for (int i = 0; i < ready; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      if (c == nullptr) {
        accept_some(epoll_fd, listen_fd);
        continue;
      }
      const bool alive = c->pending != nullptr ? drain(epoll_fd, c) : echo_once(epoll_fd, c);
      if (!alive) drop(c);
    }
  }
}

}  // namespace
}  // namespace daemonkit::bench

int main(int argc, char** argv) {
  const auto args = daemonkit::bench::parse_echo_server_args(argc, argv);
  if (!args) return 2;
  return daemonkit::bench::serve(*args);
}
