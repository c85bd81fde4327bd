// Differential scenarios for sockets and signalfd: AF_UNIX datagrams and streams (paths in the
// world's directory, abstract names derived from it so runs never collide on the machine),
// SO_PASSCRED credentials on datagrams (from a forked child too), TCP on loopback (ephemeral
// ports rendered as "ephemeral", as their numbers are the machine's), and signalfd with the
// signal blocked. Each scenario runs on FakeSyscalls and on the real kernel; the traces must
// be equal, and the steps that carry the point are pinned to what Linux documents.
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/sys/result.h"
#include "differential_script.h"
#include "differential_world.h"

namespace daemonkit::fake::differential {
namespace {

TEST(DifferentialUnixDgram, PathsAbstractNamesErrorsTruncationAndTheQueue) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext& world) {
    Script s(os);
    const int flags = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
    const int server = s.value<int>("socket server", os.socket(AF_UNIX, flags, 0), -1);
    const auto at = unix_path("d.sock");
    s.done("bind d.sock", os.bind(server, at.get(), at.len));
    s.value<struct stat>("stat d.sock", os.stat("d.sock"), {}, [](const struct stat& st) {
      return fmt::format("sock={} mode=0{:o}", S_ISSOCK(st.st_mode), st.st_mode & 07777);
    });
    const int other = s.value<int>("socket other", os.socket(AF_UNIX, flags, 0), -1);
    s.done("bind d.sock again", os.bind(other, at.get(), at.len));
    s.done("bind other twice", os.bind(server, at.get(), at.len));
    const int client = s.value<int>("socket client", os.socket(AF_UNIX, flags, 0), -1);
    const char hello[] = "hello world";
    s.value<std::size_t>("sendto d.sock",
                         os.sendto(client, hello, 11, MSG_NOSIGNAL, at.get(), at.len), 0);
    s.note("poll server", s.poll_text(server));
    s.note("recv 5", s.recv_text(server, 5));
    s.note("recv empty", s.recv_text(server, 5));
    const auto missing = unix_path("missing.sock");
    s.value<std::size_t>("sendto missing",
                         os.sendto(client, "x", 1, MSG_NOSIGNAL, missing.get(), missing.len), 0);
    const int file =
        s.value<int>("open file", os.open("file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644), -1);
    static_cast<void>(file);
    const auto plain = unix_path("file");
    s.value<std::size_t>("sendto file",
                         os.sendto(client, "x", 1, MSG_NOSIGNAL, plain.get(), plain.len), 0);
    s.value<int>("open d.sock", os.open("d.sock", O_RDWR | O_CLOEXEC, 0), -1);
    const auto abstract = unix_abstract(world.top + "/dgram");
    s.done("bind abstract", os.bind(other, abstract.get(), abstract.len));
    s.value<std::size_t>("sendto abstract",
                         os.sendto(client, hello, 11, MSG_NOSIGNAL, abstract.get(), abstract.len),
                         0);
    s.note("recv MSG_TRUNC", s.recv_text(other, 4, MSG_TRUNC));
    int sent = 0;
    while (os.sendto(client, "q", 1, MSG_NOSIGNAL, abstract.get(), abstract.len)) ++sent;
    s.note("datagrams queued", std::to_string(sent));
    s.value<std::size_t>("sendto full",
                         os.sendto(client, "q", 1, MSG_NOSIGNAL, abstract.get(), abstract.len), 0);
    s.note("poll full", s.poll_text(other));
    sockaddr_un name{};
    socklen_t len = sizeof name;
    s.done("getsockname", os.getsockname(server, reinterpret_cast<sockaddr*>(&name), &len));
    s.note("name length", std::to_string(len - offsetof(sockaddr_un, sun_path)));
    const int stream =
        s.value<int>("socket stream", os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), -1);
    const auto stream_at = unix_path("s.sock");
    s.done("bind stream", os.bind(stream, stream_at.get(), stream_at.len));
    s.value<std::size_t>("sendto stream socket",
                         os.sendto(client, "x", 1, MSG_NOSIGNAL, stream_at.get(), stream_at.len),
                         0);
    s.value<std::size_t>("write unconnected", os.write(client, "x", 1), 0);
    s.done("connect", os.connect(client, at.get(), at.len));
    s.value<std::size_t>("write connected", os.write(client, "abc", 3), 0);
    s.note("recv connected", s.recv_text(server, 16));
    s.done("close server", os.close(server));
    s.value<std::size_t>("sendto closed", os.sendto(client, "x", 1, MSG_NOSIGNAL, at.get(), at.len),
                         0);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "stat d.sock"), "sock=true mode=0755");
  EXPECT_EQ(result_of(steps, "bind d.sock again"), "EADDRINUSE");
  EXPECT_EQ(result_of(steps, "bind other twice"), "EADDRINUSE") << "the path is checked first";
  EXPECT_EQ(result_of(steps, "recv 5"), "n=5 \"hello\" from_len=0")
      << "an unbound sender has no name to report";
  EXPECT_EQ(result_of(steps, "recv empty"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "sendto missing"), "ENOENT");
  EXPECT_EQ(result_of(steps, "sendto file"), "ECONNREFUSED");
  EXPECT_EQ(result_of(steps, "open d.sock"), "ENXIO");
  EXPECT_EQ(result_of(steps, "recv MSG_TRUNC"), "n=11 \"hell\" from_len=0");
  EXPECT_EQ(result_of(steps, "sendto stream socket"), "EPROTOTYPE");
  EXPECT_EQ(result_of(steps, "write unconnected"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "sendto closed"), "ECONNREFUSED");
}

