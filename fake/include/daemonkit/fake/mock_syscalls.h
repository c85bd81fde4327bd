// MockSyscalls: a GoogleMock double of the Syscalls interface, for tests that pin the exact
// order of calls. It derives from the interface, never from RealSyscalls, so a call a test did
// not expect fails the test instead of reaching the kernel. Prefer FakeSyscalls for behaviour.
#pragma once

#include <gmock/gmock.h>

#include "daemonkit/fake/process_ended.h"
#include "daemonkit/sys/syscalls.h"

namespace daemonkit::fake {

// A class template only so that `extern template` applies to it (MockSyscalls is its one
// instance, below): every MOCK_METHOD body names gmock templates, and a plain class makes each
// file that includes this header instantiate all of them whether it mocks one call or none
// (4.3 of a test file's 6.9 s at g++ -O0 just to include this header; 1.4 s with the template).
// src/mock_syscalls.cpp instantiates the bodies, the vtable and the strictness wrappers once.
template <int kOneInstance = 0>
class BasicMockSyscalls : public sys::Syscalls {
 public:
  template <typename T>
  using Result = sys::Result<T>;

  BasicMockSyscalls();
  ~BasicMockSyscalls() override;

  MOCK_METHOD(Result<pid_t>, fork, (), (override));
  MOCK_METHOD(Result<pid_t>, vfork, (sys::ChildMain), (override));
  MOCK_METHOD(Result<sys::ChildWithPidFd>, vfork_with_pidfd, (sys::ChildMain), (override));
  MOCK_METHOD(Result<pid_t>, setsid, (), (override));
  MOCK_METHOD(pid_t, getpid, (), (override));
  MOCK_METHOD(pid_t, getppid, (), (override));
  MOCK_METHOD(Result<pid_t>, getsid, (pid_t), (override));
  MOCK_METHOD(Result<pid_t>, getpgid, (pid_t), (override));
  MOCK_METHOD(Result<void>, setpgid, (pid_t, pid_t), (override));
  MOCK_METHOD(Result<sys::WaitResult>, waitpid, (pid_t, int), (override));
  MOCK_METHOD(Result<void>, kill, (pid_t, int), (override));
  MOCK_METHOD(Result<int>, pidfd_open, (pid_t, unsigned int), (override));
  MOCK_METHOD(Result<void>, pidfd_send_signal, (int, int, unsigned int), (override));
  MOCK_METHOD(Result<void>, execve, (const char*, char* const*, char* const*), (override));
  MOCK_METHOD(Result<int>, prctl, (int, unsigned long), (override));

  // _exit cannot return, so the expectation is set on `exit_called`; the mock then unwinds
  // with ProcessEnded as the fake kernel does.
  MOCK_METHOD(void, exit_called, (int));
  [[noreturn]] void exit_now(int status) override {
    exit_called(status);
    throw ProcessEnded{0, (status & 0xff) << 8, false};
  }

  MOCK_METHOD(Result<sys::ResUids>, getresuid, (), (override));
  MOCK_METHOD(Result<sys::ResGids>, getresgid, (), (override));
  MOCK_METHOD(Result<void>, setresuid, (uid_t, uid_t, uid_t), (override));
  MOCK_METHOD(Result<void>, setresgid, (gid_t, gid_t, gid_t), (override));
  MOCK_METHOD(Result<void>, setuid, (uid_t), (override));
  MOCK_METHOD(Result<void>, seteuid, (uid_t), (override));
  MOCK_METHOD(Result<void>, setgid, (gid_t), (override));
  MOCK_METHOD(Result<void>, setegid, (gid_t), (override));
  MOCK_METHOD(Result<void>, setgroups, (std::span<const gid_t>), (override));
  MOCK_METHOD(Result<std::vector<gid_t>>, getgroups, (), (override));
  MOCK_METHOD(Result<std::optional<sys::Passwd>>, getpwnam, (const char*), (override));
  MOCK_METHOD(Result<std::optional<sys::Passwd>>, getpwuid, (uid_t), (override));
  MOCK_METHOD(Result<std::optional<sys::Group>>, getgrnam, (const char*), (override));
  MOCK_METHOD(Result<std::optional<sys::Group>>, getgrgid, (gid_t), (override));
  MOCK_METHOD(Result<std::vector<gid_t>>, getgrouplist, (const char*, gid_t), (override));

