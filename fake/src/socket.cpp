// What AF_UNIX, AF_INET and AF_INET6 sockets share: the Socket description, connected byte streams
// (EOF on the peer's close, EPIPE and SIGPIPE after it, ECONNRESET when it closed with bytes
// unread), listen and accept with a backlog, datagram queues, socket options, readiness for
// poll and epoll, and the system calls themselves. Addresses are named and resolved per family
// in socket_unix.cpp and socket_inet.cpp.
#include "socket.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "fake_syscalls_call.h"
#include "inet_endpoint.h"

namespace daemonkit::fake {
namespace detail {

Socket::Socket(Kernel& kernel, std::shared_ptr<Inode> inode, int status_flags, int domain, int type)
    : OpenFile(std::move(inode), status_flags), kernel_(kernel), domain_(domain), type_(type) {}

Socket::~Socket() {
  if (tx) tx->writer_gone = true;
  if (rx) rx->reader_gone = true;
  // What was in flight to this socket goes with its queue (descriptors closed), though the
  // sender still holds the channel.
  std::deque<StreamRun> unread;
  if (rx) unread.swap(rx->runs);
  if (auto other = peer.lock()) {
    // Closing with bytes unread resets the connection (unix_release_sock, tcp_close).
    if (rx && !rx->bytes.empty()) other->error = ECONNRESET;
    kernel_.wake(other.get(), 0);
  }
  // Connections nobody accepted are reset: their clients see ECONNRESET.
  for (auto& embryo : accept_queue) {
    if (auto client = embryo->peer.lock()) client->error = ECONNRESET;
  }
}

std::string Socket::describe() const {
  const std::string kind =
      is_unix() ? (is_stream() ? "unix-stream" : "unix-dgram") : (is_stream() ? "tcp" : "udp");
  const auto name = [&](const SocketAddress& a) {
    if (is_unix()) return unix_address_text(a);
    return is_stream() ? inet_address_text(a) : "udp:" + inet_address_text(a).substr(4);
  };
  std::string text = fmt::format("socket:[{}]:{}", inode_->ino, kind);
  if (!local.empty()) text += " " + name(local);
  if (state == State::kListening) text += " listening";
  if (state == State::kConnected && !peer_address.empty()) text += " -> " + name(peer_address);
  return text;
}

sys::Result<std::size_t> Socket::read(Kernel&, Process&, std::span<std::byte> buf) {
  return receive(buf, 0, nullptr);
}

sys::Result<std::size_t> Socket::write(Kernel&, Process& writer, std::span<const std::byte> buf) {
  if (is_stream()) return send_stream(buf, "write", &writer);
  if (!is_unix()) return udp_send(kernel_, shared_from_this(), buf, nullptr, 0);
  auto to = datagram_peer.lock();
  if (!datagram_connected) return sys::fail(ENOTCONN, "write");
  if (shut & kShutWrite) return sys::fail(EPIPE, "write");
  autobind_for_credentials();
  if (!to) return sys::fail(ECONNREFUSED, "write");
  return send_datagram(*to, buf, writer);
}

void Socket::autobind_for_credentials() {
  if (is_unix() && pass_credentials && local.empty()) {
    unix_autobind(kernel_, *this, shared_from_this());
  }
}

sys::Result<std::size_t> Socket::receive(std::span<std::byte> buf, int flags, Received* info) {
  const char* call = info != nullptr ? "recvfrom" : "read";
  if (!is_stream()) {
    // __skb_recv_udp reports an error an ICMP message left before any datagram.
    if (!is_unix() && error != 0) return sys::fail(std::exchange(error, 0), call);
    if (inbox.empty()) return sys::fail(EAGAIN, call);
    Datagram& d = inbox.front();
    const std::size_t n = std::min(buf.size(), d.bytes.size());
    if (n > 0) std::memcpy(buf.data(), d.bytes.data(), n);
    const std::size_t whole = d.bytes.size();
    if (info != nullptr) {
      info->from = d.from;
      info->credentials = d.credentials;
      info->truncated = whole > n;
      // A peek copies the descriptors; a read takes them (unix_peek_fds, unix_detach_fds).
      info->rights = d.rights;
    }
    if (!(flags & MSG_PEEK)) inbox.pop_front();
    return (flags & MSG_TRUNC) ? whole : n;
  }
  if (state != State::kConnected) {
    // unix_stream_read_generic says EINVAL; tcp_recvmsg ENOTCONN.
    return sys::fail(is_unix() ? EINVAL : ENOTCONN, call);
  }
  if (rx->bytes.empty() && error != 0) return sys::fail(std::exchange(error, 0), call);
  if (buf.empty()) return std::size_t{0};
  if (rx->bytes.empty()) {
    if (rx->writer_gone || reset || (shut & kShutRead)) return std::size_t{0};
    return sys::fail(EAGAIN, call);
  }
  std::size_t n = std::min(buf.size(), rx->bytes.size());
  if (is_unix()) {
    n = stream_read_limit(*rx, n, pass_credentials, (flags & MSG_PEEK) != 0, info);
  }
  std::memcpy(buf.data(), rx->bytes.data(), n);
  if (!(flags & MSG_PEEK)) {
    rx->bytes.erase(0, n);
    rx->consumed += n;
    if (auto other = peer.lock()) kernel_.wake(other.get(), EPOLLOUT | EPOLLWRNORM);
  }
  if (info != nullptr) info->from = peer_address;
  return n;
}

sys::Result<std::size_t> Socket::send_stream(std::span<const std::byte> buf, const char* call,
                                             const Process* sender, Ancillary* extra) {
  if (state != State::kConnected) return sys::fail(is_unix() ? ENOTCONN : EPIPE, call);
  // After shutdown(SHUT_WR) every write fails, an empty one too (the check comes before the
  // send loop in unix_stream_sendmsg and tcp_sendmsg_locked).
  if (reset || (shut & kShutWrite)) return sys::fail(EPIPE, call);
  if (tx->reader_gone) {
    if (is_unix()) return sys::fail(EPIPE, call);
    // TCP: the first write after the peer's close is sent, and answered by a reset.
    reset = true;
    error = EPIPE;
    return buf.size();
  }
  if (buf.empty()) return std::size_t{0};
  const std::size_t room = kSocketBuffer - std::min(kSocketBuffer, tx->bytes.size());
  if (room == 0) return sys::fail(EAGAIN, call);
  const std::size_t n = std::min(room, buf.size());
  tx->bytes.append(reinterpret_cast<const char*>(buf.data()), n);
  auto other = peer.lock();
  if (is_unix()) {
    // The run records the sender's credentials as datagrams do (maybe_add_creds), and carries
    // sendmsg's descriptors with its first bytes.
    Ancillary carried = extra != nullptr ? std::move(*extra) : Ancillary{};
    if (!carried.credentials && sender != nullptr &&
        (pass_credentials || (other && other->pass_credentials))) {
      carried.credentials = Credentials{sender->pid, sender->uids.real, sender->gids.real};
    }
    if (!carried.rights.empty() && other) note_rights_sent(kernel_, other);
    stream_attach(*tx, n, std::move(carried));
  }
  if (other) kernel_.wake(other.get(), EPOLLIN | EPOLLRDNORM);
  return n;
}

sys::Result<std::size_t> Socket::send_datagram(Socket& to, std::span<const std::byte> buf,
                                               const Process& sender, Ancillary* extra) {
  if (buf.size() > kSocketBuffer - 32) return sys::fail(EMSGSIZE, "sendto");
  // A connected datagram socket hears only from its peer (unix_may_send).
  if (to.datagram_connected && to.datagram_peer.lock().get() != this) {
    return sys::fail(EPERM, "sendto");
  }
  if (to.inbox.size() > kMaxDatagramQueue) return sys::fail(EAGAIN, "sendto");
  std::optional<Credentials> credentials;
  Rights rights;
  if (extra != nullptr) {
    credentials = extra->credentials;  // stated with SCM_CREDENTIALS: recorded as stated
    rights = std::move(extra->rights);
  }
  if (!rights.empty()) note_rights_sent(kernel_, to.shared_from_this());
  if (!credentials && (pass_credentials || to.pass_credentials)) {
    credentials = Credentials{sender.pid, sender.uids.real, sender.gids.real};
  }
  to.inbox.push_back(Datagram{std::string(reinterpret_cast<const char*>(buf.data()), buf.size()),
                              local,  // unnamed: recvfrom gives length 0
                              credentials, std::move(rights)});
  kernel_.wake(&to, EPOLLIN | EPOLLRDNORM);
  return buf.size();
}

sys::Result<void> Socket::shutdown(int how) {
  const int mask = how == SHUT_RD   ? kShutRead
                   : how == SHUT_WR ? kShutWrite
                                    : kShutRead | kShutWrite;
  if (!is_unix()) {
    // inet_shutdown by state: a listener stops listening at SHUT_RD (tcp_disconnect resets the
    // connections it had not accepted) and ignores SHUT_WR; an unconnected socket keeps the
    // flags but says ENOTCONN.
    if (state == State::kListening) {
      if (!(mask & kShutRead)) return {};
      for (auto& embryo : accept_queue) {
        if (auto client = embryo->peer.lock()) client->error = ECONNRESET;
      }
      accept_queue.clear();
      state = State::kUnconnected;
      kernel_.wake(this, 0);
      return {};
    }
    shut |= mask;
    if (state != State::kConnected) return sys::fail(ENOTCONN, "shutdown");
  } else {
    // unix_shutdown never fails: an unconnected or listening socket keeps the flags.
    shut |= mask;
  }
  if (is_stream() && state == State::kConnected) {
    // SHUT_WR: the peer reads what was sent, then EOF (a FIN, or the unix peer's
    // RCV_SHUTDOWN). SHUT_RD on a unix stream also ends the peer's sending (EPIPE there);
    // TCP does not tell the peer.
    if (mask & kShutWrite) tx->writer_gone = true;
    if ((mask & kShutRead) && is_unix()) rx->reader_gone = true;
    if (auto other = peer.lock()) kernel_.wake(other.get(), 0);
  }
  kernel_.wake(this, 0);
  return {};
}

void Socket::join(const std::shared_ptr<Socket>& self, const std::shared_ptr<Socket>& server) {
  auto up = std::make_shared<StreamChannel>();
  auto down = std::make_shared<StreamChannel>();
  tx = up;
  rx = down;
  server->rx = up;
  server->tx = down;
  peer = server;
  server->peer = self;
  state = State::kConnected;
  server->state = State::kConnected;
}

Readiness Socket::readiness() const {
  Readiness r;
  if (!is_stream() && !is_unix()) {
    // UDP on loopback always has room; an ICMP error is EPOLLERR (and wakes a reader).
    r.readable = !inbox.empty();
    r.writable = true;
    r.error = error != 0;
    return r;
  }
  if (!is_stream()) {
    r.readable = !inbox.empty();
    auto to = datagram_peer.lock();
    r.writable = !(to && to->inbox.size() > kMaxDatagramQueue);
    return r;
  }
  switch (state) {
    case State::kListening:
      // A unix listener keeps its shutdown flags (a TCP one stops listening at SHUT_RD).
      r.readable = !accept_queue.empty() || (shut & kShutRead) != 0;
      r.read_hangup = (shut & kShutRead) != 0;
      r.hangup = shut == (kShutRead | kShutWrite);
      return r;
    case State::kUnconnected:
      // SYN_SENT: nothing to report until the handshake ends (tcp_poll).
      if (connecting) return r;
      // A stream socket that is not connected is "hung up" (TCP_CLOSE) and writable.
      r.writable = true;
      r.hangup = true;
      r.error = error != 0;
      return r;
    case State::kConnected:
      break;
  }
  // Linux's sk_shutdown, whole: the way in ends with our SHUT_RD or the peer's end of
  // sending (its SHUT_WR, FIN or close); the way out with our SHUT_WR or, for a unix socket,
  // with the peer's SHUT_RD or close (unix_shutdown and unix_release_sock set both peers'
  // flags; TCP tells the peer nothing of a SHUT_RD). Both ended is EPOLLHUP.
  const bool in_ended = rx->writer_gone || (shut & kShutRead) != 0;
  const bool out_ended = (shut & kShutWrite) != 0 || (is_unix() && tx->reader_gone);
  r.readable = !rx->bytes.empty() || in_ended || error != 0;
  r.read_hangup = in_ended;
  // Writable also once nothing more can be sent, so that a writer is not left waiting.
  r.writable = tx->reader_gone || (shut & kShutWrite) != 0 || tx->bytes.size() < kSocketBuffer;
  // A TCP peer's FIN ends only the way in, until a reset closes the rest.
  r.hangup = (in_ended && out_ended) || reset;
  r.error = error != 0;
  return r;
}

std::string Socket::blocked_reason(const Kernel&) const {
  if (state == State::kListening) {
    return fmt::format(
        "{} has no pending connection; connect from another process first, "
        "or use SOCK_NONBLOCK",
        describe());
  }
  if (is_stream() && state == State::kConnected && !rx->bytes.empty()) {
    return fmt::format(
        "{}: its peer's receive buffer is full; switch to the peer and read "
        "first, or use SOCK_NONBLOCK",
        describe());
  }
  return fmt::format(
      "{} has nothing to read; switch to its peer and send first, or use "
      "SOCK_NONBLOCK or MSG_DONTWAIT",
      describe());
}

sys::Result<void> copy_address(const SocketAddress& address, sockaddr* out, socklen_t* len,
                               const char* call) {
  if (out == nullptr && len == nullptr) return {};
  if (len == nullptr || out == nullptr) return sys::fail(EFAULT, call);
  std::memcpy(out, address.data(), std::min<std::size_t>(*len, address.size()));
  *len = static_cast<socklen_t>(address.size());
  return {};
}

namespace {

// The descriptor's socket: EBADF for no descriptor, ENOTSOCK for another kind of file.
sys::Result<std::shared_ptr<Socket>> socket_at(Kernel& kernel, Process& p, int fd,
                                               const char* call) {
  FdEntry* entry = kernel.fd_entry(p, fd);
  if (entry == nullptr) return sys::fail(EBADF, call);
  auto socket = std::dynamic_pointer_cast<Socket>(entry->file);
  if (!socket) return sys::fail(ENOTSOCK, call);
  return socket;
}

std::string family_text(int domain) {
  switch (domain) {
    case AF_UNIX:
      return "AF_UNIX";
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    default:
      return std::to_string(domain);
  }
}

// The flags socket's type word and accept4's flags argument share.
std::string sock_flags_text(int flags) {
  return flags_text(static_cast<unsigned>(flags),
                    {{SOCK_NONBLOCK, "SOCK_NONBLOCK"}, {SOCK_CLOEXEC, "SOCK_CLOEXEC"}});
}

std::string type_text(int type) {
  std::string text;
  switch (type & 0xf) {
    case SOCK_STREAM:
      text = "SOCK_STREAM";
      break;
    case SOCK_DGRAM:
      text = "SOCK_DGRAM";
      break;
    case SOCK_SEQPACKET:
      text = "SOCK_SEQPACKET";
      break;
    default:
      text = std::to_string(type & 0xf);
      break;
  }
  const int flags = type & ~0xf;
  return flags == 0 ? text : text + "|" + sock_flags_text(flags);
}

std::string msg_flags_text(int flags) {
  return flags_text(static_cast<unsigned>(flags), {{MSG_NOSIGNAL, "MSG_NOSIGNAL"},
                                                   {MSG_DONTWAIT, "MSG_DONTWAIT"},
                                                   {MSG_PEEK, "MSG_PEEK"},
                                                   {MSG_TRUNC, "MSG_TRUNC"},
                                                   {MSG_CTRUNC, "MSG_CTRUNC"},
                                                   {MSG_CMSG_CLOEXEC, "MSG_CMSG_CLOEXEC"}});
}

// recvmsg's msghdr as the transcript shows it: its shape, not its bytes.
std::string msghdr_text(const msghdr* msg) {
  if (msg == nullptr) return "NULL";
  std::size_t len = 0;
  for (std::size_t i = 0; msg->msg_iov != nullptr && i < msg->msg_iovlen; ++i) {
    len += msg->msg_iov[i].iov_len;
  }
  return fmt::format("{{name={}, iov={}/{}, control={}}}",
                     msg->msg_name == nullptr ? "NULL" : std::to_string(msg->msg_namelen),
                     msg->msg_iovlen, len, msg->msg_controllen);
}

std::string option_text(int level, int name) {
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_REUSEADDR:
        return "SOL_SOCKET, SO_REUSEADDR";
      case SO_KEEPALIVE:
        return "SOL_SOCKET, SO_KEEPALIVE";
      case SO_ERROR:
        return "SOL_SOCKET, SO_ERROR";
      case SO_TYPE:
        return "SOL_SOCKET, SO_TYPE";
      case SO_DOMAIN:
        return "SOL_SOCKET, SO_DOMAIN";
      case SO_ACCEPTCONN:
        return "SOL_SOCKET, SO_ACCEPTCONN";
      case SO_PASSCRED:
        return "SOL_SOCKET, SO_PASSCRED";
      case SO_PEERCRED:
        return "SOL_SOCKET, SO_PEERCRED";
      case SO_PROTOCOL:
        return "SOL_SOCKET, SO_PROTOCOL";
      case SO_SNDBUF:
        return "SOL_SOCKET, SO_SNDBUF";
      case SO_RCVBUF:
        return "SOL_SOCKET, SO_RCVBUF";
      default:
        return fmt::format("SOL_SOCKET, {}", name);
    }
  }
  if (level == IPPROTO_TCP && name == TCP_NODELAY) return "IPPROTO_TCP, TCP_NODELAY";
  if (level == IPPROTO_IP) {
    switch (name) {
      case IP_ADD_MEMBERSHIP:
        return "IPPROTO_IP, IP_ADD_MEMBERSHIP";
      case IP_DROP_MEMBERSHIP:
        return "IPPROTO_IP, IP_DROP_MEMBERSHIP";
      case IP_MULTICAST_LOOP:
        return "IPPROTO_IP, IP_MULTICAST_LOOP";
      case IP_MULTICAST_TTL:
        return "IPPROTO_IP, IP_MULTICAST_TTL";
      case IP_MULTICAST_IF:
        return "IPPROTO_IP, IP_MULTICAST_IF";
      default:
        break;
    }
  }
  if (level == IPPROTO_IPV6) {
    switch (name) {
      case IPV6_V6ONLY:
        return "IPPROTO_IPV6, IPV6_V6ONLY";
      case IPV6_ADD_MEMBERSHIP:
        return "IPPROTO_IPV6, IPV6_JOIN_GROUP";
      case IPV6_DROP_MEMBERSHIP:
        return "IPPROTO_IPV6, IPV6_LEAVE_GROUP";
      case IPV6_MULTICAST_LOOP:
        return "IPPROTO_IPV6, IPV6_MULTICAST_LOOP";
      case IPV6_MULTICAST_HOPS:
        return "IPPROTO_IPV6, IPV6_MULTICAST_HOPS";
      case IPV6_MULTICAST_IF:
        return "IPPROTO_IPV6, IPV6_MULTICAST_IF";
      default:
        break;
    }
  }
  return fmt::format("{}, {}", level, name);
}

}  // namespace