TEST(DifferentialUnixDgram, SendingToASocketWithoutWritePermissionIsEacces) {
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to run a world as nobody";
  const auto steps = agreed(
      [](sys::Syscalls& os, const WorldContext&) {
        Script s(os);
        const int server =
            s.value<int>("socket", os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
        const auto at = unix_path("p.sock");
        s.done("bind", os.bind(server, at.get(), at.len));
        s.done("chmod 0500", os.chmod("p.sock", 0500));
        const int client =
            s.value<int>("socket", os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), -1);
        s.value<std::size_t>("sendto", os.sendto(client, "x", 1, MSG_NOSIGNAL, at.get(), at.len),
                             0);
        s.done("connect", os.connect(client, at.get(), at.len));
        s.done("chmod 0755 dir", os.chmod(".", 0555));
        const auto inside = unix_path("q.sock");
        s.done("bind in read-only dir", os.bind(client, inside.get(), inside.len));
        s.done("chmod 0700 dir", os.chmod(".", 0700));
        return s.steps;
      },
      Privilege::kNobody);
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.at(4).result, "EACCES");
  EXPECT_EQ(steps.at(5).result, "EACCES");
  EXPECT_EQ(steps.at(7).result, "EACCES");
}

// ---- Credentials --------------------------------------------------------------------------

// One recvmsg with a `len`-byte buffer and `control` bytes of control buffer (0: a
// null one): the count, msg_flags, the name and control lengths, and the credentials with the
// pid named ("self", "child", or the number).
std::string recvmsg_text(sys::Syscalls& os, int fd, std::size_t len, std::size_t control,
                         pid_t child, int flags = MSG_DONTWAIT) {
  char buf[64] = {};
  alignas(cmsghdr) unsigned char control_buf[64] = {};
  sockaddr_un from{};
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control == 0 ? nullptr : control_buf;
  msg.msg_controllen = control;
  auto n = os.recvmsg(fd, &msg, flags);
  if (!n) return sys::errno_name(n.error().code);
  std::string text = fmt::format("n={} \"{}\" flags={:#x} namelen={} controllen={}", *n,
                                 std::string(buf, std::min(*n, len)), msg.msg_flags,
                                 msg.msg_namelen, msg.msg_controllen);
  if (msg.msg_controllen < sizeof(cmsghdr)) return text;
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  text += fmt::format(" level={} type={} cmsg_len={}", c->cmsg_level, c->cmsg_type, c->cmsg_len);
  if (c->cmsg_len < CMSG_LEN(sizeof(ucred))) return text;
  ucred u{};
  std::memcpy(&u, CMSG_DATA(c), sizeof u);
  const std::string pid = u.pid == os.getpid() ? "self"
                          : u.pid == child     ? "child"
                                               : std::to_string(u.pid);
  return text + fmt::format(" pid={} uid={} gid={}", pid, u.uid, u.gid);
}

// SO_PASSCRED and SCM_CREDENTIALS on a datagram socket: what is recorded when (pid 0 and the
// overflow ids for a datagram sent while nobody asked), a sender with SO_PASSCRED autobound,
// a short control buffer cut with MSG_CTRUNC, a short data buffer with MSG_TRUNC, and a
// datagram from a forked child, with other ids when `other_ids`.
std::vector<Step> credentials_scenario(sys::Syscalls& os, const WorldContext& world,
                                       bool other_ids) {
  Script s(os);
  const int flags = SOCK_DGRAM | SOCK_CLOEXEC;
  const int server =
      s.value<int>("socket server", os.socket(AF_UNIX, flags | SOCK_NONBLOCK, 0), -1);
  const auto at = unix_abstract(world.top + "/creds");
  s.done("bind", os.bind(server, at.get(), at.len));
  const int client = s.value<int>("socket client", os.socket(AF_UNIX, flags, 0), -1);
  const auto send = [&](const char* call, int fd, const char* text) {
    s.value<std::size_t>(call,
                         os.sendto(fd, text, std::strlen(text), MSG_NOSIGNAL, at.get(), at.len), 0);
  };
  send("sendto early", client, "early");
  const int on = 1;
  s.done("SO_PASSCRED on", os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  int value = -1;
  socklen_t len = sizeof value;
  s.done("getsockopt SO_PASSCRED", os.getsockopt(server, SOL_SOCKET, SO_PASSCRED, &value, &len));
  s.note("SO_PASSCRED value", std::to_string(value));
  send("sendto plain", client, "plain");
  const int asking = s.value<int>("socket asking", os.socket(AF_UNIX, flags, 0), -1);
  s.done("SO_PASSCRED sender", os.setsockopt(asking, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  send("sendto asking", asking, "asking");
  send("sendto plain 2", client, "plain2");
  const pid_t child = in_child(s, [&](sys::Syscalls& c) {
    if (other_ids && (!c.setresgid(2001, 2002, 2003) || !c.setresuid(1001, 1002, 1003))) {
      return false;
    }
    const char text[] = "from child";
    return c.sendto(client, text, sizeof text - 1, MSG_NOSIGNAL, at.get(), at.len).has_value();
  });
  s.note("recvmsg early", recvmsg_text(os, server, 64, 64, child));
  s.note("recvmsg null control", recvmsg_text(os, server, 64, 0, child));
  s.note("recvmsg control 20", recvmsg_text(os, server, 64, 20, child));
  s.note("recvmsg control 30", recvmsg_text(os, server, 64, 30, child));
  s.note("recvmsg child", recvmsg_text(os, server, 4, 64, child));
  s.note("recvmsg empty", recvmsg_text(os, server, 64, 64, child));
  const int off = 0;
  s.done("SO_PASSCRED off", os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &off, sizeof off));
  send("sendto after off", client, "off");
  s.note("recvmsg without SO_PASSCRED", recvmsg_text(os, server, 64, 64, child));
  const int tcp = s.value<int>("socket tcp", os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), -1);
  s.done("SO_PASSCRED tcp", os.setsockopt(tcp, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  return s.steps;
}

TEST(DifferentialUnixDgram, CredentialsFlagsAndTruncationAgree) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext& world) {
    return credentials_scenario(os, world, false);
  });
  ASSERT_FALSE(steps.empty());
  const std::string self_ids = fmt::format("uid={} gid={}", ::getuid(), ::getgid());
  EXPECT_EQ(result_of(steps, "child"), "status 0x0");
  EXPECT_EQ(result_of(steps, "SO_PASSCRED value"), "1");
  EXPECT_EQ(result_of(steps, "recvmsg early"),
            "n=5 \"early\" flags=0x0 namelen=0 controllen=32 level=1 type=2 cmsg_len=28 pid=0 "
            "uid=65534 gid=65534")
      << "queued before anyone asked: no credentials were taken";
  EXPECT_EQ(result_of(steps, "recvmsg null control"),
            "n=5 \"plain\" flags=0x8 namelen=0 controllen=0");
  EXPECT_EQ(result_of(steps, "recvmsg control 20"),
            "n=6 \"asking\" flags=0x8 namelen=8 controllen=20 level=1 type=2 cmsg_len=20")
      << "the sender with SO_PASSCRED was autobound; the cut message keeps a header";
  EXPECT_EQ(result_of(steps, "recvmsg control 30"),
            "n=6 \"plain2\" flags=0x0 namelen=0 controllen=30 level=1 type=2 cmsg_len=28 "
            "pid=self " +
                self_ids);
  EXPECT_EQ(result_of(steps, "recvmsg child"),
            "n=4 \"from\" flags=0x20 namelen=0 controllen=32 level=1 type=2 cmsg_len=28 "
            "pid=child " +
                self_ids);
  EXPECT_EQ(result_of(steps, "recvmsg empty"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "recvmsg without SO_PASSCRED"),
            "n=3 \"off\" flags=0x0 namelen=0 controllen=0");
  EXPECT_EQ(result_of(steps, "SO_PASSCRED tcp"), "EOPNOTSUPP");
}

