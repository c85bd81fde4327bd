#include "load_cases.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

namespace daemonkit::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kPatternPeriod = 251;  // prime, so no chunk boundary lines up with it
constexpr int kMaxEvents = 1024;

std::string errno_text(const char* step) { return std::string(step) + ": " + std::strerror(errno); }

Clock::time_point after(Clock::time_point start, double seconds) {
  return start +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A descriptor this process owns; closing it resets the connection (SO_LINGER 0), so the
// client keeps no TIME_WAIT and the server reads ECONNRESET or EOF, both ends of a connection.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { reset(); }

  [[nodiscard]] int fd() const { return fd_; }
  void reset() {
    if (fd_ < 0) return;
    const linger abort_on_close{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// A non-blocking socket whose connect to `port` has started (or completed); EINPROGRESS is the
// usual answer even on loopback.
std::optional<Socket> start_connect(std::uint16_t port, std::string& failed) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (s.fd() < 0) {
    failed = errno_text("socket");
    return std::nullopt;
  }
  const int on = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  const sockaddr_in address = loopback(port);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 &&
      errno != EINPROGRESS) {
    failed = errno_text("connect");
    return std::nullopt;
  }
  return s;
}

// A connected non-blocking socket, the connect bounded by `timeout_s`.
std::optional<Socket> connect_to(std::uint16_t port, double timeout_s, std::string& failed) {
  auto s = start_connect(port, failed);
  if (!s) return std::nullopt;
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event event{};
  event.events = EPOLLOUT;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s->fd(), &event);
  const int ready = ::epoll_wait(epoll_fd, &event, 1, static_cast<int>(timeout_s * 1000));
  ::close(epoll_fd);
  int error = 0;
  socklen_t size = sizeof error;
  ::getsockopt(s->fd(), SOL_SOCKET, SO_ERROR, &error, &size);
  if (ready != 1 || error != 0) {
    failed = ready != 1 ? "connect: no answer within the timeout"
                        : std::string("connect: ") + std::strerror(error);
    return std::nullopt;
  }
  return s;
}

// An epoll instance, closed with its owner.
class Epoll {
 public:
  Epoll() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {}
  ~Epoll() { ::close(fd_); }
  Epoll(const Epoll&) = delete;
  Epoll& operator=(const Epoll&) = delete;

  void set(int fd, std::uint32_t events, std::uint32_t index, int op) const {
    epoll_event event{};
    event.events = events;
    event.data.u32 = index;
    ::epoll_ctl(fd_, op, fd, &event);
  }
  int wait(epoll_event* events, int timeout_ms) const {
    const int ready = ::epoll_wait(fd_, events, kMaxEvents, timeout_ms);
    return ready < 0 && errno == EINTR ? 0 : ready;
  }

 private:
  int fd_;
};

// The window's start or end: the operations counted so far, the server's CPU time, the clock.
struct Mark {
  std::uint64_t operations = 0;
  std::uint64_t cpu_ns = 0;
  Clock::time_point at;
};

std::optional<Mark> mark(const ServerProcess& server, std::uint64_t operations) {
  const auto cpu = server.cpu_ns();
  if (!cpu) return std::nullopt;
  return Mark{operations, *cpu, Clock::now()};
}

Measured between(const Mark& start, const Mark& end, double operations_per_unit = 1) {
  Measured m;
  const double operations = static_cast<double>(end.operations - start.operations);
  if (operations <= 0) {
    m.failed = "nothing completed in the window";
    return m;
  }
  m.operations = operations / operations_per_unit;
  m.seconds = seconds_between(start.at, end.at);
  m.cpu_ns = static_cast<double>(end.cpu_ns - start.cpu_ns);
  m.rate = m.operations / m.seconds;
  m.cpu_ns_per = m.cpu_ns / m.operations;
  return m;
}

Measured failure(std::string why) {
  Measured m;
  m.failed = std::move(why);
  return m;
}

// Runs `step` (one epoll wait and what it brought; false on failure) through the warm-up and
// the window, marking both ends of the window. `operations` is the case's running count.
template <typename Step>
Measured measure(const ServerProcess& server, Timing timing, const std::uint64_t& operations,
                 Step step, std::string& failed, double operations_per_unit = 1) {
  const auto warm_until = after(Clock::now(), timing.warmup_s);
  while (Clock::now() < warm_until) {
    if (!step()) return failure(failed);
  }
  const auto start = mark(server, operations);
  if (!start) return failure("the server exited");
  const auto end_at = after(start->at, timing.window_s);
  while (Clock::now() < end_at) {
    if (!step()) return failure(failed);
  }
  const auto end = mark(server, operations);
  if (!end) return failure("the server exited");
  return between(*start, *end, operations_per_unit);
}

}  // namespace