// Linux's put_cmsg: a control message the buffer cannot hold whole is cut (a header that fits
// says the length it got) and MSG_CTRUNC is set; one with no room even for its header is lost.
// `used` counts the bytes of msg_control filled so far.
void put_control(msghdr& msg, std::size_t& used, int level, int type, const void* data,
                 std::size_t len) {
  const std::size_t room = msg.msg_control == nullptr ? 0 : msg.msg_controllen - used;
  if (room < sizeof(cmsghdr)) {
    msg.msg_flags |= MSG_CTRUNC;
    return;
  }
  std::size_t cmsg_len = CMSG_LEN(len);
  if (room < cmsg_len) {
    msg.msg_flags |= MSG_CTRUNC;
    cmsg_len = room;
  }
  cmsghdr header{};
  header.cmsg_len = cmsg_len;
  header.cmsg_level = level;
  header.cmsg_type = type;
  auto* at = static_cast<unsigned char*>(msg.msg_control) + used;
  std::memcpy(at, &header, sizeof header);
  std::memcpy(at + CMSG_LEN(0), data, cmsg_len - CMSG_LEN(0));
  used += std::min<std::size_t>(CMSG_SPACE(len), room);
}

// The address as text for the transcript.
std::string socket_address_text(const sockaddr* addr, socklen_t len) {
  if (addr == nullptr) return "NULL";
  if (len < sizeof(sa_family_t)) return fmt::format("{{len={}}}", len);
  const SocketAddress bytes(reinterpret_cast<const char*>(addr), len);
  if (addr->sa_family == AF_UNIX) return unix_address_text(bytes);
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) return inet_address_text(bytes);
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) return inet_address_text(bytes);
  return fmt::format("{{family={} len={}}}", addr->sa_family, len);
}

}  // namespace detail