TEST(DifferentialUnixDgram, ASendersCredentialsAreItsRealIds) {
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to send from a child with other ids";
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext& world) {
    return credentials_scenario(os, world, true);
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "child"), "status 0x0");
  EXPECT_EQ(result_of(steps, "recvmsg child"),
            "n=4 \"from\" flags=0x20 namelen=0 controllen=32 level=1 type=2 cmsg_len=28 "
            "pid=child uid=1001 gid=2001")
      << "real ids 1001/2001, not the effective 1002/2002";
}

TEST(DifferentialUnixStream, BacklogEofResetEpipeAndReadiness) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    const int type = SOCK_STREAM | SOCK_CLOEXEC;
    const int listener =
        s.value<int>("socket listener", os.socket(AF_UNIX, type | SOCK_NONBLOCK, 0), -1);
    const auto at = unix_path("l.sock");
    const int early = s.value<int>("socket early", os.socket(AF_UNIX, type | SOCK_NONBLOCK, 0), -1);
    s.done("connect before bind", os.connect(early, at.get(), at.len));
    s.done("listen unbound", os.listen(listener, 1));
    s.done("bind", os.bind(listener, at.get(), at.len));
    s.done("connect not listening", os.connect(early, at.get(), at.len));
    s.done("listen", os.listen(listener, 1));
    s.note("poll listener idle", s.poll_text(listener));
    s.value<int>("accept empty", os.accept4(listener, nullptr, nullptr, 0), -1);
    const int a = s.value<int>("socket a", os.socket(AF_UNIX, type | SOCK_NONBLOCK, 0), -1);
    const int b = s.value<int>("socket b", os.socket(AF_UNIX, type | SOCK_NONBLOCK, 0), -1);
    const int c = s.value<int>("socket c", os.socket(AF_UNIX, type | SOCK_NONBLOCK, 0), -1);
    s.done("connect a", os.connect(a, at.get(), at.len));
    s.done("connect b", os.connect(b, at.get(), at.len));
    s.done("connect c (backlog full)", os.connect(c, at.get(), at.len));
    s.done("connect a again", os.connect(a, at.get(), at.len));
    s.note("poll listener", s.poll_text(listener));
    sockaddr_un peer{};
    socklen_t len = sizeof peer;
    const int sa = s.value<int>(
        "accept a", os.accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC),
        -1);
    s.note("peer length", std::to_string(len));
    s.value<int>("accepted F_GETFL", os.fcntl(sa, F_GETFL, 0), -1,
                 [](const int& v) { return fmt::format("0{:o}", v); });
    const int sb = s.value<int>(
        "accept b", os.accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC), -1);
    s.note("poll fresh", s.poll_text(c));
    s.value<std::size_t>("write a", os.write(a, "abc", 3), 0);
    s.note("poll sa", s.poll_text(sa));
    s.note("recv 2", s.recv_text(sa, 2));
    s.done("close a", os.close(a));
    s.note("poll sa after close", s.poll_text(sa));
    s.note("recv rest", s.recv_text(sa, 8));
    s.note("recv eof", s.recv_text(sa, 8));
    s.value<std::size_t>("send to closed", os.sendto(sa, "x", 1, MSG_NOSIGNAL, nullptr, 0), 0);
    s.value<std::size_t>("write b", os.write(b, "unread", 6), 0);
    s.done("close sb", os.close(sb));
    s.note("poll b", s.poll_text(b));
    s.note("recv reset", s.recv_text(b, 8));
    s.note("recv after reset", s.recv_text(b, 8));
    char byte;
    s.value<std::size_t>("read unconnected", os.read(c, &byte, 1), 0);
    s.value<std::size_t>("write unconnected", os.write(c, "x", 1), 0);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "connect before bind"), "ENOENT");
  EXPECT_EQ(result_of(steps, "listen unbound"), "EINVAL");
  EXPECT_EQ(result_of(steps, "connect not listening"), "ECONNREFUSED");
  EXPECT_EQ(result_of(steps, "connect c (backlog full)"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "connect a again"), "EAGAIN") << "the backlog is checked first";
  EXPECT_EQ(result_of(steps, "recv eof"), "n=0 \"\" from_len=0");
  EXPECT_EQ(result_of(steps, "send to closed"), "EPIPE");
  EXPECT_EQ(result_of(steps, "recv reset"), "ECONNRESET");
}

