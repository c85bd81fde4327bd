// Sockets of the simulated kernel: AF_UNIX stream and datagram sockets (filesystem paths and
// the abstract namespace) and AF_INET and AF_INET6 TCP and UDP sockets on the loopback
// interface (127.0.0.0/8 and ::1, dual-stack as Linux). socket.cpp
// holds what the families share (the Socket description, byte streams, listen/accept,
// options, the system calls); socket_unix.cpp and socket_inet.cpp name addresses and find the
// socket an address reaches; socket_udp.cpp is UDP's ports and delivery; socket_rights.cpp is
// what messages carry besides bytes (SCM_RIGHTS, SCM_CREDENTIALS).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernel.h"

namespace daemonkit::fake::detail {

// A socket address as the bytes a caller gets back (sa_family first); empty: none.
using SocketAddress = std::string;

// Linux's defaults on a typical machine: net.core.wmem_default, net.unix.max_dgram_qlen,
// net.core.somaxconn.
inline constexpr std::size_t kSocketBuffer = 212992;
inline constexpr std::size_t kMaxDatagramQueue = 10;
inline constexpr int kSomaxconn = 4096;
// net.core.wmem_max and rmem_max, and the floors Linux puts under a doubled SO_SNDBUF and
// SO_RCVBUF (SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF with a 256-byte struct sk_buff).
inline constexpr int kSocketBufferMax = 212992;
inline constexpr int kMinSendBuffer = 4608;
inline constexpr int kMinReceiveBuffer = 2304;
// tcp_wmem[1] and tcp_rmem[1]: what a TCP socket starts with.
inline constexpr int kTcpSendBuffer = 16384;
inline constexpr int kTcpReceiveBuffer = 131072;
// net.ipv4.ip_local_port_range.
inline constexpr std::uint16_t kFirstEphemeralPort = 32768;
inline constexpr std::uint16_t kLastEphemeralPort = 60999;
// What a receiver sees for an id the kernel never recorded: kernel.overflowuid/overflowgid.
inline constexpr uid_t kOverflowId = 65534;

// A sender as SCM_CREDENTIALS names it: its pid (the thread group's) and its real uid and gid
// at the time of the send, not the effective ones (current_uid_gid in unix_dgram_sendmsg).
struct Credentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool operator==(const Credentials&) const = default;
};

// Open file descriptions in flight (SCM_RIGHTS): the message holds them until it is received,
// so that their files stay open after the sender closes its descriptors.
using Rights = std::vector<std::shared_ptr<OpenFile>>;

// What a message carries besides its bytes (socket_rights.cpp).
struct Ancillary {
  Rights rights;
  std::optional<Credentials> credentials;
};

// A run of bytes one send put on an AF_UNIX stream (one skb on Linux) that carries something:
// descriptors, or credentials. A read stops at the end of a run with descriptors, and, when
// the reader has SO_PASSCRED, before a run with other credentials.
struct StreamRun {
  std::uint64_t end = 0;  // the channel's byte count (StreamChannel::consumed) after the run
  Ancillary extra;
};

// One direction of a connected stream.
struct StreamChannel {
  std::string bytes;
  bool writer_gone = false;  // the sending socket closed: EOF once the bytes are read
  bool reader_gone = false;  // the receiving socket closed: EPIPE for the sender
  // AF_UNIX only: the runs the unread bytes belong to, oldest first (none: nothing attached).
  std::uint64_t consumed = 0;  // bytes read off the front so far
  std::deque<StreamRun> runs;
};

struct Datagram {
  std::string bytes;
  SocketAddress from;
  // Recorded only when the sender or the receiver had SO_PASSCRED at the send, as Linux's
  // maybe_add_creds does; otherwise a receiver that turns SO_PASSCRED on later reads pid 0
  // and the overflow ids.
  std::optional<Credentials> credentials;
  Rights rights;  // SCM_RIGHTS
};

// What a receive learnt besides the bytes.
struct Received {
  SocketAddress from;
  std::optional<Credentials> credentials;  // a datagram's or a stream run's, when recorded
  bool truncated = false;                  // a datagram longer than the buffer
  Rights rights;                           // descriptors in flight, now the receiver's to install
};

