#include "daemonkit/core/net/unix_stream.h"

#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "stream_socket.h"
#include "unix_lock.h"
#include "unix_socket_file.h"

namespace daemonkit::core {

ReactorResult<std::unique_ptr<ListeningPort>> listen_unix(Reactor& reactor, sys::Syscalls& os,
                                                          std::string_view name,
                                                          ServerFactory& factory,
                                                          UnixListenOptions options) {
  auto address = SocketAddress::unix_name(name);
  if (!address) return reactor_fail(detail::bad_unix_name(name, "bind"));
  const bool is_path = address->is_unix_path();
  const std::string path = is_path ? address->host() : std::string();

  std::shared_ptr<detail::UnixLock> lock;
  if (options.lock_file && is_path) {
    auto taken = detail::UnixLock::acquire(os, path + ".lock");
    if (!taken) return reactor_fail(taken.error());
    lock = std::make_shared<detail::UnixLock>(std::move(*taken));
    // The lock is ours: whoever bound a socket file here does not serve it any more.
    auto found = os.lstat(path.c_str());
    if (!found && found.error().code != ENOENT) return reactor_fail(found.error().about(path));
    if (found && S_ISSOCK(found->st_mode)) {
      log_line(options.port.log, fmt::format("Removing stale socket {}", path));
      if (auto removed = os.unlink(path.c_str()); !removed && removed.error().code != ENOENT) {
        return reactor_fail(removed.error().about(path));
      }
    }
  }

  auto fd = detail::stream_socket(os, *address, false);
  if (!fd) return reactor_fail(fd.error());
  std::optional<detail::BoundSocketFile> bound;
  auto after_bind = [&]() -> sys::Result<void> {
    if (!is_path) return {};
    auto made = detail::identify_bound_file(os, path);
    if (!made) {
      // Unlinked below: ours was the bind, whatever lstat says.
      bound = detail::BoundSocketFile{path};
      return sys::fail(made.error());
    }
    bound = std::move(*made);
    if (auto set = os.chmod(path.c_str(), options.mode); !set) {
      return sys::fail(set.error().about(path));
    }
    return {};
  };
  if (auto up = detail::bind_and_listen(os, *fd, *address, options.backlog, after_bind); !up) {
    // The file bound here goes with the failure (the lock is released with `lock`).
    if (bound) (void)os.unlink(path.c_str());
    return reactor_fail(up.error());
  }

  ListeningPort::OnStop undo = [&os, bound, lock]() mutable {
    if (bound) detail::unlink_if_ours(os, *bound);
    lock.reset();
  };
  return ListeningPort::start(reactor, os, std::move(*fd), *address, factory,
                              std::move(options.port), std::move(undo));
}

std::unique_ptr<Connector> connect_unix(Reactor& reactor, sys::Syscalls& os, std::string_view name,
                                        ClientFactory& factory, ConnectOptions options) {
  auto address = SocketAddress::unix_name(name);
  if (!address)
    return Connector::failed(reactor, os, factory, detail::bad_unix_name(name, "connect"));
  return Connector::start(reactor, os, *address, factory, std::move(options));
}

}  // namespace daemonkit::core
