// Endpoints as values: where a server listens or a client connects, one type per kind of
// endpoint string (endpoint_string.h parses and prints them). Plain data, compared by value; the
// net area turns them into sockets.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace daemonkit::core {

// A backlog not given in the string: core/net's (listen_tcp), not Twisted's 50, which stalls a
// burst of connections (10,000 at once stalled every server measured in bench/net). The kernel
// caps it at net.core.somaxconn.
inline constexpr int kDefaultEndpointBacklog = SOMAXCONN;

// tcp:PORT[:interface=ADDR][:backlog=N] and tcp6:PORT[:backlog=N][:interface=ADDR].
struct TcpServerEndpoint {
  bool ipv6 = false;
  std::uint16_t port = 0;  // 0: the kernel picks one
  // An IPv4 (tcp) or IPv6 (tcp6, optionally with %scope) literal; empty for tcp means every
  // IPv4 address. tcp6 defaults to "::".
  std::string interface;
  int backlog = kDefaultEndpointBacklog;
  friend bool operator==(const TcpServerEndpoint&, const TcpServerEndpoint&) = default;
};

// unix:PATH[:mode=OCTAL][:backlog=N][:lockfile=0|1]. A PATH starting with '@' is a Linux
// abstract name (the rest of it, after a NUL in the socket address), which has no file: no mode,
// no lock file.
struct UnixServerEndpoint {
  std::string path;  // without the '@' for an abstract name
  bool abstract = false;
  mode_t mode = 0666;
  int backlog = kDefaultEndpointBacklog;
  // Twisted's default in strings: a PATH.lock symlink naming the owner's pid, so a stale socket
  // left by a dead server can be told from a live one. Always false for an abstract name.
  bool lockfile = true;
  friend bool operator==(const UnixServerEndpoint&, const UnixServerEndpoint&) = default;
};

// ssl:PORT[:privateKey=FILE][:certKey=FILE][:extraCertChain=FILE][:dhParameters=FILE]
//     [:interface=ADDR][:backlog=N]
struct SslServerEndpoint {
  std::uint16_t port = 0;
  std::string private_key = "server.pem";
  std::string cert_key;  // empty: the private key's file holds the certificate too
  std::string extra_cert_chain;
  std::string dh_parameters;
  std::string interface;
  int backlog = kDefaultEndpointBacklog;
  friend bool operator==(const SslServerEndpoint&, const SslServerEndpoint&) = default;
};

enum class SocketDomain { kInet, kInet6, kUnix };

// systemd:domain=INET|INET6|UNIX:index=N or :name=FDNAME — a socket passed by the service
// manager (LISTEN_FDS), by position or by its name in LISTEN_FDNAMES. Exactly one of the two.
struct SystemdServerEndpoint {
  SocketDomain domain = SocketDomain::kInet;
  std::optional<unsigned> index;
  std::string name;
  friend bool operator==(const SystemdServerEndpoint&, const SystemdServerEndpoint&) = default;
};

using ServerEndpoint =
    std::variant<TcpServerEndpoint, UnixServerEndpoint, SslServerEndpoint, SystemdServerEndpoint>;

// tcp:host=HOST:port=PORT[:timeout=SECONDS][:bindAddress=ADDR], or tcp:HOST:PORT.
struct TcpClientEndpoint {
  std::string host;
  std::uint16_t port = 0;
  unsigned timeout_seconds = 30;
  std::string bind_address;  // empty: the kernel chooses
  friend bool operator==(const TcpClientEndpoint&, const TcpClientEndpoint&) = default;
};

// unix:path=PATH[:timeout=SECONDS][:checkPID=0|1], or unix:PATH; '@' as for servers.
struct UnixClientEndpoint {
  std::string path;
  bool abstract = false;
  unsigned timeout_seconds = 30;
  // Refuse to connect when PATH.lock names a process that is gone (Twisted's checkPID).
  bool check_pid = false;
  friend bool operator==(const UnixClientEndpoint&, const UnixClientEndpoint&) = default;
};

using ClientEndpoint = std::variant<TcpClientEndpoint, UnixClientEndpoint>;

}  // namespace daemonkit::core
