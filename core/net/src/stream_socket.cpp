#include "stream_socket.h"

namespace daemonkit::core::detail {

sys::Result<OwnedFd> stream_socket(sys::Syscalls& os, const SocketAddress& address,
                                   bool reuse_address) {
  auto made = os.socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!made) return sys::fail(made.error().about(to_string(address)));
  OwnedFd fd(os, *made);
  if (reuse_address) {
    const int on = 1;
    if (auto set = os.setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); !set) {
      return sys::fail(set.error().about(to_string(address)));
    }
  }
  return fd;
}

sys::Result<void> bind_and_listen(sys::Syscalls& os, const OwnedFd& fd,
                                  const SocketAddress& address, int backlog,
                                  const std::function<sys::Result<void>()>& after_bind) {
  if (auto bound = os.bind(fd.get(), address.data(), address.size()); !bound) {
    return sys::fail(bound.error().about(to_string(address)));
  }
  if (after_bind) {
    if (auto done = after_bind(); !done) return done;
  }
  if (auto listening = os.listen(fd.get(), backlog); !listening) {
    return sys::fail(listening.error().about(to_string(address)));
  }
  return {};
}

sys::Result<SocketAddress> bound_address(sys::Syscalls& os, const OwnedFd& fd) {
  sockaddr_storage name{};
  socklen_t len = sizeof name;
  if (auto got = os.getsockname(fd.get(), reinterpret_cast<sockaddr*>(&name), &len); !got) {
    return sys::fail(got.error());
  }
  auto address = SocketAddress::from(reinterpret_cast<const sockaddr*>(&name), len);
  if (!address) return sys::fail(EINVAL, "getsockname");
  return *address;
}

}  // namespace daemonkit::core::detail
