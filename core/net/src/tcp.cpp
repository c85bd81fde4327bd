#include "daemonkit/core/net/tcp.h"

#include <cerrno>
#include <utility>

#include <fmt/format.h>

#include "stream_socket.h"

namespace daemonkit::core {

ReactorResult<std::unique_ptr<ListeningPort>> listen_tcp(Reactor& reactor, sys::Syscalls& os,
                                                         std::uint16_t port, ServerFactory& factory,
                                                         ListenOptions options) {
  auto address = SocketAddress::ip(options.interface, port);
  if (!address) {
    return reactor_fail(sys::Error{
        EINVAL, "bind", fmt::format("{}:{}, not a numeric address", options.interface, port)});
  }
  auto fd = detail::stream_socket(os, *address, true);
  if (!fd) return reactor_fail(fd.error());
  if (auto up = detail::bind_and_listen(os, *fd, *address, options.backlog); !up) {
    return reactor_fail(up.error());
  }
  // Port 0 was a free port: the kernel says which.
  auto bound = detail::bound_address(os, *fd);
  if (!bound) return reactor_fail(bound.error().about(to_string(*address)));
  return ListeningPort::start(reactor, os, std::move(*fd), *bound, factory,
                              std::move(options.port));
}

std::unique_ptr<Connector> connect_tcp(Reactor& reactor, sys::Syscalls& os, std::string_view host,
                                       std::uint16_t port, ClientFactory& factory,
                                       ConnectOptions options) {
  auto address = SocketAddress::ip(host, port);
  if ((!address || host.empty()) && options.resolver != nullptr && !host.empty()) {
    return Connector::resolve_and_start(reactor, os, std::string(host), port, factory,
                                        std::move(options));
  }
  if (!address || host.empty()) {
    return Connector::failed(
        reactor, os, factory,
        sys::Error{EINVAL, "connect", fmt::format("{}:{}, not a numeric address", host, port)});
  }
  return Connector::start(reactor, os, *address, factory, std::move(options));
}

}  // namespace daemonkit::core