using detail::Process;
using detail::Socket;

sys::Result<int> FakeSyscalls::socket(int domain, int type, int protocol) {
  return call<int>(
      "socket", {detail::family_text(domain), detail::type_text(type), arg(protocol)},
      [&](Process& p) -> sys::Result<int> {
        const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (domain == AF_UNIX) {
          if (base != SOCK_STREAM && base != SOCK_DGRAM) {
            // SOCK_SEQPACKET exists on Linux but is not modelled here.
            return sys::fail(ESOCKTNOSUPPORT, "socket");
          }
          if (protocol != 0 && protocol != PF_UNIX) return sys::fail(EPROTONOSUPPORT, "socket");
        } else if (domain == AF_INET || domain == AF_INET6) {
          if (base == SOCK_STREAM) {
            if (protocol != 0 && protocol != IPPROTO_TCP) {
              return sys::fail(EPROTONOSUPPORT, "socket");
            }
          } else if (base == SOCK_DGRAM) {
            if (protocol != 0 && protocol != IPPROTO_UDP) {
              return sys::fail(EPROTONOSUPPORT, "socket");
            }
          } else {
            // Raw sockets and SOCK_SEQPACKET are not modelled.
            return sys::fail(ESOCKTNOSUPPORT, "socket");
          }
        } else {
          // Netlink, packet...: not modelled.
          return sys::fail(EAFNOSUPPORT, "socket");
        }
        auto& k = kernel();
        auto inode =
            k.new_inode(S_IFSOCK | 0777, p.uids.effective, p.gids.effective, detail::kSockDev);
        const int status = O_RDWR | ((type & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
        auto file = std::make_shared<Socket>(k, std::move(inode), status, domain, base);
        return k.allocate_fd(p, std::move(file), (type & SOCK_CLOEXEC) != 0, 0, "socket");
      });
}

// Linux's __sys_socketpair: the flags, then both descriptors (EMFILE before anything about the
// family), then both sockets as socket() makes them, then the family's pairing, which only
// AF_UNIX has (sock_no_socketpair: EOPNOTSUPP for TCP and UDP alike).
sys::Result<sys::SocketPair> FakeSyscalls::socketpair(int domain, int type, int protocol) {
  return call<sys::SocketPair>(
      "socketpair", {detail::family_text(domain), detail::type_text(type), arg(protocol)},
      [&](Process& p) -> sys::Result<sys::SocketPair> {
        const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (base & ~0xf) return sys::fail(EINVAL, "socketpair");
        auto& k = kernel();
        int free_fds = 0;
        const rlim_t limit = p.rlimits[RLIMIT_NOFILE].rlim_cur;
        for (rlim_t fd = 0; fd < limit && free_fds < 2; ++fd) {
          if (p.fds.count(static_cast<int>(fd)) == 0) ++free_fds;
        }
        if (free_fds < 2) return sys::fail(EMFILE, "socketpair");
        // A family Linux knows makes its sockets, which cannot pair; the fake takes every
        // family below AF_MAX as known (a machine lacking a module would say EAFNOSUPPORT).
        if (domain < 0 || domain >= AF_MAX) return sys::fail(EAFNOSUPPORT, "socketpair");
        if (domain != AF_UNIX) return sys::fail(EOPNOTSUPP, "socketpair");
        if (base != SOCK_STREAM && base != SOCK_DGRAM) {
          // SOCK_SEQPACKET exists on Linux but is not modelled here.
          return sys::fail(ESOCKTNOSUPPORT, "socketpair");
        }
        if (protocol != 0 && protocol != PF_UNIX) return sys::fail(EPROTONOSUPPORT, "socketpair");
        const int status = O_RDWR | ((type & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
        auto make = [&] {
          auto inode =
              k.new_inode(S_IFSOCK | 0777, p.uids.effective, p.gids.effective, detail::kSockDev);
          return std::make_shared<Socket>(k, std::move(inode), status, domain, base);
        };
        auto first = make();
        auto second = make();
        first->peer_address = detail::unix_unnamed();
        second->peer_address = detail::unix_unnamed();
        first->peer_credentials = second->peer_credentials = detail::peer_credentials_of(p);
        if (base == SOCK_STREAM) {
          first->join(first, second);
        } else {
          first->datagram_peer = second;
          second->datagram_peer = first;
          first->datagram_connected = second->datagram_connected = true;
        }
        const bool cloexec = (type & SOCK_CLOEXEC) != 0;
        const int a = *k.allocate_fd(p, std::move(first), cloexec, 0, "socketpair");
        const int b = *k.allocate_fd(p, std::move(second), cloexec, 0, "socketpair");
        return sys::SocketPair{a, b};
      });
}

sys::Result<void> FakeSyscalls::bind(int fd, const struct sockaddr* addr, socklen_t len) {
  return call<void>("bind", {arg(fd), detail::socket_address_text(addr, len), arg(len)},
                    [&](Process& p) -> sys::Result<void> {
                      auto socket_or = detail::socket_at(kernel(), p, fd, "bind");
                      if (!socket_or) return sys::fail(socket_or.error());
                      const std::shared_ptr<Socket> socket = *socket_or;
                      if (addr == nullptr) return sys::fail(EFAULT, "bind");
                      if (socket->is_unix())
                        return detail::unix_bind(kernel(), p, *socket, socket, addr, len);
                      if (!socket->is_stream()) {
                        return detail::udp_bind(kernel(), p, socket, addr, len);
                      }
                      return detail::inet_bind(kernel(), p, socket, addr, len);
                    });
}

sys::Result<void> FakeSyscalls::listen(int fd, int backlog) {
  return call<void>("listen", {arg(fd), arg(backlog)}, [&](Process& p) -> sys::Result<void> {
    auto socket_or = detail::socket_at(kernel(), p, fd, "listen");
    if (!socket_or) return sys::fail(socket_or.error());
    const std::shared_ptr<Socket> socket = *socket_or;
    if (!socket->is_stream()) return sys::fail(EOPNOTSUPP, "listen");
    if (socket->state == Socket::State::kConnected) return sys::fail(EINVAL, "listen");
    if (socket->local.empty()) {
      // A unix socket must be bound first; TCP binds to an ephemeral port of 0.0.0.0.
      if (socket->is_unix()) return sys::fail(EINVAL, "listen");
      if (auto bound =
              detail::inet_autobind(kernel(), socket, detail::any_of(socket->domain()), "listen");
          !bound) {
        return bound;
      }
    }
    if (!socket->is_unix() && socket->state != Socket::State::kListening &&
        detail::inet_listen_conflict(kernel(), *socket)) {
      return sys::fail(EADDRINUSE, "listen");
    }
    const auto limit = static_cast<unsigned>(detail::kSomaxconn);
    socket->backlog = static_cast<unsigned>(backlog) > limit ? detail::kSomaxconn : backlog;
    // unix_listen's init_peercred: what the listener's clients will read as SO_PEERCRED.
    if (socket->is_unix()) socket->own_credentials = detail::peer_credentials_of(p);
    socket->state = Socket::State::kListening;
    return {};
  });
}

sys::Result<int> FakeSyscalls::accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return call<int>(
      "accept4", {arg(fd), addr == nullptr ? "NULL" : "&addr", detail::sock_flags_text(flags)},
      [&](Process& p) -> sys::Result<int> {
        if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return sys::fail(EINVAL, "accept4");
        auto listener_or = detail::socket_at(kernel(), p, fd, "accept4");
        if (!listener_or) return sys::fail(listener_or.error());
        const std::shared_ptr<Socket> listener = *listener_or;
        auto& k = kernel();
        if (!listener->is_stream()) return sys::fail(EOPNOTSUPP, "accept4");
        if (listener->state != Socket::State::kListening) return sys::fail(EINVAL, "accept4");
        if (listener->accept_queue.empty()) {
          if (listener->nonblocking()) return sys::fail(EAGAIN, "accept4");
          return k.would_block<int>("accept4",
                                    fmt::format("fd {}: {}", fd, listener->blocked_reason(k)));
        }
        if (!k.fd_available(p)) return sys::fail(EMFILE, "accept4");
        auto accepted = listener->accept_queue.front();
        listener->accept_queue.pop_front();
        if (addr != nullptr || len != nullptr) {
          if (auto copied = detail::copy_address(accepted->peer_address, addr, len, "accept4");
              !copied) {
            listener->accept_queue.push_front(accepted);
            return sys::fail(copied.error());
          }
        }
        accepted->set_status_flags(O_RDWR | ((flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0));
        return k.allocate_fd(p, std::move(accepted), (flags & SOCK_CLOEXEC) != 0, 0, "accept4");
      });
}

sys::Result<void> FakeSyscalls::connect(int fd, const struct sockaddr* addr, socklen_t len) {
  return call<void>(
      "connect", {arg(fd), detail::socket_address_text(addr, len), arg(len)},
      [&](Process& p) -> sys::Result<void> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "connect");
        if (!socket_or) return sys::fail(socket_or.error());
        const std::shared_ptr<Socket> socket = *socket_or;
        auto& k = kernel();
        if (addr == nullptr) return sys::fail(EFAULT, "connect");
        if (!socket->is_stream() && !socket->is_unix()) {
          return detail::udp_connect(k, socket, addr, len);
        }
        if (!socket->is_stream()) {
          if (len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
            socket->datagram_connected = false;
            socket->datagram_peer.reset();
            return {};
          }
          auto target = detail::unix_find(k, p, addr, len, SOCK_DGRAM, "connect");
          // A valid address is enough for the autobind, which comes before the look-up.
          if (target || target.error().code != EINVAL) socket->autobind_for_credentials();
          if (!target) return sys::fail(target.error());
          socket->datagram_peer = *target;
          socket->datagram_connected = true;
          socket->peer_address = (*target)->local;
          return {};
        }
        // unix_stream_connect finds and checks the listener (and its backlog) before it looks
        // at the connecting socket's own state; TCP looks at its own state first.
        const bool own_state_first = !socket->is_unix();
        auto own_state = [&]() -> sys::Result<void> {
          if (socket->state == Socket::State::kListening) return sys::fail(EINVAL, "connect");
          if (socket->state != Socket::State::kConnected) return {};
          // After a non-blocking TCP connect: its outcome once, then EISCONN.
          if (socket->error != 0) return sys::fail(std::exchange(socket->error, 0), "connect");
          return sys::fail(EISCONN, "connect");
        };
        if (own_state_first) {
          if (socket->connecting) return sys::fail(EALREADY, "connect");
          if (auto ok = own_state(); !ok) return ok;
          if (socket->error != 0) return sys::fail(std::exchange(socket->error, 0), "connect");
        }
        std::shared_ptr<Socket> listener;
        in6_addr destination{};
        if (socket->is_unix()) {
          auto found = detail::unix_find(k, p, addr, len, SOCK_STREAM, "connect");
          if (found || found.error().code != EINVAL) socket->autobind_for_credentials();
          if (!found) return sys::fail(found.error());
          listener = *found;
          // A listener shut for reading refuses, as unix_stream_connect checks RCV_SHUTDOWN.
          if (listener->state != Socket::State::kListening ||
              (listener->shut & Socket::kShutRead) != 0) {
            return sys::fail(ECONNREFUSED, "connect");
          }
        } else {
          auto found = detail::inet_find_listener(k, *socket, addr, len, &destination, "connect");
          if (!found) {
            if (found.error().code == ECONNREFUSED && socket->nonblocking()) {
              // Linux answers EINPROGRESS and reports the refusal through SO_ERROR.
              socket->error = ECONNREFUSED;
              return sys::fail(EINPROGRESS, "connect");
            }
            return sys::fail(found.error());
          }
          listener = *found;
        }
        if (listener->accept_queue.size() > static_cast<std::size_t>(listener->backlog)) {
          if (!socket->is_unix() && socket->nonblocking()) {
            // tcp_conn_request drops the SYN of a full accept queue; the connect is under way.
            if (socket->local.empty()) {
              if (auto bound = detail::inet_autobind(k, socket, destination, "connect"); !bound) {
                return bound;
              }
            }
            socket->connecting = true;
            return sys::fail(EINPROGRESS, "connect");
          }
          if (socket->nonblocking()) return sys::fail(EAGAIN, "connect");
          return k.would_block<void>(
              "connect", fmt::format("fd {}: the backlog of {} is full; accept first", fd,
                                     listener->describe()));
        }
        if (!own_state_first) {
          if (auto ok = own_state(); !ok) return ok;
        }
        if (!socket->is_unix() && socket->local.empty()) {
          if (auto bound = detail::inet_autobind(k, socket, destination, "connect"); !bound) {
            return bound;
          }
        }
        auto server_inode = k.new_inode(S_IFSOCK | 0777, listener->inode().uid,
                                        listener->inode().gid, detail::kSockDev);
        auto server = std::make_shared<Socket>(k, std::move(server_inode), O_RDWR,
                                               listener->domain(), SOCK_STREAM);
        server->local = listener->local;
        // An accepted socket is a clone of its listener, options included.
        server->reuse_address = listener->reuse_address;
        server->keepalive = listener->keepalive;
        server->no_delay = listener->no_delay;
        server->pass_credentials = listener->pass_credentials;
        if (!socket->is_unix()) {
          // An accepted TCP socket has the address the client reached, on the listener's port.
          server->local = detail::inet_accepted_address(*listener, destination);
          detail::inet_register(k, server);
        }
        server->peer_address = socket->local.empty() ? detail::unix_unnamed() : socket->local;
        socket->peer_address = listener->local;
        if (!socket->is_unix()) {
          // Each side names the other in its own family: a dual-stack listener's IPv4 client
          // is a v4-mapped address.
          server->peer_address = detail::inet_as_seen_by(*server, socket->local);
          socket->peer_address = detail::inet_as_seen_by(*socket, server->local);
        }
        socket->join(socket, server);
        if (socket->is_unix()) {
          // unix_stream_connect: the accepted socket's peer is the connecting process, the
          // client's is whoever called listen.
          server->peer_credentials = detail::peer_credentials_of(p);
          socket->peer_credentials = listener->own_credentials;
        }
        listener->accept_queue.push_back(server);
        k.wake(listener.get(), EPOLLIN | EPOLLRDNORM);
        if (!socket->is_unix() && socket->nonblocking()) {
          return sys::fail(EINPROGRESS, "connect");  // done at once, as loopback is
        }
        return {};
      });
}

namespace detail {

// What sendto and sendmsg share once the bytes are gathered and the control messages read.
sys::Result<std::size_t> send_message(Kernel& k, Process& p, int fd,
                                      const std::shared_ptr<Socket>& socket,
                                      std::span<const std::byte> bytes, int flags,
                                      const struct sockaddr* addr, socklen_t addrlen,
                                      Ancillary* extra) {
  if (flags & MSG_OOB) return sys::fail(EOPNOTSUPP, "sendto");
  sys::Result<std::size_t> sent = std::size_t{0};
  if (socket->is_stream()) {
    if (addr != nullptr && socket->is_unix()) {
      return sys::fail(socket->state == Socket::State::kConnected ? EISCONN : EOPNOTSUPP, "sendto");
    }
    sent = socket->send_stream(bytes, "sendto", &p, extra);
  } else if (!socket->is_unix()) {
    sent = udp_send(k, socket, bytes, addr, addrlen);
  } else {
    std::shared_ptr<Socket> to;
    if (addr != nullptr) {
      auto found = unix_find(k, p, addr, addrlen, SOCK_DGRAM, "sendto");
      if (found || found.error().code != EINVAL) socket->autobind_for_credentials();
      if (!found) return sys::fail(found.error());
      to = *found;
    } else {
      if (!socket->datagram_connected) return sys::fail(ENOTCONN, "sendto");
      socket->autobind_for_credentials();
      to = socket->datagram_peer.lock();
      if (!to) return sys::fail(ECONNREFUSED, "sendto");
    }
    sent = (socket->shut & Socket::kShutWrite) != 0 ? sys::fail(EPIPE, "sendto")
                                                    : socket->send_datagram(*to, bytes, p, extra);
  }
  if (!sent && sent.error().code == EAGAIN && !socket->nonblocking() && !(flags & MSG_DONTWAIT)) {
    return k.would_block<std::size_t>("sendto",
                                      fmt::format("fd {}: {}", fd, socket->blocked_reason(k)));
  }
  if (!sent && sent.error().code == EPIPE && !(flags & MSG_NOSIGNAL)) {
    k.deliver(p, SIGPIPE, 0);
  }
  return sent;
}

}  // namespace detail

sys::Result<std::size_t> FakeSyscalls::sendto(int fd, const void* buf, std::size_t len, int flags,
                                              const struct sockaddr* addr, socklen_t addrlen) {
  return call<std::size_t>("sendto",
                           {arg(fd), bytes_text(buf, len), arg(len), detail::msg_flags_text(flags),
                            detail::socket_address_text(addr, addrlen)},
                           [&](Process& p) -> sys::Result<std::size_t> {
                             auto socket_or = detail::socket_at(kernel(), p, fd, "sendto");
                             if (!socket_or) return sys::fail(socket_or.error());
                             const std::span<const std::byte> bytes(
                                 static_cast<const std::byte*>(buf), len);
                             return detail::send_message(kernel(), p, fd, *socket_or, bytes, flags,
                                                         addr, addrlen, nullptr);
                           });
}

sys::Result<std::size_t> FakeSyscalls::recvfrom(int fd, void* buf, std::size_t len, int flags,
                                                struct sockaddr* addr, socklen_t* addrlen) {
  return call<std::size_t>(
      "recvfrom",
      {arg(fd), arg(len), detail::msg_flags_text(flags), addr == nullptr ? "NULL" : "&addr"},
      [&](Process& p) -> sys::Result<std::size_t> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "recvfrom");
        if (!socket_or) return sys::fail(socket_or.error());
        const std::shared_ptr<Socket> socket = *socket_or;
        auto& k = kernel();
        detail::Received received;
        auto got = socket->receive({static_cast<std::byte*>(buf), len}, flags, &received);
        detail::SocketAddress& from = received.from;
        if (!got && got.error().code == EAGAIN) {
          if (socket->nonblocking() || (flags & MSG_DONTWAIT)) return got;
          return k.would_block<std::size_t>(
              "recvfrom", fmt::format("fd {}: {}", fd, socket->blocked_reason(k)));
        }
        if (!got) return sys::fail(got.error().code, "recvfrom");
        if (addr == nullptr && addrlen == nullptr) return got;
        // TCP names no sender (length 0); a unix stream names its peer if the peer is bound.
        if (socket->is_stream() && (!socket->is_unix() || from.size() <= sizeof(sa_family_t))) {
          from.clear();
        }
        if (auto copied = detail::copy_address(from, addr, addrlen, "recvfrom"); !copied) {
          return sys::fail(copied.error());
        }
        return got;
      });
}

