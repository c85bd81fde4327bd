// Differential scenarios for what core/net needs beyond plain streams: sendmsg with
// SCM_RIGHTS and SCM_CREDENTIALS over AF_UNIX, getpeername, SO_PEERCRED and the socket options
// socket activation reads. Each scenario runs on FakeSyscalls and on the real kernel; the traces
// must be equal, and the steps that carry the point are pinned to what Linux does.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "differential_script.h"
#include "differential_world.h"

namespace daemonkit::fake::differential {
namespace {

// One sendmsg of `text` with the descriptors `fds` as one SCM_RIGHTS message (none: no control).
sys::Result<std::size_t> send_fds(sys::Syscalls& os, int fd, const std::string& text,
                                  const std::vector<int>& fds, int flags = MSG_NOSIGNAL) {
  std::string data = text;
  iovec iov{data.data(), data.size()};
  std::vector<unsigned char> control(CMSG_SPACE(fds.size() * sizeof(int)));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  return os.sendmsg(fd, &msg, flags);
}

// One recvmsg into `len` bytes with `control` bytes of control buffer (0: none): the count,
// the bytes, msg_flags, msg_controllen, and each control message (credentials with the pid
// named "self" or "child"; descriptors with their numbers and FD_CLOEXEC).
std::string receive_text(sys::Syscalls& os, int fd, std::size_t len, std::size_t control,
                         int flags = MSG_DONTWAIT, pid_t child = -1) {
  std::vector<char> buf(len + 1);
  std::vector<unsigned char> control_buf(control + 1);
  iovec iov{buf.data(), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control == 0 ? nullptr : control_buf.data();
  msg.msg_controllen = control;
  auto n = os.recvmsg(fd, &msg, flags);
  if (!n) return sys::errno_name(n.error().code);
  std::string text =
      fmt::format("n={} \"{}\" flags={:#x} controllen={}", *n,
                  std::string(buf.data(), std::min(*n, len)), msg.msg_flags, msg.msg_controllen);
  if (msg.msg_control == nullptr) return text;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      text += fmt::format(" rights(len={}):", c->cmsg_len);
      for (std::size_t i = 0; i < count; ++i) {
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        auto fd_flags = os.fcntl(got, F_GETFD, 0);
        text += fmt::format(" {}{}", got, fd_flags && (*fd_flags & FD_CLOEXEC) ? "(cloexec)" : "");
      }
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
               c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred u{};
      std::memcpy(&u, CMSG_DATA(c), sizeof u);
      const std::string pid = u.pid == os.getpid() ? "self"
                              : u.pid == child     ? "child"
                                                   : std::to_string(u.pid);
      text += fmt::format(" creds: pid={} uid={} gid={}", pid, u.uid, u.gid);
    } else {
      text +=
          fmt::format(" cmsg level={} type={} len={}", c->cmsg_level, c->cmsg_type, c->cmsg_len);
    }
  }
  return text;
}

std::string read_text(sys::Syscalls& os, int fd) {
  char buf[64];
  auto n = os.read(fd, buf, sizeof buf);
  if (!n) return sys::errno_name(n.error().code);
  return fmt::format("n={} \"{}\"", *n, std::string(buf, *n));
}

// A raw control buffer for sendmsg: one header of the given fields, then `data`.
sys::Result<std::size_t> send_control(sys::Syscalls& os, int fd, int level, int type,
                                      std::size_t cmsg_len, const void* data, std::size_t size,
                                      std::size_t controllen) {
  alignas(cmsghdr) unsigned char control[128] = {};
  cmsghdr header{};
  header.cmsg_len = cmsg_len;
  header.cmsg_level = level;
  header.cmsg_type = type;
  std::memcpy(control, &header, sizeof header);
  if (size > 0) std::memcpy(control + CMSG_LEN(0), data, size);
  char byte = 'c';
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = controllen;
  return os.sendmsg(fd, &msg, MSG_NOSIGNAL);
}

// SCM_RIGHTS over a datagram pair: descriptors arrive as new numbers for the same open file
// descriptions (a pipe's read end that the sender closed still reads), MSG_CMSG_CLOEXEC, a
// short control buffer (MSG_CTRUNC, the rest closed), no control buffer, MSG_PEEK (copies),
// the descriptor table full (EMFILE: MSG_CTRUNC), and sendmsg's errors in Linux's order.
TEST(DifferentialRights, DescriptorsCrossADatagramPair) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    ignore_sigpipe(s);
    const auto pair = s.value<sys::SocketPair>(
        "socketpair", os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), {},
        [](const sys::SocketPair& p) { return fmt::format("[{}, {}]", p.first, p.second); });
    const auto pipe = s.value<sys::PipeFds>("pipe2", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    s.value<std::size_t>("sendmsg read end", send_fds(os, pair.first, "r", {pipe.read_end}), 0);
    s.done("close read end", os.close(pipe.read_end));
    s.value<std::size_t>("write with the read end in flight", os.write(pipe.write_end, "in", 2), 0);
    s.note("recvmsg", receive_text(os, pair.second, 8, 64));
    s.note("read received", read_text(os, pipe.read_end));
    s.value<std::size_t>("sendmsg again", send_fds(os, pair.first, "c", {pipe.read_end}), 0);
    s.note("recvmsg CMSG_CLOEXEC", receive_text(os, pair.second, 8, 64, MSG_CMSG_CLOEXEC));
    // Three copies of the write end: only what fits the buffer arrives, the rest are closed.
    const int w1 = s.value<int>("dup w1", os.fcntl(pipe.write_end, F_DUPFD_CLOEXEC, 20), -1);
    const int w2 = s.value<int>("dup w2", os.fcntl(pipe.write_end, F_DUPFD_CLOEXEC, 20), -1);
    s.value<std::size_t>("sendmsg three", send_fds(os, pair.first, "3", {w1, w2, pipe.write_end}),
                         0);
    s.done("close w1", os.close(w1));
    s.done("close w2", os.close(w2));
    s.done("close write end", os.close(pipe.write_end));
    s.note("recvmsg room for one", receive_text(os, pair.second, 8, CMSG_LEN(sizeof(int))));
    s.note("poll pipe, one writer left", s.poll_text(pipe.read_end));
    for (int fd = 5; fd < 20; ++fd) {
      if (fd != pipe.read_end) static_cast<void>(os.close(fd));  // the one received
    }
    s.note("poll pipe, no writer", s.poll_text(pipe.read_end));
    s.value<std::size_t>("sendmsg for no buffer", send_fds(os, pair.first, "n", {pipe.read_end}),
                         0);
    s.note("recvmsg no control", receive_text(os, pair.second, 8, 0));
    s.note("recvmsg header only", receive_text(os, pair.second, 8, sizeof(cmsghdr)));
    s.value<std::size_t>("sendmsg to peek", send_fds(os, pair.first, "p", {pipe.read_end}), 0);
    s.note("recvmsg peek", receive_text(os, pair.second, 8, 64, MSG_DONTWAIT | MSG_PEEK));
    s.note("recvmsg after peek", receive_text(os, pair.second, 8, 64));
    s.value<std::size_t>("sendmsg empty", send_fds(os, pair.first, "", {pipe.read_end}), 0);
    s.note("recvmsg empty", receive_text(os, pair.second, 8, 64));
    s.value<std::size_t>("sendmsg bad fd", send_fds(os, pair.first, "b", {pipe.read_end, 999}), 0);
    s.note("recvmsg nothing", receive_text(os, pair.second, 8, 64));
    const int on = 1;
    s.value<std::size_t>("cmsg_len past the buffer",
                         send_control(os, pair.first, SOL_SOCKET, SCM_RIGHTS, CMSG_LEN(8), &on,
                                      sizeof on, CMSG_LEN(4)),
                         0);
    s.value<std::size_t>(
        "unknown SOL_SOCKET type",
        send_control(os, pair.first, SOL_SOCKET, 77, CMSG_LEN(4), &on, sizeof on, CMSG_SPACE(4)),
        0);
    s.value<std::size_t>(
        "other level ignored",
        send_control(os, pair.first, IPPROTO_IP, 1, CMSG_LEN(4), &on, sizeof on, CMSG_SPACE(4)), 0);
    s.value<std::size_t>("control shorter than a header",
                         send_control(os, pair.first, SOL_SOCKET, 77, CMSG_LEN(4), &on, sizeof on,
                                      sizeof(cmsghdr) - 1),
                         0);
    s.note("recvmsg plain", receive_text(os, pair.second, 8, 64));
    s.note("recvmsg plain 2", receive_text(os, pair.second, 8, 64));
    const int lone =
        s.value<int>("socket lone", os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
    s.value<std::size_t>("sendmsg unconnected", send_fds(os, lone, "u", {pipe.read_end}), 0);
    s.value<std::size_t>("sendmsg unconnected bad fd", send_fds(os, lone, "u", {999}), 0);
    // A nearly full table: of three descriptors, one gets a number.
    s.value<std::size_t>("sendmsg for a full table",
                         send_fds(os, pair.first, "f", {pipe.read_end, lone, pair.first}), 0);
    const struct rlimit few { 9, 9 };
    s.done("setrlimit 9", os.setrlimit(RLIMIT_NOFILE, few));
    int last = -1;
    while (auto opened = os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0)) last = *opened;
    s.note("last open", std::to_string(last));
    s.done("close last", os.close(last));
    s.note("recvmsg table full", receive_text(os, pair.second, 8, 64));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "write with the read end in flight"), "2")
      << "the description in flight keeps the pipe's read end open";
  EXPECT_EQ(result_of(steps, "recvmsg"), "n=1 \"r\" flags=0x0 controllen=24 rights(len=20): 5");
  EXPECT_EQ(result_of(steps, "read received"), "n=2 \"in\"");
  EXPECT_EQ(result_of(steps, "recvmsg CMSG_CLOEXEC"),
            "n=1 \"c\" flags=0x40000000 controllen=24 rights(len=20): 7(cloexec)")
      << "msg_flags keeps MSG_CMSG_CLOEXEC";
  EXPECT_EQ(result_of(steps, "recvmsg room for one"),
            "n=1 \"3\" flags=0x8 controllen=20 rights(len=20): 6");
  EXPECT_EQ(result_of(steps, "poll pipe, no writer"), "HUP") << "the two cut off were closed";
  EXPECT_EQ(result_of(steps, "recvmsg no control"), "n=1 \"n\" flags=0x8 controllen=0");
  EXPECT_EQ(result_of(steps, "sendmsg empty"), "0");
  EXPECT_EQ(result_of(steps, "sendmsg bad fd"), "EBADF");
  EXPECT_EQ(result_of(steps, "cmsg_len past the buffer"), "EINVAL");
  EXPECT_EQ(result_of(steps, "unknown SOL_SOCKET type"), "EINVAL");
  EXPECT_EQ(result_of(steps, "other level ignored"), "1");
  EXPECT_EQ(result_of(steps, "control shorter than a header"), "1");
  EXPECT_EQ(result_of(steps, "sendmsg unconnected"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "sendmsg unconnected bad fd"), "EBADF")
      << "control messages are read before the destination";
}