Measured pooled(const std::vector<Measured>& windows) {
  if (windows.empty()) return failure("no window measured");
  Measured sum;
  for (const Measured& w : windows) {
    if (!w.failed.empty()) return w;
    sum.operations += w.operations;
    sum.seconds += w.seconds;
    sum.cpu_ns += w.cpu_ns;
  }
  sum.rate = sum.operations / sum.seconds;
  sum.cpu_ns_per = sum.cpu_ns / sum.operations;
  return sum;
}

Measured ping_pong(ServerProcess& server, int connections, int message_bytes, Timing timing) {
  std::string failed;
  std::vector<Socket> sockets;
  for (int i = 0; i < connections; ++i) {
    auto s = connect_to(server.port(), 5.0, failed);
    if (!s) return failure(failed);
    sockets.push_back(std::move(*s));
  }
  const auto size = static_cast<std::size_t>(message_bytes);
  const std::vector<char> message(size, 'p');
  std::vector<char> received(size);
  std::vector<std::size_t> got(sockets.size(), 0);
  Epoll epoll;
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    epoll.set(sockets[i].fd(), EPOLLIN, static_cast<std::uint32_t>(i), EPOLL_CTL_ADD);
    if (::write(sockets[i].fd(), message.data(), size) != message_bytes) {
      return failure(errno_text("write"));
    }
  }
  std::uint64_t round_trips = 0;
  std::vector<epoll_event> events(kMaxEvents);
  const auto step = [&] {
    const int ready = epoll.wait(events.data(), 100);
    if (ready < 0) {
      failed = errno_text("epoll_wait");
      return false;
    }
    for (int e = 0; e < ready; ++e) {
      const std::uint32_t i = events[static_cast<std::size_t>(e)].data.u32;
      const ssize_t n = ::read(sockets[i].fd(), received.data() + got[i], size - got[i]);
      if (n <= 0) {
        if (n < 0 && errno == EAGAIN) continue;
        failed = n == 0 ? "the server closed a connection" : errno_text("read");
        return false;
      }
      got[i] += static_cast<std::size_t>(n);
      if (got[i] < size) continue;
      if (std::memcmp(received.data(), message.data(), size) != 0) {
        failed = "the echo differs from what was sent";
        return false;
      }
      got[i] = 0;
      ++round_trips;
      // A whole message into an empty send buffer: a short write here is a broken connection.
      if (::write(sockets[i].fd(), message.data(), size) != message_bytes) {
        failed = errno_text("write");
        return false;
      }
    }
    return true;
  };
  return measure(server, timing, round_trips, step, failed);
}

Measured bulk(ServerProcess& server, Timing timing) {
  std::string failed;
  auto s = connect_to(server.port(), 5.0, failed);
  if (!s) return failure(failed);
  std::vector<char> pattern(kChunk + kPatternPeriod);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    pattern[i] = static_cast<char>(i % kPatternPeriod);
  }
  std::vector<char> received(kChunk);
  std::uint64_t sent = 0;
  std::uint64_t echoed = 0;
  Epoll epoll;
  epoll.set(s->fd(), EPOLLIN | EPOLLOUT, 0, EPOLL_CTL_ADD);
  std::vector<epoll_event> events(kMaxEvents);
  const auto step = [&] {
    const int ready = epoll.wait(events.data(), 100);
    if (ready < 0) {
      failed = errno_text("epoll_wait");
      return false;
    }
    if (ready == 0) return true;
    const std::uint32_t what = events[0].events;
    if ((what & EPOLLOUT) != 0) {
      const ssize_t n = ::write(s->fd(), pattern.data() + sent % kPatternPeriod, kChunk);
      if (n < 0 && errno != EAGAIN) {
        failed = errno_text("write");
        return false;
      }
      if (n > 0) sent += static_cast<std::uint64_t>(n);
    }
    if ((what & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
      const ssize_t n = ::read(s->fd(), received.data(), received.size());
      if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return true;
        failed = n == 0 ? "the server closed the connection" : errno_text("read");
        return false;
      }
      const auto size = static_cast<std::size_t>(n);
      if (std::memcmp(received.data(), pattern.data() + echoed % kPatternPeriod, size) != 0) {
        failed = "the echo differs from what was sent";
        return false;
      }
      echoed += size;
    }
    return true;
  };
  return measure(server, timing, echoed, step, failed, 1024.0 * 1024.0);
}

