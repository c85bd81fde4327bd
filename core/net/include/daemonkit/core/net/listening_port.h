// ListeningPort: a listening stream socket on the reactor — Twisted's tcp.Port and unix.Port.
// It accepts connections in bounded batches, gives each a protocol from its factory, owns the
// connections it made until each is lost, survives running out of descriptors without
// spinning, and can stop listening while its connections go on.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

#include "daemonkit/core/base/log_sink.h"
#include "daemonkit/core/base/monotonic_time.h"
#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/base/socket_address.h"
#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/connection_list.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/tls_context.h"
#include "daemonkit/core/net/tls_stream.h"
#include "daemonkit/core/reactor/delayed_call.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/core/reactor/stream_transport.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct PortOptions {
  // Where accept errors and the descriptor-exhaustion recovery are logged.
  LogSink log;
  // Connections accepted per wake-up at most. Twisted takes up to 100 (growing by 20), libuv
  // one. 64 drains a burst of 10,000 connects in some 160 wake-ups, and between two batches
  // the loop serves the connections already accepted (their first requests wait otherwise):
  // epoll is level-triggered, so what is left is reported again at once.
  int accepts_per_wakeup = 64;
  // How long accepting pauses after an error that the next accept would only repeat (ENOBUFS,
  // ENOMEM, or EMFILE with no reserve descriptor to shed connections with). Retrying at once
  // would spin: the listening socket stays readable.
  Duration retry_after = std::chrono::milliseconds(100);
  // The accepted connections' transport options.
  StreamOptions stream;
  // Set (by listen_ssl, with a server context): every accepted connection starts TLS with this
  // context before its protocol hears connection_made. The side is the context's role, as for
  // Connection::start_tls; one that cannot start is logged and closed.
  std::optional<TlsContext> tls;
  TlsStreamOptions tls_stream;
};

class ListeningPort final : private Connection::Owner {
 public:
  // What the port's owner undoes when it stops listening (a UNIX port unlinks its path and
  // releases its lock file), run once, after the socket is closed.
  using OnStop = std::function<void()>;

  // Starts accepting on `listening` (bound, listening, any family): opens the reserve
  // descriptor (see shed_pending) and registers the reader. `factory` must outlive the port.
  static ReactorResult<std::unique_ptr<ListeningPort>> start(
      Reactor& reactor, sys::Syscalls& os, OwnedFd listening, SocketAddress address,
      ServerFactory& factory, PortOptions options, OnStop on_stop = {});
  // Stops listening and ends every connection still open: each protocol hears connection_lost
  // once, "aborted" (or the loss it was about to hear), from inside this destructor. A protocol
  // may destroy what owns the port from there (a service that stops itself): the port is going
  // already, and each connection has left it before its protocol is told.
  ~ListeningPort();
  ListeningPort(const ListeningPort&) = delete;
  ListeningPort& operator=(const ListeningPort&) = delete;

  // Closes the listening socket (connections not yet accepted are reset by the kernel) and
  // runs the owner's undo. Connections already made go on. False if it had stopped already.
  bool stop_listening();
  [[nodiscard]] bool listening() const { return listening_.valid(); }
  // The address bound: for TCP with the port the kernel chose when 0 was asked.
  [[nodiscard]] const SocketAddress& address() const { return address_; }
  // Connections made and not yet lost.
  [[nodiscard]] std::size_t connections() const { return connections_.size(); }
  // Connections shed by the descriptor-exhaustion recovery, since the start.
  [[nodiscard]] std::size_t shed() const { return shed_; }
  [[nodiscard]] int fd() const { return listening_.get(); }

 private:
  ListeningPort(Reactor& reactor, sys::Syscalls& os, OwnedFd listening, SocketAddress address,
                ServerFactory& factory, PortOptions options, OnStop on_stop);
  void on_readable();
  // `fd`: from accept4 with SOCK_NONBLOCK (Connection::open does not ask again).
  void take(OwnedFd fd, const SocketAddress& peer);
  void shed_pending(const sys::Error& error);
  void pause_accepting(const sys::Error& error);
  void reserve();
  void log(std::string_view line) const { log_line(options_.log, line); }
  void connection_ended(Connection& connection, const LossReason& reason) override;

  Reactor& reactor_;
  sys::Syscalls& os_;
  OwnedFd listening_;
  SocketAddress address_;
  ServerFactory& factory_;
  PortOptions options_;
  OnStop on_stop_;
  // One descriptor kept open so that, when accept fails with EMFILE or ENFILE, closing it
  // frees a slot to accept and close the waiting connections with (libuv's and Twisted's
  // trick); otherwise they stay queued, the socket stays readable and the loop spins.
  OwnedFd reserve_;
  bool reading_ = false;
  DelayedCall retry_;
  std::size_t shed_ = 0;
  ConnectionList connections_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace daemonkit::core