class Socket final : public OpenFile, public std::enable_shared_from_this<Socket> {
 public:
  enum class State { kUnconnected, kListening, kConnected };

  Socket(Kernel& kernel, std::shared_ptr<Inode> inode, int status_flags, int domain, int type);
  ~Socket() override;

  std::string describe() const override;
  sys::Result<std::size_t> read(Kernel& kernel, Process& reader, std::span<std::byte> buf) override;
  sys::Result<std::size_t> write(Kernel& kernel, Process& writer,
                                 std::span<const std::byte> buf) override;
  Readiness readiness() const override;
  std::string blocked_reason(const Kernel& kernel) const override;

  // recv/recvfrom/recvmsg: EAGAIN when nothing is there (the caller applies blocking).
  sys::Result<std::size_t> receive(std::span<std::byte> buf, int flags, Received* info);
  // send/sendto on a stream, or to a datagram socket's destination. EPIPE is returned without
  // raising SIGPIPE (the caller decides); EAGAIN when there is no room. `extra` (sendmsg's
  // control messages) travels with the bytes.
  sys::Result<std::size_t> send_stream(std::span<const std::byte> buf, const char* call,
                                       const Process* sender = nullptr, Ancillary* extra = nullptr);
  sys::Result<std::size_t> send_datagram(Socket& to, std::span<const std::byte> buf,
                                         const Process& sender, Ancillary* extra = nullptr);
  // A unix socket with SO_PASSCRED that is unbound gets an autobind name before it connects
  // or sends, so that its peer can name it (unix_may_passcred in unix_dgram_sendmsg,
  // unix_dgram_connect and unix_stream_connect).
  void autobind_for_credentials();

  [[nodiscard]] bool is_stream() const { return type_ == SOCK_STREAM; }
  [[nodiscard]] bool is_unix() const { return domain_ == AF_UNIX; }
  [[nodiscard]] int domain() const { return domain_; }
  [[nodiscard]] int type() const { return type_; }

  // shutdown(2) on this socket; `how` already checked.
  sys::Result<void> shutdown(int how);

  // Joins two stream sockets: `this` the connecting side, `server` the accepted one.
  void join(const std::shared_ptr<Socket>& self, const std::shared_ptr<Socket>& server);

  Kernel& kernel_;
  State state = State::kUnconnected;
  SocketAddress local;  // what getsockname reports once bound (empty: unbound)
  SocketAddress peer_address;
  bool reuse_address = false;
  bool keepalive = false;
  bool no_delay = false;
  bool pass_credentials = false;  // SO_PASSCRED
  // SO_SNDBUF and SO_RCVBUF as set (0: the kind's default); stored and reported only, the
  // buffers stay kSocketBuffer.
  int send_buffer = 0;
  int receive_buffer = 0;
  // SO_PEERCRED: the peer's pid and effective ids when the connection was made (a listener's
  // own at listen(), which its clients get); none: pid 0 and ids -1.
  std::optional<Credentials> own_credentials;
  std::optional<Credentials> peer_credentials;
  int error = 0;  // SO_ERROR: an error to report once (ECONNRESET, ECONNREFUSED, EPIPE)
  // A non-blocking TCP connect whose SYN a full backlog dropped (SYN_SENT): neither readable nor
  // writable, EALREADY to another connect. Linux retries the SYN; the fake never does, so it
  // stays so until closed (a timeout above the kernel ends it).
  bool connecting = false;
  bool reset = false;  // a TCP peer answered a write after its close with a reset
  // What shutdown(2) closed here, as Linux's sk_shutdown: RCV_SHUTDOWN (reads end at EOF) and
  // SEND_SHUTDOWN (writes fail with EPIPE). A peer's half of the story is in the channels.
  static constexpr int kShutRead = 1;
  static constexpr int kShutWrite = 2;
  int shut = 0;
  // Streams.
  std::shared_ptr<StreamChannel> rx;
  std::shared_ptr<StreamChannel> tx;
  std::weak_ptr<Socket> peer;
  int backlog = 0;
  std::deque<std::shared_ptr<Socket>> accept_queue;
  // Datagrams.
  std::deque<Datagram> inbox;
  std::weak_ptr<Socket> datagram_peer;  // set by connect() on a datagram socket
  bool datagram_connected = false;
  // UDP: what bind() chose, which a disconnect (connect to AF_UNSPEC) keeps.
  bool udp_address_chosen = false;
  bool udp_port_chosen = false;
  // AF_INET6: IPV6_V6ONLY (off by default, as net.ipv6.bindv6only is): when on, the socket
  // neither hears IPv4 nor reaches v4-mapped addresses.
  bool v6only = false;
  // UDP multicast: the groups joined, all on lo (IPv4 ones v4-mapped, by IP_ADD_MEMBERSHIP;
  // IPv6 ones by IPV6_JOIN_GROUP), and IP_MULTICAST_LOOP, IP_MULTICAST_TTL and
  // IP_MULTICAST_IF as set.
  std::vector<in6_addr> multicast_groups;
  bool multicast_loop = true;
  int multicast_ttl = 1;
  in_addr_t multicast_interface = 0;
  // IPV6_MULTICAST_LOOP, IPV6_MULTICAST_HOPS (-1: the default, which reads back as 1) and
  // IPV6_MULTICAST_IF (an interface index; 0: none).
  bool multicast6_loop = true;
  int multicast6_hops = -1;
  unsigned multicast6_interface = 0;

