// Connector: one outgoing stream connection being made, then held — Twisted's tcp.Connector
// with its BaseClient. A non-blocking connect, the outcome read from SO_ERROR once the socket
// is writable, a timeout on the reactor's clock, stop_connecting; then the Connection, owned
// here until it is lost. Every outcome reaches the factory from the loop, never from inside the
// call that made the connector.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/resolver.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct ConnectOptions {
  // Twisted's 30 s; none waits as long as the kernel does (some two minutes for TCP).
  std::optional<Duration> timeout = std::chrono::seconds(30);
  // bind() before connect: the local address (and port, 0 for any) to connect from.
  std::optional<SocketAddress> bind_address;
  // Looks up a host that is not a numeric address (connect_tcp); none: such a host fails with
  // EINVAL. Must outlive the connector. Each address found is tried in turn until one
  // connects; the timeout covers the look-up and every attempt.
  Resolver* resolver = nullptr;
  StreamOptions stream;
  // Set (by connect_ssl, with a client context): the connection starts TLS with this context
  // before its protocol hears connection_made; tls_start.server_name is the name verified. One
  // that cannot start is closed and reported to connection_failed ("start_tls: ...").
  std::optional<TlsContext> tls;
  StartTlsOptions tls_start;
};

class Connector final : private Connection::Owner {
 public:
  enum class State { kConnecting, kConnected, kDisconnected };

  // Starts connecting to `address` (any stream family) on the next turn of the loop.
  // `factory` must outlive the connector.
  static std::unique_ptr<Connector> start(Reactor& reactor, sys::Syscalls& os,
                                          SocketAddress address, ClientFactory& factory,
                                          ConnectOptions options = {});
  // Looks `host` up with options.resolver (which must be set), then connects to the addresses
  // found, in order, until one answers.
  static std::unique_ptr<Connector> resolve_and_start(Reactor& reactor, sys::Syscalls& os,
                                                      std::string host, std::uint16_t port,
                                                      ClientFactory& factory,
                                                      ConnectOptions options);
  // Starts nothing and reports `failure` to the factory on the next turn (an address that
  // could not be made, say), so that callers see one path for every failure.
  static std::unique_ptr<Connector> failed(Reactor& reactor, sys::Syscalls& os,
                                           ClientFactory& factory, sys::Error failure);
  // Stops connecting, or closes the connection, telling nobody.
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // While connecting (or looking the host up): gives up; the factory hears connection_failed with ECANCELED on the next
  // turn. False (nothing done) once connected or failed.
  bool stop_connecting();
  [[nodiscard]] State state() const { return state_; }
  // The address being tried or connected to; unspecified while the host is looked up.
  [[nodiscard]] const SocketAddress& address() const { return address_; }
  // The connection while connected, else null.
  [[nodiscard]] Connection* connection() const { return connection_.get(); }

 private:
  Connector(Reactor& reactor, sys::Syscalls& os, SocketAddress address, ClientFactory& factory,
            ConnectOptions options);
  void schedule_timeout();
  void resolved(sys::Result<std::vector<SocketAddress>> found);
  // "127.0.0.1:80", or "example.org:80" before the look-up gave an address.
  [[nodiscard]] std::string target() const;
  void begin();
  void try_connect();
  void on_writable();
  void connected();
  void fail(const char* call, int code);
  void fail_later(sys::Error failure);
  void report(sys::Error failure);
  void stop_watching();
  void connection_ended(Connection& connection, const LossReason& reason) override;

  Reactor& reactor_;
  sys::Syscalls& os_;
  SocketAddress address_;
  std::string host_;
  std::uint16_t port_ = 0;
  // Addresses still to try after address_ (a look-up may give several).
  std::vector<SocketAddress> rest_;
  bool resolving_ = false;
  ClientFactory& factory_;
  ConnectOptions options_;
  State state_ = State::kConnecting;
  OwnedFd fd_;
  bool writer_watched_ = false;
  DelayedCall step_;  // the start, or a failure's report, on the next turn
  DelayedCall timeout_;
  std::unique_ptr<Connection> connection_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace daemonkit::core
