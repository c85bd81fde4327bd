// Readiness's sd_notify on the real kernel: the fake kernel has no sockets, so the datagram's
// journey to a path socket and to an abstract socket is checked here, with the test as the
// service manager.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "daemonkit/core/daemon/daemon_context.h"
#include "daemonkit/core/daemon/readiness.h"
#include "daemonkit/sys/real_syscalls.h"

namespace daemonkit::core {
namespace {

// A datagram socket bound to `name` ("/path" or "@abstract"), as a service manager holds.
class Manager {
 public:
  explicit Manager(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (name[0] == '@') {
      addr.sun_path[0] = '\0';
    } else {
      ::unlink(name.c_str());
      len += 1;
    }
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~Manager() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  [[nodiscard]] bool bound() const { return bound_; }
  std::string receive() {
    char buf[512];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::string name_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(SdNotifyOnKernel, ReadyReachesAPathSocket) {
  const std::string path = "/tmp/daemonkit-notify-" + std::to_string(::getpid());
  Manager manager(path);
  ASSERT_TRUE(manager.bound());
  sys::RealSyscalls os;
  Readiness::Options options;
  options.notify_socket = path;
  options.main_pid = 4321;
  Readiness readiness(os, options);
  ASSERT_TRUE(readiness.ready("serving"));
  EXPECT_EQ(manager.receive(), "READY=1\nSTATUS=serving\nMAINPID=4321\n");
}

TEST(SdNotifyOnKernel, FailureReachesAnAbstractSocket) {
  const std::string name = "@daemonkit-notify-" + std::to_string(::getpid());
  Manager manager(name);
  ASSERT_TRUE(manager.bound());
  sys::RealSyscalls os;
  Readiness::Options options;
  options.notify_socket = name;
  Readiness readiness(os, options);
  ASSERT_TRUE(readiness.fail("chdir(/srv): No such file or directory (ENOENT)", ENOENT));
  EXPECT_EQ(manager.receive(), "STATUS=chdir(/srv): No such file or directory (ENOENT)\nERRNO=2\n");
}

TEST(SdNotifyOnKernel, AMissingManagerIsAnErrorNotACrash) {
  sys::RealSyscalls os;
  Readiness::Options options;
  options.notify_socket = "/tmp/daemonkit-nobody-listens-" + std::to_string(::getpid());
  Readiness readiness(os, options);
  auto sent = readiness.ready();
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, ENOENT);
}

TEST(SdNotifyOnKernel, UnderAServiceManagerTheContextStaysInForegroundAndNotifies) {
  const std::string path = "/tmp/daemonkit-notify-ctx-" + std::to_string(::getpid());
  Manager manager(path);
  ASSERT_TRUE(manager.bound());
  sys::RealSyscalls os;
  Environment env;
  env.notify_socket = path;
  DaemonOptions options;
  options.working_directory = ".";
  options.prevent_core = false;
  options.signal_map = {};
  DaemonContext ctx(os, options, env, {});
  const pid_t before = ::getpid();
  ASSERT_TRUE(ctx.open());
  EXPECT_FALSE(ctx.detached());
  EXPECT_EQ(::getpid(), before) << "no fork under Type=notify";
  ctx.ready("up");
  EXPECT_EQ(manager.receive(), "READY=1\nSTATUS=up\n");
  ctx.close();
}

}  // namespace
}  // namespace daemonkit::core