sys::Result<std::size_t> FakeSyscalls::recvmsg(int fd, struct msghdr* msg, int flags) {
  return call<std::size_t>(
      "recvmsg", {arg(fd), detail::msghdr_text(msg), detail::msg_flags_text(flags)},
      [&](Process& p) -> sys::Result<std::size_t> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "recvmsg");
        if (!socket_or) return sys::fail(socket_or.error());
        const std::shared_ptr<Socket> socket = *socket_or;
        auto& k = kernel();
        if (msg == nullptr) return sys::fail(EFAULT, "recvmsg");
        if (msg->msg_iovlen > static_cast<std::size_t>(IOV_MAX)) {
          return sys::fail(EMSGSIZE, "recvmsg");
        }
        if (msg->msg_iov == nullptr && msg->msg_iovlen > 0) return sys::fail(EFAULT, "recvmsg");
        std::size_t room = 0;
        for (std::size_t i = 0; i < msg->msg_iovlen; ++i) room += msg->msg_iov[i].iov_len;
        // No datagram or stream buffer holds more than kSocketBuffer bytes.
        std::vector<std::byte> bytes(std::min(room, detail::kSocketBuffer));
        detail::Received received;
        auto got = socket->receive(bytes, flags, &received);
        if (!got && got.error().code == EAGAIN) {
          if (socket->nonblocking() || (flags & MSG_DONTWAIT)) {
            return sys::fail(EAGAIN, "recvmsg");
          }
          return k.would_block<std::size_t>(
              "recvmsg", fmt::format("fd {}: {}", fd, socket->blocked_reason(k)));
        }
        if (!got) return sys::fail(got.error().code, "recvmsg");
        // Scatter what was read (at most the buffer) over the iovecs in order.
        std::size_t left = std::min(*got, bytes.size());
        const std::byte* from = bytes.data();
        for (std::size_t i = 0; i < msg->msg_iovlen && left > 0; ++i) {
          const std::size_t n = std::min(left, msg->msg_iov[i].iov_len);
          std::memcpy(msg->msg_iov[i].iov_base, from, n);
          from += n;
          left -= n;
        }
        if (msg->msg_name != nullptr) {
          detail::SocketAddress name = received.from;
          if (socket->is_stream() && (!socket->is_unix() || name.size() <= sizeof(sa_family_t))) {
            name.clear();
          }
          auto* name_len = &msg->msg_namelen;
          if (auto copied = detail::copy_address(name, static_cast<sockaddr*>(msg->msg_name),
                                                 name_len, "recvmsg");
              !copied) {
            return sys::fail(copied.error());
          }
        }
        // ___sys_recvmsg starts msg_flags from the caller's MSG_CMSG_CLOEXEC.
        msg->msg_flags = (flags & MSG_CMSG_CLOEXEC) | (received.truncated ? MSG_TRUNC : 0);
        std::size_t control_used = 0;
        const bool credentials_asked = socket->pass_credentials && socket->is_unix();
        if (msg->msg_control == nullptr) {
          // scm_recv: without a control buffer, what would have come is lost (descriptors
          // closed) and said so.
          if (credentials_asked || !received.rights.empty()) msg->msg_flags |= MSG_CTRUNC;
        } else {
          if (credentials_asked) {
            // Bytes sent before anyone asked for credentials have none: the receiver reads
            // pid 0 and the overflow ids (scm_recv of an skb without them).
            const detail::Credentials c = received.credentials.value_or(
                detail::Credentials{0, detail::kOverflowId, detail::kOverflowId});
            const ucred credentials{c.pid, c.uid, c.gid};
            detail::put_control(*msg, control_used, SOL_SOCKET, SCM_CREDENTIALS, &credentials,
                                sizeof credentials);
          }
          if (!received.rights.empty()) {
            detail::put_rights(k, p, *msg, control_used, std::move(received.rights),
                               (flags & MSG_CMSG_CLOEXEC) != 0);
          }
        }
        msg->msg_controllen = control_used;
        return got;
      });
}

