// AF_UNIX sockets in the fake kernel: datagrams to paths and abstract names (with the
// filesystem's permissions, ECONNREFUSED, ENOENT, truncation, EAGAIN, the sender's
// credentials through recvmsg), and streams with a
// backlog, EOF, EPIPE and SIGPIPE, readiness in poll and epoll, and sharing across fork.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include <cstring>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "socket_test_support.h"
#include "test_support.h"

namespace daemonkit::fake {
namespace {

using ::testing::HasSubstr;
using testing_support::ends;
using testing_support::poll_events;
using testing_support::recv_text;
using testing_support::unix_address;

int dgram(FakeSyscalls& os) {
  return *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

sys::Result<std::size_t> send_to(FakeSyscalls& os, int fd, std::string_view text,
                                 std::string_view to) {
  const auto a = unix_address(to);
  return os.sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, a.get(), a.len);
}

// One recvmsg into a 64-byte buffer with `control` bytes of control buffer, as text:
// "n=5 flags=0x0 namelen=0 controllen=32 cred=1000/0/0" (pid/uid/gid), or the errno.
std::string recvmsg_text(FakeSyscalls& os, int fd, std::size_t control, std::size_t len = 64,
                         int flags = 0) {
  char buf[64];
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
  if (!n) return "error " + std::to_string(n.error().code);
  std::string text = fmt::format("n={} flags={:#x} namelen={} controllen={}", *n, msg.msg_flags,
                                 msg.msg_namelen, msg.msg_controllen);
  cmsghdr* c = msg.msg_controllen >= sizeof(cmsghdr) ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
    if (c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred u{};
      std::memcpy(&u, CMSG_DATA(c), sizeof u);
      text += fmt::format(" cred={}/{}/{}", u.pid, u.uid, u.gid);
    } else {
      text += fmt::format(" cmsg_len={}", c->cmsg_len);
    }
  }
  return text;
}

// ---- Datagrams ------------------------------------------------------------------------------

TEST(FakeUnixDgram, SoPasscredDeliversTheSendersPidAndRealIds) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@creds");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  int value = 0;
  socklen_t len = sizeof value;
  ASSERT_TRUE(os.getsockopt(server, SOL_SOCKET, SO_PASSCRED, &value, &len));
  EXPECT_EQ(value, 1);
  const int client = dgram(os);
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setresgid(2001, 2002, 2003));
  ASSERT_TRUE(os.setresuid(1001, 1002, 1003));
  ASSERT_TRUE(send_to(os, client, "child", "@creds"));
  os.switch_to(parent);
  ASSERT_TRUE(send_to(os, client, "parent", "@creds"));
  EXPECT_EQ(recvmsg_text(os, server, 64),
            fmt::format("n=5 flags=0x0 namelen=0 controllen=32 cred={}/1001/2001", child))
      << "the real ids, taken at the send";
  EXPECT_EQ(recvmsg_text(os, server, 64),
            fmt::format("n=6 flags=0x0 namelen=0 controllen=32 cred={}/0/0", parent));
  EXPECT_EQ(recvmsg_text(os, server, 64), "error " + std::to_string(EAGAIN));
}

TEST(FakeUnixDgram, RecvmsgCutsAShortControlBufferWithMsgCtrunc) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@ctrunc");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  const int client = dgram(os);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(send_to(os, client, "hello", "@ctrunc"));
  EXPECT_EQ(recvmsg_text(os, server, 0), "n=5 flags=0x8 namelen=0 controllen=0");
  EXPECT_EQ(recvmsg_text(os, server, 8), "n=5 flags=0x8 namelen=0 controllen=0");
  EXPECT_EQ(recvmsg_text(os, server, 20), "n=5 flags=0x8 namelen=0 controllen=20 cmsg_len=20");
  EXPECT_EQ(recvmsg_text(os, server, 30),
            fmt::format("n=5 flags=0x0 namelen=0 controllen=30 cred={}/0/0", os.getpid()));
  EXPECT_EQ(recvmsg_text(os, server, 64, 3),
            fmt::format("n=3 flags=0x20 namelen=0 controllen=32 cred={}/0/0", os.getpid()))
      << "a short data buffer is MSG_TRUNC";
  EXPECT_EQ(recvmsg_text(os, server, 64, 3, MSG_TRUNC),
            fmt::format("n=5 flags=0x20 namelen=0 controllen=32 cred={}/0/0", os.getpid()));
}