// shutdown on AF_UNIX: both directions, readiness on each side after each step, EPIPE for
// every write after SHUT_WR (an empty one too, except an empty writev), EOF after the bytes,
// the flags of an unconnected socket outliving its connect, a listener that refuses once
// shut for reading, and the errnos.
TEST(DifferentialUnixStream, ShutdownHalfClosesEitherWay) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    ignore_sigpipe(s);
    const int type = SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const int listener = s.value<int>("socket listener", os.socket(AF_UNIX, type, 0), -1);
    const auto at = unix_path("h.sock");
    s.done("bind", os.bind(listener, at.get(), at.len));
    s.done("listen", os.listen(listener, 4));
    const auto pair = [&](const char* name) {
      const int client =
          s.value<int>(std::string("socket ") + name, os.socket(AF_UNIX, type, 0), -1);
      s.done(std::string("connect ") + name, os.connect(client, at.get(), at.len));
      const int server =
          s.value<int>(std::string("accept ") + name,
                       os.accept4(listener, nullptr, nullptr, type & ~SOCK_STREAM), -1);
      return std::pair{client, server};
    };
    const auto [a, sa] = pair("a");
    s.value<std::size_t>("write a", os.write(a, "ab", 2), 0);
    s.done("SHUT_WR a", os.shutdown(a, SHUT_WR));
    s.note("poll a after SHUT_WR", s.poll_text(a));
    s.note("poll sa after SHUT_WR", s.poll_text(sa));
    s.value<std::size_t>("write empty after SHUT_WR", os.write(a, "", 0), 0);
    const struct iovec none[1] = {};
    s.value<std::size_t>("writev empty after SHUT_WR", os.writev(a, none), 0);
    char x = 'x';
    const struct iovec one[1] = {{&x, 1}};
    s.value<std::size_t>("writev after SHUT_WR", os.writev(a, one), 0);
    s.note("recv sa", s.recv_text(sa, 8));
    s.note("recv sa eof", s.recv_text(sa, 8));
    s.value<std::size_t>("write sa", os.write(sa, "cd", 2), 0);
    s.note("recv a", s.recv_text(a, 8));
    s.done("SHUT_WR sa", os.shutdown(sa, SHUT_WR));
    s.note("poll a both", s.poll_text(a));
    s.note("poll sa both", s.poll_text(sa));
    s.done("SHUT_WR sa again", os.shutdown(sa, SHUT_WR));
    const auto [b, sb] = pair("b");
    s.value<std::size_t>("write sb", os.write(sb, "zz", 2), 0);
    s.done("SHUT_RD b", os.shutdown(b, SHUT_RD));
    s.note("poll b after SHUT_RD", s.poll_text(b));
    s.note("poll sb after SHUT_RD", s.poll_text(sb));
    s.note("recv b", s.recv_text(b, 8));
    s.note("recv b eof", s.recv_text(b, 8));
    s.value<std::size_t>("write sb after SHUT_RD", os.write(sb, "y", 1), 0);
    s.value<std::size_t>("write b after SHUT_RD", os.write(b, "y", 1), 0);
    s.note("recv sb", s.recv_text(sb, 8));
    const int lone = s.value<int>("socket lone", os.socket(AF_UNIX, type, 0), -1);
    s.done("SHUT_WR unconnected", os.shutdown(lone, SHUT_WR));
    s.note("poll unconnected", s.poll_text(lone));
    s.done("bad how", os.shutdown(lone, 7));
    s.done("connect lone", os.connect(lone, at.get(), at.len));
    s.value<std::size_t>("write lone", os.write(lone, "x", 1), 0);
    const auto pipe = s.value<sys::PipeFds>("pipe2", os.pipe2(O_CLOEXEC), {});
    s.done("shutdown pipe", os.shutdown(pipe.write_end, SHUT_WR));
    s.done("shutdown bad fd", os.shutdown(999, SHUT_WR));
    s.done("SHUT_RDWR listener", os.shutdown(listener, SHUT_RDWR));
    s.note("poll listener", s.poll_text(listener));
    const int late = s.value<int>("socket late", os.socket(AF_UNIX, type, 0), -1);
    s.done("connect late", os.connect(late, at.get(), at.len));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "poll a after SHUT_WR"), "OUT");
  EXPECT_EQ(result_of(steps, "poll sa after SHUT_WR"), "IN|OUT|RDHUP");
  EXPECT_EQ(result_of(steps, "write empty after SHUT_WR"), "EPIPE");
  EXPECT_EQ(result_of(steps, "writev empty after SHUT_WR"), "0");
  EXPECT_EQ(result_of(steps, "writev after SHUT_WR"), "EPIPE");
  EXPECT_EQ(result_of(steps, "recv sa eof"), "n=0 \"\" from_len=0");
  EXPECT_EQ(result_of(steps, "poll a both"), "IN|OUT|RDHUP|HUP");
  EXPECT_EQ(result_of(steps, "poll b after SHUT_RD"), "IN|OUT|RDHUP");
  EXPECT_EQ(result_of(steps, "poll sb after SHUT_RD"), "OUT");
  EXPECT_EQ(result_of(steps, "write sb after SHUT_RD"), "EPIPE");
  EXPECT_EQ(result_of(steps, "SHUT_WR unconnected"), "ok");
  EXPECT_EQ(result_of(steps, "bad how"), "EINVAL");
  EXPECT_EQ(result_of(steps, "write lone"), "EPIPE");
  EXPECT_EQ(result_of(steps, "shutdown pipe"), "ENOTSOCK");
  EXPECT_EQ(result_of(steps, "shutdown bad fd"), "EBADF");
  EXPECT_EQ(result_of(steps, "connect late"), "ECONNREFUSED");
}