// ___sys_sendmsg: the descriptor, the header, the iovecs gathered, then the family's sendmsg,
// which reads the control messages (scm_send) before anything else.
sys::Result<std::size_t> FakeSyscalls::sendmsg(int fd, const struct msghdr* msg, int flags) {
  return call<std::size_t>(
      "sendmsg", {arg(fd), detail::msghdr_text(msg), detail::msg_flags_text(flags)},
      [&](Process& p) -> sys::Result<std::size_t> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "sendmsg");
        if (!socket_or) return sys::fail(socket_or.error());
        if (msg == nullptr) return sys::fail(EFAULT, "sendmsg");
        if (msg->msg_iovlen > static_cast<std::size_t>(IOV_MAX)) {
          return sys::fail(EMSGSIZE, "sendmsg");
        }
        if (msg->msg_iov == nullptr && msg->msg_iovlen > 0) return sys::fail(EFAULT, "sendmsg");
        if (msg->msg_controllen > static_cast<std::size_t>(INT_MAX)) {
          return sys::fail(ENOBUFS, "sendmsg");
        }
        std::vector<std::byte> bytes;
        for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
          const iovec& v = msg->msg_iov[i];
          if (v.iov_len == 0) continue;
          if (v.iov_base == nullptr) return sys::fail(EFAULT, "sendmsg");
          const auto* from = static_cast<const std::byte*>(v.iov_base);
          bytes.insert(bytes.end(), from, from + v.iov_len);
        }
        auto extra = detail::parse_control(kernel(), p, **socket_or, *msg);
        if (!extra) return sys::fail(extra.error());
        const auto* addr = static_cast<const sockaddr*>(msg->msg_name);
        const socklen_t addrlen = addr == nullptr ? 0 : msg->msg_namelen;
        auto sent = detail::send_message(kernel(), p, fd, *socket_or, bytes, flags,
                                         addrlen == 0 ? nullptr : addr, addrlen, &*extra);
        if (!sent) return sys::fail(sent.error().code, "sendmsg");
        return sent;
      });
}