Measured accepts(ServerProcess& server, int in_flight, Timing timing) {
  constexpr std::size_t kMessage = 64;
  const std::vector<char> message(kMessage, 'a');
  std::vector<char> received(kMessage);
  std::string failed;
  struct Slot {
    Socket socket;
    std::size_t got = 0;
    bool connected = false;
  };
  std::vector<Slot> slots(static_cast<std::size_t>(in_flight));
  Epoll epoll;
  const auto begin = [&](std::uint32_t i) {
    auto s = start_connect(server.port(), failed);
    if (!s) return false;
    slots[i].socket = std::move(*s);
    slots[i].got = 0;
    slots[i].connected = false;
    epoll.set(slots[i].socket.fd(), EPOLLOUT, i, EPOLL_CTL_ADD);
    return true;
  };
  for (std::uint32_t i = 0; i < slots.size(); ++i) {
    if (!begin(i)) return failure(failed);
  }
  std::uint64_t cycles = 0;
  std::vector<epoll_event> events(kMaxEvents);
  const auto step = [&] {
    const int ready = epoll.wait(events.data(), 100);
    if (ready < 0) {
      failed = errno_text("epoll_wait");
      return false;
    }
    for (int e = 0; e < ready; ++e) {
      const std::uint32_t i = events[static_cast<std::size_t>(e)].data.u32;
      Slot& slot = slots[i];
      const int fd = slot.socket.fd();
      if (!slot.connected) {
        int error = 0;
        socklen_t size = sizeof error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) {
          failed = std::string("connect: ") + std::strerror(error);
          return false;
        }
        slot.connected = true;
        if (::write(fd, message.data(), kMessage) != static_cast<ssize_t>(kMessage)) {
          failed = errno_text("write");
          return false;
        }
        epoll.set(fd, EPOLLIN, i, EPOLL_CTL_MOD);
        continue;
      }
      const ssize_t n = ::read(fd, received.data() + slot.got, kMessage - slot.got);
      if (n <= 0) {
        if (n < 0 && errno == EAGAIN) continue;
        failed = n == 0 ? "the server closed a connection" : errno_text("read");
        return false;
      }
      slot.got += static_cast<std::size_t>(n);
      if (slot.got < kMessage) continue;
      ++cycles;
      slot.socket.reset();
      if (!begin(i)) return false;
    }
    return true;
  };
  return measure(server, timing, cycles, step, failed);
}

Measured idle_memory(ServerProcess& server, int connections, double timeout_s) {
  std::string failed;
  const char byte = 'i';
  char echo = 0;
  auto first = connect_to(server.port(), 5.0, failed);
  if (!first) return failure(failed);
  if (::write(first->fd(), &byte, 1) != 1) return failure(errno_text("write"));
  {
    Epoll wait_echo;
    wait_echo.set(first->fd(), EPOLLIN, 0, EPOLL_CTL_ADD);
    std::vector<epoll_event> events(kMaxEvents);
    if (wait_echo.wait(events.data(), 5000) != 1 || ::read(first->fd(), &echo, 1) != 1) {
      return failure("no echo on the first connection");
    }
  }
  // Let the server finish with that echo before the reading it is measured against.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto before = server.rss_kib();
  if (!before) return failure("the server exited");

  const auto start = Clock::now();
  const auto deadline = after(start, timeout_s);
  std::vector<Socket> sockets;
  sockets.reserve(static_cast<std::size_t>(connections));
  Epoll epoll;
  for (int i = 0; i < connections; ++i) {
    auto s = start_connect(server.port(), failed);
    if (!s) return failure(failed + " (after " + std::to_string(i) + " connections)");
    epoll.set(s->fd(), EPOLLOUT, static_cast<std::uint32_t>(i), EPOLL_CTL_ADD);
    sockets.push_back(std::move(*s));
  }
  int echoed = 0;
  std::vector<epoll_event> events(kMaxEvents);
  while (echoed < connections) {
    if (Clock::now() >= deadline) {
      char why[96];
      std::snprintf(why, sizeof why, "only %d of %d connections echoed within %.0f s", echoed,
                    connections, timeout_s);
      return failure(why);
    }
    const int ready = epoll.wait(events.data(), 100);
    for (int e = 0; e < ready; ++e) {
      const std::uint32_t i = events[static_cast<std::size_t>(e)].data.u32;
      const int fd = sockets[i].fd();
      if ((events[static_cast<std::size_t>(e)].events & EPOLLOUT) != 0) {
        int error = 0;
        socklen_t size = sizeof error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) return failure(std::string("connect: ") + std::strerror(error));
        if (::write(fd, &byte, 1) != 1) return failure(errno_text("write"));
        epoll.set(fd, EPOLLIN, i, EPOLL_CTL_MOD);
        continue;
      }
      const ssize_t n = ::read(fd, &echo, 1);
      if (n == 1) {
        epoll.set(fd, 0, i, EPOLL_CTL_DEL);
        ++echoed;
      } else if (n == 0 || errno != EAGAIN) {
        return failure(n == 0 ? "the server closed a connection" : errno_text("read"));
      }
    }
  }
  Measured m;
  m.extra = seconds_between(start, Clock::now());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto after_open = server.rss_kib();
  if (!after_open) return failure("the server exited");
  m.rate = (static_cast<double>(*after_open) - static_cast<double>(*before)) * 1024.0 /
           static_cast<double>(connections);
  return m;
}

}  // namespace daemonkit::bench