// writev on a pipe: one write of the concatenation (PIPE_BUF atomicity over the whole vector,
// a partial count when the pipe fills), EINVAL past IOV_MAX, EFAULT, and after the reader
// closed, 0 for an empty vector and EPIPE otherwise.
TEST(DifferentialPipes, WritevIsOneWriteOfTheConcatenation) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    ignore_sigpipe(s);
    const auto p = s.value<sys::PipeFds>("pipe2", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    std::string a = "hel";
    std::string b = "lo";
    const struct iovec iov[] = {{a.data(), a.size()}, {nullptr, 0}, {b.data(), b.size()}};
    s.value<std::size_t>("writev 3", os.writev(p.write_end, iov), 0);
    char buf[16];
    s.value<std::size_t>("read", os.read(p.read_end, buf, sizeof buf), 0);
    const std::string fill(65536 - 100, 'f');
    s.value<std::size_t>("fill", os.write(p.write_end, fill.data(), fill.size()), 0);
    std::string half(PIPE_BUF / 2, 'h');
    const struct iovec atomic[] = {{half.data(), half.size()}, {half.data(), half.size()}};
    s.value<std::size_t>("writev PIPE_BUF", os.writev(p.write_end, atomic), 0);
    const struct iovec small[] = {{half.data(), 50}, {half.data(), 50}};
    s.value<std::size_t>("writev 100", os.writev(p.write_end, small), 0);
    const auto big = s.value<sys::PipeFds>("pipe2 big", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    std::string chunk(40000, 'c');
    const struct iovec two[] = {{chunk.data(), chunk.size()}, {chunk.data(), chunk.size()}};
    s.value<std::size_t>("writev 80000", os.writev(big.write_end, two), 0);
    const std::vector<struct iovec> many(IOV_MAX + 1, iovec{buf, 1});
    s.value<std::size_t>("writev IOV_MAX+1", os.writev(big.write_end, many), 0);
    s.value<std::size_t>("writev read end", os.writev(big.read_end, small), 0);
    const struct iovec bad[] = {{nullptr, 3}};
    const auto fresh = s.value<sys::PipeFds>("pipe2 fresh", os.pipe2(O_CLOEXEC | O_NONBLOCK), {});
    s.value<std::size_t>("writev EFAULT", os.writev(fresh.write_end, bad), 0);
    s.done("close reader", os.close(p.read_end));
    const struct iovec none[] = {{nullptr, 0}};
    s.value<std::size_t>("writev empty", os.writev(p.write_end, none), 0);
    s.value<std::size_t>("writev no reader", os.writev(p.write_end, small), 0);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "writev 3"), "5");
  EXPECT_EQ(result_of(steps, "writev PIPE_BUF"), "EAGAIN") << "atomic over the whole vector";
  EXPECT_EQ(result_of(steps, "writev 100"), "100");
  EXPECT_EQ(result_of(steps, "writev 80000"), "65536");
  EXPECT_EQ(result_of(steps, "writev IOV_MAX+1"), "EINVAL");
  EXPECT_EQ(result_of(steps, "writev read end"), "EBADF");
  EXPECT_EQ(result_of(steps, "writev EFAULT"), "EFAULT");
  EXPECT_EQ(result_of(steps, "writev empty"), "0");
  EXPECT_EQ(result_of(steps, "writev no reader"), "EPIPE");
}

