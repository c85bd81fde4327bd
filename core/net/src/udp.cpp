#include "daemonkit/core/net/udp.h"

#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "stream_socket.h"

namespace daemonkit::core {

ReactorResult<std::unique_ptr<DatagramPort>> listen_udp(Reactor& reactor, sys::Syscalls& os,
                                                        std::uint16_t port,
                                                        DatagramProtocol& protocol,
                                                        UdpOptions options) {
  auto address = SocketAddress::ip(options.interface, port);
  if (!address) {
    return reactor_fail(sys::Error{
        EINVAL, "bind", fmt::format("{}:{}, not a numeric address", options.interface, port)});
  }
  auto made = os.socket(address->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!made) return reactor_fail(made.error().about(to_string(*address)));
  OwnedFd fd(os, *made);
  if (options.reuse_address) {
    const int on = 1;
    if (auto set = os.setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); !set) {
      return reactor_fail(set.error().about(to_string(*address)));
    }
  }
  if (auto bound = os.bind(fd.get(), address->data(), address->size()); !bound) {
    return reactor_fail(bound.error().about(to_string(*address)));
  }
  // Port 0 was a free port: the kernel says which.
  auto bound = detail::bound_address(os, fd);
  if (!bound) return reactor_fail(bound.error().about(to_string(*address)));
  return DatagramPort::start(reactor, os, std::move(fd), *bound, std::nullopt, protocol,
                             std::move(options.port));
}

}  // namespace daemonkit::core
