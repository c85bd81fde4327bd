#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/sys/hot_path.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include <fmt/format.h>

namespace daemonkit::core {

namespace {

// Errors of one connection (it was reset while queued, a firewall refused it, a signal): the
// next one may be fine, so the batch goes on.
bool one_connection_failed(int code) {
  return code == ECONNABORTED || code == EPERM || code == EPROTO || code == EINTR;
}

}  // namespace

ListeningPort::ListeningPort(Reactor& reactor, sys::Syscalls& os, OwnedFd listening,
                             SocketAddress address, ServerFactory& factory, PortOptions options,
                             OnStop on_stop)
    : reactor_(reactor),
      os_(os),
      listening_(std::move(listening)),
      address_(address),
      factory_(factory),
      options_(std::move(options)),
      on_stop_(std::move(on_stop)) {
  if (options_.accepts_per_wakeup < 1) options_.accepts_per_wakeup = 1;
}

ReactorResult<std::unique_ptr<ListeningPort>> ListeningPort::start(
    Reactor& reactor, sys::Syscalls& os, OwnedFd listening, SocketAddress address,
    ServerFactory& factory, PortOptions options, OnStop on_stop) {
  std::unique_ptr<ListeningPort> port(new ListeningPort(
      reactor, os, std::move(listening), address, factory, std::move(options), std::move(on_stop)));
  port->reserve();
  const int fd = port->listening_.get();
  if (auto added = reactor.add_reader(fd, [p = port.get()] { p->on_readable(); }); !added) {
    // The owner's undo still runs: the port existed, if only for a moment.
    (void)port->stop_listening();
    return tl::unexpected(added.error());
  }
  port->reading_ = true;
  return port;
}

ListeningPort::~ListeningPort() {
  *alive_ = false;
  (void)stop_listening();
  // Each protocol hears the end, so that what it holds for the connection (a session, a
  // registration elsewhere) is let go: Twisted's port never ends its connections silently.
  connections_.end_all(LossReason::aborted());
}

DAEMONKIT_HOT void ListeningPort::connection_ended(Connection& connection,
                                                   const LossReason& /*reason*/) {
  // Last thing the connection does: it may be destroyed here.
  (void)connections_.remove(connection);
}

bool ListeningPort::stop_listening() {
  if (!listening_) return false;
  if (retry_.active()) (void)retry_.cancel();
  if (reading_) (void)reactor_.remove_reader(listening_.get());
  reading_ = false;
  listening_.reset();
  reserve_.reset();
  if (auto undo = std::exchange(on_stop_, nullptr)) undo();
  return true;
}

void ListeningPort::reserve() {
  if (reserve_) return;
  // "/" exists in every root, a chroot's too; /dev/null may not.
  auto opened = os_.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (!opened) {
    log(fmt::format("could not reserve a descriptor for EMFILE recovery: {}",
                    sys::to_string(opened.error())));
    return;
  }
  reserve_ = OwnedFd(os_, *opened);
}

DAEMONKIT_HOT void ListeningPort::on_readable() {
  const auto alive = alive_;
  for (int i = 0; i < options_.accepts_per_wakeup && listening_; ++i) {
    // Not zeroed: accept4 writes the `len` bytes that are read.
    sockaddr_storage peer;  // NOLINT(cppcoreguidelines-pro-type-member-init)
    socklen_t len = sizeof peer;
    auto accepted = os_.accept4(listening_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                                SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!accepted) {
      const int code = accepted.error().code;
      if (code == EAGAIN) return;
      if (one_connection_failed(code)) {
        log(fmt::format("could not accept a connection on {}: {}", address_,
                        sys::to_string(accepted.error())));
        continue;
      }
      if (code == EMFILE || code == ENFILE) {
        shed_pending(accepted.error());
      } else {
        pause_accepting(accepted.error());
      }
      return;
    }
    OwnedFd fd(os_, *accepted);
    const auto from = SocketAddress::from(reinterpret_cast<const sockaddr*>(&peer), len);
    take(std::move(fd), from.value_or(SocketAddress{}));
    // A protocol may have stopped the port, or destroyed it, from connection_made.
    if (!*alive) return;
  }
}

DAEMONKIT_HOT void ListeningPort::take(OwnedFd fd, const SocketAddress& peer) {
  std::unique_ptr<Protocol> protocol = factory_.build_protocol(peer);
  if (!protocol) return;  // refused: `fd` closes here
  // accept4 made it with SOCK_NONBLOCK.
  auto made = Connection::open(reactor_, os_, std::move(fd), std::move(protocol), peer, this,
                               options_.stream, /*known_nonblocking=*/true);
  if (!made) {
    log(fmt::format("could not watch the connection from {}: {}", peer, to_string(made.error())));
    return;
  }
  Connection& connection = **made;
  if (options_.tls) {
    if (auto tls = connection.start_tls(*options_.tls, {{}, options_.tls_stream}); !tls) {
      log(fmt::format("could not start TLS on the connection from {}: {}", peer,
                      tls.error().message));
      return;  // closed with `made`, its protocol never told
    }
  }
  connections_.push_back(std::move(*made));
  connection.start();
}

// Out of descriptors, the waiting connections would keep the socket readable and the loop
// spinning. Closing the reserve frees one descriptor: each waiting connection is accepted
// with it and closed at once (its client sees the close instead of waiting for a reply that
// cannot come), then the reserve is taken again. Bounded by a few backlogs, so a flood cannot
// hold the loop here; what is left is shed on the next wake-up.
void ListeningPort::shed_pending(const sys::Error& error) {
  if (!reserve_) {
    pause_accepting(error);
    return;
  }
  reserve_.reset();
  std::size_t closed = 0;
  constexpr std::size_t kMaxShedPerWakeup = 4 * SOMAXCONN;
  while (closed < kMaxShedPerWakeup && listening_) {
    auto accepted = os_.accept4(listening_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (accepted) {
      OwnedFd(os_, *accepted).reset();
      ++closed;
      continue;
    }
    if (one_connection_failed(accepted.error().code)) continue;
    break;  // EAGAIN: all shed; EMFILE: another thread took the slot
  }
  shed_ += closed;
  reserve();
  log(fmt::format("{} on {}: closed {} waiting connection(s) to recover", sys::to_string(error),
                  address_, closed));
  // The slot was taken by someone else before the reserve could shed anything: do not spin.
  if (closed == 0) pause_accepting(error);
}

void ListeningPort::pause_accepting(const sys::Error& error) {
  log(fmt::format(
      "could not accept a connection on {}: {}; accepting again in {} ms", address_,
      sys::to_string(error),
      std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_after).count()));
  if (!listening_ || retry_.active()) return;
  if (reading_) {
    if (auto removed = reactor_.remove_reader(listening_.get()); removed) reading_ = false;
  }
  retry_ = reactor_.call_later(options_.retry_after, [this] {
    if (!listening_) return;
    reserve();
    if (auto added = reactor_.add_reader(listening_.get(), [this] { on_readable(); }); added) {
      reading_ = true;
    } else {
      log(fmt::format("could not watch {} again: {}", address_, to_string(added.error())));
    }
  });
}

}  // namespace daemonkit::core
