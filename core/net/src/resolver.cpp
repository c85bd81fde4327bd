#include "daemonkit/core/net/resolver.h"

#include <netdb.h>

#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <utility>

namespace daemonkit::core {

namespace {

int errno_of(int gai_error, int saved_errno) {
  switch (gai_error) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
      return ENXIO;
    case EAI_AGAIN:
      return EAGAIN;
    case EAI_MEMORY:
      return ENOMEM;
    case EAI_SYSTEM:
      return saved_errno != 0 ? saved_errno : EIO;
    default:
      return EINVAL;
  }
}

// One look-up crossing threads: written by the pool thread, then read by the reactor thread
// after call_from_thread (whose queue orders the two).
struct Job {
  std::string host;
  std::uint16_t port = 0;
  Resolver::Done done;
  sys::Result<std::vector<SocketAddress>> result = sys::fail(EINVAL, "getaddrinfo");
};

}  // namespace

sys::Result<std::vector<SocketAddress>> ThreadPoolResolver::lookup(const std::string& host,
                                                                   std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  errno = 0;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) return sys::fail(sys::Error{errno_of(rc, errno), "getaddrinfo", host});
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  std::vector<SocketAddress> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    auto address = SocketAddress::from(a->ai_addr, a->ai_addrlen);
    if (address && address->is_ip()) out.push_back(*address);
  }
  if (out.empty()) return sys::fail(sys::Error{ENXIO, "getaddrinfo", host});
  return out;
}

void ThreadPoolResolver::resolve(const std::string& host, std::uint16_t port, Done done) {
  auto job = std::make_shared<Job>(Job{host, port, std::move(done)});
  Reactor& reactor = reactor_;
  const bool queued = reactor.call_in_thread([job, &reactor] {
    job->result = lookup(job->host, job->port);
    // The ring of thread calls may be full for a moment: the reactor thread empties it.
    while (!reactor.call_from_thread([job] { job->done(std::move(job->result)); })) {
      std::this_thread::yield();
    }
  });
  if (!queued) {
    // The pool has stopped (the reactor is shutting down): nobody will look it up.
    reactor.call_later(Duration{0}, [job] {
      job->done(sys::fail(sys::Error{ECANCELED, "getaddrinfo", job->host}));
    });
  }
}

}  // namespace daemonkit::core