 private:
  int domain_;
  int type_;
};

// ---- AF_UNIX (socket_unix.cpp) ----

// bind() for an AF_UNIX socket: a path (a new S_IFSOCK inode) or an abstract name.
sys::Result<void> unix_bind(Kernel& kernel, Process& p, Socket& socket,
                            const std::shared_ptr<Socket>& self, const sockaddr* addr,
                            socklen_t len);
// The socket an AF_UNIX address names, as connect and sendto find it.
sys::Result<std::shared_ptr<Socket>> unix_find(Kernel& kernel, Process& p, const sockaddr* addr,
                                               socklen_t len, int type, const char* call);
// "unix:/run/x.sock", "unix:@name", "unix:(unnamed)".
std::string unix_address_text(const SocketAddress& address);
// An unnamed AF_UNIX address: the family alone.
SocketAddress unix_unnamed();
// Binds an unbound AF_UNIX socket to a free autobind name: "\0" and five hex digits.
void unix_autobind(Kernel& kernel, Socket& socket, const std::shared_ptr<Socket>& self);

// ---- AF_INET and AF_INET6 TCP (socket_inet.cpp) ----

sys::Result<void> inet_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                            const sockaddr* addr, socklen_t len);
// Binds to an ephemeral port of `address` (IPv4 v4-mapped), as listen and connect do.
sys::Result<void> inet_autobind(Kernel& kernel, const std::shared_ptr<Socket>& self,
                                const in6_addr& address, const char* call);
// Whether another socket already listens where `socket` is bound.
bool inet_listen_conflict(const Kernel& kernel, const Socket& socket);
// The listening socket a loopback address reaches from `socket`; ENETUNREACH off loopback
// (and to a v4-mapped address from an IPV6_V6ONLY socket), ECONNREFUSED when nothing listens.
// `destination` learns the address reached (v4-mapped for IPv4).
sys::Result<std::shared_ptr<Socket>> inet_find_listener(Kernel& kernel, const Socket& socket,
                                                        const sockaddr* addr, socklen_t len,
                                                        in6_addr* destination, const char* call);
// Registers an accepted socket on its listener's port.
void inet_register(Kernel& kernel, const std::shared_ptr<Socket>& socket);
// "tcp:127.0.0.1:7007", "tcp:[::1]:7007".
std::string inet_address_text(const SocketAddress& address);
// What an unbound TCP or UDP socket's getsockname says: the family's wildcard, port 0.
SocketAddress inet_unbound(int domain);
// The address an accepted socket has: the one its client reached, on its listener's port.
SocketAddress inet_accepted_address(const Socket& listener, const in6_addr& destination);
// An address of another socket as `socket` names it (a v4-mapped one for an AF_INET6
// socket that heard IPv4).
SocketAddress inet_as_seen_by(const Socket& socket, const SocketAddress& address);
// setsockopt and getsockopt at IPPROTO_IPV6 on an AF_INET6 socket (IPV6_V6ONLY, and the
// multicast options, which only UDP takes).
sys::Result<void> inet6_set_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                   const void* value, socklen_t len);
sys::Result<int> inet6_option(const Socket& socket, int name);