// socketpair: both kinds of AF_UNIX pair, their flags, names, EOF and EPIPE, and what Linux
// refuses and in which order (descriptors before the family).
TEST(DifferentialSocketPair, PairsFlagsEofAndRefusals) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    const auto pair_text = [](const sys::SocketPair& p) {
      return fmt::format("[{}, {}]", p.first, p.second);
    };
    const auto stream = s.value<sys::SocketPair>(
        "socketpair stream", os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
        {}, pair_text);
    s.value<int>("F_GETFD", os.fcntl(stream.first, F_GETFD, 0), -1);
    s.value<int>("F_GETFL", os.fcntl(stream.second, F_GETFL, 0), -1,
                 [](const int& v) { return fmt::format("0{:o}", v); });
    s.note("recv empty", s.recv_text(stream.first, 8));
    s.value<std::size_t>("write first", os.write(stream.first, "ping", 4), 0);
    s.note("poll second", s.poll_text(stream.second));
    s.note("recv second", s.recv_text(stream.second, 8));
    sockaddr_un name{};
    socklen_t len = sizeof name;
    s.done("getsockname", os.getsockname(stream.first, reinterpret_cast<sockaddr*>(&name), &len));
    s.note("name length", std::to_string(len));
    s.done("close second", os.close(stream.second));
    s.note("poll first", s.poll_text(stream.first));
    s.note("recv eof", s.recv_text(stream.first, 8));
    s.value<std::size_t>("send after close",
                         os.sendto(stream.first, "x", 1, MSG_NOSIGNAL, nullptr, 0), 0);
    const auto dgram = s.value<sys::SocketPair>(
        "socketpair dgram", os.socketpair(AF_UNIX, SOCK_DGRAM, 0), {}, pair_text);
    s.value<int>("dgram F_GETFD", os.fcntl(dgram.first, F_GETFD, 0), -1);
    s.value<std::size_t>("write one", os.write(dgram.first, "one", 3), 0);
    s.value<std::size_t>("write two", os.write(dgram.first, "two", 3), 0);
    s.note("recv one", s.recv_text(dgram.second, 8, MSG_DONTWAIT));
    s.note("recv two", s.recv_text(dgram.second, 8, MSG_DONTWAIT));
    s.done("close dgram second", os.close(dgram.second));
    s.value<std::size_t>("write to closed peer", os.write(dgram.first, "x", 1), 0);
    s.value<sys::SocketPair>("AF_INET stream", os.socketpair(AF_INET, SOCK_STREAM, 0), {},
                             pair_text);
    s.value<sys::SocketPair>("AF_INET dgram", os.socketpair(AF_INET, SOCK_DGRAM, 0), {}, pair_text);
    s.value<sys::SocketPair>("AF_INET6 stream", os.socketpair(AF_INET6, SOCK_STREAM, 0), {},
                             pair_text);
    s.value<sys::SocketPair>("AF_NETLINK", os.socketpair(AF_NETLINK, SOCK_DGRAM, 0), {}, pair_text);
    s.value<sys::SocketPair>("family 99", os.socketpair(99, SOCK_STREAM, 0), {}, pair_text);
    s.value<sys::SocketPair>("unix tcp protocol", os.socketpair(AF_UNIX, SOCK_STREAM, IPPROTO_TCP),
                             {}, pair_text);
    s.value<sys::SocketPair>("bad type flag", os.socketpair(AF_UNIX, SOCK_STREAM | 0x100000, 0), {},
                             pair_text);
    const struct rlimit few { 8, 8 };
    s.done("setrlimit 8", os.setrlimit(RLIMIT_NOFILE, few));
    int last = -1;
    for (int fd = 0; fd < 8; ++fd) {
      if (auto opened = os.open("/dev/null", O_RDONLY | O_CLOEXEC, 0)) last = *opened;
    }
    s.note("last open", std::to_string(last));
    s.done("close last", os.close(last));
    s.value<sys::SocketPair>("one free descriptor", os.socketpair(AF_UNIX, SOCK_STREAM, 0), {},
                             pair_text);
    s.value<sys::SocketPair>("one free, AF_INET", os.socketpair(AF_INET, SOCK_STREAM, 0), {},
                             pair_text);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "socketpair stream"), "[3, 4]");
  EXPECT_EQ(result_of(steps, "recv second"), "n=4 \"ping\" from_len=0");
  EXPECT_EQ(result_of(steps, "recv eof"), "n=0 \"\" from_len=0");
  EXPECT_EQ(result_of(steps, "send after close"), "EPIPE");
  EXPECT_EQ(result_of(steps, "AF_INET stream"), "EOPNOTSUPP");
  EXPECT_EQ(result_of(steps, "AF_NETLINK"), "EOPNOTSUPP") << "a family that has no pairs";
  EXPECT_EQ(result_of(steps, "family 99"), "EAFNOSUPPORT");
  EXPECT_EQ(result_of(steps, "one free descriptor"), "EMFILE");
  EXPECT_EQ(result_of(steps, "one free, AF_INET"), "EMFILE");
}

std::string port_text(std::uint16_t port) {
  return port >= 32768 && port <= 60999 ? "ephemeral" : std::to_string(port);
}

std::uint16_t local_port(sys::Syscalls& os, int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (!os.getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len)) return 0;
  return ntohs(a.sin_port);
}

sockaddr_in loopback(std::uint16_t port, const char* host = "127.0.0.1") {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, host, &a.sin_addr);
  return a;
}