sys::Result<void> FakeSyscalls::setsockopt(int fd, int level, int name, const void* value,
                                           socklen_t len) {
  int shown = 0;
  if (value != nullptr && len >= sizeof(int)) std::memcpy(&shown, value, sizeof shown);
  return call<void>(
      "setsockopt", {arg(fd), detail::option_text(level, name), arg(shown), arg(len)},
      [&](Process& p) -> sys::Result<void> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "setsockopt");
        if (!socket_or) return sys::fail(socket_or.error());
        const std::shared_ptr<Socket> socket = *socket_or;
        if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF)) {
          if (len < sizeof(int)) return sys::fail(EINVAL, "setsockopt");
          if (value == nullptr) return sys::fail(EFAULT, "setsockopt");
          int v = 0;
          std::memcpy(&v, value, sizeof v);
          // sk_setsockopt: capped at the sysctl maximum (a negative value is a huge unsigned
          // one), doubled for the kernel's overhead, floored.
          const auto capped = static_cast<int>(
              std::min<std::uint32_t>(static_cast<std::uint32_t>(v), detail::kSocketBufferMax));
          if (name == SO_SNDBUF) {
            socket->send_buffer = std::max(capped * 2, detail::kMinSendBuffer);
          } else {
            socket->receive_buffer = std::max(capped * 2, detail::kMinReceiveBuffer);
          }
          return {};
        }
        if (level == IPPROTO_IP && !socket->is_unix() && !socket->is_stream()) {
          return detail::udp_set_ip_option(kernel(), socket, name, value, len);
        }
        if (level == IPPROTO_IPV6 && socket->domain() == AF_INET6) {
          return detail::inet6_set_option(kernel(), socket, name, value, len);
        }
        bool* flag = nullptr;
        if (level == SOL_SOCKET) {
          if (name == SO_REUSEADDR) flag = &socket->reuse_address;
          if (name == SO_KEEPALIVE) flag = &socket->keepalive;
          if (name == SO_PASSCRED) {
            // Linux (checked on 6.18) takes it only where credentials can travel.
            if (!socket->is_unix()) return sys::fail(EOPNOTSUPP, "setsockopt");
            flag = &socket->pass_credentials;
          }
        } else if (level == IPPROTO_TCP && !socket->is_unix() && socket->is_stream()) {
          if (name == TCP_NODELAY) flag = &socket->no_delay;
        } else if (socket->is_unix()) {
          return sys::fail(EOPNOTSUPP, "setsockopt");
        }
        if (flag == nullptr) return sys::fail(ENOPROTOOPT, "setsockopt");
        if (len < sizeof(int)) return sys::fail(EINVAL, "setsockopt");
        if (value == nullptr) return sys::fail(EFAULT, "setsockopt");
        int v = 0;
        std::memcpy(&v, value, sizeof v);
        *flag = v != 0;
        return {};
      });
}