// SCM_RIGHTS on a stream: the descriptors ride with the bytes of their send, a read stops at
// the end of those bytes, a read that takes part of them takes the descriptors, a send of no
// bytes sends no descriptors, a socket closed with descriptors unread closes them, and TCP
// refuses them.
TEST(DifferentialRights, DescriptorsRideWithTheirBytesOnAStream) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    ignore_sigpipe(s);
    const auto pair = s.value<sys::SocketPair>(
        "socketpair", os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), {},
        [](const sys::SocketPair& p) { return fmt::format("[{}, {}]", p.first, p.second); });
    const auto pipe = s.value<sys::PipeFds>("pipe2", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    s.value<std::size_t>("write abc", os.write(pair.first, "abc", 3), 0);
    s.value<std::size_t>("sendmsg def", send_fds(os, pair.first, "def", {pipe.read_end}), 0);
    s.value<std::size_t>("write ghi", os.write(pair.first, "ghi", 3), 0);
    s.note("recvmsg 2", receive_text(os, pair.second, 2, 64));
    s.note("recvmsg to the descriptors", receive_text(os, pair.second, 64, 64));
    s.note("recvmsg rest", receive_text(os, pair.second, 64, 64));
    s.value<std::size_t>("sendmsg xyz", send_fds(os, pair.first, "xyz", {pipe.read_end}), 0);
    s.value<std::size_t>("sendmsg uvw", send_fds(os, pair.first, "uvw", {pipe.write_end}), 0);
    s.note("recvmsg peek", receive_text(os, pair.second, 64, 64, MSG_DONTWAIT | MSG_PEEK));
    s.note("recvmsg x", receive_text(os, pair.second, 1, 64));
    s.note("recvmsg yz", receive_text(os, pair.second, 64, 64));
    s.note("read uvw", read_text(os, pair.second));
    s.value<std::size_t>("sendmsg nothing", send_fds(os, pair.first, "", {pipe.read_end}), 0);
    s.note("recvmsg after nothing", receive_text(os, pair.second, 64, 64));
    // The pipe's only read end in flight to a socket that closes unread: EPIPE for its writer.
    const auto other = s.value<sys::PipeFds>("pipe2 other", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    s.value<std::size_t>("sendmsg other", send_fds(os, pair.first, "o", {other.read_end}), 0);
    s.done("close other read end", os.close(other.read_end));
    s.value<std::size_t>("write other in flight", os.write(other.write_end, "x", 1), 0);
    s.done("close receiver", os.close(pair.second));
    s.value<std::size_t>("write other after", os.write(other.write_end, "x", 1), 0);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "recvmsg 2"), "n=2 \"ab\" flags=0x0 controllen=0");
  EXPECT_EQ(result_of(steps, "recvmsg to the descriptors"),
            "n=4 \"cdef\" flags=0x0 controllen=24 rights(len=20): 7");
  EXPECT_EQ(result_of(steps, "recvmsg rest"), "n=3 \"ghi\" flags=0x0 controllen=0");
  EXPECT_EQ(result_of(steps, "recvmsg x"), "n=1 \"x\" flags=0x0 controllen=24 rights(len=20): 9");
  EXPECT_EQ(result_of(steps, "recvmsg yz"),
            "n=5 \"yzuvw\" flags=0x0 controllen=24 rights(len=20): 10")
      << "a run whose descriptors were taken ends no read: the next run's come along";
  EXPECT_EQ(result_of(steps, "sendmsg nothing"), "0");
  EXPECT_EQ(result_of(steps, "recvmsg after nothing"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "write other in flight"), "1");
  EXPECT_EQ(result_of(steps, "write other after"), "EPIPE");
}