TEST(DifferentialTcp, LoopbackListenConnectAcceptEofAndErrors) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    const int type = SOCK_STREAM | SOCK_CLOEXEC;
    const int listener = s.value<int>("socket", os.socket(AF_INET, type | SOCK_NONBLOCK, 0), -1);
    const int on = 1;
    s.done("SO_REUSEADDR", os.setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    auto any = loopback(0);
    s.done("bind :0", os.bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any));
    const std::uint16_t port = local_port(os, listener);
    s.note("port", port_text(port));
    s.done("listen", os.listen(listener, 4));
    const int rival = s.value<int>("socket rival", os.socket(AF_INET, type, 0), -1);
    s.done("SO_REUSEADDR rival", os.setsockopt(rival, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
    auto same = loopback(port);
    s.done("bind busy", os.bind(rival, reinterpret_cast<sockaddr*>(&same), sizeof same));
    auto far = loopback(7, "192.0.2.1");
    s.done("bind off loopback", os.bind(rival, reinterpret_cast<sockaddr*>(&far), sizeof far));
    s.note("poll fresh", s.poll_text(rival));
    char byte;
    s.value<std::size_t>("read unconnected", os.read(rival, &byte, 1), 0);
    int type_value = 0;
    socklen_t len = sizeof type_value;
    s.done("SO_TYPE", os.getsockopt(rival, SOL_SOCKET, SO_TYPE, &type_value, &len));
    s.note("SO_TYPE value", std::to_string(type_value));
    s.done("unknown option", os.setsockopt(rival, SOL_SOCKET, 9999, &on, sizeof on));
    s.note("poll listener idle", s.poll_text(listener));
    const int client = s.value<int>("socket client", os.socket(AF_INET, type, 0), -1);
    s.done("connect", os.connect(client, reinterpret_cast<sockaddr*>(&same), sizeof same));
    s.note("client port", port_text(local_port(os, client)));
    const int nb = s.value<int>("socket nb", os.socket(AF_INET, type | SOCK_NONBLOCK, 0), -1);
    s.done("connect nonblocking", os.connect(nb, reinterpret_cast<sockaddr*>(&same), sizeof same));
    s.note("poll nb", s.poll_text(nb));
    s.note("poll listener", s.poll_text(listener));
    sockaddr_in peer{};
    socklen_t peer_len = sizeof peer;
    const int conn = s.value<int>("accept4",
                                  os.accept4(listener, reinterpret_cast<sockaddr*>(&peer),
                                             &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC),
                                  -1);
    s.note("peer", fmt::format("len={} port={}", peer_len, port_text(ntohs(peer.sin_port))));
    s.value<int>("F_GETFL", os.fcntl(conn, F_GETFL, 0), -1,
                 [](const int& v) { return fmt::format("0{:o}", v); });
    s.note("accepted port", port_text(local_port(os, conn)));
    s.value<std::size_t>("write ping", os.write(client, "ping", 4), 0);
    s.note("recv", s.recv_text(conn, 16));
    s.note("recv empty", s.recv_text(conn, 16));
    s.done("close client", os.close(client));
    s.note("poll after FIN", s.poll_text(conn));
    s.note("recv eof", s.recv_text(conn, 16));
    s.value<std::size_t>("send after FIN", os.sendto(conn, "x", 1, MSG_NOSIGNAL, nullptr, 0), 0);
    s.note("poll after RST", s.poll_text(conn));
    s.value<std::size_t>("send after RST", os.sendto(conn, "x", 1, MSG_NOSIGNAL, nullptr, 0), 0);
    const int closed_port = s.value<int>("socket closed", os.socket(AF_INET, type, 0), -1);
    auto zero = loopback(0);
    s.done("bind closed", os.bind(closed_port, reinterpret_cast<sockaddr*>(&zero), sizeof zero));
    auto nobody = loopback(local_port(os, closed_port));
    const int refused = s.value<int>("socket refused", os.socket(AF_INET, type, 0), -1);
    s.done("connect refused",
           os.connect(refused, reinterpret_cast<sockaddr*>(&nobody), sizeof nobody));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "port"), "ephemeral");
  EXPECT_EQ(result_of(steps, "bind busy"), "EADDRINUSE");
  EXPECT_EQ(result_of(steps, "bind off loopback"), "EADDRNOTAVAIL");
  EXPECT_EQ(result_of(steps, "poll fresh"), "OUT|HUP");
  EXPECT_EQ(result_of(steps, "read unconnected"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "unknown option"), "ENOPROTOOPT");
  EXPECT_EQ(result_of(steps, "connect nonblocking"), "EINPROGRESS");
  EXPECT_EQ(result_of(steps, "poll after FIN"), "IN|OUT|RDHUP");
  EXPECT_EQ(result_of(steps, "recv eof"), "n=0 \"\" from_len=0");
  EXPECT_EQ(result_of(steps, "connect refused"), "ECONNREFUSED");
  EXPECT_EQ(result_of(steps, "send after FIN"), "1");
  EXPECT_EQ(result_of(steps, "send after RST"), "EPIPE");
}

// A full accept queue drops a TCP SYN (tcp_conn_request): the non-blocking connect says
// EINPROGRESS and the socket reports nothing while it waits (SYN_SENT), EALREADY to another
// connect. Linux retries the SYN after a second; the steps here take far less.
TEST(DifferentialTcp, AConnectToAFullBacklogStaysInProgress) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    const int type = SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const int listener = s.value<int>("socket", os.socket(AF_INET, type, 0), -1);
    auto any = loopback(0);
    s.done("bind", os.bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any));
    s.done("listen 0", os.listen(listener, 0));
    auto at = loopback(local_port(os, listener));
    const int first = s.value<int>("socket first", os.socket(AF_INET, type, 0), -1);
    s.done("connect first", os.connect(first, reinterpret_cast<sockaddr*>(&at), sizeof at));
    s.note("poll first", s.poll_text(first));
    const int second = s.value<int>("socket second", os.socket(AF_INET, type, 0), -1);
    s.done("connect second", os.connect(second, reinterpret_cast<sockaddr*>(&at), sizeof at));
    s.note("poll second", s.poll_text(second));
    s.done("connect second again", os.connect(second, reinterpret_cast<sockaddr*>(&at), sizeof at));
    int error = -1;
    socklen_t len = sizeof error;
    s.done("SO_ERROR", os.getsockopt(second, SOL_SOCKET, SO_ERROR, &error, &len));
    s.note("SO_ERROR value", std::to_string(error));
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "connect first"), "EINPROGRESS");
  EXPECT_EQ(result_of(steps, "poll first"), "OUT");
  EXPECT_EQ(result_of(steps, "connect second"), "EINPROGRESS");
  EXPECT_EQ(result_of(steps, "poll second"), "0");
  EXPECT_EQ(result_of(steps, "connect second again"), "EALREADY");
  EXPECT_EQ(result_of(steps, "SO_ERROR value"), "0");
}

