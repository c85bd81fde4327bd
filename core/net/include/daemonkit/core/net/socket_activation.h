// Socket activation: the listening sockets a service manager (systemd, or `daemonkit run`
// passing its own on) opened for this process, read as sd_listen_fds(3) reads them, and the
// adopt calls that put such a socket on the reactor (Twisted's IReactorSocket).
//
// Ownership: listen_fds takes every passed descriptor (3, 4, ... N+2) into an ActivatedSockets,
// which closes the ones nobody took. take() hands one out as an OwnedFd; the adopt calls take
// an OwnedFd and own the socket from then on (they close it on every path, also when they
// fail). Unlike Twisted's UNIX ports, an adopted socket's path is never chmodded or unlinked:
// the manager that made it owns the name.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemonkit/core/base/owned_fd.h"
#include "daemonkit/core/net/connection.h"
#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/net/protocol.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/result.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

// $LISTEN_PID, $LISTEN_FDS and $LISTEN_FDNAMES. Read at the edge (main) into this value, so the
// logic below never touches the process's environment and tests give it any values.
struct ActivationVariables {
  std::optional<std::string> listen_pid;
  std::optional<std::string> listen_fds;
  std::optional<std::string> listen_fdnames;

  // Picks the three out of a NULL-terminated "KEY=VALUE" array such as `environ`.
  [[nodiscard]] static ActivationVariables from_envp(const char* const* envp);
  // Reads the three from this process's environment and removes them from it, as
  // sd_listen_fds(1) does, so that no program this process starts later believes the sockets
  // are meant for it. Touches the environment (getenv/unsetenv, not thread-safe): call it from
  // main, before any thread starts.
  [[nodiscard]] static ActivationVariables take_from_environment();
};

// The sockets passed, in order, each with its name from $LISTEN_FDNAMES ("unknown" without it,
// as systemd names them).
class ActivatedSockets {
 public:
  // The first passed descriptor (SD_LISTEN_FDS_START).
  static constexpr int kFirstFd = 3;

  ActivatedSockets() = default;
  ActivatedSockets(std::vector<OwnedFd> fds, std::vector<std::string> names);

  [[nodiscard]] std::size_t size() const { return fds_.size(); }
  [[nodiscard]] bool empty() const { return fds_.empty(); }
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }

  // The socket at `index` (0 is descriptor 3). Fails with ENOENT if there is none there or it
  // was taken already: "socket activation(index 2 of 2): No such file or directory (ENOENT)".
  [[nodiscard]] sys::Result<OwnedFd> take(std::size_t index);
  // The first socket not yet taken that has `name` (several may share one, e.g. a unit's
  // IPv4 and IPv6 sockets). Fails with ENOENT, naming it, if none is left.
  [[nodiscard]] sys::Result<OwnedFd> take(std::string_view name);

 private:
  std::vector<OwnedFd> fds_;
  std::vector<std::string> names_;
};

// sd_listen_fds_with_names: nothing was passed (an empty set, not an error) when $LISTEN_PID or
// $LISTEN_FDS is unset, or $LISTEN_PID names another process (the variables were inherited by
// a child they were not meant for). Otherwise each descriptor 3 .. 3+N-1 must be open, and is
// made close-on-exec so no program started later inherits it. Fails with EINVAL, naming the
// variable, when a value is not a number or $LISTEN_FDNAMES does not name each descriptor once;
// with EBADF, naming the descriptor, when one passed is not open. On failure every descriptor
// already taken is closed again.
[[nodiscard]] sys::Result<ActivatedSockets> listen_fds(sys::Syscalls& os,
                                                       const ActivationVariables& variables);

// Adopts a bound and listening stream socket (TCP or UNIX, as passed by socket activation):
// it is made non-blocking and accepts with `factory` like a port listen_tcp made. Fails,
// closing it, when it is not a stream socket (EPROTOTYPE) or not listening (EINVAL).
[[nodiscard]] ReactorResult<std::unique_ptr<ListeningPort>> adopt_stream_port(
    Reactor& reactor, sys::Syscalls& os, OwnedFd fd, ServerFactory& factory,
    PortOptions options = {});

// Adopts a connected stream socket (TCP or UNIX; Twisted's adoptStreamConnection): it is made
// non-blocking, `factory` builds its protocol for the peer, and the protocol hears
// connection_made before this returns. The Connection returned owns the descriptor and closes
// it when it is destroyed (also when the caller destroys it without a loss); on failure it is
// closed here. `owner` (may be null) hears connection_ended after the protocol heard
// connection_lost: the caller may destroy the connection from there. Fails when it is not a stream socket (EPROTOTYPE), is a
// listening one (EINVAL, see adopt_stream_port), has no peer (ENOTCONN from getpeername), or
// the factory refused it (ECONNABORTED).
[[nodiscard]] ReactorResult<std::unique_ptr<Connection>> adopt_stream_connection(
    Reactor& reactor, sys::Syscalls& os, OwnedFd fd, ServerFactory& factory,
    Connection::Owner* owner = nullptr, StreamOptions options = {});

// Adopts a bound datagram socket (UDP or UNIX, as passed by socket activation): it is made
// non-blocking and read with `protocol` like a port listen_udp made; one connected already
// keeps its peer (DatagramPort::peer, and refusals are heard). The port owns the descriptor
// and closes it when it stops; on failure it is closed here. Fails when it is not a datagram
// socket (EPROTOTYPE).
[[nodiscard]] ReactorResult<std::unique_ptr<DatagramPort>> adopt_datagram_port(
    Reactor& reactor, sys::Syscalls& os, OwnedFd fd, DatagramProtocol& protocol,
    DatagramOptions options = {});

}  // namespace daemonkit::core