std::string peer_name_text(sys::Syscalls& os, int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  auto got = os.getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (!got) return sys::errno_name(got.error().code);
  return fmt::format("family={} len={}", a.ss_family, len);
}

std::string peercred_text(sys::Syscalls& os, int fd, pid_t child) {
  ucred u{};
  socklen_t len = sizeof u;
  auto got = os.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &len);
  if (!got) return sys::errno_name(got.error().code);
  const std::string pid = u.pid == os.getpid() ? "self"
                          : u.pid == child     ? "child"
                                               : std::to_string(u.pid);
  return fmt::format("pid={} uid={} gid={} len={}", pid, u.uid, u.gid, len);
}

std::string int_option(sys::Syscalls& os, int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  auto got = os.getsockopt(fd, level, name, &value, &len);
  if (!got) return sys::errno_name(got.error().code);
  return fmt::format("{} (len {})", value, len);
}

// What a server learns of a peer: getpeername on each kind of socket, SO_PEERCRED (the
// listener's ids for a client, the client's for the accepted socket, nothing for TCP), the
// options socket activation reads of an inherited descriptor, and SO_PASSCRED on a stream.
TEST(DifferentialPeer, NamesCredentialsAndTheTypeOfASocket) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext& world) {
    Script s(os);
    const int type = SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const int listener = s.value<int>("socket listener", os.socket(AF_UNIX, type, 0), -1);
    const auto at = unix_abstract(world.top + "/peer");
    s.done("bind", os.bind(listener, at.get(), at.len));
    s.note("getpeername unconnected", peer_name_text(os, listener));
    s.note("SO_PEERCRED unconnected", peercred_text(os, listener, -1));
    s.done("listen", os.listen(listener, 4));
    s.note("SO_ACCEPTCONN listener", int_option(os, listener, SOL_SOCKET, SO_ACCEPTCONN));
    s.note("SO_TYPE listener", int_option(os, listener, SOL_SOCKET, SO_TYPE));
    s.note("SO_DOMAIN listener", int_option(os, listener, SOL_SOCKET, SO_DOMAIN));
    s.note("SO_ERROR listener", int_option(os, listener, SOL_SOCKET, SO_ERROR));
    const int client = s.value<int>("socket client", os.socket(AF_UNIX, type, 0), -1);
    const int on = 1;
    s.done("connect", os.connect(client, at.get(), at.len));
    s.note("getpeername client", peer_name_text(os, client));
    s.note("SO_PEERCRED client", peercred_text(os, client, -1));
    s.note("SO_ACCEPTCONN client", int_option(os, client, SOL_SOCKET, SO_ACCEPTCONN));
    const int server = s.value<int>("accept4", os.accept4(listener, nullptr, nullptr, 0), -1);
    s.note("getpeername server", peer_name_text(os, server));
    s.note("SO_PEERCRED server", peercred_text(os, server, -1));
    s.done("SO_PASSCRED server", os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
    s.value<std::size_t>("write one", os.write(client, "one", 3), 0);
    s.value<std::size_t>("write two", os.write(client, "two", 3), 0);
    const pid_t child =
        in_child(s, [&](sys::Syscalls& c) { return c.write(client, "kid", 3).has_value(); });
    s.note("SO_PEERCRED short", [&] {
      ucred u{};
      socklen_t len = 4;
      auto got = os.getsockopt(server, SOL_SOCKET, SO_PEERCRED, &u, &len);
      return got ? fmt::format("len={} pid={}", len, u.pid == os.getpid() ? "self" : "other")
                 : sys::errno_name(got.error().code);
    }());
    s.note("recvmsg mine", receive_text(os, server, 64, 64, MSG_DONTWAIT, child));
    s.note("recvmsg child's", receive_text(os, server, 64, 64, MSG_DONTWAIT, child));
    s.done("close client", os.close(client));
    s.note("getpeername after the peer closed", peer_name_text(os, server));
    const auto pair = s.value<sys::SocketPair>(
        "socketpair", os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), {},
        [](const sys::SocketPair& p) { return fmt::format("[{}, {}]", p.first, p.second); });
    s.note("getpeername pair", peer_name_text(os, pair.first));
    s.note("SO_PEERCRED pair", peercred_text(os, pair.first, -1));
    s.note("SO_TYPE pair", int_option(os, pair.first, SOL_SOCKET, SO_TYPE));
    const int dgram =
        s.value<int>("socket dgram", os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
    s.note("getpeername dgram", peer_name_text(os, dgram));
    s.done("connect dgram", os.connect(dgram, at.get(), at.len));
    const auto dgram_at = unix_abstract(world.top + "/dgram");
    const int target =
        s.value<int>("socket target", os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
    s.done("bind target", os.bind(target, dgram_at.get(), dgram_at.len));
    s.done("connect dgram to target", os.connect(dgram, dgram_at.get(), dgram_at.len));
    s.note("getpeername dgram connected", peer_name_text(os, dgram));
    s.note("SO_PEERCRED dgram connected", peercred_text(os, dgram, -1));
    const int tcp =
        s.value<int>("socket tcp", os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), -1);
    s.note("SO_PEERCRED tcp", peercred_text(os, tcp, -1));
    s.note("SO_DOMAIN tcp", int_option(os, tcp, SOL_SOCKET, SO_DOMAIN));
    s.note("getpeername tcp", peer_name_text(os, tcp));
    const auto pipe = s.value<sys::PipeFds>("pipe2", os.pipe2(O_CLOEXEC), {});
    s.note("getpeername pipe", peer_name_text(os, pipe.read_end));
    s.note("getpeername bad fd", peer_name_text(os, 999));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  const std::string self_ids = fmt::format("uid={} gid={}", ::geteuid(), ::getegid());
  EXPECT_EQ(result_of(steps, "getpeername unconnected"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "SO_PEERCRED unconnected"),
            "pid=0 uid=4294967295 gid=4294967295 len=12");
  EXPECT_EQ(result_of(steps, "SO_ACCEPTCONN listener"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "SO_TYPE listener"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "SO_DOMAIN listener"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "SO_PEERCRED client"), "pid=self " + self_ids + " len=12");
  EXPECT_EQ(result_of(steps, "getpeername server"), "family=1 len=2") << "an unbound client";
  EXPECT_EQ(result_of(steps, "recvmsg mine"),
            "n=6 \"onetwo\" flags=0x0 controllen=32 creds: pid=self " +
                fmt::format("uid={} gid={}", ::getuid(), ::getgid()));
  EXPECT_THAT(result_of(steps, "recvmsg child's"), ::testing::HasSubstr("\"kid\""));
  EXPECT_THAT(result_of(steps, "recvmsg child's"), ::testing::HasSubstr("pid=child"));
  EXPECT_EQ(result_of(steps, "SO_PEERCRED tcp"), "pid=0 uid=4294967295 gid=4294967295 len=12");
  EXPECT_EQ(result_of(steps, "connect dgram"), "ECONNREFUSED")
      << "an abstract name is looked up among sockets of the caller's type";
  EXPECT_EQ(result_of(steps, "getpeername tcp"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "getpeername pipe"), "ENOTSOCK");
  EXPECT_EQ(result_of(steps, "getpeername bad fd"), "EBADF");
}

// ---- UDP --------------------------------------------------------------------------------

sockaddr_in inet4(const char* host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

const sockaddr* sa(const sockaddr_in& a) { return reinterpret_cast<const sockaddr*>(&a); }

// Ports by name, so that traces show "a" where each world has its own ephemeral number.
class PortNames {
 public:
  void add(const std::string& name, std::uint16_t port) { names_.emplace_back(name, port); }
  [[nodiscard]] std::string text(const sockaddr_in& a) const {
    char host[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    const std::uint16_t port = ntohs(a.sin_port);
    for (const auto& [name, number] : names_) {
      if (number == port && port != 0) return fmt::format("{}:{}", host, name);
    }
    const bool ephemeral = port >= 32768 && port <= 60999;
    return fmt::format("{}:{}", host, ephemeral ? "ephemeral" : std::to_string(port));
  }

 private:
  std::vector<std::pair<std::string, std::uint16_t>> names_;
};

sockaddr_in name_of(sys::Syscalls& os, int fd, bool peer = false) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  auto got = peer ? os.getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                  : os.getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (!got) a.sin_family = 0xffff;
  return a;
}

// UDP on loopback: ephemeral binds, datagrams with their sender's address and boundaries,
// MSG_TRUNC, empty datagrams, the size limit, sendto's errors, a connected socket that hears
// only its peer and learns of a closed port (ECONNREFUSED once, on a send or a receive) where
// an unconnected one does not, disconnecting, and binding a port twice.
TEST(DifferentialUdp, DatagramsAddressesLimitsAndPortUnreachable) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    PortNames ports;
    const int type = SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const auto named = [&](const std::string& what, int fd, bool peer = false) {
      const sockaddr_in a = name_of(os, fd, peer);
      s.note(what, a.sin_family == 0xffff ? std::string("failed") : ports.text(a));
    };
    const auto recv_from = [&](const std::string& what, int fd, std::size_t len, int flags = 0) {
      std::string buf(len, '\0');
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      auto n =
          os.recvfrom(fd, buf.data(), len, flags, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (!n) return s.note(what, sys::errno_name(n.error().code));
      buf.resize(std::min(*n, len));
      s.note(what, fmt::format("n={} \"{}\" from={} len={}", *n, buf.substr(0, 16),
                               ports.text(from), from_len));
    };
    const int a = s.value<int>("socket a", os.socket(AF_INET, type, 0), -1);
    const auto any0 = inet4("127.0.0.1", 0);
    s.done("bind a :0", os.bind(a, sa(any0), sizeof any0));
    ports.add("a", ntohs(name_of(os, a).sin_port));
    named("name a", a);
    const auto to_a = inet4("127.0.0.1", ntohs(name_of(os, a).sin_port));
    const int b = s.value<int>("socket b", os.socket(AF_INET, type, IPPROTO_UDP), -1);
    named("name b unbound", b);
    s.value<std::size_t>("sendto a", os.sendto(b, "hello", 5, 0, sa(to_a), sizeof to_a), 0);
    ports.add("b", ntohs(name_of(os, b).sin_port));
    named("name b after send", b);
    s.note("poll a", s.poll_text(a));
    recv_from("recv hello", a, 64);
    s.value<std::size_t>("sendto one", os.sendto(b, "one", 3, 0, sa(to_a), sizeof to_a), 0);
    s.value<std::size_t>("sendto two", os.sendto(b, "two", 3, 0, sa(to_a), sizeof to_a), 0);
    recv_from("recv one", a, 64);
    recv_from("recv two", a, 64);
    recv_from("recv nothing", a, 64);
    s.value<std::size_t>("sendto long", os.sendto(b, "truncated", 9, 0, sa(to_a), sizeof to_a), 0);
    recv_from("recv MSG_TRUNC", a, 4, MSG_TRUNC);
    s.value<std::size_t>("sendto empty", os.sendto(b, "", 0, 0, sa(to_a), sizeof to_a), 0);
    recv_from("recv empty", a, 64);
    const std::string biggest(65507, 'm');
    s.value<std::size_t>("sendto 65507",
                         os.sendto(b, biggest.data(), biggest.size(), 0, sa(to_a), sizeof to_a), 0);
    s.value<std::size_t>("sendto 65508",
                         os.sendto(b, biggest.data(), biggest.size() + 1, 0, sa(to_a), sizeof to_a),
                         0);
    const std::string huge(70000, 'h');
    s.value<std::size_t>("sendto 70000",
                         os.sendto(b, huge.data(), huge.size(), 0, sa(to_a), sizeof to_a), 0);
    recv_from("recv 65507", a, 70000);
    const auto port0 = inet4("127.0.0.1", 0);
    s.value<std::size_t>("sendto port 0", os.sendto(b, "x", 1, 0, sa(port0), sizeof port0), 0);
    s.value<std::size_t>("sendto short address", os.sendto(b, "x", 1, 0, sa(to_a), 8), 0);
    sockaddr_in other_family = to_a;
    other_family.sin_family = AF_INET6;
    s.value<std::size_t>("sendto AF_INET6 address",
                         os.sendto(b, "x", 1, 0, sa(other_family), sizeof other_family), 0);
    s.value<std::size_t>("sendto no address", os.sendto(b, "x", 1, 0, nullptr, 0), 0);
    s.value<std::size_t>("write unconnected", os.write(b, "x", 1), 0);
    s.done("listen", os.listen(a, 1));
    s.note("SO_TYPE", int_option(os, a, SOL_SOCKET, SO_TYPE));
    const int on = 1;
    s.done("TCP_NODELAY", os.setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
    // A port nobody holds any more.
    const int gone = s.value<int>("socket gone", os.socket(AF_INET, type, 0), -1);
    s.done("bind gone", os.bind(gone, sa(any0), sizeof any0));
    ports.add("gone", ntohs(name_of(os, gone).sin_port));
    const auto to_gone = inet4("127.0.0.1", ntohs(name_of(os, gone).sin_port));
    s.done("close gone", os.close(gone));
    const int d = s.value<int>("socket d", os.socket(AF_INET, type, 0), -1);
    s.done("connect d to gone", os.connect(d, sa(to_gone), sizeof to_gone));
    ports.add("d", ntohs(name_of(os, d).sin_port));
    named("name d", d);
    named("peer d", d, true);
    s.value<std::size_t>("write d 1", os.write(d, "1", 1), 0);
    s.note("poll d refused", s.poll_text(d));
    s.value<std::size_t>("write d 2", os.write(d, "2", 1), 0);
    s.value<std::size_t>("write d 3", os.write(d, "3", 1), 0);
    recv_from("recv d refused", d, 8);
    recv_from("recv d again", d, 8);
    s.value<std::size_t>("sendto gone unconnected",
                         os.sendto(b, "x", 1, 0, sa(to_gone), sizeof to_gone), 0);
    s.value<std::size_t>("sendto gone again", os.sendto(b, "x", 1, 0, sa(to_gone), sizeof to_gone),
                         0);
    recv_from("recv b", b, 8);
    named("peer b", b, true);
    // A connected socket hears only its peer; what it refuses reaches nobody.
    const int e = s.value<int>("socket e", os.socket(AF_INET, type, 0), -1);
    s.done("connect e to a", os.connect(e, sa(to_a), sizeof to_a));
    ports.add("e", ntohs(name_of(os, e).sin_port));
    const auto to_e = inet4("127.0.0.1", ntohs(name_of(os, e).sin_port));
    s.value<std::size_t>("b to e", os.sendto(b, "from b", 6, 0, sa(to_e), sizeof to_e), 0);
    s.value<std::size_t>("a to e", os.sendto(a, "from a", 6, 0, sa(to_e), sizeof to_e), 0);
    recv_from("recv e", e, 16);
    recv_from("recv e nothing else", e, 16);
    s.value<std::size_t>("write e", os.write(e, "to a", 4), 0);
    recv_from("recv a from e", a, 16);
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    s.done("disconnect e", os.connect(e, &unspec, sizeof unspec));
    named("peer e disconnected", e, true);
    named("name e disconnected", e);
    s.done("disconnect a (bound)", os.connect(a, &unspec, sizeof unspec));
    named("name a after disconnect", a);
    // Sharing a port.
    const int f = s.value<int>("socket f", os.socket(AF_INET, type, 0), -1);
    s.done("bind f to a's port", os.bind(f, sa(to_a), sizeof to_a));
    const int g = s.value<int>("socket g", os.socket(AF_INET, type, 0), -1);
    const int h = s.value<int>("socket h", os.socket(AF_INET, type, 0), -1);
    s.done("SO_REUSEADDR g", os.setsockopt(g, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    s.done("SO_REUSEADDR h", os.setsockopt(h, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    s.done("bind g :0", os.bind(g, sa(any0), sizeof any0));
    const auto to_g = inet4("127.0.0.1", ntohs(name_of(os, g).sin_port));
    s.done("bind h to g's port", os.bind(h, sa(to_g), sizeof to_g));
    const auto far = inet4("192.0.2.1", 0);
    s.done("bind off loopback", os.bind(f, sa(far), sizeof far));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "name a"), "127.0.0.1:a");
  EXPECT_EQ(result_of(steps, "name b unbound"), "0.0.0.0:0");
  EXPECT_EQ(result_of(steps, "name b after send"), "0.0.0.0:b");
  EXPECT_EQ(result_of(steps, "recv hello"), "n=5 \"hello\" from=127.0.0.1:b len=16");
  EXPECT_EQ(result_of(steps, "recv one"), "n=3 \"one\" from=127.0.0.1:b len=16");
  EXPECT_EQ(result_of(steps, "recv MSG_TRUNC"), "n=9 \"trun\" from=127.0.0.1:b len=16");
  EXPECT_EQ(result_of(steps, "recv empty"), "n=0 \"\" from=127.0.0.1:b len=16");
  EXPECT_EQ(result_of(steps, "sendto 65507"), "65507");
  EXPECT_EQ(result_of(steps, "sendto 65508"), "EMSGSIZE");
  EXPECT_EQ(result_of(steps, "sendto port 0"), "EINVAL");
  EXPECT_EQ(result_of(steps, "sendto no address"), "EDESTADDRREQ");
  EXPECT_EQ(result_of(steps, "name d"), "127.0.0.1:d");
  EXPECT_EQ(result_of(steps, "write d 1"), "1");
  EXPECT_EQ(result_of(steps, "write d 2"), "ECONNREFUSED");
  EXPECT_EQ(result_of(steps, "write d 3"), "1");
  EXPECT_EQ(result_of(steps, "recv d refused"), "ECONNREFUSED");
  EXPECT_EQ(result_of(steps, "recv d again"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "sendto gone again"), "1") << "unconnected: no error reported";
  EXPECT_EQ(result_of(steps, "recv e"), "n=6 \"from a\" from=127.0.0.1:a len=16");
  EXPECT_EQ(result_of(steps, "recv e nothing else"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "peer e disconnected"), "failed");
  EXPECT_EQ(result_of(steps, "name e disconnected"), "0.0.0.0:0")
      << "the port connect chose is given back";
  EXPECT_EQ(result_of(steps, "name a after disconnect"), "127.0.0.1:0")
      << "bind chose the address, not the port";
  EXPECT_EQ(result_of(steps, "bind f to a's port"), "ok");
  EXPECT_EQ(result_of(steps, "bind h to g's port"), "ok");
}

// Multicast by lo: membership errors (not a group, an interface that is no local address,
// joined twice, left when not joined), IP_MULTICAST_IF/TTL/LOOP set and read back, and
// delivery to every socket bound to the port (0.0.0.0 or the group, member or not) once the
// host joined, whatever IP_MULTICAST_LOOP says; a group nobody joined, and a left one, reach
// nobody. Sending to a group without IP_MULTICAST_IF depends on the machine's routes, so it is
// not a step here.
TEST(DifferentialUdp, MulticastOnLoopback) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    PortNames ports;
    const int type = SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const int on = 1;
    const auto recv_from = [&](const std::string& what, int fd) {
      char buf[64];
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      auto n = os.recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (!n) return s.note(what, sys::errno_name(n.error().code));
      s.note(what, fmt::format("\"{}\" from={}", std::string(buf, *n), ports.text(from)));
    };
    const auto bound = [&](const std::string& what, const sockaddr_in& at) {
      const int fd = s.value<int>("socket " + what, os.socket(AF_INET, type, 0), -1);
      s.done("SO_REUSEADDR " + what, os.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
      s.done("bind " + what, os.bind(fd, sa(at), sizeof at));
      return fd;
    };
    const auto membership = [&](const std::string& what, int fd, int name, const char* group,
                                const char* device, socklen_t len = sizeof(ip_mreq)) {
      ip_mreq request{};
      inet_pton(AF_INET, group, &request.imr_multiaddr);
      inet_pton(AF_INET, device, &request.imr_interface);
      s.done(what, os.setsockopt(fd, IPPROTO_IP, name, &request, len));
    };
    const int m = bound("m", inet4("0.0.0.0", 0));
    const std::uint16_t port = ntohs(name_of(os, m).sin_port);
    ports.add("m", port);
    const int n = bound("n", inet4("0.0.0.0", port));
    const int g = bound("g", inet4("239.255.7.7", port));
    const int o = bound("o", inet4("127.0.0.1", port));
    const int x = bound("x", inet4("239.255.7.8", port));
    membership("join not a group", m, IP_ADD_MEMBERSHIP, "127.0.0.1", "127.0.0.1");
    membership("join by no local address", m, IP_ADD_MEMBERSHIP, "239.255.7.7", "192.0.2.1");
    membership("join short", m, IP_ADD_MEMBERSHIP, "239.255.7.7", "127.0.0.1", 4);
    membership("leave not joined", m, IP_DROP_MEMBERSHIP, "239.255.7.7", "127.0.0.1");
    membership("join", m, IP_ADD_MEMBERSHIP, "239.255.7.7", "127.0.0.1");
    membership("join again", m, IP_ADD_MEMBERSHIP, "239.255.7.7", "127.0.0.1");
    const int t = s.value<int>("socket t", os.socket(AF_INET, type, 0), -1);
    s.note("t IP_MULTICAST_LOOP", int_option(os, t, IPPROTO_IP, IP_MULTICAST_LOOP));
    s.note("t IP_MULTICAST_TTL", int_option(os, t, IPPROTO_IP, IP_MULTICAST_TTL));
    s.note("t IP_MULTICAST_IF", int_option(os, t, IPPROTO_IP, IP_MULTICAST_IF));
    in_addr device{};
    inet_pton(AF_INET, "192.0.2.1", &device);
    s.done("IP_MULTICAST_IF no local address",
           os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &device, sizeof device));
    s.done("IP_MULTICAST_IF short", os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &device, 3));
    inet_pton(AF_INET, "127.0.0.1", &device);
    s.done("IP_MULTICAST_IF lo",
           os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_IF, &device, sizeof device));
    s.note("t IP_MULTICAST_IF set", int_option(os, t, IPPROTO_IP, IP_MULTICAST_IF));
    for (const int ttl : {256, -2, -1, 5}) {
      s.done(fmt::format("IP_MULTICAST_TTL {}", ttl),
             os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl));
      s.note(fmt::format("t TTL after {}", ttl), int_option(os, t, IPPROTO_IP, IP_MULTICAST_TTL));
    }
    const unsigned char byte = 0;
    s.done("IP_MULTICAST_LOOP one byte 0",
           os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_LOOP, &byte, sizeof byte));
    s.note("t IP_MULTICAST_LOOP 0", int_option(os, t, IPPROTO_IP, IP_MULTICAST_LOOP));
    s.done("IP_MULTICAST_LOOP empty", os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_LOOP, &byte, 0));
    s.done("an unknown IPPROTO_IP option",
           os.setsockopt(t, IPPROTO_IP, IP_MULTICAST_ALL + 1000, &on, sizeof on));
    const auto group = inet4("239.255.7.7", port);
    s.value<std::size_t>("t to the group", os.sendto(t, "g1", 2, 0, sa(group), sizeof group), 0);
    ports.add("t", ntohs(name_of(os, t).sin_port));
    recv_from("m hears it", m);
    recv_from("n hears it, not a member", n);
    recv_from("g hears it, bound to the group", g);
    recv_from("o bound to 127.0.0.1 does not", o);
    recv_from("x bound to another group does not", x);
    const auto other_group = inet4("239.255.7.8", port);
    s.value<std::size_t>("t to a group nobody joined",
                         os.sendto(t, "g2", 2, 0, sa(other_group), sizeof other_group), 0);
    recv_from("x hears nothing", x);
    recv_from("m hears nothing", m);
    membership("leave", m, IP_DROP_MEMBERSHIP, "239.255.7.7", "127.0.0.1");
    s.value<std::size_t>("t to the group left", os.sendto(t, "g3", 2, 0, sa(group), sizeof group),
                         0);
    recv_from("n hears nothing after the leave", n);
    membership("leave again", m, IP_DROP_MEMBERSHIP, "239.255.7.7", "127.0.0.1");
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "join not a group"), "EINVAL");
  EXPECT_EQ(result_of(steps, "join by no local address"), "ENODEV");
  EXPECT_EQ(result_of(steps, "join again"), "EADDRINUSE");
  EXPECT_EQ(result_of(steps, "leave not joined"), "EADDRNOTAVAIL");
  EXPECT_EQ(result_of(steps, "IP_MULTICAST_IF no local address"), "EADDRNOTAVAIL");
  EXPECT_EQ(result_of(steps, "t TTL after -1"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "m hears it"), "\"g1\" from=127.0.0.1:t");
  EXPECT_EQ(result_of(steps, "n hears it, not a member"), "\"g1\" from=127.0.0.1:t");
  EXPECT_EQ(result_of(steps, "o bound to 127.0.0.1 does not"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "n hears nothing after the leave"), "EAGAIN");
}