// shutdown on TCP: SHUT_WR is a FIN (EOF for the peer, EPIPE here, EPOLLHUP once both sent
// one), SHUT_RD tells the peer nothing, ENOTCONN unconnected, and a listener stops at SHUT_RD.
TEST(DifferentialTcp, ShutdownHalfClosesEitherWay) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    ignore_sigpipe(s);
    const int type = SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK;
    const int listener = s.value<int>("socket", os.socket(AF_INET, type, 0), -1);
    auto any = loopback(0);
    s.done("bind :0", os.bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any));
    s.done("listen", os.listen(listener, 4));
    auto there = loopback(local_port(os, listener));
    const auto pair = [&](const char* name) {
      const int client =
          s.value<int>(std::string("socket ") + name, os.socket(AF_INET, type, 0), -1);
      s.done(std::string("connect ") + name,
             os.connect(client, reinterpret_cast<sockaddr*>(&there), sizeof there));
      const int server =
          s.value<int>(std::string("accept ") + name,
                       os.accept4(listener, nullptr, nullptr, type & ~SOCK_STREAM), -1);
      return std::pair{client, server};
    };
    const int lone = s.value<int>("socket lone", os.socket(AF_INET, type, 0), -1);
    s.done("bad how", os.shutdown(lone, 7));
    s.done("SHUT_WR unconnected", os.shutdown(lone, SHUT_WR));
    const auto [a, sa] = pair("a");
    s.done("SHUT_WR a", os.shutdown(a, SHUT_WR));
    s.note("poll a after SHUT_WR", s.poll_text(a));
    s.note("poll sa after SHUT_WR", s.poll_text(sa));
    s.value<std::size_t>("write empty after SHUT_WR", os.write(a, "", 0), 0);
    s.value<std::size_t>("write after SHUT_WR", os.write(a, "x", 1), 0);
    s.note("recv sa eof", s.recv_text(sa, 8));
    s.value<std::size_t>("write sa", os.write(sa, "q", 1), 0);
    s.note("recv a", s.recv_text(a, 8));
    s.done("SHUT_WR sa", os.shutdown(sa, SHUT_WR));
    s.note("poll a both", s.poll_text(a));
    s.note("poll sa both", s.poll_text(sa));
    const auto [b, sb] = pair("b");
    s.done("SHUT_RD b", os.shutdown(b, SHUT_RD));
    s.note("poll b after SHUT_RD", s.poll_text(b));
    s.note("poll sb after SHUT_RD", s.poll_text(sb));
    s.note("recv b eof", s.recv_text(b, 8));
    s.value<std::size_t>("write sb after SHUT_RD", os.write(sb, "w", 1), 0);
    s.note("recv b data", s.recv_text(b, 8));
    s.note("recv b eof again", s.recv_text(b, 8));
    s.done("SHUT_WR listener", os.shutdown(listener, SHUT_WR));
    s.value<int>("accept after SHUT_WR", os.accept4(listener, nullptr, nullptr, 0), -1);
    s.done("SHUT_RD listener", os.shutdown(listener, SHUT_RD));
    s.value<int>("accept after SHUT_RD", os.accept4(listener, nullptr, nullptr, 0), -1);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "bad how"), "EINVAL");
  EXPECT_EQ(result_of(steps, "SHUT_WR unconnected"), "ENOTCONN");
  EXPECT_EQ(result_of(steps, "poll a after SHUT_WR"), "OUT");
  EXPECT_EQ(result_of(steps, "poll sa after SHUT_WR"), "IN|OUT|RDHUP");
  EXPECT_EQ(result_of(steps, "write empty after SHUT_WR"), "EPIPE");
  EXPECT_EQ(result_of(steps, "recv sa eof"), "n=0 \"\" from_len=0");
  EXPECT_EQ(result_of(steps, "poll a both"), "IN|OUT|RDHUP|HUP");
  EXPECT_EQ(result_of(steps, "poll sb after SHUT_RD"), "OUT");
  EXPECT_EQ(result_of(steps, "recv b data"), "n=1 \"w\" from_len=0");
  EXPECT_EQ(result_of(steps, "accept after SHUT_WR"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "accept after SHUT_RD"), "EINVAL");
}

TEST(DifferentialSignalfd, ReadsABlockedSignalWithItsSenderAndOnlyOnce) {
  const auto steps = agreed([](sys::Syscalls& os, const WorldContext&) {
    Script s(os);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    s.done("block", os.sigprocmask(SIG_BLOCK, &set, nullptr));
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, SIGUSR1);
    s.value<int>("bad flags", os.signalfd(-1, one, 0x4000000), -1);
    const int fd = s.value<int>("signalfd", os.signalfd(-1, one, SFD_NONBLOCK | SFD_CLOEXEC), -1);
    s.note("poll idle", s.poll_text(fd));
    signalfd_siginfo info{};
    s.value<std::size_t>("read nothing", os.read(fd, &info, sizeof info), 0);
    const pid_t self = os.getpid();
    s.done("kill USR2", os.kill(self, SIGUSR2));
    s.note("poll USR2 pending", s.poll_text(fd));
    s.done("kill USR1", os.kill(self, SIGUSR1));
    s.note("poll USR1 pending", s.poll_text(fd));
    char small[16];
    s.value<std::size_t>("read small", os.read(fd, small, sizeof small), 0);
    const std::size_t n = s.value<std::size_t>("read", os.read(fd, &info, sizeof info), 0);
    if (n == sizeof info) {
      s.note("siginfo",
             fmt::format("signo={} code={} from_self={} uid={}", info.ssi_signo, info.ssi_code,
                         info.ssi_pid == static_cast<std::uint32_t>(self), info.ssi_uid));
    }
    s.value<std::size_t>("read again", os.read(fd, &info, sizeof info), 0);
    s.value<int>("update set", os.signalfd(fd, set, 0), -1, [fd](const int& v) {
      return v == fd ? std::string("same fd") : std::to_string(v);
    });
    s.value<std::size_t>("read USR2", os.read(fd, &info, sizeof info), 0);
    s.note("signo", std::to_string(info.ssi_signo));
    const auto pipe = os.pipe2(O_CLOEXEC);
    if (pipe) s.value<int>("signalfd on a pipe", os.signalfd(pipe->read_end, set, 0), -1);
    s.value<std::size_t>("write", os.write(fd, "x", 1), 0);
    return s.steps;
  });
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(result_of(steps, "bad flags"), "EINVAL");
  EXPECT_EQ(result_of(steps, "poll idle"), "0") << "a signalfd is never writable";
  EXPECT_EQ(result_of(steps, "read nothing"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "read small"), "EINVAL");
  EXPECT_THAT(result_of(steps, "siginfo"), ::testing::StartsWith("signo=10 code=0 from_self=true"));
  EXPECT_EQ(result_of(steps, "read again"), "EAGAIN");
  EXPECT_EQ(result_of(steps, "signo"), "12");
  EXPECT_EQ(result_of(steps, "signalfd on a pipe"), "EINVAL");
}

}  // namespace
}  // namespace daemonkit::fake::differential
