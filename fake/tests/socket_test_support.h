// Helpers for the fake kernel's socket tests: addresses and one-line wrappers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "daemonkit/fake/fake_syscalls.h"

namespace daemonkit::fake::testing_support {

struct UnixAddress {
  sockaddr_un un{};
  socklen_t len = 0;
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&un); }
};

// "/path" or "@abstract".
inline UnixAddress unix_address(std::string_view name) {
  UnixAddress a;
  a.un.sun_family = AF_UNIX;
  const bool abstract = !name.empty() && name.front() == '@';
  std::memcpy(a.un.sun_path, name.data(), name.size());
  if (abstract) a.un.sun_path[0] = '\0';
  a.len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
  return a;
}

inline sockaddr_in inet_address(const char* host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

inline const sockaddr* as_sockaddr(const sockaddr_in& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

inline std::string recv_text(FakeSyscalls& os, int fd, std::size_t max = 256, int flags = 0) {
  std::string buf(max, '\0');
  auto n = os.recvfrom(fd, buf.data(), buf.size(), flags, nullptr, nullptr);
  if (!n) return "error " + std::to_string(n.error().code);
  buf.resize(*n);
  return buf;
}

inline short poll_events(FakeSyscalls& os, int fd, short events = POLLIN | POLLOUT | POLLRDHUP) {
  pollfd entry{fd, events, 0};
  auto n = os.poll(&entry, 1, 0);
  return n ? entry.revents : static_cast<short>(-1);
}

}  // namespace daemonkit::fake::testing_support