TEST(FakeUnixDgram, CredentialsAreTakenOnlyWhileSomeoneAsksForThem) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@late");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const int plain = dgram(os);
  ASSERT_TRUE(send_to(os, plain, "early", "@late"));
  const int on = 1;
  const int asking = dgram(os);
  ASSERT_TRUE(os.setsockopt(asking, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  ASSERT_TRUE(send_to(os, asking, "sender asked", "@late"));
  EXPECT_EQ(recvmsg_text(os, server, 64), "n=5 flags=0x0 namelen=0 controllen=0")
      << "no control message for a receiver without SO_PASSCRED";
  ASSERT_TRUE(os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  ASSERT_TRUE(send_to(os, plain, "early", "@late"));
  const int off = 0;
  ASSERT_TRUE(os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &off, sizeof off));
  ASSERT_TRUE(send_to(os, plain, "x", "@late"));
  ASSERT_TRUE(os.setsockopt(server, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  EXPECT_EQ(recvmsg_text(os, server, 64),
            fmt::format("n=12 flags=0x0 namelen=8 controllen=32 cred={}/0/0", os.getpid()))
      << "a sender with SO_PASSCRED is autobound and records its credentials";
  EXPECT_EQ(recvmsg_text(os, server, 64),
            fmt::format("n=5 flags=0x0 namelen=0 controllen=32 cred={}/0/0", os.getpid()));
  EXPECT_EQ(recvmsg_text(os, server, 64),
            "n=1 flags=0x0 namelen=0 controllen=32 cred=0/65534/65534")
      << "sent while nobody asked: pid 0 and the overflow ids";
}

TEST(FakeUnixDgram, RecvmsgFailsAsRecvfromDoesAndOnABadMsghdr) {
  FakeSyscalls os;
  const int server = *os.socket(AF_UNIX, SOCK_DGRAM, 0);
  const auto at = unix_address("@fails");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  EXPECT_EQ(recvmsg_text(os, server, 32, 64, MSG_DONTWAIT), "error " + std::to_string(EAGAIN));
  EXPECT_EQ(recvmsg_text(os, server, 32), "error " + std::to_string(EDEADLK))
      << "a blocking receive of nothing would block";
  EXPECT_EQ(os.recvmsg(server, nullptr, 0).error().code, EFAULT);
  EXPECT_EQ(recvmsg_text(os, 99, 32), "error " + std::to_string(EBADF));
  const auto pipe = *os.pipe2(O_CLOEXEC);
  EXPECT_EQ(recvmsg_text(os, pipe.read_end, 32), "error " + std::to_string(ENOTSOCK));
  const int tcp = *os.socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  EXPECT_EQ(os.setsockopt(tcp, SOL_SOCKET, SO_PASSCRED, &on, sizeof on).error().code, EOPNOTSUPP);
  EXPECT_THAT(os.transcript(), CallFailedWith("recvmsg", EAGAIN));
  ASSERT_TRUE(send_to(os, *os.socket(AF_UNIX, SOCK_DGRAM, 0), "kept", "@fails"));
  os.fail_when(
      "recvmsg", [](const CallRecord&) { return true; }, ECONNRESET);
  EXPECT_EQ(recvmsg_text(os, server, 32), "error " + std::to_string(ECONNRESET));
  os.clear_faults();
  EXPECT_EQ(recvmsg_text(os, server, 32), "n=4 flags=0x0 namelen=0 controllen=0")
      << "an injected failure takes nothing off the queue";
}

TEST(FakeUnixDgram, RecvmsgScattersOverItsIovecsAndLeavesANullNameAlone) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@scatter");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  ASSERT_TRUE(send_to(os, dgram(os), "hello", "@scatter"));
  char a[2];
  char b[10];
  iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  msghdr msg{};
  msg.msg_namelen = 99;
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_flags = 0x7fff;
  ASSERT_EQ(os.recvmsg(server, &msg, 0).value_or(0), 5u);
  EXPECT_EQ(std::string(a, 2) + std::string(b, 3), "hello");
  EXPECT_EQ(msg.msg_namelen, 99u);
  EXPECT_EQ(msg.msg_flags, 0);
}

TEST(FakeUnixDgram, BindingAPathMakesASocketInodeAndDatagramsArriveWhole) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("/run/notify");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const auto st = os.stat_path("/run/notify");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISSOCK(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0755u) << "0777 less the umask";
  const int client = dgram(os);
  EXPECT_EQ(*send_to(os, client, "READY=1\n", "/run/notify"), 8u);
  EXPECT_EQ(*send_to(os, client, "STATUS=up\n", "/run/notify"), 10u);
  EXPECT_EQ(recv_text(os, server), "READY=1\n");
  EXPECT_EQ(recv_text(os, server), "STATUS=up\n");
  EXPECT_EQ(recv_text(os, server), "error " + std::to_string(EAGAIN));
}

TEST(FakeUnixDgram, AbstractNamesLiveInTheKernelNotTheFilesystem) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@sd-notify");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  EXPECT_EQ(*send_to(os, dgram(os), "x", "@sd-notify"), 1u);
  EXPECT_EQ(recv_text(os, server), "x");
  EXPECT_EQ(os.bind(dgram(os), at.get(), at.len).error().code, EADDRINUSE);
  ASSERT_TRUE(os.close(server));
  EXPECT_EQ(send_to(os, dgram(os), "x", "@sd-notify").error().code, ECONNREFUSED);
  EXPECT_TRUE(os.bind(dgram(os), at.get(), at.len)) << "the name went with its socket";
}

