#include "daemonkit/core/app/stream_server_service.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "listen_error.h"

#include "daemonkit/core/net/tcp.h"
#include "daemonkit/core/net/unix_stream.h"

namespace daemonkit::core {
namespace {

int family_of(SocketDomain domain) {
  switch (domain) {
    case SocketDomain::kInet:
      return AF_INET;
    case SocketDomain::kInet6:
      return AF_INET6;
    case SocketDomain::kUnix:
      return AF_UNIX;
  }
  return AF_UNSPEC;
}

}  // namespace

namespace detail {

StepError listen_error(const ServerEndpoint& endpoint, std::string_view why,
                       std::optional<sys::Error> cause) {
  StepError error =
      StepError::plain(StepKind::kApplication, fmt::format("{}: {}", to_string(endpoint), why));
  error.cause = std::move(cause);
  return error;
}

StepError listen_error(const ServerEndpoint& endpoint, const ReactorError& error) {
  if (error.code != ReactorErrc::kOs) return listen_error(endpoint, to_string(error));
  // core/net's OS errors name their call and address already ("bind(127.0.0.1:80): ..."):
  // the endpoint's kind is all they lack, and the whole string again would push the errno past
  // the 100 bytes a launcher is told.
  std::string kind = to_string(endpoint);
  kind.resize(std::min(kind.size(), kind.find(':')));
  StepError failed =
      StepError::plain(StepKind::kApplication, fmt::format("{}: {}", kind, to_string(error)));
  failed.cause = error.os;
  return failed;
}

}  // namespace detail

using detail::listen_error;

StreamServerService::StreamServerService(Reactor& reactor, sys::Syscalls& os,
                                         ServerEndpoint endpoint, ServerFactory& factory,
                                         StreamServerOptions options, std::string name)
    : Service(std::move(name)),
      reactor_(reactor),
      os_(os),
      endpoint_(std::move(endpoint)),
      factory_(factory),
      options_(std::move(options)),
      self_(std::make_shared<StreamServerService*>(this)) {
  if (!options_.port.log) options_.port.log = options_.log;
}

EndpointResult<std::shared_ptr<StreamServerService>> StreamServerService::from_string(
    Reactor& reactor, sys::Syscalls& os, std::string_view endpoint, ServerFactory& factory,
    StreamServerOptions options, std::string name) {
  auto parsed = parse_server_endpoint(endpoint);
  if (!parsed) return tl::unexpected(parsed.error());
  return std::make_shared<StreamServerService>(reactor, os, std::move(*parsed), factory,
                                               std::move(options), std::move(name));
}

StreamServerService::~StreamServerService() {
  self_.reset();
  if (drain_timer_.active()) (void)drain_timer_.cancel();
}

StepResult<void> StreamServerService::do_privileged_start() { return listen(); }

StepResult<void> StreamServerService::do_start() {
  // Twisted's rule: start listens only if privileged_start did not.
  if (port_) return {};
  return listen();
}

StepResult<void> StreamServerService::listen() {
  aborted_ = 0;
  auto opened = std::visit(
      [&](const auto& e) -> StepResult<std::unique_ptr<ListeningPort>> {
        using E = std::decay_t<decltype(e)>;
        ReactorResult<std::unique_ptr<ListeningPort>> port = reactor_fail(ReactorErrc::kOs);
        if constexpr (std::is_same_v<E, TcpServerEndpoint>) {
          ListenOptions o;
          o.backlog = e.backlog;
          o.interface = e.interface.empty() && e.ipv6 ? std::string("::") : e.interface;
          o.port = options_.port;
          port = listen_tcp(reactor_, os_, e.port, factory_, std::move(o));
        } else if constexpr (std::is_same_v<E, UnixServerEndpoint>) {
          UnixListenOptions o;
          o.backlog = e.backlog;
          o.mode = e.mode;
          o.lock_file = e.lockfile && !e.abstract;
          o.port = options_.port;
          const std::string name = e.abstract ? "@" + e.path : e.path;
          port = listen_unix(reactor_, os_, name, factory_, std::move(o));
        } else if constexpr (std::is_same_v<E, SslServerEndpoint>) {
          if (options_.listen_ssl == nullptr) {
            return step_failed(listen_error(
                endpoint_,
                "this program has no TLS (give app::run or StreamServerOptions listen_ssl: "
                "core::listen_ssl_endpoint)"));
          }
          return options_.listen_ssl(reactor_, os_, e, factory_, options_.port);
        } else {
          if (options_.activated == nullptr) {
            return step_failed(listen_error(endpoint_,
                                            "no sockets were passed by a service "
                                            "manager (LISTEN_FDS)"));
          }
          auto fd = e.index ? options_.activated->take(*e.index) : options_.activated->take(e.name);
          if (!fd)
            return step_failed(listen_error(endpoint_, sys::to_string(fd.error()), fd.error()));
          port = adopt_stream_port(reactor_, os_, std::move(*fd), factory_, options_.port);
          if (port && (*port)->address().family() != family_of(e.domain)) {
            // The socket is closed with the port: it was taken for this endpoint, which cannot
            // use it, and leaving it open would keep the manager's clients waiting on it.
            return step_failed(listen_error(endpoint_,
                                            "the socket passed is not of the domain asked for",
                                            sys::Error{EAFNOSUPPORT, "socket activation", {}}));
          }
        }
        if (!port) return step_failed(listen_error(endpoint_, port.error()));
        return std::move(*port);
      },
      endpoint_);
  if (!opened) return step_failed(opened.error());
  port_ = std::move(*opened);
  return {};
}

// The port, and the connections it owns, are destroyed only from a timer of the loop: a stop
// may come from inside one of those connections' callbacks (a protocol that stops its own
// service), or from the factory's build_protocol inside the port's accept, and destroying them
// there would pull the object out from under the call that is running. The listening socket
// itself is closed at once, so no connection is accepted after stop() returns.
Completion StreamServerService::do_stop() {
  if (!port_) return Completion::done();
  (void)port_->stop_listening();
  stopping_.emplace();
  Completion done = *stopping_;
  drain_deadline_ = reactor_.now() + options_.drain_timeout.value_or(Duration::zero());
  check_after(Duration::zero());
  return done;
}

void StreamServerService::check_drain() {
  if (port_->connections() == 0 || reactor_.now() >= drain_deadline_) {
    finish_stop();
    return;
  }
  check_after(std::min(options_.drain_check, drain_deadline_ - reactor_.now()));
}

void StreamServerService::check_after(Duration wait) {
  drain_timer_ = reactor_.call_later(wait, [self = std::weak_ptr<StreamServerService*>(self_)] {
    if (const auto alive = self.lock()) (*alive)->check_drain();
  });
}

void StreamServerService::finish_stop() {
  aborted_ = port_->connections();
  if (aborted_ > 0 && options_.drain_timeout) {
    log_line(options_.log,
             fmt::format("{}: closing {} connection{} still open after {:.3f} seconds", label(),
                         aborted_, aborted_ == 1 ? "" : "s",
                         std::chrono::duration<double>(*options_.drain_timeout).count()));
  }
  // Everything this needs is taken out of the service first: the port's destruction ends the
  // connections still open, and a protocol may let go of this service from its
  // connection_lost (the last reference to it), so nothing of `this` is touched after.
  Completion done = *std::exchange(stopping_, std::nullopt);
  std::unique_ptr<ListeningPort> port = std::move(port_);
  port.reset();
  done.complete();
}

}  // namespace daemonkit::core