// ---- Messages (socket_rights.cpp) ----

// sendmsg's control messages for `socket`, as Linux's scm_send reads them for AF_UNIX (
// SCM_RIGHTS and SCM_CREDENTIALS at SOL_SOCKET; other levels ignored) and as TCP and UDP
// refuse them (EINVAL).
sys::Result<Ancillary> parse_control(Kernel& kernel, Process& sender, const Socket& socket,
                                     const msghdr& msg);
// Where a unix stream read of at most `want` bytes stops, given the runs: at the end of a run
// with descriptors (which it takes, or copies for MSG_PEEK), or before a run whose credentials
// differ from the first run's when the reader has SO_PASSCRED. Consumes the runs it finishes
// unless `peek`; `info` learns the credentials and the descriptors.
std::size_t stream_read_limit(StreamChannel& channel, std::size_t want, bool check_credentials,
                              bool peek, Received* info);
// Appends a run for `n` bytes just queued on `channel` with `extra` (when it carries anything).
void stream_attach(StreamChannel& channel, std::size_t n, Ancillary extra);
// Installs received descriptors in `receiver` as SCM_RIGHTS (scm_detach_fds): as many as fit
// in the control buffer and the descriptor table; the rest are closed and MSG_CTRUNC set.
void put_rights(Kernel& kernel, Process& receiver, msghdr& msg, std::size_t& used, Rights rights,
                bool cloexec);
// Remembers that `receiver` holds descriptions in flight, for release_in_flight.
void note_rights_sent(Kernel& kernel, const std::shared_ptr<Socket>& receiver);
// A process as SO_PEERCRED names it: its pid and effective ids (init_peercred).
Credentials peer_credentials_of(const Process& p);
// Linux's put_cmsg (see socket.cpp).
void put_control(msghdr& msg, std::size_t& used, int level, int type, const void* data,
                 std::size_t len);

// ---- UDP over AF_INET and AF_INET6 (socket_udp.cpp) ----

sys::Result<void> udp_bind(Kernel& kernel, Process& p, const std::shared_ptr<Socket>& self,
                           const sockaddr* addr, socklen_t len);
// connect(2) on a UDP socket: the peer it sends to and hears from, or none with AF_UNSPEC.
sys::Result<void> udp_connect(Kernel& kernel, const std::shared_ptr<Socket>& self,
                              const sockaddr* addr, socklen_t len);
// setsockopt and getsockopt at IPPROTO_IP on a UDP socket: the multicast options.
sys::Result<void> udp_set_ip_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                    const void* value, socklen_t len);
sys::Result<int> udp_ip_option(const Socket& socket, int name);
// The IPv6 multicast options at IPPROTO_IPV6 on a UDP socket (ENOPROTOOPT for others).
sys::Result<void> udp_set_ipv6_option(Kernel& kernel, const std::shared_ptr<Socket>& self, int name,
                                      const void* value, socklen_t len);
sys::Result<int> udp_ipv6_option(const Socket& socket, int name);
// One datagram to `addr` (null: the connected peer). Errors name "sendto".
sys::Result<std::size_t> udp_send(Kernel& kernel, const std::shared_ptr<Socket>& self,
                                  std::span<const std::byte> bytes, const sockaddr* addr,
                                  socklen_t len);

// An address as the transcript shows it.
std::string socket_address_text(const sockaddr* addr, socklen_t len);

// Copies `address` to a caller's buffer as accept4, getsockname and recvfrom do: at most
// *len bytes, and *len set to the full length.
sys::Result<void> copy_address(const SocketAddress& address, sockaddr* out, socklen_t* len,
                               const char* call);

}  // namespace daemonkit::fake::detail