TEST(FakeUnixDgram, BindRefusesAnExistingNameAMissingDirectoryAndAReadOnlyOne) {
  FakeSyscalls os;
  os.write_file("/run/taken", "");
  const auto taken = unix_address("/run/taken");
  EXPECT_EQ(os.bind(dgram(os), taken.get(), taken.len).error().code, EADDRINUSE);
  const auto missing = unix_address("/nowhere/s");
  EXPECT_EQ(os.bind(dgram(os), missing.get(), missing.len).error().code, ENOENT);
  os.make_dir("/srv", 0755);
  const int fd = dgram(os);
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  const auto denied = unix_address("/srv/s");
  EXPECT_EQ(os.bind(fd, denied.get(), denied.len).error().code, EACCES);
}

TEST(FakeUnixDgram, BindTwiceOrWithABadAddressIsEinval) {
  FakeSyscalls os;
  const int fd = dgram(os);
  const auto a = unix_address("/tmp/a");
  ASSERT_TRUE(os.bind(fd, a.get(), a.len));
  const auto b = unix_address("/tmp/b");
  EXPECT_EQ(os.bind(fd, b.get(), b.len).error().code, EINVAL);
  auto wrong = unix_address("/tmp/c");
  wrong.un.sun_family = AF_INET;
  EXPECT_EQ(os.bind(dgram(os), wrong.get(), wrong.len).error().code, EINVAL);
  EXPECT_EQ(os.bind(dgram(os), a.get(), sizeof(sockaddr_un) + 1).error().code, EINVAL);
}

TEST(FakeUnixDgram, SendingNeedsAPathABoundSocketAndWritePermission) {
  FakeSyscalls os;
  const int client = dgram(os);
  EXPECT_EQ(send_to(os, client, "x", "/run/none").error().code, ENOENT);
  os.write_file("/run/file", "");
  EXPECT_EQ(send_to(os, client, "x", "/run/file").error().code, ECONNREFUSED);
  const int server = dgram(os);
  const auto at = unix_address("/tmp/s");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  ASSERT_TRUE(os.chmod("/tmp/s", 0700));
  ASSERT_TRUE(os.setresuid(65534, 65534, 65534));
  EXPECT_EQ(send_to(os, client, "x", "/tmp/s").error().code, EACCES);
}

TEST(FakeUnixDgram, APathWhoseSocketClosedRefusesAndStaysUntilUnlinked) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("/tmp/s");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  ASSERT_TRUE(os.close(server));
  EXPECT_EQ(send_to(os, dgram(os), "x", "/tmp/s").error().code, ECONNREFUSED);
  EXPECT_EQ(os.bind(dgram(os), at.get(), at.len).error().code, EADDRINUSE);
  ASSERT_TRUE(os.unlink("/tmp/s"));
  EXPECT_TRUE(os.bind(dgram(os), at.get(), at.len));
}

TEST(FakeUnixDgram, ReceivingTruncatesToTheBufferAndReportsTheSender) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@srv");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const int client = dgram(os);
  const auto mine = unix_address("@client");
  ASSERT_TRUE(os.bind(client, mine.get(), mine.len));
  ASSERT_TRUE(send_to(os, client, "hello world", "@srv"));
  ASSERT_TRUE(send_to(os, client, "second", "@srv"));
  char buf[5];
  sockaddr_un from{};
  socklen_t len = sizeof from;
  EXPECT_EQ(*os.recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len), 5u);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(len, mine.len);
  EXPECT_EQ(std::string(from.sun_path + 1, 6), "client");
  EXPECT_EQ(*os.recvfrom(server, buf, sizeof buf, MSG_TRUNC, nullptr, nullptr), 6u)
      << "MSG_TRUNC says the whole length; the rest of each datagram is gone";
  EXPECT_EQ(os.recvfrom(server, buf, sizeof buf, 0, nullptr, nullptr).error().code, EAGAIN);
}

TEST(FakeUnixDgram, AnUnboundSenderIsUnnamed) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@srv");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  ASSERT_TRUE(send_to(os, dgram(os), "x", "@srv"));
  char buf[4];
  sockaddr_un from{};
  socklen_t len = sizeof from;
  ASSERT_TRUE(os.recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len));
  EXPECT_EQ(len, 0u) << "recvfrom names an unbound sender with an empty address";
}

TEST(FakeUnixDgram, AFullQueueIsEagainAndABlockingReceiveOfNothingWouldBlock) {
  FakeSyscalls os;
  const int server = *os.socket(AF_UNIX, SOCK_DGRAM, 0);
  const auto at = unix_address("@q");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  const int client = dgram(os);
  int sent = 0;
  while (send_to(os, client, "x", "@q")) ++sent;
  EXPECT_EQ(sent, 11) << "net.unix.max_dgram_qlen (10), plus one, as Linux counts";
  EXPECT_EQ(send_to(os, client, "x", "@q").error().code, EAGAIN);
  for (int i = 0; i < sent; ++i) ASSERT_EQ(recv_text(os, server), "x");
  char buf[1];
  EXPECT_EQ(os.recvfrom(server, buf, 1, 0, nullptr, nullptr).error().code, EDEADLK);
  EXPECT_EQ(os.recvfrom(server, buf, 1, MSG_DONTWAIT, nullptr, nullptr).error().code, EAGAIN);
}

