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

ReactorResult<std::unique_ptr<ListeningPort>> listen_ssl(Reactor& reactor, sys::Syscalls& os,
                                                         std::uint16_t port, ServerFactory& factory,
                                                         const TlsContext& context,
                                                         ListenOptions options) {
  if (context.role() != TlsContext::Role::kServer) {
    return reactor_fail(sys::Error{EINVAL, "listen_ssl", "a client TLS context"});
  }
  options.port.tls = context;
  return listen_tcp(reactor, os, port, factory, std::move(options));
}

std::unique_ptr<Connector> connect_ssl(Reactor& reactor, sys::Syscalls& os, std::string_view host,
                                       std::uint16_t port, ClientFactory& factory,
                                       const TlsContext& context, ConnectOptions options) {
  if (context.role() != TlsContext::Role::kClient) {
    return Connector::failed(reactor, os, factory,
                             sys::Error{EINVAL, "connect_ssl", "a server TLS context"});
  }
  options.tls = context;
  options.tls_start.server_name = std::string(host);
  return connect_tcp(reactor, os, host, port, factory, std::move(options));
}

}  // namespace daemonkit::core