sys::Result<void> FakeSyscalls::getsockopt(int fd, int level, int name, void* value,
                                           socklen_t* len) {
  return call<void>(
      "getsockopt", {arg(fd), detail::option_text(level, name)},
      [&](Process& p) -> sys::Result<void> {
        auto socket_or = detail::socket_at(kernel(), p, fd, "getsockopt");
        if (!socket_or) return sys::fail(socket_or.error());
        const std::shared_ptr<Socket> socket = *socket_or;
        if (level == SOL_SOCKET && name == SO_PEERCRED) {
          // Any socket answers; one without a peer's credentials says pid 0 and ids -1.
          const detail::Credentials c = socket->peer_credentials.value_or(
              detail::Credentials{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)});
          const ucred peer{c.pid, c.uid, c.gid};
          if (len == nullptr || value == nullptr) return sys::fail(EFAULT, "getsockopt");
          if (static_cast<int>(*len) < 0) return sys::fail(EINVAL, "getsockopt");
          const socklen_t n = std::min<socklen_t>(*len, sizeof peer);
          std::memcpy(value, &peer, n);
          *len = n;
          return {};
        }
        int v = 0;
        if (level == SOL_SOCKET) {
          switch (name) {
            case SO_REUSEADDR:
              v = socket->reuse_address ? 1 : 0;
              break;
            case SO_KEEPALIVE:
              v = socket->keepalive ? 1 : 0;
              break;
            case SO_ERROR:
              v = std::exchange(socket->error, 0);
              break;
            case SO_TYPE:
              v = socket->type();
              break;
            case SO_DOMAIN:
              v = socket->domain();
              break;
            case SO_ACCEPTCONN:
              v = socket->state == Socket::State::kListening ? 1 : 0;
              break;
            case SO_PASSCRED:
              if (!socket->is_unix()) return sys::fail(EOPNOTSUPP, "getsockopt");
              v = socket->pass_credentials ? 1 : 0;
              break;
            case SO_PROTOCOL:
              v = socket->is_unix() ? 0 : socket->is_stream() ? IPPROTO_TCP : IPPROTO_UDP;
              break;
            case SO_SNDBUF: {
              const bool tcp = socket->is_stream() && !socket->is_unix();
              v = socket->send_buffer != 0 ? socket->send_buffer
                  : tcp                    ? detail::kTcpSendBuffer
                                           : detail::kSocketBufferMax;
              break;
            }
            case SO_RCVBUF: {
              const bool tcp = socket->is_stream() && !socket->is_unix();
              v = socket->receive_buffer != 0 ? socket->receive_buffer
                  : tcp                       ? detail::kTcpReceiveBuffer
                                              : detail::kSocketBufferMax;
              break;
            }
            default:
              return sys::fail(ENOPROTOOPT, "getsockopt");
          }
        } else if (level == IPPROTO_TCP && socket->is_stream() && !socket->is_unix() &&
                   name == TCP_NODELAY) {
          v = socket->no_delay ? 1 : 0;
        } else if (level == IPPROTO_IP && !socket->is_unix() && !socket->is_stream()) {
          auto got = detail::udp_ip_option(*socket, name);
          if (!got) return sys::fail(got.error());
          v = *got;
        } else if (level == IPPROTO_IPV6 && socket->domain() == AF_INET6) {
          auto got = detail::inet6_option(*socket, name);
          if (!got) return sys::fail(got.error());
          v = *got;
        } else if (level != SOL_SOCKET &&
                   (socket->is_unix() || (socket->domain() == AF_INET && level != IPPROTO_IP &&
                                          !(socket->is_stream() && level == IPPROTO_TCP)))) {
          // ip_getsockopt's answer to a level it does not know (an AF_INET6 socket's
          // ipv6_getsockopt says ENOPROTOOPT instead).
          return sys::fail(EOPNOTSUPP, "getsockopt");
        } else {
          return sys::fail(ENOPROTOOPT, "getsockopt");
        }
        if (len == nullptr || value == nullptr) return sys::fail(EFAULT, "getsockopt");
        if (static_cast<int>(*len) < 0) return sys::fail(EINVAL, "getsockopt");
        const socklen_t n = std::min<socklen_t>(*len, sizeof v);
        std::memcpy(value, &v, n);
        *len = n;
        return {};
      });
}