TEST(FakeUnixDgram, ConnectedSocketsSendWithoutAnAddressAndRefuseStrangers) {
  FakeSyscalls os;
  const int a = dgram(os);
  const int b = dgram(os);
  const auto an = unix_address("@a");
  const auto bn = unix_address("@b");
  ASSERT_TRUE(os.bind(a, an.get(), an.len));
  ASSERT_TRUE(os.bind(b, bn.get(), bn.len));
  EXPECT_EQ(os.write(a, "x", 1).error().code, ENOTCONN);
  ASSERT_TRUE(os.connect(a, bn.get(), bn.len));
  ASSERT_TRUE(os.connect(b, an.get(), an.len));
  EXPECT_EQ(*os.write(a, "ping", 4), 4u);
  EXPECT_EQ(recv_text(os, b), "ping");
  EXPECT_EQ(send_to(os, dgram(os), "x", "@b").error().code, EPERM) << "b hears only from a";
}

TEST(FakeUnixDgram, SendingToAStreamSocketsPathIsEprototypeAndItsAbstractNameIsNobodys) {
  FakeSyscalls os;
  const int stream = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  const auto at = unix_address("/s.sock");
  ASSERT_TRUE(os.bind(stream, at.get(), at.len));
  EXPECT_EQ(send_to(os, dgram(os), "x", "/s.sock").error().code, EPROTOTYPE);
  // Abstract names are per type: a datagram socket may take the stream socket's name.
  const int abstract_stream = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  const auto name = unix_address("@s");
  ASSERT_TRUE(os.bind(abstract_stream, name.get(), name.len));
  EXPECT_EQ(send_to(os, dgram(os), "x", "@s").error().code, ECONNREFUSED);
  const int same_name = dgram(os);
  EXPECT_TRUE(os.bind(same_name, name.get(), name.len));
  EXPECT_EQ(*send_to(os, dgram(os), "x", "@s"), 1u);
}

TEST(FakeUnixDgram, ReadableInPollAndEpollWhileADatagramWaits) {
  FakeSyscalls os;
  const int server = dgram(os);
  const auto at = unix_address("@r");
  ASSERT_TRUE(os.bind(server, at.get(), at.len));
  EXPECT_EQ(poll_events(os, server), POLLOUT);
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLET;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, server, &ev));
  struct epoll_event out[1];
  EXPECT_EQ(*os.epoll_wait(ep, out, 1, 0), 0);
  ASSERT_TRUE(send_to(os, dgram(os), "x", "@r"));
  EXPECT_EQ(poll_events(os, server), POLLIN | POLLOUT);
  EXPECT_EQ(*os.epoll_wait(ep, out, 1, 0), 1);
  EXPECT_EQ(*os.epoll_wait(ep, out, 1, 0), 0) << "edge-triggered: one report per datagram";
}

TEST(FakeUnixDgram, GetsocknameGivesThePathWithItsNul) {
  FakeSyscalls os;
  const int fd = dgram(os);
  const auto at = unix_address("/tmp/n");
  ASSERT_TRUE(os.bind(fd, at.get(), at.len));
  sockaddr_un got{};
  socklen_t len = sizeof got;
  ASSERT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len));
  EXPECT_EQ(len, at.len);
  EXPECT_STREQ(got.sun_path, "/tmp/n");
  socklen_t short_len = 4;
  ASSERT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&got), &short_len));
  EXPECT_EQ(short_len, at.len) << "the full length, though only 4 bytes were copied";
}

TEST(FakeUnixDgram, BindingTheFamilyAloneAutobindsAnAbstractName) {
  FakeSyscalls os;
  const int fd = dgram(os);
  sockaddr_un family{};
  family.sun_family = AF_UNIX;
  ASSERT_TRUE(os.bind(fd, reinterpret_cast<sockaddr*>(&family), sizeof(sa_family_t)));
  sockaddr_un got{};
  socklen_t len = sizeof got;
  ASSERT_TRUE(os.getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len));
  EXPECT_EQ(len, sizeof(sa_family_t) + 6);
  EXPECT_EQ(got.sun_path[0], '\0');
}

// ---- Streams --------------------------------------------------------------------------------

struct StreamPair {
  int listener = -1;
  int client = -1;
  int server = -1;
};