// ---- Options ------------------------------------------------------------------------------

// The options core/net sets, read back on each kind of socket: SO_REUSEADDR, SO_KEEPALIVE,
// TCP_NODELAY (where it exists), SO_PROTOCOL, and SO_SNDBUF/SO_RCVBUF with their defaults,
// doubling and floor. The ceiling is net.core.wmem_max, a machine's setting (FakeOptions has
// Linux's default).
TEST(DifferentialOptions, SetOptionsReadBackOnEachKindOfSocket) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    const struct {
      const char* name;
      int domain;
      int type;
    } kinds[] = {{"tcp", AF_INET, SOCK_STREAM},
                 {"udp", AF_INET, SOCK_DGRAM},
                 {"unix-stream", AF_UNIX, SOCK_STREAM},
                 {"unix-dgram", AF_UNIX, SOCK_DGRAM}};
    for (const auto& kind : kinds) {
      const std::string k = kind.name;
      const int fd =
          s.value<int>("socket " + k, os.socket(kind.domain, kind.type | SOCK_CLOEXEC, 0), -1);
      const auto set = [&](const std::string& what, int level, int name, int value) {
        s.done(k + " set " + what,
               os.setsockopt(fd, level, name, &value, static_cast<socklen_t>(sizeof value)));
        s.note(k + " get " + what, int_option(os, fd, level, name));
      };
      s.note(k + " SO_PROTOCOL", int_option(os, fd, SOL_SOCKET, SO_PROTOCOL));
      s.note(k + " SO_SNDBUF default", int_option(os, fd, SOL_SOCKET, SO_SNDBUF));
      s.note(k + " SO_RCVBUF default", int_option(os, fd, SOL_SOCKET, SO_RCVBUF));
      s.note(k + " SO_KEEPALIVE default", int_option(os, fd, SOL_SOCKET, SO_KEEPALIVE));
      set("SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 1);
      set("SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 5);
      set("SO_KEEPALIVE off", SOL_SOCKET, SO_KEEPALIVE, 0);
      set("TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, 1);
      set("SO_SNDBUF 10000", SOL_SOCKET, SO_SNDBUF, 10000);
      set("SO_RCVBUF 10000", SOL_SOCKET, SO_RCVBUF, 10000);
      set("SO_SNDBUF 1", SOL_SOCKET, SO_SNDBUF, 1);
      set("SO_RCVBUF 1", SOL_SOCKET, SO_RCVBUF, 1);
    }
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "tcp get TCP_NODELAY"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "udp set TCP_NODELAY"), "ENOPROTOOPT");
  EXPECT_EQ(result_of(steps, "unix-stream set TCP_NODELAY"), "EOPNOTSUPP");
  EXPECT_EQ(result_of(steps, "tcp get SO_KEEPALIVE"), "1 (len 4)");
  EXPECT_EQ(result_of(steps, "tcp get SO_SNDBUF 10000"), "20000 (len 4)") << "doubled";
  EXPECT_EQ(result_of(steps, "udp get TCP_NODELAY"), "EOPNOTSUPP") << "ip_getsockopt's answer";
  EXPECT_EQ(result_of(steps, "unix-dgram get SO_RCVBUF 1"), "2304 (len 4)") << "the floor";
  EXPECT_EQ(result_of(steps, "udp SO_PROTOCOL"), "17 (len 4)");
}

}  // namespace
}  // namespace daemonkit::fake::differential
