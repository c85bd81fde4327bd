// Differential scenarios for what core/net needs beyond plain streams: sendmsg with
// SCM_RIGHTS and SCM_CREDENTIALS over AF_UNIX, getpeername, SO_PEERCRED and the socket options
// socket activation reads. Each scenario runs on FakeSyscalls and on the real kernel; the traces
// must be equal, and the steps that carry the point are pinned to what Linux does.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include <fmt/format.h>
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

}  // namespace
}  // namespace daemonkit::fake::differential