StreamPair connected(FakeSyscalls& os, const char* name = "@stream") {
  StreamPair s;
  s.listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto at = unix_address(name);
  EXPECT_TRUE(os.bind(s.listener, at.get(), at.len));
  EXPECT_TRUE(os.listen(s.listener, 1));
  s.client = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_TRUE(os.connect(s.client, at.get(), at.len));
  s.server = *os.accept4(s.listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return s;
}

TEST(FakeUnixStream, BytesFlowBothWaysAndCloseGivesEof) {
  FakeSyscalls os;
  const auto s = connected(os);
  ASSERT_EQ(*os.write(s.client, "hello", 5), 5u);
  ASSERT_EQ(*os.write(s.client, " there", 6), 6u);
  EXPECT_EQ(recv_text(os, s.server, 8), "hello th") << "a byte stream: no message boundaries";
  EXPECT_EQ(recv_text(os, s.server), "ere");
  EXPECT_EQ(recv_text(os, s.server), "error " + std::to_string(EAGAIN));
  ASSERT_EQ(*os.sendto(s.server, "back", 4, MSG_NOSIGNAL, nullptr, 0), 4u);
  EXPECT_EQ(recv_text(os, s.client), "back");
  ASSERT_TRUE(os.close(s.client));
  EXPECT_EQ(recv_text(os, s.server), "") << "EOF";
}

TEST(FakeUnixStream, WritingToAClosedPeerIsEpipeWithSigpipeUnlessMsgNosignal) {
  FakeSyscalls os;
  const pid_t child = *os.fork();
  os.switch_to(child);
  const auto s = connected(os);
  ASSERT_TRUE(os.close(s.server));
  EXPECT_EQ(os.sendto(s.client, "x", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
  EXPECT_TRUE(os.process(child).alive());
  const auto ended = ends([&] { static_cast<void>(os.write(s.client, "x", 1)); });
  EXPECT_EQ(WTERMSIG(ended.wait_status), SIGPIPE);
}

TEST(FakeUnixStream, ShutdownWriteGivesThePeerEofAfterItsBytesAndEpipeHere) {
  FakeSyscalls os;
  const auto s = connected(os);
  ASSERT_EQ(*os.write(s.client, "ab", 2), 2u);
  ASSERT_TRUE(os.shutdown(s.client, SHUT_WR));
  EXPECT_EQ(poll_events(os, s.client), POLLOUT) << "still writable: a writer must not wait";
  EXPECT_EQ(poll_events(os, s.server), POLLIN | POLLOUT | POLLRDHUP) << "no POLLHUP: half open";
  EXPECT_EQ(os.sendto(s.client, "", 0, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE)
      << "even an empty send";
  const struct iovec none[1] = {};
  EXPECT_EQ(*os.writev(s.client, none), 0u) << "an empty writev never reaches the socket";
  EXPECT_EQ(recv_text(os, s.server), "ab");
  EXPECT_EQ(recv_text(os, s.server), "") << "EOF after the bytes";
  ASSERT_EQ(*os.write(s.server, "cd", 2), 2u) << "the other way stays open";
  EXPECT_EQ(recv_text(os, s.client), "cd");
  ASSERT_TRUE(os.shutdown(s.server, SHUT_WR));
  EXPECT_EQ(poll_events(os, s.client), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  EXPECT_EQ(poll_events(os, s.server), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  const auto ended = ends([&] { static_cast<void>(os.write(s.client, "x", 1)); });
  EXPECT_EQ(WTERMSIG(ended.wait_status), SIGPIPE) << "write raises SIGPIPE as for a closed peer";
}

TEST(FakeUnixStream, ShutdownReadEndsReadingHereAndWritingThere) {
  FakeSyscalls os;
  const auto s = connected(os);
  ASSERT_EQ(*os.write(s.server, "zz", 2), 2u);
  ASSERT_TRUE(os.shutdown(s.client, SHUT_RD));
  EXPECT_EQ(poll_events(os, s.client), POLLIN | POLLOUT | POLLRDHUP);
  EXPECT_EQ(poll_events(os, s.server), POLLOUT);
  EXPECT_EQ(recv_text(os, s.client), "zz") << "what came before is still read";
  EXPECT_EQ(recv_text(os, s.client), "");
  EXPECT_EQ(os.sendto(s.server, "y", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
  ASSERT_EQ(*os.write(s.client, "y", 1), 1u);
  EXPECT_EQ(recv_text(os, s.server), "y");
}

TEST(FakeUnixStream, ShutdownErrorsAndUnconnectedSockets) {
  FakeSyscalls os;
  const auto fds = *os.pipe2(0);
  EXPECT_EQ(os.shutdown(fds.write_end, SHUT_WR).error().code, ENOTSOCK);
  EXPECT_EQ(os.shutdown(99, SHUT_WR).error().code, EBADF);
  const int lone = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_EQ(os.shutdown(lone, 7).error().code, EINVAL);
  EXPECT_TRUE(os.shutdown(lone, SHUT_WR)) << "unix_shutdown keeps the flags without a peer";
  const auto at = unix_address("@later");
  const int listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_TRUE(os.bind(listener, at.get(), at.len));
  ASSERT_TRUE(os.listen(listener, 1));
  ASSERT_TRUE(os.connect(lone, at.get(), at.len));
  EXPECT_EQ(os.sendto(lone, "x", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE)
      << "the flags outlive the connect";
  ASSERT_TRUE(os.shutdown(listener, SHUT_RDWR));
  EXPECT_EQ(poll_events(os, listener), POLLIN | POLLRDHUP | POLLHUP);
  const int late = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_EQ(os.connect(late, at.get(), at.len).error().code, ECONNREFUSED);
  EXPECT_THAT(
      os.transcript(),
      HasCallWithArgs("shutdown", ::testing::ElementsAre(std::to_string(listener), "SHUT_RDWR")));
}

TEST(FakeUnixStream, PeerClosingWithBytesUnreadResetsTheConnection) {
  FakeSyscalls os;
  const auto s = connected(os);
  ASSERT_TRUE(os.write(s.client, "unread", 6));
  ASSERT_TRUE(os.close(s.server));
  EXPECT_EQ(recv_text(os, s.client), "error " + std::to_string(ECONNRESET));
  EXPECT_EQ(recv_text(os, s.client), "") << "once reported, EOF";
}

TEST(FakeUnixStream, ConnectNeedsAListenerAndTheBacklogLimitsPendingConnections) {
  FakeSyscalls os;
  const auto at = unix_address("@l");
  const int bound = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  const int client = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_EQ(os.connect(client, at.get(), at.len).error().code, ECONNREFUSED);
  ASSERT_TRUE(os.bind(bound, at.get(), at.len));
  EXPECT_EQ(os.connect(client, at.get(), at.len).error().code, ECONNREFUSED) << "not listening";
  EXPECT_EQ(os.listen(*os.socket(AF_UNIX, SOCK_STREAM, 0), 5).error().code, EINVAL)
      << "listening needs a name";
  ASSERT_TRUE(os.listen(bound, 0));
  EXPECT_TRUE(os.connect(client, at.get(), at.len)) << "backlog 0 still admits one";
  EXPECT_EQ(os.connect(client, at.get(), at.len).error().code, EAGAIN)
      << "Linux checks the listener's backlog before the caller's own state";
  const int second = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  EXPECT_EQ(os.connect(second, at.get(), at.len).error().code, EAGAIN);
  const int blocking = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(os.connect(blocking, at.get(), at.len).error().code, EDEADLK);
  ASSERT_TRUE(os.accept4(bound, nullptr, nullptr, 0));
  EXPECT_EQ(os.connect(client, at.get(), at.len).error().code, EISCONN);
  EXPECT_TRUE(os.connect(second, at.get(), at.len));
}

TEST(FakeUnixStream, AcceptErrorsAndTheAcceptedSocketsFlags) {
  FakeSyscalls os;
  const int unbound = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(os.accept4(unbound, nullptr, nullptr, 0).error().code, EINVAL);
  EXPECT_EQ(os.accept4(unbound, nullptr, nullptr, 0x1).error().code, EINVAL);
  const auto pipe = *os.pipe2(0);
  EXPECT_EQ(os.accept4(pipe.read_end, nullptr, nullptr, 0).error().code, ENOTSOCK);
  EXPECT_EQ(os.accept4(77, nullptr, nullptr, 0).error().code, EBADF);
  const int listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto at = unix_address("@acc");
  ASSERT_TRUE(os.bind(listener, at.get(), at.len));
  ASSERT_TRUE(os.listen(listener, 4));
  EXPECT_EQ(os.accept4(listener, nullptr, nullptr, 0).error().code, EAGAIN);
  ASSERT_TRUE(os.fcntl(listener, F_SETFL, 0));
  EXPECT_EQ(os.accept4(listener, nullptr, nullptr, 0).error().code, EDEADLK);
  EXPECT_THAT(os.transcript(), CallFailedWith("accept4", EDEADLK));
  const int client = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_TRUE(os.connect(client, at.get(), at.len));
  sockaddr_un peer{};
  socklen_t len = sizeof peer;
  const int accepted =
      *os.accept4(listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  EXPECT_EQ(len, sizeof(sa_family_t)) << "the client is unnamed";
  EXPECT_EQ(*os.fcntl(accepted, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(accepted, F_GETFL, 0), O_RDWR);
  EXPECT_THAT(os.describe_fd(os.getpid(), accepted), HasSubstr("unix-stream unix:@acc"));
}

TEST(FakeUnixStream, ReadinessFollowsDataAndThePeersClose) {
  FakeSyscalls os;
  const auto s = connected(os);
  EXPECT_EQ(poll_events(os, s.server), POLLOUT);
  ASSERT_TRUE(os.write(s.client, "x", 1));
  EXPECT_EQ(poll_events(os, s.server), POLLIN | POLLOUT);
  ASSERT_TRUE(os.close(s.client));
  EXPECT_EQ(poll_events(os, s.server), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  const int fresh = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(poll_events(os, fresh), POLLOUT | POLLHUP) << "unconnected, as Linux reports it";
}

TEST(FakeUnixStream, ListenerIsReadableInEpollWithAPendingConnection) {
  FakeSyscalls os;
  const int listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const auto at = unix_address("/tmp/l.sock");
  ASSERT_TRUE(os.bind(listener, at.get(), at.len));
  ASSERT_TRUE(os.listen(listener, 8));
  const int ep = *os.epoll_create1(0);
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ASSERT_TRUE(os.epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev));
  struct epoll_event out[1];
  EXPECT_EQ(*os.epoll_wait(ep, out, 1, 0), 0);
  ASSERT_TRUE(os.connect(*os.socket(AF_UNIX, SOCK_STREAM, 0), at.get(), at.len));
  EXPECT_EQ(*os.epoll_wait(ep, out, 1, 0), 1);
}

TEST(FakeUnixStream, ReadingUnconnectedIsEinvalAndWritingEnotconn) {
  FakeSyscalls os;
  const int fd = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  char c;
  EXPECT_EQ(os.read(fd, &c, 1).error().code, EINVAL);
  EXPECT_EQ(os.write(fd, "x", 1).error().code, ENOTCONN);
  const auto to = unix_address("@x");
  EXPECT_EQ(os.sendto(fd, "x", 1, 0, to.get(), to.len).error().code, EOPNOTSUPP);
}

TEST(FakeUnixStream, AForkedChildSharesTheConnection) {
  FakeSyscalls os;
  const pid_t parent = os.getpid();
  const auto s = connected(os);
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.write(s.client, "from child", 10));
  ASSERT_TRUE(os.close(s.client));
  os.switch_to(parent);
  EXPECT_EQ(recv_text(os, s.server), "from child");
  EXPECT_EQ(recv_text(os, s.server), "error " + std::to_string(EAGAIN)) << "the parent's copy";
  ASSERT_TRUE(os.close(s.client));
  EXPECT_EQ(recv_text(os, s.server), "");
}

TEST(FakeUnixStream, APathSocketCannotBeOpened) {
  FakeSyscalls os;
  const int fd = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  const auto at = unix_address("/tmp/o.sock");
  ASSERT_TRUE(os.bind(fd, at.get(), at.len));
  EXPECT_EQ(os.open("/tmp/o.sock", O_RDWR, 0).error().code, ENXIO);
}

// ---- socket(), options, the transcript -------------------------------------------------------

TEST(FakeSocket, RefusesWhatIsNotModelledHonestly) {
  FakeSyscalls os;
  EXPECT_EQ(os.socket(AF_NETLINK, SOCK_RAW, 0).error().code, EAFNOSUPPORT);
  EXPECT_EQ(os.socket(AF_INET, SOCK_RAW, 0).error().code, ESOCKTNOSUPPORT);
  EXPECT_EQ(os.socket(AF_UNIX, SOCK_STREAM, 7).error().code, EPROTONOSUPPORT);
  EXPECT_EQ(os.socket(AF_UNIX, SOCK_SEQPACKET, 0).error().code, ESOCKTNOSUPPORT);
}

TEST(FakeSocket, FlagsAndNotASocket) {
  FakeSyscalls os;
  const int fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  EXPECT_EQ(*os.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(fd, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_TRUE(S_ISSOCK(os.fstat(fd)->st_mode));
  const auto pipe = *os.pipe2(0);
  const auto at = unix_address("@n");
  EXPECT_EQ(os.bind(pipe.read_end, at.get(), at.len).error().code, ENOTSOCK);
  EXPECT_EQ(os.getsockname(99, nullptr, nullptr).error().code, EBADF);
}

TEST(FakeSocket, OptionsKnownUnknownAndShort) {
  FakeSyscalls os;
  const int fd = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on));
  int value = 0;
  socklen_t len = sizeof value;
  ASSERT_TRUE(os.getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &value, &len));
  EXPECT_EQ(value, 1);
  ASSERT_TRUE(os.getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len));
  EXPECT_EQ(value, SOCK_STREAM);
  EXPECT_EQ(os.setsockopt(fd, SOL_SOCKET, 9999, &on, sizeof on).error().code, ENOPROTOOPT);
  EXPECT_EQ(os.getsockopt(fd, SOL_SOCKET, 9999, &value, &len).error().code, ENOPROTOOPT);
  EXPECT_EQ(os.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, 2).error().code, EINVAL);
}

TEST(FakeSocketPair, StreamPairIsConnectedBothWaysWithEofAndEpipe) {
  FakeSyscalls os;
  auto pair = os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->first, 0);
  EXPECT_EQ(pair->second, 1);
  EXPECT_EQ(*os.fcntl(pair->first, F_GETFD, 0), FD_CLOEXEC);
  EXPECT_EQ(*os.fcntl(pair->second, F_GETFL, 0), O_RDWR | O_NONBLOCK);
  EXPECT_EQ(recv_text(os, pair->first), "error " + std::to_string(EAGAIN));
  ASSERT_TRUE(os.write(pair->first, "ping", 4));
  EXPECT_EQ(poll_events(os, pair->second), POLLIN | POLLOUT);
  EXPECT_EQ(recv_text(os, pair->second), "ping");
  ASSERT_TRUE(os.write(pair->second, "pong", 4));
  EXPECT_EQ(recv_text(os, pair->first), "pong");
  sockaddr_un name{};
  socklen_t len = sizeof name;
  ASSERT_TRUE(os.getsockname(pair->first, reinterpret_cast<sockaddr*>(&name), &len));
  EXPECT_EQ(len, sizeof(sa_family_t)) << "both ends are unnamed";
  ASSERT_TRUE(os.close(pair->second));
  EXPECT_EQ(poll_events(os, pair->first), POLLIN | POLLOUT | POLLRDHUP | POLLHUP);
  EXPECT_EQ(recv_text(os, pair->first), "");
  EXPECT_EQ(os.sendto(pair->first, "x", 1, MSG_NOSIGNAL, nullptr, 0).error().code, EPIPE);
}

TEST(FakeSocketPair, DatagramPairKeepsBoundariesAndHearsOnlyItsPeer) {
  FakeSyscalls os;
  auto pair = os.socketpair(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_TRUE(pair);
  EXPECT_EQ(*os.fcntl(pair->first, F_GETFD, 0), 0);
  ASSERT_TRUE(os.write(pair->first, "one", 3));
  ASSERT_TRUE(os.write(pair->first, "two", 3));
  EXPECT_EQ(recv_text(os, pair->second, 256, MSG_DONTWAIT), "one");
  EXPECT_EQ(recv_text(os, pair->second, 256, MSG_DONTWAIT), "two");
  ASSERT_TRUE(os.write(pair->second, "back", 4));
  EXPECT_EQ(recv_text(os, pair->first, 256, MSG_DONTWAIT), "back");
  const int stranger = dgram(os);
  ASSERT_TRUE(os.bind(stranger, unix_address("@stranger").get(), unix_address("@stranger").len));
  const auto peer_name = unix_address("@pair");
  ASSERT_TRUE(os.bind(pair->second, peer_name.get(), peer_name.len));
  EXPECT_EQ(send_to(os, stranger, "x", "@pair").error().code, EPERM)
      << "a connected datagram socket hears only from its peer";
  ASSERT_TRUE(os.close(pair->second));
  EXPECT_EQ(os.write(pair->first, "x", 1).error().code, ECONNREFUSED);
}

TEST(FakeSocketPair, RefusesWhatLinuxRefusesInLinuxsOrder) {
  FakeSyscalls os;
  EXPECT_EQ(os.socketpair(AF_INET, SOCK_STREAM, 0).error().code, EOPNOTSUPP);
  EXPECT_EQ(os.socketpair(AF_INET, SOCK_DGRAM, 0).error().code, EOPNOTSUPP);
  EXPECT_EQ(os.socketpair(AF_INET6, SOCK_STREAM, 0).error().code, EOPNOTSUPP);
  EXPECT_EQ(os.socketpair(AF_NETLINK, SOCK_DGRAM, 0).error().code, EOPNOTSUPP);
  EXPECT_EQ(os.socketpair(99, SOCK_STREAM, 0).error().code, EAFNOSUPPORT);
  EXPECT_EQ(os.socketpair(AF_UNIX, SOCK_STREAM, IPPROTO_TCP).error().code, EPROTONOSUPPORT);
  EXPECT_EQ(os.socketpair(AF_UNIX, SOCK_STREAM | 0x100000, 0).error().code, EINVAL);
  EXPECT_EQ(os.socketpair(AF_UNIX, SOCK_SEQPACKET, 0).error().code, ESOCKTNOSUPPORT)
      << "not modelled";
  ASSERT_TRUE(os.setrlimit(RLIMIT_NOFILE, {5, 5}));
  ASSERT_TRUE(os.socketpair(AF_UNIX, SOCK_STREAM, 0));  // 0 and 1
  ASSERT_TRUE(os.socketpair(AF_UNIX, SOCK_STREAM, 0));
  const int last = *os.socket(AF_UNIX, SOCK_STREAM, 0);
  EXPECT_EQ(last, 4);
  ASSERT_TRUE(os.close(3));
  EXPECT_EQ(os.socketpair(AF_UNIX, SOCK_STREAM, 0).error().code, EMFILE)
      << "one free descriptor is not enough";
  EXPECT_EQ(os.socketpair(AF_INET, SOCK_STREAM, 0).error().code, EMFILE)
      << "descriptors are reserved before the family is looked at";
  EXPECT_EQ(os.open_fds(os.current_pid()), (std::vector<int>{0, 1, 2, 4}));
}

TEST(FakeSocketPair, IsRecordedAndInjectable) {
  FakeSyscalls os;
  os.fail_nth("socketpair", 1, 0);
  EXPECT_EQ(os.socketpair(AF_UNIX, SOCK_STREAM, 0).error().code, EMFILE);
  ASSERT_TRUE(os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(os.transcript().at(1).to_string(),
            "[1000] socketpair(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = [0, 1]");
}

TEST(FakeSocket, CallsAreRecordedReadablyAndInjectable) {
  FakeSyscalls os;
  os.fail_nth("sendto", 1, ENOBUFS);
  const int fd = *os.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(send_to(os, fd, "READY=1\n", "@notify").error().code, ENOBUFS);
  EXPECT_EQ(os.transcript().at(0).to_string(),
            "[1000] socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 0");
  EXPECT_EQ(os.transcript().at(1).call_text(),
            "sendto(0, \"READY=1\\n\", 8, MSG_NOSIGNAL, unix:@notify)");
  EXPECT_THAT(os.transcript(), CallFailedWith("sendto", ENOBUFS));
  for (const char* name : {"socket", "bind", "listen", "accept4", "connect", "sendto", "recvfrom",
                           "recvmsg", "sendmsg", "setsockopt", "getsockopt", "getsockname",
                           "getpeername", "shutdown", "socketpair"}) {
    EXPECT_NE(FakeSyscalls::typical_errno(name), 0) << name;
  }
}

}  // namespace
}  // namespace daemonkit::fake