  MOCK_METHOD(Result<int>, open, (const char*, int, mode_t), (override));
  MOCK_METHOD(Result<int>, openat, (int, const char*, int, mode_t), (override));
  MOCK_METHOD(Result<void>, close, (int), (override));
  MOCK_METHOD(Result<void>, close_range, (unsigned int, unsigned int, int), (override));
  MOCK_METHOD(Result<int>, dup, (int), (override));
  MOCK_METHOD(Result<int>, dup2, (int, int), (override));
  MOCK_METHOD(Result<int>, dup3, (int, int, int), (override));
  MOCK_METHOD(Result<int>, fcntl, (int, int, int), (override));
  MOCK_METHOD(Result<int>, ioctl, (int, unsigned long, void*), (override));
  MOCK_METHOD(Result<std::size_t>, read, (int, void*, std::size_t), (override));
  MOCK_METHOD(Result<std::size_t>, write, (int, const void*, std::size_t), (override));
  MOCK_METHOD(Result<std::size_t>, writev, (int, std::span<const struct iovec>), (override));
  MOCK_METHOD(Result<void>, fsync, (int), (override));
  MOCK_METHOD(Result<void>, ftruncate, (int, off_t), (override));
  MOCK_METHOD(Result<struct stat>, fstat, (int), (override));
  MOCK_METHOD(Result<struct stat>, stat, (const char*), (override));
  MOCK_METHOD(Result<struct stat>, lstat, (const char*), (override));
  MOCK_METHOD(Result<void>, flock, (int, int), (override));
  MOCK_METHOD(Result<std::size_t>, getdents64, (int, void*, std::size_t), (override));
  MOCK_METHOD(Result<void>, unlink, (const char*), (override));
  MOCK_METHOD(Result<void>, rename, (const char*, const char*), (override));
  MOCK_METHOD(Result<void>, symlink, (const char*, const char*), (override));
  MOCK_METHOD(Result<void>, mkdir, (const char*, mode_t), (override));
  MOCK_METHOD(Result<void>, rmdir, (const char*), (override));
  MOCK_METHOD(Result<void>, chmod, (const char*, mode_t), (override));
  MOCK_METHOD(Result<void>, fchmod, (int, mode_t), (override));
  MOCK_METHOD(Result<void>, chown, (const char*, uid_t, gid_t), (override));
  MOCK_METHOD(Result<void>, chdir, (const char*), (override));
  MOCK_METHOD(Result<void>, chroot, (const char*), (override));
  MOCK_METHOD(Result<std::string>, getcwd, (), (override));
  MOCK_METHOD(mode_t, umask, (mode_t), (override));

  MOCK_METHOD(Result<sys::PipeFds>, pipe2, (int), (override));
  MOCK_METHOD(Result<void>, sigaction, (int, const struct sigaction*, struct sigaction*),
              (override));
  MOCK_METHOD(Result<void>, sigprocmask, (int, const sigset_t*, sigset_t*), (override));
  MOCK_METHOD(Result<int>, signalfd, (int, const sigset_t&, int), (override));
  MOCK_METHOD(Result<int>, poll, (struct pollfd*, nfds_t, int), (override));
  MOCK_METHOD(Result<int>, epoll_create1, (int), (override));
  MOCK_METHOD(Result<void>, epoll_ctl, (int, int, int, struct epoll_event*), (override));
  MOCK_METHOD(Result<int>, epoll_wait, (int, struct epoll_event*, int, int), (override));
  MOCK_METHOD(Result<int>, eventfd, (unsigned int, int), (override));

  MOCK_METHOD(Result<int>, socket, (int, int, int), (override));
  MOCK_METHOD(Result<sys::SocketPair>, socketpair, (int, int, int), (override));
  MOCK_METHOD(Result<void>, bind, (int, const struct sockaddr*, socklen_t), (override));
  MOCK_METHOD(Result<void>, listen, (int, int), (override));
  MOCK_METHOD(Result<int>, accept4, (int, struct sockaddr*, socklen_t*, int), (override));
  MOCK_METHOD(Result<void>, connect, (int, const struct sockaddr*, socklen_t), (override));
  MOCK_METHOD(Result<std::size_t>, sendto,
              (int, const void*, std::size_t, int, const struct sockaddr*, socklen_t), (override));
  MOCK_METHOD(Result<std::size_t>, recvfrom,
              (int, void*, std::size_t, int, struct sockaddr*, socklen_t*), (override));
  MOCK_METHOD(Result<std::size_t>, recvmsg, (int, struct msghdr*, int), (override));
  MOCK_METHOD(Result<std::size_t>, sendmsg, (int, const struct msghdr*, int), (override));
  MOCK_METHOD(Result<void>, setsockopt, (int, int, int, const void*, socklen_t), (override));
  MOCK_METHOD(Result<void>, getsockopt, (int, int, int, void*, socklen_t*), (override));
  MOCK_METHOD(Result<void>, getsockname, (int, struct sockaddr*, socklen_t*), (override));
  MOCK_METHOD(Result<void>, getpeername, (int, struct sockaddr*, socklen_t*), (override));
  MOCK_METHOD(Result<void>, shutdown, (int, int), (override));

  MOCK_METHOD(Result<struct rlimit>, getrlimit, (int), (override));
  MOCK_METHOD(Result<void>, setrlimit, (int, const struct rlimit&), (override));
  MOCK_METHOD(Result<struct timespec>, clock_gettime, (clockid_t), (override));
};

template <int kOneInstance>
BasicMockSyscalls<kOneInstance>::BasicMockSyscalls() = default;
template <int kOneInstance>
BasicMockSyscalls<kOneInstance>::~BasicMockSyscalls() = default;

extern template class BasicMockSyscalls<0>;
using MockSyscalls = BasicMockSyscalls<0>;

}  // namespace daemonkit::fake

// Instantiated once, in src/mock_syscalls.cpp, for the same reason: a test file naming
// StrictMock<MockSyscalls> otherwise instantiates its vtable and every mocked method again
// (daemon_context_test.cpp: 20.3 s -> 11.3 s, g++ -O0).
extern template class testing::StrictMock<daemonkit::fake::MockSyscalls>;
extern template class testing::NiceMock<daemonkit::fake::MockSyscalls>;
extern template class testing::NaggyMock<daemonkit::fake::MockSyscalls>;
