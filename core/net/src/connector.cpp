#include "daemonkit/core/net/connector.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace daemonkit::core {

Connector::Connector(Reactor& reactor, sys::Syscalls& os, SocketAddress address,
                     ClientFactory& factory, ConnectOptions options)
    : reactor_(reactor),
      os_(os),
      address_(address),
      factory_(factory),
      options_(std::move(options)) {}

std::unique_ptr<Connector> Connector::start(Reactor& reactor, sys::Syscalls& os,
                                            SocketAddress address, ClientFactory& factory,
                                            ConnectOptions options) {
  std::unique_ptr<Connector> connector(
      new Connector(reactor, os, address, factory, std::move(options)));
  Connector* c = connector.get();
  c->step_ = reactor.call_later(Duration{0}, [c] { c->begin(); });
  c->schedule_timeout();
  return connector;
}

std::unique_ptr<Connector> Connector::resolve_and_start(Reactor& reactor, sys::Syscalls& os,
                                                        std::string host, std::uint16_t port,
                                                        ClientFactory& factory,
                                                        ConnectOptions options) {
  Resolver& resolver = *options.resolver;
  std::unique_ptr<Connector> connector(
      new Connector(reactor, os, SocketAddress{}, factory, std::move(options)));
  Connector* c = connector.get();
  c->host_ = std::move(host);
  c->port_ = port;
  c->resolving_ = true;
  c->schedule_timeout();
  // The answer may come after the connector is gone, or after it stopped: both are checked on
  // the reactor's thread, where the answer arrives.
  resolver.resolve(c->host_, port,
                   [alive = c->alive_, c](sys::Result<std::vector<SocketAddress>> found) {
                     if (!*alive || !c->resolving_) return;
                     c->resolved(std::move(found));
                   });
  return connector;
}

void Connector::schedule_timeout() {
  if (!options_.timeout) return;
  timeout_ = reactor_.call_later(*options_.timeout, [this] {
    rest_.clear();
    fail("connect", ETIMEDOUT);
  });
}

void Connector::resolved(sys::Result<std::vector<SocketAddress>> found) {
  resolving_ = false;
  if (!found || found->empty()) {
    if (timeout_.active()) (void)timeout_.cancel();
    report(found ? sys::Error{ENXIO, "getaddrinfo", host_} : found.error());
    return;
  }
  address_ = found->front();
  rest_.assign(found->begin() + 1, found->end());
  begin();
}

std::string Connector::target() const {
  if (address_.family() == AF_UNSPEC && !host_.empty()) {
    return host_ + ":" + std::to_string(port_);
  }
  return to_string(address_);
}

std::unique_ptr<Connector> Connector::failed(Reactor& reactor, sys::Syscalls& os,
                                             ClientFactory& factory, sys::Error failure) {
  std::unique_ptr<Connector> connector(new Connector(reactor, os, {}, factory, {}));
  connector->fail_later(std::move(failure));
  return connector;
}

Connector::~Connector() {
  *alive_ = false;
  if (step_.active()) (void)step_.cancel();
  if (timeout_.active()) (void)timeout_.cancel();
  stop_watching();
  // The connection's transport closes its socket; its protocol hears nothing.
  connection_.reset();
}

bool Connector::stop_connecting() {
  if (state_ != State::kConnecting) return false;
  stop_watching();
  fd_.reset();
  resolving_ = false;
  rest_.clear();
  if (step_.active()) (void)step_.cancel();
  fail_later(sys::Error{ECANCELED, "connect", target()});
  state_ = State::kDisconnected;
  return true;
}

void Connector::begin() {
  auto made = os_.socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!made) {
    fail("socket", made.error().code);
    return;
  }
  fd_ = OwnedFd(os_, *made);
  if (options_.bind_address) {
    const SocketAddress& from = *options_.bind_address;
    if (auto bound = os_.bind(fd_.get(), from.data(), from.size()); !bound) {
      const sys::Error failure{bound.error().code, "bind", to_string(from)};
      fd_.reset();
      if (timeout_.active()) (void)timeout_.cancel();
      report(failure);
      return;
    }
  }
  try_connect();
}

void Connector::try_connect() {
  auto done = os_.connect(fd_.get(), address_.data(), address_.size());
  if (done) {
    connected();
    return;
  }
  const int code = done.error().code;
  if (code == EISCONN) {
    connected();
    return;
  }
  if (code != EINPROGRESS && code != EALREADY && code != EINTR) {
    fail("connect", code);
    return;
  }
  if (writer_watched_) return;
  if (auto added = reactor_.add_writer(fd_.get(), [this] { on_writable(); }); !added) {
    fail("epoll_ctl", added.error().error_number());
    return;
  }
  writer_watched_ = true;
}

// Writable: the connect finished one way or the other, and SO_ERROR says which. A socket that
// is writable with no error may only be one whose connect has not begun in earnest (Linux
// reports an unconnected TCP socket writable), so the connect is asked again, as Twisted's
// doConnect does: EISCONN is the success, EINPROGRESS a wait.
void Connector::on_writable() {
  int error = 0;
  socklen_t len = sizeof error;
  if (auto got = os_.getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &error, &len); !got) {
    fail("getsockopt", got.error().code);
    return;
  }
  if (error != 0) {
    fail("connect", error);
    return;
  }
  try_connect();
}

void Connector::connected() {
  stop_watching();
  if (timeout_.active()) (void)timeout_.cancel();
  std::unique_ptr<Protocol> protocol = factory_.build_protocol(address_);
  if (!protocol) {
    fd_.reset();
    state_ = State::kDisconnected;
    return;
  }
  // socket() made it with SOCK_NONBLOCK.
  auto made = Connection::open(reactor_, os_, std::move(fd_), std::move(protocol), address_, this,
                               options_.stream, /*known_nonblocking=*/true);
  if (!made) {
    state_ = State::kDisconnected;
    report(made.error().os);
    return;
  }
  if (options_.tls) {
    if (auto tls = (*made)->start_tls(*options_.tls, options_.tls_start); !tls) {
      state_ = State::kDisconnected;
      report(sys::Error{EPROTO, "start_tls", tls.error().message});
      return;
    }
  }
  connection_ = std::move(*made);
  state_ = State::kConnected;
  connection_->start();
}

void Connector::fail(const char* call, int code) {
  stop_watching();
  if (step_.active()) (void)step_.cancel();
  fd_.reset();
  resolving_ = false;
  // Another address of the host may answer (an IPv6 one refused, its IPv4 twin listening).
  if (!rest_.empty()) {
    address_ = rest_.front();
    rest_.erase(rest_.begin());
    begin();
    return;
  }
  if (timeout_.active()) (void)timeout_.cancel();
  report(sys::Error{code, call, target()});
}

void Connector::fail_later(sys::Error failure) {
  if (timeout_.active()) (void)timeout_.cancel();
  step_ =
      reactor_.call_later(Duration{0}, [this, failure = std::move(failure)] { report(failure); });
}

void Connector::report(sys::Error failure) {
  state_ = State::kDisconnected;
  factory_.connection_failed(failure);
}

void Connector::connection_ended(Connection& /*connection*/, const LossReason& reason) {
  const auto alive = alive_;
  state_ = State::kDisconnected;
  factory_.connection_lost(reason);
  // Last: the connection is the caller, and this ends it.
  if (*alive) connection_.reset();
}

void Connector::stop_watching() {
  if (!writer_watched_) return;
  (void)reactor_.remove_writer(fd_.get());
  writer_watched_ = false;
}

}  // namespace daemonkit::core
