// The calls the fake does not model yet. They fail with ENOSYS, are recorded, and can still be
// made to fail differently by fault injection. Each area replaces its stubs here when it lands
// (signalfd; sockets as new OpenFile kinds). epoll, eventfd and poll live in epoll.cpp.
#include "daemonkit/fake/fake_syscalls.h"

#include "fake_syscalls_call.h"

namespace daemonkit::fake {

using detail::Process;

sys::Result<int> FakeSyscalls::socket(int domain, int type, int protocol) {
  return call<int>("socket", {arg(domain), arg(type), arg(protocol)},
                   [](Process&) -> sys::Result<int> { return sys::fail(ENOSYS, "socket"); });
}

sys::Result<void> FakeSyscalls::bind(int fd, const struct sockaddr*, socklen_t len) {
  return call<void>("bind", {arg(fd), arg(len)},
                    [](Process&) -> sys::Result<void> { return sys::fail(ENOSYS, "bind"); });
}

sys::Result<void> FakeSyscalls::listen(int fd, int backlog) {
  return call<void>("listen", {arg(fd), arg(backlog)},
                    [](Process&) -> sys::Result<void> { return sys::fail(ENOSYS, "listen"); });
}

sys::Result<int> FakeSyscalls::accept4(int fd, struct sockaddr*, socklen_t*, int flags) {
  return call<int>("accept4", {arg(fd), arg(flags)},
                   [](Process&) -> sys::Result<int> { return sys::fail(ENOSYS, "accept4"); });
}

sys::Result<void> FakeSyscalls::connect(int fd, const struct sockaddr*, socklen_t len) {
  return call<void>("connect", {arg(fd), arg(len)},
                    [](Process&) -> sys::Result<void> { return sys::fail(ENOSYS, "connect"); });
}

sys::Result<std::size_t> FakeSyscalls::sendto(int fd, const void*, std::size_t len, int flags,
                                              const struct sockaddr*, socklen_t) {
  return call<std::size_t>("sendto", {arg(fd), arg(len), arg(flags)},
                           [](Process&) -> sys::Result<std::size_t> {
                             return sys::fail(ENOSYS, "sendto");
                           });
}

sys::Result<std::size_t> FakeSyscalls::recvfrom(int fd, void*, std::size_t len, int flags,
                                                struct sockaddr*, socklen_t*) {
  return call<std::size_t>("recvfrom", {arg(fd), arg(len), arg(flags)},
                           [](Process&) -> sys::Result<std::size_t> {
                             return sys::fail(ENOSYS, "recvfrom");
                           });
}

sys::Result<void> FakeSyscalls::setsockopt(int fd, int level, int name, const void*, socklen_t) {
  return call<void>("setsockopt", {arg(fd), arg(level), arg(name)},
                    [](Process&) -> sys::Result<void> { return sys::fail(ENOSYS, "setsockopt"); });
}

sys::Result<void> FakeSyscalls::getsockopt(int fd, int level, int name, void*, socklen_t*) {
  return call<void>("getsockopt", {arg(fd), arg(level), arg(name)},
                    [](Process&) -> sys::Result<void> { return sys::fail(ENOSYS, "getsockopt"); });
}

sys::Result<void> FakeSyscalls::getsockname(int fd, struct sockaddr*, socklen_t*) {
  return call<void>("getsockname", {arg(fd)}, [](Process&) -> sys::Result<void> {
    return sys::fail(ENOSYS, "getsockname");
  });
}

}  // namespace daemonkit::fake
