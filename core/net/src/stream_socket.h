// A listening stream socket made the way every port makes one: non-blocking, close-on-exec,
// each failing step named with the address it was about.
#pragma once

#include <functional>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core::detail {

// A new socket of `address`'s family, SO_REUSEADDR when asked.
[[nodiscard]] sys::Result<OwnedFd> stream_socket(sys::Syscalls& os, const SocketAddress& address,
                                                 bool reuse_address);

// bind, then `after_bind` (a UNIX port's chmod; it runs before listen, so nobody can connect
// before it is done), then listen. Errors carry the address as their subject.
[[nodiscard]] sys::Result<void> bind_and_listen(
    sys::Syscalls& os, const OwnedFd& fd, const SocketAddress& address, int backlog,
    const std::function<sys::Result<void>()>& after_bind = {});

// getsockname, as the address a port reports.
[[nodiscard]] sys::Result<SocketAddress> bound_address(sys::Syscalls& os, const OwnedFd& fd);

}  // namespace daemonkit::core::detail