sys::Result<void> FakeSyscalls::getsockname(int fd, struct sockaddr* addr, socklen_t* len) {
  return call<void>("getsockname", {arg(fd)}, [&](Process& p) -> sys::Result<void> {
    auto socket_or = detail::socket_at(kernel(), p, fd, "getsockname");
    if (!socket_or) return sys::fail(socket_or.error());
    const std::shared_ptr<Socket> socket = *socket_or;
    detail::SocketAddress name = socket->local;
    if (name.empty()) {
      name = socket->is_unix() ? detail::unix_unnamed() : detail::inet_unbound(socket->domain());
    }
    if (addr == nullptr || len == nullptr) return sys::fail(EFAULT, "getsockname");
    return detail::copy_address(name, addr, len, "getsockname");
  });
}

// inet_getname and unix_getname with peer set: ENOTCONN before the buffer is looked at.
sys::Result<void> FakeSyscalls::getpeername(int fd, struct sockaddr* addr, socklen_t* len) {
  return call<void>("getpeername", {arg(fd)}, [&](Process& p) -> sys::Result<void> {
    auto socket_or = detail::socket_at(kernel(), p, fd, "getpeername");
    if (!socket_or) return sys::fail(socket_or.error());
    const std::shared_ptr<Socket> socket = *socket_or;
    const bool connected = socket->is_stream()
                               ? socket->state == Socket::State::kConnected && !socket->reset
                               : socket->datagram_connected;
    if (!connected || socket->peer_address.empty()) return sys::fail(ENOTCONN, "getpeername");
    if (addr == nullptr || len == nullptr) return sys::fail(EFAULT, "getpeername");
    return detail::copy_address(socket->peer_address, addr, len, "getpeername");
  });
}

sys::Result<void> FakeSyscalls::shutdown(int fd, int how) {
  const std::string shown = how == SHUT_RD     ? "SHUT_RD"
                            : how == SHUT_WR   ? "SHUT_WR"
                            : how == SHUT_RDWR ? "SHUT_RDWR"
                                               : arg(how);
  return call<void>("shutdown", {arg(fd), shown}, [&](Process& p) -> sys::Result<void> {
    auto socket_or = detail::socket_at(kernel(), p, fd, "shutdown");
    if (!socket_or) return sys::fail(socket_or.error());
    // Both families check `how` before anything else.
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return sys::fail(EINVAL, "shutdown");
    return (*socket_or)->shutdown(how);
  });
}

}  // namespace daemonkit::fake
