// sendmsg and what AF_UNIX messages carry on the fake kernel: descriptors (SCM_RIGHTS) that
// outlive their sender, credentials a sender states (SCM_CREDENTIALS) or the kernel records,
// SO_PEERCRED, getpeername, and the transcript and fault tables of the new calls.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemonkit/fake/fake_syscalls.h"
#include "daemonkit/fake/transcript_matchers.h"
#include "socket_test_support.h"

namespace daemonkit::fake {
namespace {

using testing_support::as_sockaddr;
using testing_support::inet_address;
using testing_support::unix_address;

// sendmsg of `text` with `fds` (SCM_RIGHTS) and, if given, stated credentials.
sys::Result<std::size_t> send_with(FakeSyscalls& os, int fd, std::string text,
                                   const std::vector<int>& fds,
                                   const ucred* credentials = nullptr) {
  iovec iov{text.data(), text.size()};
  alignas(cmsghdr) unsigned char control[256] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  std::size_t used = 0;
  auto* at = control;
  if (!fds.empty()) {
    cmsghdr header{};
    header.cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    header.cmsg_level = SOL_SOCKET;
    header.cmsg_type = SCM_RIGHTS;
    std::memcpy(at, &header, sizeof header);
    std::memcpy(at + CMSG_LEN(0), fds.data(), fds.size() * sizeof(int));
    used += CMSG_SPACE(fds.size() * sizeof(int));
  }
  if (credentials != nullptr) {
    cmsghdr header{};
    header.cmsg_len = CMSG_LEN(sizeof(ucred));
    header.cmsg_level = SOL_SOCKET;
    header.cmsg_type = SCM_CREDENTIALS;
    std::memcpy(at + used, &header, sizeof header);
    std::memcpy(at + used + CMSG_LEN(0), credentials, sizeof *credentials);
    used += CMSG_SPACE(sizeof(ucred));
  }
  msg.msg_controllen = used;
  if (used == 0) msg.msg_control = nullptr;
  return os.sendmsg(fd, &msg, MSG_NOSIGNAL);
}

struct Got {
  std::string bytes;
  std::vector<int> fds;
  std::optional<ucred> credentials;
  int flags = 0;
};

Got receive(FakeSyscalls& os, int fd, std::size_t len = 64, int flags = MSG_DONTWAIT) {
  std::vector<char> buf(len);
  alignas(cmsghdr) unsigned char control[256] = {};
  iovec iov{buf.data(), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  Got got;
  auto n = os.recvmsg(fd, &msg, flags);
  if (!n) {
    got.bytes = "error " + std::to_string(n.error().code);
    return got;
  }
  got.bytes.assign(buf.data(), std::min(*n, len));
  got.flags = msg.msg_flags;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_type == SCM_RIGHTS) {
      got.fds.resize((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      std::memcpy(got.fds.data(), CMSG_DATA(c), got.fds.size() * sizeof(int));
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      ucred u{};
      std::memcpy(&u, CMSG_DATA(c), sizeof u);
      got.credentials = u;
    }
  }
  return got;
}

std::string read_all(FakeSyscalls& os, int fd) {
  char buf[64];
  auto n = os.read(fd, buf, sizeof buf);
  return n ? std::string(buf, *n) : "error " + std::to_string(n.error().code);
}

TEST(FakeRights, ADescriptorSentFromAChildThatExitedStillReads) {
  FakeSyscalls os;
  const auto pair = *os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  const auto pipe = *os.pipe2(O_CLOEXEC | O_NONBLOCK);
  ASSERT_TRUE(os.write(pipe.write_end, "from child", 10));
  ASSERT_TRUE(send_with(os, pair.first, "p", {pipe.read_end}));
  os.end_process(child, 0);
  os.switch_to(parent);
  const Got got = receive(os, pair.second);
  EXPECT_EQ(got.bytes, "p");
  ASSERT_EQ(got.fds.size(), 1u);
  EXPECT_EQ(read_all(os, got.fds[0]), "from child");
  EXPECT_EQ(read_all(os, got.fds[0]), "") << "the write end went with the child: EOF";
}

TEST(FakeRights, ASocketSentToItselfAndClosedIsFreedWithTheKernel) {
  // Linux's garbage collector frees such a cycle at once; the fake frees it with the kernel.
  // Under LeakSanitizer a leak here fails the test program.
  FakeSyscalls os;
  const auto pair = *os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_TRUE(send_with(os, pair.first, "self", {pair.second}));
  ASSERT_TRUE(send_with(os, pair.second, "self", {pair.first}));
  ASSERT_TRUE(os.close(pair.first));
  ASSERT_TRUE(os.close(pair.second));
}

TEST(FakeRights, RightsOnTcpAreEinvalAndTooManyAreEinval) {
  FakeSyscalls os;
  const int listener = *os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_TRUE(os.listen(listener, 4));
  sockaddr_in at{};
  socklen_t len = sizeof at;
  ASSERT_TRUE(os.getsockname(listener, reinterpret_cast<sockaddr*>(&at), &len));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int client = *os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(os.connect(client, as_sockaddr(at), sizeof at));
  EXPECT_EQ(send_with(os, client, "x", {0}).error().code, EINVAL);
  EXPECT_EQ(*send_with(os, client, "x", {}), 1u) << "no control: an ordinary send";
  const auto pair = *os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const std::vector<int> many(254, 0);
  std::string text = "m";
  iovec iov{text.data(), 1};
  std::vector<unsigned char> control(CMSG_SPACE(many.size() * sizeof(int)));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_len = CMSG_LEN(many.size() * sizeof(int));
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  EXPECT_EQ(os.sendmsg(pair.first, &msg, 0).error().code, EINVAL) << "SCM_MAX_FD is 253";
}

TEST(FakeCredentials, ASenderStatesItsOwnIdsOnlyUnlessPrivileged) {
  FakeSyscalls os;
  const auto pair = *os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(pair.second, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  const pid_t self = os.getpid();
  const ucred other_pid{self + 1000, 0, 0};
  EXPECT_EQ(send_with(os, pair.first, "x", {}, &other_pid).error().code, ESRCH)
      << "root may name any pid, but it must exist";
  const ucred invalid{self, static_cast<uid_t>(-1), 0};
  EXPECT_EQ(send_with(os, pair.first, "x", {}, &invalid).error().code, EINVAL);
  const ucred stated{self, 42, 43};
  ASSERT_TRUE(send_with(os, pair.first, "stated", {}, &stated));
  const Got got = receive(os, pair.second);
  ASSERT_TRUE(got.credentials);
  EXPECT_EQ(got.credentials->uid, 42u) << "root may state any ids";
  EXPECT_EQ(got.credentials->gid, 43u);
  ASSERT_TRUE(os.setresgid(2001, 2002, 2003));
  ASSERT_TRUE(os.setresuid(1001, 1002, 1003));
  const ucred saved{self, 1003, 2001};
  EXPECT_TRUE(send_with(os, pair.first, "ok", {}, &saved)) << "the saved uid, the real gid";
  const ucred foreign{self, 0, 2001};
  EXPECT_EQ(send_with(os, pair.first, "x", {}, &foreign).error().code, EPERM);
  const ucred init{1, 1001, 2001};
  EXPECT_EQ(send_with(os, pair.first, "x", {}, &init).error().code, EPERM);
  const Got ok = receive(os, pair.second);
  ASSERT_TRUE(ok.credentials);
  EXPECT_EQ(ok.credentials->uid, 1003u);
}

TEST(FakeCredentials, AStreamReaderWithSoPasscredReadsOneSenderAtATime) {
  FakeSyscalls os;
  const auto pair = *os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int on = 1;
  ASSERT_TRUE(os.setsockopt(pair.second, SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  ASSERT_TRUE(os.write(pair.first, "one", 3));
  ASSERT_TRUE(os.write(pair.first, "two", 3));
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.write(pair.first, "kid", 3));
  os.end_process(child, 0);
  os.switch_to(parent);
  const Got mine = receive(os, pair.second);
  EXPECT_EQ(mine.bytes, "onetwo");
  ASSERT_TRUE(mine.credentials);
  EXPECT_EQ(mine.credentials->pid, parent);
  const Got theirs = receive(os, pair.second);
  EXPECT_EQ(theirs.bytes, "kid");
  ASSERT_TRUE(theirs.credentials);
  EXPECT_EQ(theirs.credentials->pid, child);
}

std::string peer_text(FakeSyscalls& os, int fd) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  auto got = os.getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (!got) return "error " + std::to_string(got.error().code);
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    return fmt::format("inet len={} port={}", len, ntohs(in->sin_port));
  }
  return fmt::format("family={} len={}", a.ss_family, len);
}

std::string peercred_text(FakeSyscalls& os, int fd) {
  ucred u{};
  socklen_t len = sizeof u;
  auto got = os.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &len);
  if (!got) return "error " + std::to_string(got.error().code);
  return fmt::format("{}/{}/{}", u.pid, u.uid, u.gid);
}

TEST(FakePeer, GetpeernameAndSoPeercredNameTheOtherEnd) {
  FakeSyscalls os;
  const int listener = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const auto at = unix_address("@peer");
  ASSERT_TRUE(os.bind(listener, at.get(), at.len));
  ASSERT_TRUE(os.listen(listener, 4));
  EXPECT_EQ(peer_text(os, listener), "error " + std::to_string(ENOTCONN));
  const pid_t parent = os.getpid();
  const pid_t child = *os.fork();
  os.switch_to(child);
  ASSERT_TRUE(os.setresgid(2001, 2002, 2003));
  ASSERT_TRUE(os.setresuid(1001, 1002, 1003));
  const int client = *os.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(os.connect(client, at.get(), at.len));
  EXPECT_EQ(peer_text(os, client), fmt::format("family={} len={}", AF_UNIX, at.len));
  EXPECT_EQ(peercred_text(os, client), fmt::format("{}/0/0", parent)) << "who called listen";
  os.switch_to(parent);
  const int server = *os.accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  EXPECT_EQ(peer_text(os, server), fmt::format("family={} len=2", AF_UNIX)) << "unnamed";
  EXPECT_EQ(peercred_text(os, server), fmt::format("{}/1002/2002", child)) << "effective ids";
  const auto pair = *os.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(peercred_text(os, pair.first), fmt::format("{}/0/0", parent));
  const int tcp = *os.socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(peercred_text(os, tcp), "0/4294967295/4294967295");
  EXPECT_EQ(peer_text(os, tcp), "error " + std::to_string(ENOTCONN));
  EXPECT_EQ(peer_text(os, 99), "error " + std::to_string(EBADF));
}

TEST(FakeSocketCalls, SendmsgAndGetpeernameAreRecordedAndInjectable) {
  FakeSyscalls os;
  const auto pair = *os.socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  os.fail_nth("sendmsg", 2, FakeSyscalls::typical_errno("sendmsg"));
  os.fail_nth("getpeername", 1, FakeSyscalls::typical_errno("getpeername"));
  ASSERT_TRUE(send_with(os, pair.first, "hello", {0}));
  EXPECT_EQ(send_with(os, pair.first, "x", {}).error().code, ENOBUFS);
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  EXPECT_EQ(os.getpeername(pair.first, reinterpret_cast<sockaddr*>(&a), &len).error().code,
            ENOTCONN);
  EXPECT_EQ(os.transcript().at(1).to_string(),
            "[1000] sendmsg(0, {name=NULL, iov=1/5, control=24}, MSG_NOSIGNAL) = 5");
  EXPECT_EQ(os.transcript().at(3).call_text(), "getpeername(0)");
}

}  // namespace
}  // namespace daemonkit::fake
