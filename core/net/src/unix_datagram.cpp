#include "daemonkit/core/net/unix_datagram.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "stream_socket.h"
#include "unix_socket_file.h"

namespace daemonkit::core {

namespace {

struct Bound {
  OwnedFd fd;
  std::optional<detail::BoundSocketFile> file;
};

// A datagram socket, bound to `name` when there is one (a path gets `mode`). On failure the
// file bound here is unlinked again.
sys::Result<Bound> unix_datagram_socket(sys::Syscalls& os, std::string_view name, mode_t mode) {
  auto made = os.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!made) return sys::fail(made.error().about(name));
  Bound out{OwnedFd(os, *made), std::nullopt};
  if (name.empty()) return out;
  auto address = SocketAddress::unix_name(name);
  if (!address) return sys::fail(detail::bad_unix_name(name, "bind"));
  if (auto bound = os.bind(out.fd.get(), address->data(), address->size()); !bound) {
    return sys::fail(bound.error().about(name));
  }
  if (!address->is_unix_path()) return out;
  const std::string path = address->host();
  auto file = detail::identify_bound_file(os, path);
  if (!file) {
    (void)os.unlink(path.c_str());
    return sys::fail(file.error());
  }
  out.file = std::move(*file);
  if (auto set = os.chmod(path.c_str(), mode); !set) {
    detail::unlink_if_ours(os, *out.file);
    return sys::fail(set.error().about(path));
  }
  return out;
}

DatagramPort::OnStop unlinker(sys::Syscalls& os,
                              const std::optional<detail::BoundSocketFile>& file) {
  if (!file) return {};
  return [&os, file = *file] { detail::unlink_if_ours(os, file); };
}

}  // namespace

ReactorResult<std::unique_ptr<DatagramPort>> listen_unix_datagram(Reactor& reactor,
                                                                  sys::Syscalls& os,
                                                                  std::string_view name,
                                                                  DatagramProtocol& protocol,
                                                                  UnixDatagramOptions options) {
  if (name.empty()) return reactor_fail(detail::bad_unix_name(name, "bind"));
  auto made = unix_datagram_socket(os, name, options.mode);
  if (!made) return reactor_fail(made.error());
  auto undo = unlinker(os, made->file);
  auto address = detail::bound_address(os, made->fd);
  if (!address) {
    if (undo) undo();
    return reactor_fail(address.error().about(name));
  }
  return DatagramPort::start(reactor, os, std::move(made->fd), *address, std::nullopt, protocol,
                             std::move(options.port), std::move(undo));
}

ReactorResult<std::unique_ptr<DatagramPort>> connect_unix_datagram(
    Reactor& reactor, sys::Syscalls& os, std::string_view name, DatagramProtocol& protocol,
    std::string_view bind_name, UnixDatagramOptions options) {
  auto peer = SocketAddress::unix_name(name);
  if (!peer) return reactor_fail(detail::bad_unix_name(name, "connect"));
  auto made = unix_datagram_socket(os, bind_name, options.mode);
  if (!made) return reactor_fail(made.error());
  auto undo = unlinker(os, made->file);
  const auto fail = [&](const sys::Error& error) {
    made->fd.reset();
    if (undo) undo();
    return reactor_fail(error);
  };
  if (auto done = os.connect(made->fd.get(), peer->data(), peer->size()); !done) {
    return fail(done.error().about(name));
  }
  auto address = detail::bound_address(os, made->fd);
  if (!address) return fail(address.error().about(name));
  return DatagramPort::start(reactor, os, std::move(made->fd), *address, *peer, protocol,
                             std::move(options.port), std::move(undo));
}

}  // namespace daemonkit::core
