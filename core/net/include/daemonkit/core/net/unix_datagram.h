// UNIX datagram sockets: Twisted's IReactorUNIXDatagram. A filesystem path or an abstract
// name ("@name") as unix_stream takes them, read and written through a DatagramPort with a
// DatagramProtocol. A path bound here is unlinked when the port stops, only if it still names
// the socket bound here.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string_view>

#include "daemonkit/core/net/datagram_port.h"
#include "daemonkit/core/net/datagram_protocol.h"
#include "daemonkit/core/reactor/reactor.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::core {

struct UnixDatagramOptions {
  // The socket file's mode (a path only; sending to it needs write permission on it), set
  // right after bind.
  mode_t mode = 0666;
  DatagramOptions port;
};

// Binds `name` and starts `protocol` on it (it must outlive the port). A leftover file at the
// path fails with EADDRINUSE, as Linux does: "bind(/run/x.sock): Address already in use
// (EADDRINUSE)".
ReactorResult<std::unique_ptr<DatagramPort>> listen_unix_datagram(Reactor& reactor,
                                                                  sys::Syscalls& os,
                                                                  std::string_view name,
                                                                  DatagramProtocol& protocol,
                                                                  UnixDatagramOptions options = {});

// A port connected to `name` (Twisted's connectUNIXDatagram): write(datagram) sends there and
// only its datagrams are received. Bound to `bind_name` first when one is given, so the peer
// can answer (an unbound sender cannot be answered; Linux gives it no name). A peer that is
// gone or not there fails the call (ECONNREFUSED, ENOENT); one that goes later is heard as
// connection_refused on the next write.
ReactorResult<std::unique_ptr<DatagramPort>> connect_unix_datagram(
    Reactor& reactor, sys::Syscalls& os, std::string_view name, DatagramProtocol& protocol,
    std::string_view bind_name = {}, UnixDatagramOptions options = {});

}  // namespace daemonkit::core
