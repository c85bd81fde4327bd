// Resolver: host names to addresses for connect_tcp, behind an interface so that tests answer
// from a table and never touch DNS. ThreadPoolResolver asks getaddrinfo on the reactor's
// thread pool (getaddrinfo blocks, and is a library call, not a system call the Syscalls seam
// could carry).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/result.h"

namespace daemonkit::core {

class Resolver {
 public:
  // The addresses to try, in order, or why there are none: a sys::Error on "getaddrinfo" with
  // the host as its subject.
  using Done = std::function<void(sys::Result<std::vector<SocketAddress>>)>;

  virtual ~Resolver() = default;
  // Looks `host` up for stream sockets on `port`. `done` runs once, on the reactor's thread,
  // and never from inside this call. Whoever asked and is gone by then ignores the answer
  // (done must check that itself).
  virtual void resolve(const std::string& host, std::uint16_t port, Done done) = 0;
};

// getaddrinfo on the reactor's thread pool, the answer brought back with call_from_thread. Its
// errors become errnos, as getaddrinfo has its own codes: EAI_NONAME, EAI_NODATA and
// EAI_ADDRFAMILY are ENXIO ("No such device or address"), EAI_AGAIN EAGAIN, EAI_MEMORY ENOMEM,
// EAI_SYSTEM its errno, others EINVAL. Must outlive the reactor's thread pool (the reactor).
class ThreadPoolResolver final : public Resolver {
 public:
  explicit ThreadPoolResolver(Reactor& reactor) : reactor_(reactor) {}
  void resolve(const std::string& host, std::uint16_t port, Done done) override;

  // The blocking look-up itself, on the calling thread.
  [[nodiscard]] static sys::Result<std::vector<SocketAddress>> lookup(const std::string& host,
                                                                      std::uint16_t port);

 private:
  Reactor& reactor_;
};

}  // namespace daemonkit::core
