// UNIX stream sockets: Twisted's IReactorUNIX. A filesystem path or an abstract name ("@name"),
// the socket's mode, and Twisted's optional lock file beside the path with its stale-socket
// rule — without Twisted's defects: a lock taken is released on every failure, and only a
// socket this port bound (the same inode) is ever unlinked.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <memory>
#include <string_view>

#include "daemonkit/core/net/connector.h"
#include "daemonkit/core/net/factory.h"
#include "daemonkit/core/net/listening_port.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct UnixListenOptions {
  // As ListenOptions::backlog.
  int backlog = SOMAXCONN;
  // The socket file's mode (a path only; connecting needs write permission on it). Set after
  // bind and before listen: until listen nobody can connect, so the moment the file has the
  // umask's mode instead exposes nothing (fchmod cannot help, it changes a socket's own inode,
  // not the file's).
  mode_t mode = 0666;
  // Twisted's wantPID, for a path (an abstract name has no file to go stale, and no lock):
  // hold "<path>.lock" (an flock, with our pid written in it) while
  // listening. Holding it proves that no other server that takes the lock serves the path, so
  // a socket file found there is stale and is removed before bind; a lock held by another
  // process fails the listen with EWOULDBLOCK. Without it, a leftover file fails bind with
  // EADDRINUSE, as Linux does.
  bool lock_file = false;
  PortOptions port;
};

// Listens on a path ("/run/x.sock") or an abstract name ("@x"). Stopping the port unlinks the
// path (only if it still names the socket bound here) and releases the lock.
// Fails with the step: "bind(/run/x.sock): Address already in use (EADDRINUSE)".
ReactorResult<std::unique_ptr<ListeningPort>> listen_unix(Reactor& reactor, sys::Syscalls& os,
                                                          std::string_view name,
                                                          ServerFactory& factory,
                                                          UnixListenOptions options = {});

// Connects to a path or an abstract name. A listener whose backlog is full refuses a
// non-blocking connect with EAGAIN, reported as the failure.
std::unique_ptr<Connector> connect_unix(Reactor& reactor, sys::Syscalls& os, std::string_view name,
                                        ClientFactory& factory, ConnectOptions options = {});

}  // namespace daemonkit::core
